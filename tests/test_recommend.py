"""The recommendation service: ranking, filters, argument checks, query budget, tiers."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings
from django.utils import timezone, translation

from django_crosssell import cache
from django_crosssell import models as cs
from django_crosssell.conf import app_settings
from django_crosssell.recommend import (
    BOUGHT_TOGETHER,
    CURATED,
    FALLBACK,
    Recommendation,
    downgrade_for,
    recommend_for_cart,
    recommend_for_product,
    service,
    tier_offers,
    upgrade_for,
)
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
    make_order,
)
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db


def products_of(recs: list[Recommendation]) -> list:
    return [rec.product for rec in recs]


def settings_with(**overrides):
    return override_settings(CROSSSELL={**CROSSSELL, **overrides})


@pytest.fixture
def category():
    return CategoryFactory()


@pytest.fixture
def make(category):
    def make_product(**fields):
        fields.setdefault("category", category)
        return ProductFactory(**fields)

    return make_product


# --- ranking ---------------------------------------------------------------------------------


def test_curated_by_position_then_affinity_by_score_then_bestsellers(make):
    source = make()
    curated_second, curated_first = make(), make()
    strong, weak = make(), make()
    seller = make()
    ProductRelationFactory(source=source, target=curated_second, position=5)
    ProductRelationFactory(
        source=source, target=curated_first, position=1, kind=cs.ProductRelation.Kind.RELATED
    )
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=source, target=weak, score=0.2, co_count=4)
    ProductAffinityFactory(run=run, source=source, target=strong, score=0.9, co_count=37)
    make_order(seller)

    recs = recommend_for_product(source, limit=10)

    assert products_of(recs) == [curated_first, curated_second, strong, weak, seller]
    assert [rec.source for rec in recs] == [
        CURATED,
        CURATED,
        BOUGHT_TOGETHER,
        BOUGHT_TOGETHER,
        FALLBACK,
    ]
    assert [rec.position for rec in recs] == [1, 2, 3, 4, 5]
    assert recs[2].score == pytest.approx(0.9)
    assert recs[2].reason == "37 people bought these together"
    assert recs[0].reason == "Recommended by our staff"
    assert recs[4].reason == "Popular in this category"


def test_duplicates_keep_their_best_rank_and_the_default_limit_is_four(make):
    source = make()
    others = [make() for _ in range(6)]
    run = AffinityRunFactory(current=True)
    ProductRelationFactory(source=source, target=others[0])
    for rank, product in enumerate(others):
        ProductAffinityFactory(run=run, source=source, target=product, score=1.0 - rank / 10)
    make_order(others[0], others[1])

    recs = recommend_for_product(source)

    assert products_of(recs) == others[:4]
    assert recs[0].source == CURATED
    assert len({rec.product.pk for rec in recs}) == 4


def test_limit_is_capped_at_max_limit(make):
    source = make()
    run = AffinityRunFactory(current=True)
    for rank in range(8):
        ProductAffinityFactory(run=run, source=source, target=make(), score=1.0 - rank / 10)
    with settings_with(MAX_LIMIT=5):
        assert len(recommend_for_product(source, limit=50)) == 5


def test_kind_restricts_the_curated_part_only(make):
    source, pair, similar, computed = make(), make(), make(), make()
    ProductRelationFactory(source=source, target=pair, kind=cs.ProductRelation.Kind.CROSS_SELL)
    ProductRelationFactory(source=source, target=similar, kind=cs.ProductRelation.Kind.RELATED)
    ProductAffinityFactory(run=AffinityRunFactory(current=True), source=source, target=computed)

    with settings_with(FALLBACK=None):
        assert products_of(recommend_for_product(source, kind="related")) == [similar, computed]
        assert products_of(recommend_for_product(source, kind="cross_sell")) == [pair, computed]
        assert set(products_of(recommend_for_product(source))) == {pair, similar, computed}


def test_only_current_links_and_the_current_run(make):
    source = make()
    inactive, future, expired, live, old_run_partner = make(), make(), make(), make(), make()
    now = timezone.now()
    ProductRelationFactory(source=source, target=inactive, is_active=False)
    ProductRelationFactory(source=source, target=future, starts_at=now + timedelta(days=1))
    ProductRelationFactory(
        source=source,
        target=expired,
        starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=1),
    )
    ProductRelationFactory(
        source=source, target=live, starts_at=now - timedelta(days=1), ends_at=now + timedelta(1)
    )
    old = AffinityRunFactory()
    ProductAffinityFactory(run=old, source=source, target=old_run_partner, score=0.9)
    AffinityRunFactory(current=True)

    with settings_with(FALLBACK=None):
        assert products_of(recommend_for_product(source)) == [live]


def test_a_link_starting_later_bounds_the_cache_lifetime(make, monkeypatch):
    source, later = make(), make()
    ProductRelationFactory(
        source=source, target=later, starts_at=timezone.now() + timedelta(seconds=90)
    )
    timeouts = []
    real_set = cache.set
    monkeypatch.setattr(
        cache,
        "set",
        lambda key, value, timeout=None: (
            timeouts.append((timeout, value[2] - time.time())) or real_set(key, value, timeout)
        ),
    )
    with settings_with(FALLBACK=None):
        assert recommend_for_product(source) == []
    # Fresh until the link starts; kept STALE_SECONDS longer for stale-while-revalidate.
    timeout, fresh_for = timeouts[-1]
    assert 0 < fresh_for <= 91
    assert 1 <= timeout <= 91 + app_settings.STALE_SECONDS


def test_unavailable_products_and_the_product_itself_are_never_shown(make):
    source = make()
    inactive, sold_out, fine = make(is_active=False), make(stock=0), make()
    run = AffinityRunFactory(current=True)
    for product in (inactive, sold_out, fine, source):
        ProductAffinityFactory(run=run, source=source, target=product, score=0.5)
    ProductRelationFactory(source=source, target=sold_out)
    make_order(source, inactive, sold_out)
    make_order(source)

    assert products_of(recommend_for_product(source)) == [fine]


def test_fallback_prefers_the_same_category_and_counts_paid_orders(make, category):
    source = make()
    popular, less_popular, cancelled_hit = make(), make(), make()
    elsewhere = ProductFactory(category=CategoryFactory())
    for _ in range(3):
        make_order(popular)
    make_order(less_popular)
    for _ in range(5):
        make_order(cancelled_hit, status="cancelled")
        make_order(elsewhere)

    recs = recommend_for_product(source)
    assert products_of(recs) == [popular, less_popular]
    assert [rec.score for rec in recs] == [3.0, 1.0]

    with settings_with(CATEGORY_FIELD=None):
        recs = recommend_for_product(source)
        assert products_of(recs)[:2] == [elsewhere, popular]
        assert recs[0].reason == "Popular in our shop"

    with settings_with(FALLBACK=None):
        assert recommend_for_product(source) == []


def test_fallback_ignores_orders_outside_the_lookback_window(make):
    source, recent, ancient = make(), make(), make()
    make_order(recent)
    for _ in range(3):
        make_order(ancient, placed_at=timezone.now() - timedelta(days=400))
    assert products_of(recommend_for_product(source)) == [recent]


def test_fallback_from_the_current_run_without_an_order_line_model(make):
    source, hub, leaf = make(), make(), make()
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=leaf, target=hub, score=0.5, co_count=9)
    ProductAffinityFactory(run=run, source=hub, target=leaf, score=0.5, co_count=2)
    with settings_with(ORDER_LINE_MODEL=None):
        recs = recommend_for_product(source)
    assert products_of(recs) == [hub, leaf]
    assert recs[0].source == FALLBACK


def test_bestsellers_are_cached_per_category(make, django_assert_max_num_queries):
    first, second, seller = make(), make(), make()
    make_order(seller)
    recommend_for_product(first)
    # A cold product of the same category reuses the cached bestsellers.
    with django_assert_max_num_queries(2):
        assert products_of(recommend_for_product(second)) == [seller]


# --- arguments -------------------------------------------------------------------------------


def test_a_primary_key_works_like_the_instance(make):
    source, partner = make(), make()
    ProductRelationFactory(source=source, target=partner)
    make_order(make())
    expected = products_of(recommend_for_product(source))
    cache.invalidate()
    assert products_of(recommend_for_product(source.pk)) == expected
    cache.invalidate()
    assert products_of(recommend_for_product(str(source.pk))) == expected


@pytest.mark.parametrize(
    "bad",
    [None, 3.5, True, "not-a-uuid", "", b"bytes", object()],
    ids=["none", "float", "bool", "bad-key", "empty", "bytes", "object"],
)
def test_bad_products_raise_value_error(bad):
    with pytest.raises(ValueError):
        recommend_for_product(bad)
    with pytest.raises(ValueError):
        tier_offers(bad)


def test_instances_of_other_models_and_unsaved_products_raise(make):
    with pytest.raises(ValueError, match=r"testapp\.Product"):
        recommend_for_product(CategoryFactory())
    with pytest.raises(ValueError, match="saved"):
        recommend_for_product(ProductFactory.build(id=None))


@pytest.mark.parametrize("limit", [0, -1, "x", 2.5, True])
def test_bad_limits_raise(make, limit):
    with pytest.raises(ValueError, match="limit"):
        recommend_for_product(make(), limit=limit)


def test_bad_kind_and_cart_arguments_raise(make):
    with pytest.raises(ValueError, match="kind"):
        recommend_for_product(make(), kind="upsell")
    for bad in (None, "abc", make(), 5):
        with pytest.raises(ValueError):
            recommend_for_cart(bad)
    with pytest.raises(ValueError):
        recommend_for_cart([make(), None])
    assert recommend_for_cart([]) == []


def test_a_deleted_product_gets_nothing(make):
    source = make()
    make_order(make())
    source_pk = source.pk
    source.delete()
    source.pk = source_pk
    assert recommend_for_product(source) == []
    assert recommend_for_product(uuid.uuid4()) == []


# --- customers -------------------------------------------------------------------------------


def test_exclude_purchased_hides_what_the_customer_bought(make, django_user_model):
    source, bought, other = make(), make(), make()
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=source, target=bought, score=0.9)
    ProductAffinityFactory(run=run, source=source, target=other, score=0.5)
    customer = django_user_model.objects.create_user("hanako")
    make_order(bought, customer=customer)

    with settings_with(FALLBACK=None, EXCLUDE_PURCHASED=False):
        assert products_of(recommend_for_product(source, user=customer)) == [bought, other]
    with settings_with(FALLBACK=None, EXCLUDE_PURCHASED=True):
        assert products_of(recommend_for_product(source, user=customer)) == [other]
        assert products_of(recommend_for_product(source, user=AnonymousUser())) == [
            bought,
            other,
        ]
        assert products_of(recommend_for_cart([source], user=customer)) == [other]


# --- carts -----------------------------------------------------------------------------------


def test_cart_aggregates_affinity_and_excludes_the_cart(make):
    a, b, c, d, e, staff_pick = (make() for _ in range(6))
    run = AffinityRunFactory(current=True)
    # b is in the cart: never shown
    ProductAffinityFactory(run=run, source=a, target=b, score=0.9, co_count=10)
    ProductAffinityFactory(run=run, source=a, target=c, score=0.4, co_count=5)
    ProductAffinityFactory(run=run, source=b, target=c, score=0.4, co_count=7)  # c: 0.8 in total
    ProductAffinityFactory(run=run, source=a, target=d, score=0.7)
    ProductAffinityFactory(run=run, source=b, target=e, score=0.1)
    ProductRelationFactory(source=b, target=staff_pick, position=3)
    ProductRelationFactory(source=a, target=b)

    recs = recommend_for_cart([a, b], limit=10)

    assert products_of(recs) == [staff_pick, c, d, e]
    assert [rec.source for rec in recs] == [CURATED] + [BOUGHT_TOGETHER] * 3
    assert recs[1].score == pytest.approx(0.8)
    assert recs[1].reason == "7 people bought these together"
    assert recommend_for_cart([a.pk, str(b.pk), a], limit=10) == recs


def test_related_links_do_not_fill_the_cart_widget(make):
    a, similar = make(), make()
    ProductRelationFactory(source=a, target=similar, kind=cs.ProductRelation.Kind.RELATED)
    make_order(similar)
    assert recommend_for_cart([a]) == []


# --- query budget ----------------------------------------------------------------------------


def _catalogue(make, size: int = 30):
    products = [make() for _ in range(size)]
    run = AffinityRunFactory(current=True)
    for index, product in enumerate(products):
        for offset in (1, 2, 3, 5, 8):
            partner = products[(index + offset) % size]
            ProductAffinityFactory(run=run, source=product, target=partner, score=1 / offset)
        ProductRelationFactory(source=product, target=products[(index + 13) % size])
    for product in products[:10]:
        make_order(product, products[-1])
    return products


def test_product_recommendations_cost_two_queries_cold_and_none_warm(
    make, django_assert_max_num_queries, django_assert_num_queries
):
    products = _catalogue(make)
    for argument in (products[0], products[1].pk):
        with django_assert_max_num_queries(2):
            cold = recommend_for_product(argument)
        assert len(cold) == 4
        with django_assert_num_queries(0):
            assert recommend_for_product(argument) == cold


@pytest.mark.parametrize("size", [1, 5, 25])
def test_cart_recommendations_cost_two_queries_whatever_the_size(
    make, size, django_assert_max_num_queries, django_assert_num_queries
):
    products = _catalogue(make)
    cart = products[:size]
    with django_assert_max_num_queries(2):
        cold = recommend_for_cart(cart)
    assert cold and not set(products_of(cold)) & set(cart)
    with django_assert_num_queries(0):
        assert recommend_for_cart(cart) == cold


def test_results_depend_on_the_language(make):
    source, partner = make(), make()
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=source, target=partner, score=0.5, co_count=2)
    with translation.override("en"):
        assert recommend_for_product(source)[0].reason == "2 people bought these together"
    with translation.override("ja"):
        assert recommend_for_product(source)[0].reason == "2人がこれらを一緒に購入しています"


# --- tiers -----------------------------------------------------------------------------------


@pytest.fixture
def ladder(make):
    ladder = TierLadderFactory(name="Espresso machines", slug="espresso")
    steps = [
        TierStepFactory(ladder=ladder, product=make(price=Decimal(price)), rank=rank, label=label)
        for rank, (price, label) in enumerate(
            [("10000", "Basic"), ("14000", "Standard"), ("30000", "Pro")], start=1
        )
    ]
    steps[1].pitch = "Twice the steam"
    steps[1].save()
    return ladder, [step.product for step in steps]


def test_upgrade_and_downgrade_with_price_differences(ladder):
    _, (basic, standard, _pro) = ladder
    up = upgrade_for(basic)
    assert up.product == standard
    assert (up.label, up.pitch, up.rank, up.direction) == (
        "Standard",
        "Twice the steam",
        2,
        "upgrade",
    )
    assert (up.ladder, up.ladder_slug) == ("Espresso machines", "espresso")
    assert up.price_difference == Decimal("4000")
    assert up.price == Decimal("14000") and up.current_price == Decimal("10000")
    down = downgrade_for(standard)
    assert down.product == basic
    assert down.price_difference == Decimal("4000")
    assert down.direction == "downgrade"
    recommendation = down.as_recommendation()
    assert recommendation.source == "downgrade" and recommendation.product == basic


def test_no_upgrade_above_the_price_ratio_at_the_top_or_downgrade_at_the_bottom(ladder):
    _, (basic, standard, pro) = ladder
    assert upgrade_for(standard) is None  # 30000 > 1.5 × 14000
    with settings_with(UPGRADE_MAX_PRICE_RATIO=2.5):
        assert upgrade_for(standard).product == pro
    assert upgrade_for(pro) is None
    assert downgrade_for(basic) is None
    assert tier_offers(ProductFactory()) == {"upgrade": None, "downgrade": None}


def test_unavailable_tiers_and_inactive_ladders_are_skipped(ladder):
    ladder_obj, (basic, standard, pro) = ladder
    basic.stock = 0
    basic.save()
    assert downgrade_for(standard) is None
    assert downgrade_for(pro).product == standard
    ladder_obj.is_active = False
    ladder_obj.save()
    assert upgrade_for(standard) is None and downgrade_for(pro) is None


def test_tier_offers_cost_one_query_cold_and_none_warm(ladder, django_assert_num_queries):
    _, (basic, standard, _pro) = ladder
    with django_assert_num_queries(1):
        offers = tier_offers(standard)
    assert offers["downgrade"].product == basic
    with django_assert_num_queries(0):
        assert tier_offers(standard) == offers


def test_service_module_is_the_only_place_with_recommendation_queries():
    # Guard for the layering rule in CONTRIBUTING: the tags import the service, not models.
    import inspect

    from django_crosssell.templatetags import crosssell

    source = inspect.getsource(crosssell)
    assert "objects" not in source and ".filter(" not in source
    assert service.recommend_for_product is recommend_for_product
