"""The checkout charges only what the confirmation page showed: a price raised or a bundle
switched off in between shows the confirmation again with what changed."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from django_crosssell.models import BundleItem, BundleRule
from example_shop.shop.models import Order, Product

from .helpers import add_to_cart

pytestmark = pytest.mark.django_db


@pytest.fixture
def set_in_cart(client, make_product):
    shirt = make_product(name="シャツ", price=5000, stock=5)
    tie = make_product(name="ネクタイ", price=3000, stock=5)
    rule = BundleRule.objects.create(
        name="セット割", slug="set", kind="fixed_set", discount_type="percent", value=Decimal("10")
    )
    BundleItem.objects.create(rule=rule, product=shirt)
    BundleItem.objects.create(rule=rule, product=tie)
    add_to_cart(client, shirt, 1)
    add_to_cart(client, tie, 1)
    return shirt, tie, rule


def confirmation(client) -> str:
    html = client.get("/checkout/").content.decode()
    assert "¥7,200" in html  # 8,000 less 10 %
    return re.search(r'name="confirmed" value="([^"]+)"', html).group(1)


def test_an_unchanged_cart_is_ordered_at_the_confirmed_total(client, set_in_cart):
    response = client.post("/checkout/", {"confirmed": confirmation(client)})
    assert response.status_code == 302
    assert Order.objects.get().total == 7200


def test_a_bundle_switched_off_after_confirmation_is_shown_before_charging(client, set_in_cart):
    _, _, rule = set_in_cart
    confirmed = confirmation(client)
    rule.is_active = False
    rule.save()
    response = client.post("/checkout/", {"confirmed": confirmed})
    assert response.status_code == 409
    html = response.content.decode()
    assert "割引「セット割」（¥800）が適用されなくなりました。" in html
    assert "お支払い金額: ¥7,200 → ¥8,000" in html
    assert Order.objects.count() == 0
    # Confirming the new page orders at the new total.
    again = re.search(r'name="confirmed" value="([^"]+)"', html).group(1)
    assert client.post("/checkout/", {"confirmed": again}).status_code == 302
    assert Order.objects.get().total == 8000


def test_a_raised_price_is_shown_before_charging(client, set_in_cart):
    shirt, _, _ = set_in_cart
    confirmed = confirmation(client)
    Product.objects.filter(pk=shirt.pk).update(price=6000)
    response = client.post("/checkout/", {"confirmed": confirmed})
    assert response.status_code == 409
    assert "「シャツ」の価格が ¥5,000 から ¥6,000 に変わりました。" in response.content.decode()
    assert Order.objects.count() == 0


def test_a_tampered_confirmation_is_not_trusted(client, set_in_cart):
    response = client.post("/checkout/", {"confirmed": "forged"})
    assert response.status_code == 409
    assert Order.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_locked_rule_table_neither_hangs_the_cart_nor_charges_without_discounts(
    client, make_product
):
    import time

    from tests.services import other_connection, require_postgresql

    require_postgresql()
    shirt = make_product(name="シャツ", price=5000, stock=5)
    tie = make_product(name="ネクタイ", price=3000, stock=5)
    rule = BundleRule.objects.create(
        name="セット割", slug="set", kind="fixed_set", discount_type="percent", value=Decimal("10")
    )
    BundleItem.objects.create(rule=rule, product=shirt)
    BundleItem.objects.create(rule=rule, product=tie)
    add_to_cart(client, shirt, 1)
    add_to_cart(client, tie, 1)
    confirmed = confirmation(client)
    other = other_connection()
    try:
        other.execute(f'LOCK TABLE "{BundleRule._meta.db_table}" IN ACCESS EXCLUSIVE MODE')
        started = time.monotonic()
        page = client.get("/cart/")
        assert time.monotonic() - started < 1.0
        assert page.status_code == 200
        assert "セット割引を計算できない" in page.content.decode()
        response = client.post("/checkout/", {"confirmed": confirmed})
        assert response.status_code == 302 and response.url == "/cart/"
        assert Order.objects.count() == 0
    finally:
        other.rollback()
        other.close()
    response = client.post("/checkout/", {"confirmed": confirmed})  # the lock is gone
    assert response.status_code == 302 and response.url == "/checkout/complete/"
    assert Order.objects.get().total == 7200
