"""Personal recommendations: the customer model, the fallback, buy again, the tags, budgets."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from django_crosssell.customers.model import fit_item_weights
from django_crosssell.customers.snapshot import run_snapshot
from django_crosssell.models import CustomerItemWeight
from django_crosssell.recommend import buy_again, recommend_for_customer
from django_crosssell.recommend.personal import History, due_products, rank, with_prior
from tests.factories import (
    AffinityRunFactory,
    ProductAffinityFactory,
    ProductFactory,
    make_order,
)

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def test_ease_learns_what_goes_with_what():
    # Customers who buy item 0 also buy item 1; items 2 and 3 go together.
    rng = np.random.default_rng(0)
    customers, items = [], []
    for customer in range(200):
        group = (0, 1) if customer % 2 else (2, 3)
        for item in group:
            if rng.random() < 0.9:
                customers.append(customer)
                items.append(item)
    weights = fit_item_weights(np.array(customers), np.array(items), l2=10.0)
    strongest = {}
    for source, target, value in zip(weights.source, weights.target, weights.weight, strict=True):
        if value > strongest.get(source, (None, -1.0))[1]:
            strongest[source] = (target, value)
    assert {s: t for s, (t, _v) in strongest.items()} == {0: 1, 1: 0, 2: 3, 3: 2}
    assert (weights.weight > 0).all()


def test_ease_keeps_only_the_most_bought_items():
    weights = fit_item_weights(
        np.array([0, 0, 1, 1, 2, 2, 3]), np.array([0, 1, 0, 1, 0, 1, 2]), max_items=2, l2=1.0
    )
    assert set(weights.source) | set(weights.target) <= {0, 1}


def test_rank_and_prior():
    rows = [("a", "x", 2.0), ("a", "y", 2.0), ("b", "y", 1.0), ("b", "a", 5.0)]
    assert rank({"a": 1.0, "b": 1.0}, rows, exclude={"a"}) == {"x": 2.0, "y": 3.0}
    normalised = rank({"a": 1.0, "b": 1.0}, rows, exclude=set(), normalise=True)
    assert normalised["x"] == pytest.approx(0.5) and normalised["y"] == pytest.approx(0.5 + 1 / 6)
    blended = with_prior({"x": 2.0, "y": 1.0}, [("z", 10.0), ("y", 5.0)])
    assert blended == {"x": 1.0, "y": 1.0, "z": 1.0}


def test_history_weights_by_recency():
    history = History({"old": [NOW - timedelta(days=60)], "new": [NOW - timedelta(days=0)]})
    weights = history.weights(NOW, 30, 10)
    assert weights["new"] == pytest.approx(1.0) and weights["old"] == pytest.approx(0.25)
    assert history.weights(NOW, None, 1) == {"new": 1.0}


def test_due_products_follow_the_customers_own_pace():
    every_30 = [NOW - timedelta(days=d) for d in (95, 65, 35)]  # last 35 days ago: due
    every_90 = [NOW - timedelta(days=d) for d in (200, 110, 20)]  # last 20 of 90: not due
    history = History({"beans": every_30, "kettle": every_90, "once": [NOW]})
    due = due_products(history, NOW)
    assert [item.key for item in due] == ["beans"]
    assert due[0].days_since == 35 and due[0].median_gap_days == pytest.approx(30)


@pytest.fixture
def shop(django_user_model):
    alice = django_user_model.objects.create_user("alice", "alice@example.com", "x")
    others = [
        django_user_model.objects.create_user(f"u{i}", f"u{i}@example.com", "x") for i in range(6)
    ]
    kettle, filters, mug, beans = (ProductFactory(price=Decimal("1000")) for _ in range(4))
    for user in others:  # kettle buyers buy filters
        make_order(kettle, filters, customer=user, placed_at=NOW - timedelta(days=10))
    for user in others[:3]:
        make_order(mug, customer=user, placed_at=NOW - timedelta(days=5))
    for days in (65, 35):
        make_order(kettle, beans, customer=alice, placed_at=NOW - timedelta(days=days))
    return {"alice": alice, "kettle": kettle, "filters": filters, "mug": mug, "beans": beans}


def test_for_you_uses_the_learned_model(shop):
    run_snapshot()
    assert CustomerItemWeight.objects.exists()
    recs = recommend_for_customer(shop["alice"], limit=2)
    assert recs[0].product == shop["filters"] and recs[0].source == "for_you"
    assert {rec.product for rec in recs}.isdisjoint({shop["kettle"], shop["beans"]})


def test_for_you_falls_back_to_the_engines_partners(shop):
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=shop["beans"], target=shop["mug"], confidence=0.9)
    recs = recommend_for_customer(shop["alice"], limit=3)  # no snapshot: no model
    assert recs[0].product == shop["mug"] and recs[0].source == "for_you"
    assert shop["kettle"] not in [rec.product for rec in recs]


def test_visitors_get_bestsellers(shop):
    recs = recommend_for_customer(AnonymousUser(), limit=2)
    assert [rec.product for rec in recs][:1] == [shop["kettle"]]
    assert {rec.source for rec in recs} == {"fallback"}
    assert buy_again(AnonymousUser()) == [] and buy_again(None) == []


def test_buy_again(shop):
    recs = buy_again(shop["alice"])
    assert {rec.product for rec in recs} == {shop["kettle"], shop["beans"]}
    assert recs[0].reason == "Last bought 35 days ago"


def test_for_you_budget_cold_and_warm(
    shop, django_assert_max_num_queries, django_assert_num_queries
):
    run_snapshot()
    with django_assert_max_num_queries(5):
        cold = recommend_for_customer(shop["alice"])
    with django_assert_num_queries(0):
        assert recommend_for_customer(shop["alice"]) == cold


def test_tags_render_per_customer(shop, django_assert_num_queries):
    run_snapshot()
    request = RequestFactory().get("/")
    request.user = shop["alice"]
    template = Template("{% load crosssell %}{% for_you limit=2 %}{% buy_again %}")
    html = template.render(Context({"request": request}))
    assert 'data-crosssell-widget="for_you"' in html and "Picked for you" in html
    assert 'data-crosssell-widget="buy_again"' in html and "Last bought 35 days ago" in html
    ids = re.findall(r'data-crosssell-product="([^"]+)"', html)
    assert str(shop["filters"].pk) in ids
    with django_assert_num_queries(0):
        assert template.render(Context({"request": request})) == html
    request.user = AnonymousUser()
    visitor = template.render(Context({"request": request}))
    assert 'data-crosssell-widget="buy_again"' not in visitor
    assert 'data-crosssell-widget="for_you"' in visitor
