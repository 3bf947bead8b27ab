"""One money path: an amount is rounded and written the same way wherever it appears."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import override_settings

from django_crosssell import money
from django_crosssell.models import BundleRule
from tests.factories import BundleItemFactory, BundleRuleFactory, ProductFactory
from tests.factories import ProductRelationFactory as Link
from tests.settings import CROSSSELL

pytestmark = pytest.mark.django_db

AMOUNT = Decimal("6500.50")


def render(source: str, **context) -> str:
    return Template("{% load crosssell %}" + source).render(Context(context))


@pytest.fixture
def decimal_price():
    """A product at 6500.50, and a set whose discount is that same amount."""
    source = ProductFactory(name="Kettle")
    dear = ProductFactory(name="Grinder", price=AMOUNT)
    partner = ProductFactory(name="Scale", price=Decimal("10000"))
    Link(source=source, target=dear)
    rule = BundleRuleFactory(
        name="Grinder set", discount_type=BundleRule.DiscountType.AMOUNT, value=AMOUNT
    )
    BundleItemFactory(rule=rule, product=dear)
    BundleItemFactory(rule=rule, product=partner)
    return source, dear, partner


@pytest.mark.parametrize(
    ("decimals", "shown", "sent"), [(0, "6,501", "6501"), (2, "6,500.50", "6500.50")]
)
def test_one_decimal_amount_is_the_same_string_everywhere(
    decimal_price, client, decimals, shown, sent
):
    source, dear, partner = decimal_price
    with override_settings(CROSSSELL={**CROSSSELL, "CURRENCY_DECIMALS": decimals}):
        card = render("{% also_recommended product %}", product=source)
        offer = render("{% bundle_offers product %}", product=dear)
        progress = render(
            "{% bundle_progress lines %}",
            lines=[(dear, 1, dear.price), (partner, 1, partner.price)],
        )
        product = client.get(f"/api/crosssell/products/{source.pk}/recommendations/").json()
        evaluation = client.post(
            "/api/crosssell/bundles/evaluate/",
            {
                "lines": [
                    {"product": str(dear.pk), "quantity": 1},
                    {"product": str(partner.pk), "quantity": 1},
                ]
            },
            content_type="application/json",
        ).json()
    assert f'<p class="crosssell-card-price">{shown}</p>' in card
    assert f"({shown} off)" in offer
    assert f"−{shown}" in progress
    assert product[0]["product"]["price_display"] == shown
    assert product[0]["product"]["price"] == sent
    assert evaluation["total_discount"] == sent


def test_money_strings_round_with_the_configured_mode():
    with override_settings(CROSSSELL={**CROSSSELL, "ROUNDING": "ROUND_DOWN"}):
        assert money.money_string(AMOUNT) == "6500"
        assert money.format_money(AMOUNT) == "6,500"
    assert money.money_string(None) is None
    assert money.format_money(None) == ""
    assert money.format_percent(Decimal("12.50")) == "12.5"
