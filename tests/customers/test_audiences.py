"""Audiences: rules, live matching with its query budget, and restricted offers on the
storefront (relations, tier prompts, bundle rules)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from django_crosssell import bundles
from django_crosssell.customers import audiences
from django_crosssell.followup import consent
from django_crosssell.models import Audience, CustomerMetrics, Segment
from django_crosssell.recommend import recommend_for_cart, recommend_for_product, tier_offers
from tests.factories import (
    AffinityRunFactory,
    BundleItemFactory,
    BundleRuleFactory,
    CategoryFactory,
    ProductFactory,
    ProductRelationFactory,
    TierStepFactory,
    make_order,
)

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)


def metrics_for(user, segment_slug: str, **fields) -> CustomerMetrics:
    values = {
        "first_order_at": NOW - timedelta(days=100),
        "last_order_at": NOW - timedelta(days=10),
        "recency_days": 10,
        "frequency": 3,
        "monetary": Decimal("30000"),
        "average_order_value": Decimal("10000"),
        "r_score": 5,
        "f_score": 3,
        "m_score": 3,
        "decile": 2,
        "segment": Segment.objects.get(slug=segment_slug),
        **fields,
    }
    return CustomerMetrics.objects.create(customer=str(user.pk), **values)


@pytest.fixture
def users(django_user_model):
    made = {
        name: django_user_model.objects.create_user(name, f"{name}@example.com", "x")
        for name in ("champion", "at_risk", "no_orders")
    }
    metrics_for(made["champion"], "champions", decile=1, monetary=Decimal("90000"))
    metrics_for(made["at_risk"], "at-risk", recency_days=200, r_score=2)
    return made


@pytest.fixture
def champions_only():
    audience = Audience.objects.create(name="Champions", slug="champions")
    audience.segments.add(Segment.objects.get(slug="champions"))
    return audience


def render(source: str, **context) -> str:
    return Template("{% load crosssell %}" + source).render(Context(context))


def request_for(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def cards(html: str) -> list[str]:
    return re.findall(r'data-crosssell-product="([^"]+)"', html)


# --- rules -----------------------------------------------------------------------------------


def test_segment_rule(users, champions_only):
    assert audiences.matches(champions_only, users["champion"])
    assert not audiences.matches(champions_only, users["at_risk"])
    assert not audiences.matches(champions_only, users["no_orders"])
    assert not audiences.matches(champions_only, None)
    assert not audiences.matches(champions_only, AnonymousUser())


def test_anonymous_visitors_match_only_audiences_that_say_so(users):
    open_to_all = Audience.objects.create(name="All", slug="all", include_anonymous=True)
    assert audiences.matches(open_to_all, None)
    assert audiences.matches(open_to_all, AnonymousUser())
    assert audiences.matches(open_to_all, users["no_orders"])  # no rules: every customer


def test_metric_ranges_and_deciles(users):
    lapsing = Audience.objects.create(name="Lapsing", slug="lapsing", recency_min=90)
    assert audiences.matches(lapsing, users["at_risk"])
    assert not audiences.matches(lapsing, users["champion"])
    assert not audiences.matches(lapsing, users["no_orders"])  # no metrics: no match
    top = Audience.objects.create(name="Top", slug="top", deciles=[1], monetary_min=50000)
    assert audiences.matches(top, users["champion"])
    assert not audiences.matches(top, users["at_risk"])


def test_purchase_rules(users):
    kettle, beans = ProductFactory(), ProductFactory(category=CategoryFactory())
    make_order(kettle, customer=users["champion"])
    make_order(beans, customer=users["at_risk"])
    kettle_owners = Audience.objects.create(name="Kettle", slug="kettle")
    kettle_owners.bought_products.add(kettle)
    without_beans = Audience.objects.create(name="No beans", slug="no-beans")
    without_beans.not_bought_products.add(beans)
    coffee = Audience.objects.create(
        name="Coffee", slug="coffee", bought_categories=[beans.category_id]
    )
    assert audiences.matches(kettle_owners, users["champion"])
    assert not audiences.matches(kettle_owners, users["at_risk"])
    assert audiences.matches(without_beans, users["champion"])
    assert audiences.matches(without_beans, users["no_orders"])
    assert not audiences.matches(without_beans, users["at_risk"])
    assert audiences.matches(coffee, users["at_risk"])
    assert not audiences.matches(coffee, users["champion"])
    assert {row.customer for row in audiences.members(kettle_owners)} == {str(users["champion"].pk)}
    assert {row.customer for row in audiences.members(without_beans)} == {str(users["champion"].pk)}
    assert {row.customer for row in audiences.members(coffee)} == {str(users["at_risk"].pk)}


def test_consent_rule_follows_the_ledger(users):
    newsletter = Audience.objects.create(
        name="Newsletter", slug="newsletter", consent_purpose="newsletter"
    )
    champion = users["champion"]
    assert not audiences.matches(newsletter, champion)
    consent.grant(["newsletter"], customer=str(champion.pk), email=champion.email, source="form")
    assert audiences.matches(newsletter, champion)
    assert [row.customer for row in audiences.members(newsletter)] == [str(champion.pk)]
    consent.withdraw(["newsletter"], customer=str(champion.pk), email=champion.email, source="form")
    assert not audiences.matches(newsletter, champion)
    assert not audiences.members(newsletter).exists()


def test_inactive_audiences_match_nobody(users, champions_only):
    champions_only.is_active = False
    champions_only.save()
    assert not audiences.matches(champions_only, users["champion"])
    assert audiences.audience_ids_for(users["champion"]) == ()


def test_export_csv(users, champions_only):
    rows = list(csv.reader(io.StringIO(audiences.export_csv(champions_only))))
    assert rows[0][:3] == ["customer", "email", "segment"]
    assert rows[1][:3] == [str(users["champion"].pk), "champion@example.com", "champions"]
    assert len(rows) == 2


def test_audience_ids_cold_bound_and_warm_zero(
    users, champions_only, django_assert_max_num_queries, django_assert_num_queries
):
    kettle = ProductFactory()
    everything = Audience.objects.create(
        name="Everything",
        slug="everything",
        recency_max=400,
        consent_purpose="newsletter",
        bought_categories=[kettle.category_id],
    )
    everything.bought_products.add(kettle)
    everything.not_bought_products.add(ProductFactory())
    with django_assert_max_num_queries(audiences.MAX_COLD_QUERIES):
        ids = audiences.audience_ids_for(users["champion"])
    assert ids == (champions_only.pk,)
    with django_assert_num_queries(0):
        assert audiences.audience_ids_for(users["champion"]) == ids


# --- the storefront --------------------------------------------------------------------------


@pytest.fixture
def restricted_link(champions_only):
    source, open_pick, vip_pick = ProductFactory(), ProductFactory(), ProductFactory()
    ProductRelationFactory(source=source, target=open_pick, position=1)
    ProductRelationFactory(source=source, target=vip_pick, position=0, audience=champions_only)
    AffinityRunFactory(current=True)
    return source, open_pick, vip_pick


def test_a_relation_restricted_to_an_audience(users, restricted_link):
    source, open_pick, vip_pick = restricted_link
    for_champion = [rec.product for rec in recommend_for_product(source, user=users["champion"])]
    assert for_champion[:2] == [vip_pick, open_pick]
    for user in (users["at_risk"], None, AnonymousUser()):
        shown = [rec.product for rec in recommend_for_product(source, user=user)]
        assert vip_pick not in shown and open_pick in shown
    assert vip_pick in [rec.product for rec in recommend_for_cart([source], user=users["champion"])]
    assert vip_pick not in [rec.product for rec in recommend_for_cart([source], user=None)]


def test_a_restricted_relation_on_the_storefront_widget(
    users, restricted_link, django_assert_num_queries
):
    source, open_pick, vip_pick = restricted_link
    template = "{% also_recommended product %}"
    champion = render(template, product=source, request=request_for(users["champion"]))
    visitor = render(template, product=source, request=request_for(AnonymousUser()))
    at_risk = render(template, product=source, request=request_for(users["at_risk"]))
    assert cards(champion)[:2] == [str(vip_pick.pk), str(open_pick.pk)]
    assert str(vip_pick.pk) not in cards(visitor) and str(open_pick.pk) in cards(visitor)
    assert cards(at_risk) == cards(visitor)
    # Warm: each visitor's own entry, no query.
    with django_assert_num_queries(0):
        assert render(template, product=source, request=request_for(users["champion"])) == champion
        assert render(template, product=source, request=request_for(AnonymousUser())) == visitor


def test_unrestricted_widgets_never_look_at_the_visitor(users, restricted_link, settings):
    # EXCLUDE_PURCHASED = "auto" (the default) does look: what the customer owns is left out
    settings.CROSSSELL = {**settings.CROSSSELL, "EXCLUDE_PURCHASED": False}

    class Untouchable:
        @property
        def is_authenticated(self):
            raise AssertionError("the visitor was looked at")

        pk = None

    other = ProductFactory()
    ProductRelationFactory(source=other, target=ProductFactory())
    html = render(
        "{% also_recommended product %}", product=other, request=request_for(Untouchable())
    )
    assert cards(html)


def test_a_bundle_rule_restricted_to_an_audience(users, champions_only):
    shirt, tie = ProductFactory(price=Decimal("5000")), ProductFactory(price=Decimal("3000"))
    rule = BundleRuleFactory(audience=champions_only, value=Decimal("10"))
    BundleItemFactory(rule=rule, product=shirt)
    BundleItemFactory(rule=rule, product=tie)
    lines = [bundles.CartLine(shirt, 1, shirt.price), bundles.CartLine(tie, 1, tie.price)]
    assert bundles.evaluate(lines, user=users["champion"]).total_discount == Decimal("800")
    assert bundles.evaluate(lines, user=users["at_risk"]).total_discount == 0
    assert bundles.evaluate(lines).total_discount == 0  # a visitor
    assert [o.rule for o in bundles.offers_for_product(shirt, user=users["champion"])] == [rule]
    assert bundles.offers_for_product(shirt) == []
    template = "{% bundle_offers product %}"
    champion = render(template, product=shirt, request=request_for(users["champion"]))
    visitor = render(template, product=shirt, request=request_for(AnonymousUser()))
    assert "800 off" in champion
    assert "You save 800" not in visitor
    # Open to visitors too once the audience says so.
    champions_only.include_anonymous = True
    champions_only.save()
    assert bundles.evaluate(lines).total_discount == Decimal("800")


def test_a_tier_ladder_restricted_to_an_audience(users, champions_only):
    entry = TierStepFactory(product=ProductFactory(price=Decimal("1000")), rank=1)
    TierStepFactory(ladder=entry.ladder, product=ProductFactory(price=Decimal("1200")), rank=2)
    entry.ladder.audience = champions_only
    entry.ladder.save()
    assert tier_offers(entry.product, user=users["champion"])["upgrade"] is not None
    assert tier_offers(entry.product, user=users["at_risk"])["upgrade"] is None
    assert tier_offers(entry.product)["upgrade"] is None


def test_deleting_an_audience_in_use_is_refused(champions_only, restricted_link):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        champions_only.delete()


def test_follow_up_flows_can_use_saved_audiences(users, champions_only):
    from django.conf import settings
    from django.test import override_settings

    from django_crosssell.followup.audience import Recipient, in_audience

    resolver = "django_crosssell.customers.audiences.followup_resolver"
    with override_settings(
        CROSSSELL={**settings.CROSSSELL, "FOLLOWUP_AUDIENCE_RESOLVER": resolver}
    ):
        champion = Recipient(users["champion"].pk, "champion@example.com", None, "flow")
        at_risk = Recipient(users["at_risk"].pk, "at_risk@example.com", None, "flow")
        assert in_audience("champions", champion)
        assert not in_audience("champions", at_risk)
