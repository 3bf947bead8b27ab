"""Experiments: GrowthBook's published vectors, sticky assignment, what a variant switches."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.db import connection
from django.http import HttpResponse
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

from django_crosssell.measure import bucketing
from django_crosssell.measure.middleware import TrackingMiddleware
from django_crosssell.models import Experiment, Exposure, Serve, Variant

from .conftest import make_request

# GrowthBook's test cases (packages/sdk-js/test/cases.json): "hash" as
# [seed, value, version, expected] and "getBucketRange" as [[count, coverage, weights], ranges].
HASH_VECTORS = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
    ("", "a", 99, None),
]
RANGE_VECTORS = [
    ((2, 1, None), [(0, 0.5), (0.5, 1)]),
    ((2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ((2, 0, None), [(0, 0), (0.5, 0.5)]),
    ((4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
    ((3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ((3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ((2, -0.2, None), [(0, 0), (0.5, 0.5)]),
    ((2, 1.5, None), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
    ((4, 1, [0.4, 0.4, 0.2]), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_VECTORS)
def test_growthbook_hash_vectors(seed, value, version, expected):
    assert bucketing.gb_hash(seed, value, version) == expected


@pytest.mark.parametrize(("args", "expected"), RANGE_VECTORS)
def test_growthbook_bucket_range_vectors(args, expected):
    ranges = bucketing.bucket_ranges(*args)
    assert ranges == [pytest.approx(r, abs=1e-9) for r in expected]


def test_choose():
    ranges = [(0, 0.25), (0.5, 0.75)]
    assert [bucketing.choose(n, ranges) for n in (0.1, 0.3, 0.5, 0.9)] == [0, -1, 1, -1]


@pytest.fixture
def experiment(db):
    experiment = Experiment.objects.create(key="widgets-on", status="running")
    control = Variant.objects.create(experiment=experiment, key="control", position=0)
    off = Variant.objects.create(
        experiment=experiment, key="no-widgets", position=1, config={"enabled": False}
    )
    return experiment, control, off


def visit(shop, visitor, template="{% load crosssell %}{% also_recommended product %}", **kw):
    def view(request):
        html = Template(template).render(Context({"request": request, "product": shop["source"]}))
        return HttpResponse(html)

    return TrackingMiddleware(view)(make_request(cookies={"crosssell_vid": visitor}, **kw))


def test_assignment_follows_the_hash_and_is_recorded_once(shop, experiment, tracking_settings):
    exp, control, _off = experiment
    got = Counter()
    for n in range(200):
        visitor = f"visitor-{n:08d}-abcdefgh"
        expected = 0 if bucketing.gb_hash("widgets-on", visitor, 2) < 0.5 else 1
        html = visit(shop, visitor).content.decode()
        shown = "data-crosssell-serve" in html
        assert shown == (expected == 0)
        got[expected] += 1
        visit(shop, visitor)  # a second page: still one exposure
    assert Exposure.objects.count() == 200
    assert dict(Counter(Exposure.objects.values_list("variant__key", flat=True))) == {
        "control": got[0],
        "no-widgets": got[1],
    }
    assert 70 < got[0] < 130
    # control serves are tagged with the experiment and variant
    assert set(Serve.objects.values_list("experiment_id", "variant_id")) == {(exp.pk, control.pk)}


def test_assignment_is_sticky_through_its_cookie(shop, experiment, tracking_settings):
    _exp, control, off = experiment
    visitor = next(
        f"visitor-{n:08d}-abcdefgh"
        for n in range(100)
        if bucketing.gb_hash("widgets-on", f"visitor-{n:08d}-abcdefgh", 2) < 0.5
    )
    response = visit(shop, visitor)
    cookie = response.cookies["crosssell_exp"].value
    # the weights change: a new visitor would be bucketed anew, this one keeps control
    control.weight, off.weight = 0.0, 1.0
    control.save()
    off.save()

    def view(request):
        return HttpResponse(
            Template("{% load crosssell %}{% also_recommended product %}").render(
                Context({"request": request, "product": shop["source"]})
            )
        )

    request = make_request(cookies={"crosssell_vid": visitor, "crosssell_exp": cookie})
    assert "data-crosssell-serve" in TrackingMiddleware(view)(request).content.decode()
    assert "data-crosssell-serve" not in visit(shop, visitor).content.decode()  # no cookie


def test_a_variant_changes_the_limit(shop, db, tracking_settings):
    exp = Experiment.objects.create(key="fewer", status="running")
    Variant.objects.create(experiment=exp, key="two", config={"limit": 2})
    html = visit(shop, "visitor-00000000-abcdefgh").content.decode()
    assert len(re.findall(r"data-crosssell-item=", html)) == 2
    assert Serve.objects.get().variant.key == "two"


def test_placements_limit_what_an_experiment_touches(shop, db, tracking_settings):
    exp = Experiment.objects.create(key="upsell", status="running", placements=["upgrade_prompt"])
    Variant.objects.create(experiment=exp, key="off", config={"enabled": False})
    assert "data-crosssell-serve" in visit(shop, "visitor-00000000-abcdefgh").content.decode()
    assert Exposure.objects.count() == 0


def test_staff_preview(shop, experiment, tracking_settings, admin_user):
    html = visit(
        shop,
        "visitor-00000000-abcdefgh",
        user=admin_user,
        path="/?crosssell_variant=widgets-on:no-widgets",
    ).content.decode()
    assert "data-crosssell-serve" not in html
    html = visit(
        shop,
        "visitor-00000000-abcdefgh",
        user=admin_user,
        path="/?crosssell_variant=widgets-on:control",
    ).content.decode()
    assert "crosssell-item" in html
    assert Exposure.objects.count() == 0 and Serve.objects.count() == 0


def test_the_global_holdout_sees_nothing_and_is_recorded(shop, db, tracking_settings):
    tracking_settings(HOLDOUT=0.5)
    held = shown = 0
    for n in range(60):
        visitor = f"visitor-{n:08d}-abcdefgh"
        html = visit(shop, visitor).content.decode()
        if bucketing.gb_hash("crosssell-holdout", visitor, 2) < 0.5:
            assert "crosssell-item" not in html
            held += 1
        else:
            assert "crosssell-item" in html
            shown += 1
    assert held and shown
    assert Serve.objects.filter(held_out=True, items=[]).count() == held


def test_the_holdout_is_off_by_default():
    from django_crosssell.conf import DEFAULTS

    assert DEFAULTS["HOLDOUT"] == 0.0


def visit_with(shop, visitor, user, cookies):
    def view(request):
        html = Template("{% load crosssell %}{% also_recommended product %}").render(
            Context({"request": request, "product": shop["source"]})
        )
        return HttpResponse(html)

    request = make_request(cookies={"crosssell_vid": visitor, **cookies}, user=user)
    return TrackingMiddleware(view)(request)


def test_a_customer_keeps_their_recorded_variant_on_a_new_device(
    shop, db, tracking_settings, django_user_model
):
    exp = Experiment.objects.create(key="customers", status="running", unit="customer")
    control = Variant.objects.create(experiment=exp, key="control", position=0, weight=1.0)
    off = Variant.objects.create(
        experiment=exp, key="no-widgets", position=1, weight=0.0, config={"enabled": False}
    )
    alice = django_user_model.objects.create_user("alice", password="x")
    bob = django_user_model.objects.create_user("bob", password="x")
    first = visit(shop, "device-a-visitor-0000", user=alice)
    assert "data-crosssell-serve" in first.content.decode()
    assert Exposure.objects.get().variant == control
    # the weights change: anyone bucketed from now on gets "no-widgets"
    control.weight, off.weight = 0.0, 1.0
    control.save()
    off.save()
    # alice on a new device (no assignment cookie, another visitor id) keeps control
    with CaptureQueriesContext(connection) as new_device:
        second = visit(shop, "device-b-visitor-0000", user=alice)
    assert "data-crosssell-serve" in second.content.decode()
    lookups = [q for q in new_device.captured_queries if "exposure" in q["sql"].lower()]
    assert len([q for q in lookups if q["sql"].startswith("SELECT")]) == 1
    # with the cookie that page set, the next page asks nothing
    cookie = second.cookies["crosssell_exp"].value
    with CaptureQueriesContext(connection) as known:
        third = visit_with(shop, "device-b-visitor-0000", alice, {"crosssell_exp": cookie})
    assert "data-crosssell-serve" in third.content.decode()
    assert not [q for q in known.captured_queries if q["sql"].startswith("SELECT")]
    # bob on alice's device does not inherit her entry: he is bucketed (no-widgets)
    shared = visit_with(shop, "device-b-visitor-0000", bob, {"crosssell_exp": cookie})
    assert "data-crosssell-serve" not in shared.content.decode()
    assert dict(Exposure.objects.values_list("variant__key", "experiment_id").distinct()) == {
        "control": exp.pk,
        "no-widgets": exp.pk,
    }
    assert Exposure.objects.count() == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"metric": "lift"}, "Unknown keys: metric."),
        ({"limit": 0}, "limit must be"),
        ({"limit": True}, "limit must be"),
        ({"enabled": "no"}, "enabled must be"),
        ({"kind": "upgrade"}, "kind must be"),
        (["enabled"], "JSON object"),
    ],
)
def test_a_variant_config_the_widgets_would_not_honour_is_refused(db, config, message):
    from django.core.exceptions import ValidationError

    exp = Experiment.objects.create(key="checked", status="draft")
    variant = Variant(experiment=exp, key="b", config=config)
    with pytest.raises(ValidationError) as raised:
        variant.full_clean()
    assert message in " ".join(raised.value.message_dict["config"])


def test_a_valid_variant_config_passes(db):
    exp = Experiment.objects.create(key="checked", status="draft")
    config = {"enabled": True, "limit": 3, "kind": "related", "upsell": False, "bundles": True}
    Variant(experiment=exp, key="b", config=config).full_clean()
    Variant(experiment=exp, key="c", config={}).full_clean()


def test_running_experiments_are_kept_per_process_for_a_few_seconds(db, monkeypatch):
    from django_crosssell import cache
    from django_crosssell.measure import experiments

    clock = [1000.0]
    monkeypatch.setattr(experiments.time, "monotonic", lambda: clock[0])
    assert experiments.running_experiments() == []
    # another process starts an experiment: the shared version moves, this process's epoch
    # does not (simulated by writing the rows without the signals)
    Experiment.objects.bulk_create([Experiment(key="elsewhere", status="running")])
    exp = Experiment.objects.get(key="elsewhere")
    Variant.objects.bulk_create([Variant(experiment=exp, key="a")])
    cache.get_cache().incr(cache.VERSION_KEY)
    assert experiments.running_experiments() == []  # still this process's copy
    clock[0] += experiments.LOCAL_SECONDS
    assert [row["key"] for row in experiments.running_experiments()] == ["elsewhere"]
    # an edit in this process is seen at once
    exp.status = "draft"
    exp.save()
    assert experiments.running_experiments() == []
