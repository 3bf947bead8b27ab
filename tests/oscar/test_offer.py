"""Bundle rules charged by Oscar: basket totals, order totals and discount lines equal
``bundles.evaluate`` of the basket, to the penny."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from oscar.apps.partner.strategy import UK, US

from django_crosssell import bundles
from django_crosssell import models as cs
from django_crosssell.contrib.oscar import offers
from django_crosssell.contrib.oscar.models import BundleBenefit, BundleCondition
from django_crosssell.money import round_money
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db

D = Decimal


def rule(slug, kind, discount_type, value, *items, min_quantity=None, **extra):
    made = cs.BundleRule.objects.create(
        name=slug.replace("-", " ").capitalize(),
        slug=slug,
        kind=kind,
        discount_type=discount_type,
        value=D(value),
        min_quantity=min_quantity,
        **extra,
    )
    for product, quantity in items:
        cs.BundleItem.objects.create(rule=made, product=product, quantity=quantity)
    return made


@pytest.fixture
def rules(shop):
    """T-shirt (any size) + jeans 10% off; 3 T-shirts of any sizes 15% off; any 2 of mug
    and socks 1.00 off."""
    return (
        rule("shirt-and-jeans", "fixed_set", "percent", "10", (shop.shirt, 1), (shop.jeans, 1)),
        rule("three-shirts", "multi_buy", "percent", "15", (shop.shirt, 1), min_quantity=3),
        rule("mug-or-socks", "mix_and_match", "amount", "1.00", (shop.mug, 1), (shop.socks, 1),
             min_quantity=2),
    )  # fmt: skip


def the_offer():
    return builders.get_model("offer", "ConditionalOffer").objects.get(slug=offers.OFFER_SLUG)


def evaluation_of(basket):
    """What the basket widget shows: the adapter's lines of the basket, evaluated."""
    return bundles.evaluate(basket)


def assert_charged_as_evaluated(basket):
    evaluation = evaluation_of(basket)
    applications = list(basket.offer_applications)
    if evaluation.total_discount:
        (application,) = applications
        assert application["offer"] == the_offer()
        assert application["discount"] == evaluation.total_discount
    else:
        assert applications == []
    lines = basket.all_lines()
    assert sum(line.discount_value for line in lines) == evaluation.total_discount
    assert basket.total_discount == evaluation.total_discount
    if basket.is_tax_known:
        assert basket.total_incl_tax_excl_discounts == round_money(evaluation.subtotal)
        assert basket.total_incl_tax == round_money(evaluation.total)
    else:  # prices before tax were evaluated and discounted
        assert basket.total_excl_tax_excl_discounts == round_money(evaluation.subtotal)
        assert basket.total_excl_tax == round_money(evaluation.total)
    return evaluation


def test_the_migration_installs_one_active_site_offer():
    offer = the_offer()
    assert offer.offer_type == "Site" and offer.is_available()
    assert offer.exclusive and offer.priority == offers.OFFER_PRIORITY
    assert type(offer.condition.proxy()) is BundleCondition
    assert type(offer.benefit.proxy()) is BundleBenefit
    assert str(offer.benefit) == BundleBenefit.name


def test_a_child_variant_completes_a_set_and_oscar_charges_it(shop, rules):
    basket = builders.basket((shop.medium, 1), (shop.jeans, 1))
    evaluation = assert_charged_as_evaluated(basket)
    assert [a.rule.slug for a in evaluation.applied] == ["shirt-and-jeans"]
    assert evaluation.total_discount == D("6.25")  # 10% of 62.49, rounded to the penny
    assert basket.total_incl_tax == D("56.24")
    # Booked on the dearest covered line first, as the evaluation attributes discounts.
    assert sorted(line.discount_value for line in basket.all_lines()) == [0, D("6.25")]


def test_sizes_of_one_parent_make_a_multi_buy(shop, rules):
    basket = builders.basket((shop.small, 1), (shop.medium, 1), (shop.large, 1))
    evaluation = assert_charged_as_evaluated(basket)
    assert [a.rule.slug for a in evaluation.applied] == ["three-shirts"]
    assert evaluation.total_discount == D("5.85")  # 15% of 12.50 + 12.50 + 14.00


def test_competing_rules_stacking_and_several_applications(shop, rules):
    rules[2].combinable = True
    rules[2].save()
    basket = builders.basket(
        (shop.small, 2), (shop.large, 2), (shop.jeans, 1), (shop.mug, 3), (shop.socks, 2)
    )
    evaluation = assert_charged_as_evaluated(basket)
    assert {a.rule.slug: a.times for a in evaluation.applied} == {
        "shirt-and-jeans": 1,
        "three-shirts": 1,
        "mug-or-socks": 2,
    }


def test_no_rule_no_discount_and_nudges_only_in_the_widget(shop, rules):
    basket = builders.basket((shop.medium, 1))
    assert_charged_as_evaluated(basket)
    html = Template("{% load crosssell %}{% bundle_progress basket %}").render(
        Context({"basket": basket})
    )
    assert "Jeans" in html and "£6.25" in html  # "add Jeans" would save 6.25


def test_the_order_matches_the_widget_to_the_penny(shop, rules, customer):
    basket = builders.basket(
        (shop.medium, 1), (shop.jeans, 1), (shop.mug, 1), (shop.socks, 3), owner=customer
    )
    evaluation = assert_charged_as_evaluated(basket)
    widget = Template("{% load crosssell %}{% bundle_progress basket %}").render(
        Context({"basket": basket})
    )
    order = builders.place_order(basket, user=customer)
    assert order.total_incl_tax == round_money(evaluation.total) == D("75.99")
    assert order.basket_total_before_discounts_incl_tax == evaluation.subtotal
    (discount,) = order.discounts.all()
    assert discount.offer_id == the_offer().pk and discount.offer_name == offers.OFFER_NAME
    assert discount.amount == evaluation.total_discount == D("8.25")  # 6.25 + 2 x 1.00
    booked = builders.get_model("order", "OrderLineDiscount").objects.filter(line__order=order)
    assert sum(item.amount for item in booked) == evaluation.total_discount
    assert sum(line.line_price_incl_tax for line in order.lines.all()) == order.total_incl_tax
    assert "−£8.25" in widget  # the widget's "Total bundle discount"
    for applied in evaluation.applied:
        assert f"−£{applied.discount}" in widget


@pytest.mark.parametrize("strategy", [UK, US], ids=["vat-included", "tax-deferred"])
def test_taxes_the_strategy_knows_or_defers(shop, rules, strategy):
    basket = builders.basket((shop.small, 1), (shop.jeans, 1), strategy=strategy())
    evaluation = assert_charged_as_evaluated(basket)
    if strategy is UK:  # 20% VAT: the set's discount is 10% of the prices incl. VAT
        assert evaluation.subtotal == D("74.988")
        assert evaluation.total_discount == D("7.50")
        assert basket.total_incl_tax == D("67.49")
    else:  # no tax known before checkout: the prices excl. tax are what is discounted
        assert evaluation.total_discount == D("6.25")
        assert basket.total_excl_tax == D("56.24")
    if strategy is UK:  # (a deferred tax is set by the checkout before an order exists)
        order = builders.place_order(basket)
        assert order.discounts.get().amount == evaluation.total_discount
        assert order.total_incl_tax == D("67.49")


def test_the_shops_own_offers_apply_after_the_bundles(shop, rules):
    Range = builders.get_model("offer", "Range")
    Condition = builders.get_model("offer", "Condition")
    Benefit = builders.get_model("offer", "Benefit")
    everything = Range.objects.create(name="Everything", includes_all_products=True)
    builders.get_model("offer", "ConditionalOffer").objects.create(
        name="Ten percent off",
        offer_type="Site",
        condition=Condition.objects.create(range=everything, type="Count", value=1),
        benefit=Benefit.objects.create(range=everything, type="Percentage", value=10),
    )
    basket = builders.basket((shop.medium, 1), (shop.jeans, 1), (shop.mug, 1))
    by_offer = {a["offer"].slug: a["discount"] for a in basket.offer_applications}
    assert by_offer[offers.OFFER_SLUG] == evaluation_of(basket).total_discount == D("6.25")
    assert by_offer["ten-percent-off"] == D("0.82")  # the mug; bundled units are taken


def test_the_offer_is_applied_once_per_basket(shop, rules):
    basket = builders.basket((shop.medium, 2), (shop.jeans, 2))
    (application,) = basket.offer_applications
    assert application["freq"] == 1
    assert application["discount"] == D("12.50")  # the set twice
    builders.apply_offers(basket)  # the next request applies the offers again
    assert basket.total_discount == D("12.50")


def test_what_the_offer_costs_in_queries(shop, rules, django_assert_num_queries):
    basket = builders.basket((shop.medium, 1), (shop.jeans, 1), (shop.socks, 1))
    basket.reset_offer_applications()
    for line in basket.all_lines():  # Oscar prices its lines for the page anyway
        line.purchase_info  # noqa: B018
    # Oscar's site offers; the rules (one query); and for the nudge "add 1 more of mug or
    # socks" the prices of the rules' products: their classes and stock records, and the
    # T-shirt's public children with theirs.
    with django_assert_num_queries(6):
        builders.Applicator().apply(basket)
    assert basket.total_discount == D("6.25")


def test_split_books_every_penny_on_lines_that_can_take_it():
    line = offers.BasketLine
    lines = [line("a", 1, D("10.00"), 2), line("b", 2, D("3.00"), 1), line("c", 3, D("0.01"), 5)]
    applied = [
        bundles.AppliedBundle(None, 1, {1: 2, 2: 1}, D("19.99"), D("23.00")),
        bundles.AppliedBundle(None, 1, {3: 5}, D("0.05"), D("0.05")),
    ]
    booked = offers.split(applied, lines)
    assert [(item.line, value, units) for item, value, units in booked] == [
        ("a", D("19.99"), 2),
        ("c", D("0.05"), 5),
    ]
    with pytest.raises(ValueError, match="more than"):
        offers.split([bundles.AppliedBundle("x", 1, {3: 5}, D("0.06"), D("0.05"))], lines[2:])
