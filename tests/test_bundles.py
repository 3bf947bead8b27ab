"""Bundle evaluation: table tests per kind x discount type, rounding, competition, limits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone
from django.utils.translation import override

from django_crosssell import bundles
from django_crosssell.adapter import CrossSellAdapter
from django_crosssell.bundles import CartLine, evaluate, offers_for_product
from django_crosssell.models import BundleRule
from django_crosssell.products import InvalidProductKey
from tests.factories import BundleItemFactory, BundleRuleFactory, ProductFactory

pytestmark = pytest.mark.django_db

SET = BundleRule.Kind.FIXED_SET
MIX = BundleRule.Kind.MIX_AND_MATCH
MULTI = BundleRule.Kind.MULTI_BUY
PCT = BundleRule.DiscountType.PERCENT
AMT = BundleRule.DiscountType.AMOUNT
FIX = BundleRule.DiscountType.FIXED_PRICE

D = Decimal


def make_rule(kind, discount_type, value, products, *, quantities=None, n=None, **extra):
    rule = BundleRuleFactory(
        kind=kind, discount_type=discount_type, value=D(value), min_quantity=n, **extra
    )
    for i, product in enumerate(products):
        BundleItemFactory(rule=rule, product=product, quantity=(quantities or {}).get(i, 1))
    return rule


def lines(*pairs):
    return [CartLine(product, qty, product.price) for product, qty in pairs]


# (kind, discount type, value, N, product prices, cart quantities, expected discount in yen)
TABLE = [
    # sets: every item once
    (SET, PCT, "10", None, ["5000", "1500"], [1, 1], "650"),
    (SET, AMT, "800", None, ["5000", "1500"], [1, 1], "800"),
    (SET, FIX, "5800", None, ["5000", "1500"], [1, 1], "700"),
    (SET, PCT, "10", None, ["5000", "1500"], [2, 2], "1300"),  # applied twice
    (SET, PCT, "10", None, ["5000", "1500"], [2, 1], "650"),  # one tie: once
    (SET, PCT, "10", None, ["5000", "1500"], [1, 0], "0"),  # incomplete
    # rounding: 15% of 1,005 = 150.75 -> 151 (half up)
    (SET, PCT, "15", None, ["1000", "5"], [1, 1], "151"),
    # 5% of 1,010 = 50.5 -> 51 (half up, per bundle)
    (SET, PCT, "5", None, ["1000", "10"], [1, 1], "51"),
    # amount off never exceeds the covered price
    (SET, AMT, "5000", None, ["100", "200"], [1, 1], "300"),
    # mix and match: any 2 of the listed
    (MIX, PCT, "10", 2, ["3000", "1000"], [1, 1], "400"),
    (MIX, PCT, "10", 2, ["3000", "1000"], [2, 1], "600"),  # the two most expensive
    (MIX, AMT, "500", 2, ["3000", "1000"], [3, 1], "1000"),  # two bundles
    # 6000->3000 beats two mixed pairs (4000->3000 twice = 2000); 1000+1000 saves nothing
    (MIX, FIX, "3000", 2, ["3000", "1000"], [2, 2], "3000"),
    (MIX, PCT, "10", 3, ["3000", "1000"], [1, 1], "0"),
    # multi-buy: N of the same product
    (MULTI, PCT, "15", 3, ["1000", "2000"], [3, 2], "450"),
    (MULTI, PCT, "15", 3, ["1000", "2000"], [2, 2], "0"),  # 2+2 is no multi-buy
    (MULTI, AMT, "300", 2, ["1000", "2000"], [5, 2], "900"),
    (MULTI, FIX, "2500", 3, ["1000", "2000"], [3, 3], "4000"),  # 3000->2500, 6000->2500
]


@pytest.mark.parametrize(
    ("kind", "discount_type", "value", "n", "prices", "quantities", "expected"), TABLE
)
def test_each_kind_and_discount_type(kind, discount_type, value, n, prices, quantities, expected):
    products = [ProductFactory(price=D(p)) for p in prices]
    make_rule(kind, discount_type, value, products, n=n)
    result = evaluate(lines(*zip(products, quantities, strict=True)))
    assert result.total_discount == D(expected)
    assert result.total == result.subtotal - result.total_discount
    assert sum((a.discount for a in result.applied), D(0)) == result.total_discount


@pytest.mark.parametrize(
    ("decimals", "rounding", "prices", "expected"),
    [
        (2, "ROUND_HALF_UP", ["10.05", "0.10"], "1.52"),  # 15% of 10.15 = 1.5225
        (2, "ROUND_HALF_EVEN", ["10.00", "0.50"], "1.58"),  # 1.575 -> 1.58 (even)
        (2, "ROUND_HALF_EVEN", ["10.00", "0.30"], "1.54"),  # 1.545 -> 1.54 (even)
        (2, "ROUND_DOWN", ["10.05", "0.10"], "1.52"),
        (0, "ROUND_HALF_EVEN", ["1000", "10"], "152"),  # 151.5 -> 152
        (0, "ROUND_HALF_EVEN", ["1000", "30"], "154"),  # 154.5 -> 154
        (0, "ROUND_FLOOR", ["1000", "30"], "154"),
        (0, "ROUND_CEILING", ["1000", "21"], "154"),  # 153.15 -> 154
    ],
)
def test_rounding_mode_and_currency_exponent(settings, decimals, rounding, prices, expected):
    settings.CROSSSELL = {
        **settings.CROSSSELL,
        "CURRENCY_DECIMALS": decimals,
        "ROUNDING": rounding,
    }
    a, b = (ProductFactory(price=D(p)) for p in prices)
    make_rule(SET, PCT, "15", [a, b])
    result = evaluate(lines((a, 1), (b, 1)))
    assert result.total_discount == D(expected)
    assert result.total_discount.as_tuple().exponent == -decimals


def test_two_decimal_currency_amount_and_fixed_price(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "CURRENCY_DECIMALS": 2}
    a, b = ProductFactory(price=D("19.99")), ProductFactory(price=D("5.49"))
    make_rule(SET, FIX, "20.00", [a, b])
    result = evaluate(lines((a, 1), (b, 1)))
    assert result.total_discount == D("5.48")
    assert result.total == D("20.00")


def test_invalid_rounding_setting_is_a_clear_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.CROSSSELL = {**settings.CROSSSELL, "ROUNDING": "HALF_UP"}
    a, b = ProductFactory(), ProductFactory()
    make_rule(SET, PCT, "10", [a, b])
    with pytest.raises(ImproperlyConfigured, match="ROUNDING"):
        evaluate(lines((a, 1), (b, 1)))


class TestCompetition:
    def test_largest_total_discount_wins_over_greedy(self):
        # Greedy takes the 3-item set (largest single discount, 900) and blocks both pairs
        # (600 + 600 = 1200): the optimum is the two pairs.
        shirt, tie, belt, socks = (ProductFactory(price=D("3000")) for _ in range(4))
        make_rule(SET, AMT, "900", [shirt, tie, belt], slug="big")
        make_rule(SET, AMT, "600", [shirt, tie], slug="pair-1")
        make_rule(SET, AMT, "600", [belt, socks], slug="pair-2")
        result = evaluate(lines((shirt, 1), (tie, 1), (belt, 1), (socks, 1)))
        assert result.total_discount == D("1200")
        assert sorted(a.rule.slug for a in result.applied) == ["pair-1", "pair-2"]

    def test_each_unit_in_at_most_one_non_combinable_bundle(self):
        shirt, tie = ProductFactory(price=D("5000")), ProductFactory(price=D("1000"))
        make_rule(SET, PCT, "10", [shirt, tie], slug="set")
        make_rule(MULTI, PCT, "20", [shirt], n=2, slug="two-shirts")
        result = evaluate(lines((shirt, 2), (tie, 1)))
        # two shirts at 20% (2000) beat shirt+tie at 10% (600); both would need 3 shirts
        assert [a.rule.slug for a in result.applied] == ["two-shirts"]
        assert result.total_discount == D("2000")
        result = evaluate(lines((shirt, 3), (tie, 1)))
        assert {a.rule.slug for a in result.applied} == {"two-shirts", "set"}
        assert result.total_discount == D("2600")

    def test_priority_breaks_ties(self):
        a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("1000"))
        make_rule(SET, AMT, "200", [a, b], slug="low", priority=1)
        make_rule(SET, PCT, "10", [a, b], slug="high", priority=5)
        result = evaluate(lines((a, 1), (b, 1)))
        assert [x.rule.slug for x in result.applied] == ["high"]
        BundleRule.objects.filter(slug="low").update(priority=9)
        result = evaluate(lines((a, 1), (b, 1)))
        assert [x.rule.slug for x in result.applied] == ["low"]

    def test_equal_priority_ties_are_deterministic_by_slug(self):
        a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("1000"))
        make_rule(SET, AMT, "200", [a, b], slug="b-rule")
        make_rule(SET, AMT, "200", [a, b], slug="a-rule")
        for _ in range(3):
            assert [x.rule.slug for x in evaluate(lines((b, 1), (a, 1))).applied] == ["a-rule"]

    def test_max_applications(self):
        a = ProductFactory(price=D("1000"))
        make_rule(MULTI, AMT, "100", [a], n=2, max_applications=2)
        result = evaluate(lines((a, 9)))
        assert result.applied[0].times == 2
        assert result.applied[0].units == {a.pk: 4}
        assert result.total_discount == D("200")

    def test_max_applications_lets_units_go_to_the_next_rule(self):
        a = ProductFactory(price=D("1000"))
        make_rule(MULTI, AMT, "300", [a], n=2, max_applications=1, slug="best")
        make_rule(MULTI, AMT, "100", [a], n=2, slug="rest")
        result = evaluate(lines((a, 6)))
        assert {x.rule.slug: x.times for x in result.applied} == {"best": 1, "rest": 2}
        assert result.total_discount == D("500")

    def test_combinable_rule_stacks_on_bundled_units(self):
        a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("1000"))
        make_rule(SET, PCT, "10", [a, b], slug="set")
        make_rule(MIX, AMT, "100", [a, b], n=2, slug="stack", combinable=True)
        result = evaluate(lines((a, 1), (b, 1)))
        assert {x.rule.slug: x.discount for x in result.applied} == {
            "set": D("200"),
            "stack": D("100"),
        }
        assert result.total_discount == D("300")

    def test_stacked_discounts_never_exceed_the_lines(self):
        a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("1000"))
        make_rule(SET, PCT, "80", [a, b], slug="big")
        make_rule(SET, PCT, "50", [a, b], slug="stack", combinable=True)
        result = evaluate(lines((a, 1), (b, 1)))
        assert result.total_discount == D("2000")
        assert result.total == D("0")
        assert {x.rule.slug: x.discount for x in result.applied} == {
            "big": D("1600"),
            "stack": D("400"),
        }


class TestCampaignWindowAndActive:
    def test_inactive_rules_are_ignored(self):
        a, b = ProductFactory(), ProductFactory()
        make_rule(SET, PCT, "10", [a, b], is_active=False)
        assert evaluate(lines((a, 1), (b, 1))).total_discount == 0

    def test_window(self):
        now = timezone.now()
        a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("1000"))
        make_rule(
            SET, PCT, "10", [a, b], starts_at=now + timedelta(days=1), ends_at=now + timedelta(2)
        )
        assert evaluate(lines((a, 1), (b, 1))).total_discount == 0
        later = now + timedelta(days=1, hours=1)
        assert evaluate(lines((a, 1), (b, 1)), at=later).total_discount == D("200")
        assert evaluate(lines((a, 1), (b, 1)), at=now + timedelta(days=3)).total_discount == 0


class TestInput:
    def test_accepts_tuples_and_primary_keys_and_pools_lines(self):
        a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("500"))
        make_rule(MULTI, PCT, "10", [a], n=3)
        result = evaluate([(str(a.pk), 1, 1000), (b.pk, 1, "500"), (a, 2, D("1000"))])
        assert result.total_discount == D("300")
        assert result.subtotal == D("3500")
        assert result.applied[0].units == {a.pk: 3}

    def test_accepts_the_hosts_line_objects(self):
        from dataclasses import dataclass

        @dataclass
        class Line:
            product: object
            quantity: int
            unit_price: Decimal

        a = ProductFactory(price=D("1000"))
        make_rule(MULTI, PCT, "10", [a], n=2)
        assert evaluate([Line(a, 2, a.price)]).total_discount == D("200")

    def test_negative_quantity_is_refused(self):
        with pytest.raises(ValueError, match="quantity"):
            evaluate([(ProductFactory(), -1, 100)])

    def test_bad_product_key_is_refused(self):
        with pytest.raises(InvalidProductKey, match=r"not a valid testapp\.Product key"):
            evaluate([("not-a-uuid", 1, 100)])
        with pytest.raises(ValueError):  # InvalidProductKey is a ValueError
            evaluate([(True, 1, 100)])

    def test_empty_cart_needs_no_query(self, django_assert_num_queries):
        with django_assert_num_queries(0):
            result = evaluate([])
        assert result.total == 0


def test_rules_are_read_in_one_query(django_assert_num_queries):
    products = [ProductFactory(price=D(1000 + i)) for i in range(12)]
    for i in range(0, 10, 2):
        make_rule(SET, PCT, "10", products[i : i + 3])
        make_rule(MULTI, AMT, "100", products[i : i + 2], n=2)
        make_rule(MIX, FIX, "1500", products[i : i + 4], n=2)
    cart = lines(*((p, 2) for p in products[:10]))
    with django_assert_num_queries(1):
        result = evaluate(cart)
    assert result.total_discount > 0
    # The rules, then the availability of every set partner at once.
    with django_assert_num_queries(2):
        assert offers_for_product(products[3])


class TestNudges:
    def test_multi_buy_add_one_more(self):
        a = ProductFactory(price=D("1000"))
        make_rule(MULTI, PCT, "10", [a], n=3)
        result = evaluate(lines((a, 2)))
        assert result.total_discount == 0
        [nudge] = result.nudges
        assert nudge.missing[0].product == a
        assert nudge.units == 1
        assert nudge.saving == D("300")
        assert nudge.message == "Add 1 more to get 10% off"
        with override("ja"):
            assert nudge.message == "あと1点で10%オフ"

    def test_set_lists_the_missing_product_without_naming_it_twice(self):
        shirt = ProductFactory(name="Shirt", price=D("5000"))
        tie = ProductFactory(name="Tie", price=D("2000"))
        make_rule(SET, FIX, "6000", [shirt, tie])
        [nudge] = evaluate(lines((shirt, 1))).nudges
        assert [m.product for m in nudge.missing] == [tie]
        assert nudge.saving == D("1000")
        # the widget links the missing items after the sentence: the name is not repeated
        assert "Tie" not in nudge.message and "6,000" in nudge.message

    def test_no_nudge_when_far_from_the_rule(self):
        a = ProductFactory()
        make_rule(MULTI, PCT, "10", [a], n=5)
        assert evaluate(lines((a, 1))).nudges == []

    def test_no_nudge_beyond_max_applications(self):
        a = ProductFactory()
        make_rule(MULTI, PCT, "10", [a], n=2, max_applications=1)
        result = evaluate(lines((a, 3)))
        assert result.applied[0].times == 1
        assert result.nudges == []


class TestOffers:
    def test_offers_for_product(self):
        shirt = ProductFactory(name="Shirt", price=D("5000"))
        tie = ProductFactory(name="Tie", price=D("1500"))
        make_rule(SET, PCT, "10", [shirt, tie], slug="set")
        make_rule(MULTI, PCT, "15", [shirt], n=3, slug="three")
        make_rule(SET, PCT, "10", [tie, ProductFactory()], slug="other", is_active=False)
        offers = offers_for_product(shirt.pk)
        by_slug = {o.rule.slug: o for o in offers}
        assert set(by_slug) == {"set", "three"}
        assert by_slug["set"].partners == [tie]
        assert by_slug["set"].saving == D("650")
        assert by_slug["set"].regular_total == D("6500")
        assert by_slug["three"].saving == D("2250")
        with override("ja"):
            assert by_slug["set"].message == "Tieと一緒に買うと10%オフ"
            assert by_slug["three"].message == "3個まとめ買いで15%オフ"

    def test_preview_for_admin(self):
        a, b = ProductFactory(price=D("5000")), ProductFactory(price=D("1500"))
        rule = make_rule(SET, FIX, "5800", [a, b])
        offer = bundles.preview(rule)
        assert (offer.regular_total, offer.saving, offer.bundle_total) == (
            D("6500"),
            D("700"),
            D("5800"),
        )


@override_settings(DEBUG=False)
def test_line_order_does_not_matter():
    products = [ProductFactory(price=D(1000 * (i + 1))) for i in range(4)]
    make_rule(MIX, PCT, "10", products, n=2)
    make_rule(SET, AMT, "700", products[:2])
    forward = evaluate(lines(*((p, 1) for p in products)))
    backward = evaluate(lines(*((p, 1) for p in reversed(products))))
    assert forward.total_discount == backward.total_discount
    assert [(a.rule.pk, a.units) for a in forward.applied] == [
        (a.rule.pk, a.units) for a in backward.applied
    ]


class TestOffersCache:
    def test_second_call_needs_no_query_and_an_edit_invalidates(self, django_assert_num_queries):
        shirt, tie = ProductFactory(price=D("5000")), ProductFactory(price=D("1500"))
        rule = make_rule(SET, PCT, "10", [shirt, tie])
        assert offers_for_product(shirt)[0].saving == D("650")
        with django_assert_num_queries(0):
            assert offers_for_product(shirt)[0].saving == D("650")
        rule.value = D("20")
        rule.save()  # signals bump the cache version
        assert offers_for_product(shirt)[0].saving == D("1300")

    def test_cache_expires_at_the_next_campaign_boundary(self, settings):
        from unittest import mock

        from django_crosssell import cache

        settings.CROSSSELL = {**settings.CROSSSELL, "CACHE_TIMEOUT": 3600}
        now = timezone.now()
        shirt, tie = ProductFactory(), ProductFactory()
        make_rule(SET, PCT, "10", [shirt, tie], ends_at=now + timedelta(minutes=10))
        make_rule(SET, PCT, "20", [shirt, tie], starts_at=now + timedelta(minutes=5))
        with mock.patch.object(cache, "set", wraps=cache.set) as cache_set:
            offers = offers_for_product(shirt)
        assert [o.rule.value for o in offers] == [D("10")]  # the 20% sale has not started
        timeout = cache_set.call_args.kwargs["timeout"]
        assert 290 <= timeout <= 300  # until the 20% sale starts, not an hour


def test_large_quantities_stay_exact_and_flat():
    """Hundreds of bundles of one product: no deep recursion, and still proven optimal."""
    a, b = ProductFactory(price=D("1000")), ProductFactory(price=D("800"))
    make_rule(MULTI, AMT, "150", [a], n=2, slug="pairs")
    make_rule(MIX, PCT, "10", [a, b], n=3, slug="any-three")
    make_rule(SET, AMT, "100", [a, b], slug="set", max_applications=5)
    result = evaluate(lines((a, 999), (b, 998)))
    assert result.exact
    assert sum(x.units.get(a.pk, 0) for x in result.applied) <= 999
    assert sum(x.units.get(b.pk, 0) for x in result.applied) <= 998
    # Any three at 10% is worth 80-100 per unit, pairs of a 75, the set 50: 665 threes
    # (1,995 units) and one pair of the two units left over is the best there is.
    assert {x.rule.slug: x.times for x in result.applied} == {"any-three": 665, "pairs": 1}
    assert result.total_discount == D("179690")


# --- the host adapter: canonical products and prices ---------------------------------------------

#: Variant key -> parent key, for VariantAdapter.
parents: dict = {}
#: Calls of ColumnlessPriceAdapter.prices(): the product keys of each call.
price_calls: list = []


class VariantAdapter(CrossSellAdapter):
    def canonical_ids(self, products):  # instances or keys, as the adapter contract says
        keys = [getattr(product, "pk", product) for product in products]
        return {pk: parents.get(pk, pk) for pk in keys}


class ColumnlessPriceAdapter(CrossSellAdapter):
    """Prices from a price list (500 below the field), not a column of the product rows."""

    def price_column(self):
        return None

    def prices(self, products, request=None):
        products = list(products)
        price_calls.append(sorted(str(p.pk) for p in products))
        return {p.pk: p.price - 500 for p in products}


def use_adapter(settings, adapter: type) -> None:
    settings.CROSSSELL = {**settings.CROSSSELL, "ADAPTER": f"{__name__}.{adapter.__name__}"}


def test_a_variant_counts_as_its_parent(settings, django_assert_num_queries):
    use_adapter(settings, VariantAdapter)
    parent = ProductFactory(name="Shirt", price=D("5000"))
    variant = ProductFactory(name="Shirt, blue, M", price=D("5200"))
    parents[variant.pk] = parent.pk
    try:
        make_rule(MULTI, PCT, "10", [parent], n=2)
        with django_assert_num_queries(1):
            result = evaluate(lines((parent, 1), (variant, 1)))
    finally:
        parents.clear()
    assert result.total_discount == D("1020")  # 10% of 5,000 + 5,200
    assert result.applied[0].units == {parent.pk: 2}


def test_prices_without_a_column_come_from_one_adapter_call(settings, django_assert_num_queries):
    use_adapter(settings, ColumnlessPriceAdapter)
    price_calls.clear()
    shirt = ProductFactory(name="Shirt", price=D("5000"))
    tie = ProductFactory(name="Tie", price=D("1500"))
    belt = ProductFactory(name="Belt", price=D("3000"))
    make_rule(SET, PCT, "10", [shirt, tie], slug="shirt-tie")
    make_rule(SET, PCT, "10", [shirt, belt], slug="shirt-belt")
    with django_assert_num_queries(1):
        result = evaluate(lines((shirt, 1)))
    # 10% of the shirt at its line price (5,000) and the missing item at the adapter's price
    assert {n.rule.slug: n.saving for n in result.nudges} == {
        "shirt-tie": D("600"),
        "shirt-belt": D("750"),
    }
    assert price_calls == [sorted(str(p.pk) for p in (shirt, tie, belt))]
    [offer] = [o for o in offers_for_product(shirt) if o.rule.slug == "shirt-tie"]
    assert offer.regular_total == D("5500")  # 4,500 + 1,000


def test_solver_uses_the_models_kinds_and_discount_types():
    from django_crosssell.bundles import solver

    assert {solver.FIXED_SET, solver.MIX_AND_MATCH, solver.MULTI_BUY} == set(BundleRule.Kind.values)
    assert {solver.PERCENT, solver.AMOUNT, solver.FIXED_PRICE} == set(
        BundleRule.DiscountType.values
    )


def test_application_discount_uses_the_shops_currency(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "CURRENCY_DECIMALS": 2, "ROUNDING": "ROUND_DOWN"}
    rule = BundleRule(kind=SET, discount_type=PCT, value=D("15"))
    assert bundles.application_discount(rule, D("10.99")) == D("1.64")
    assert bundles.application_discount(rule, D("0")) == 0
    amount = BundleRule(kind=SET, discount_type=AMT, value=D("5"))
    assert bundles.application_discount(amount, D("3.999")) == D("3.99")  # never above the base
