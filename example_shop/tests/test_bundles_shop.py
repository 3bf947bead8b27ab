"""Bundle discounts in the example shop: shown, charged at checkout, kept on the order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from django_crosssell import bundles
from django_crosssell.models import BundleItem, BundleRule
from example_shop.shop.models import Order

from .helpers import add_to_cart

pytestmark = pytest.mark.django_db


@pytest.fixture
def shirt_tie_socks(make_product):
    shirt = make_product(name="オックスフォードシャツ", slug="shirt", price=4980)
    tie = make_product(name="シルクネクタイ", slug="tie", price=2980)
    socks = make_product(name="ビジネスソックス", slug="socks", price=990)
    set_rule = BundleRule.objects.create(
        name="シャツとネクタイのセット",
        slug="shirt-tie",
        kind="fixed_set",
        discount_type="percent",
        value=Decimal("10"),
    )
    BundleItem.objects.create(rule=set_rule, product=shirt)
    BundleItem.objects.create(rule=set_rule, product=tie)
    socks_rule = BundleRule.objects.create(
        name="ソックス3足まとめ買い",
        slug="socks-3",
        kind="multi_buy",
        discount_type="fixed_price",
        value=Decimal("2500"),
        min_quantity=3,
    )
    BundleItem.objects.create(rule=socks_rule, product=socks)
    return shirt, tie, socks


def test_product_page_shows_the_bundle_offer(client, shirt_tie_socks):
    shirt, _tie, _socks = shirt_tie_socks
    html = client.get(shirt.get_absolute_url()).content.decode()
    assert "下の商品と一緒に買うと10%オフ" in html and ">シルクネクタイ</a>" in html
    assert "（¥796引き）" in html  # 10% of 4,980 + 2,980 = 795.8 -> 796
    assert "¥7,164" in html


def test_cart_shows_applied_discounts_and_nudges(client, shirt_tie_socks):
    shirt, tie, socks = shirt_tie_socks
    add_to_cart(client, shirt)
    add_to_cart(client, tie)
    add_to_cart(client, socks, 2)
    with mock.patch.object(bundles, "evaluate", wraps=bundles.evaluate) as evaluate:
        html = client.get("/cart/").content.decode()
    assert evaluate.call_count == 1  # the widget and the totals share one evaluation
    assert "シャツとネクタイのセット" in html
    assert "−¥796" in html
    assert "あと1点でまとめ買い価格¥2,500" in html  # 2 pairs in the cart, 3 for ¥2,500
    assert "（カートの割引が¥470増えます）" in html  # 3 × 990 = 2,970 -> 2,500
    assert "¥9,144" in html  # 4,980 + 2,980 + 2 × 990 = 9,940 − 796


def test_checkout_charges_the_discount_and_the_order_keeps_it(client, shirt_tie_socks):
    shirt, tie, socks = shirt_tie_socks
    add_to_cart(client, shirt)
    add_to_cart(client, tie)
    add_to_cart(client, socks, 3)
    assert client.post("/checkout/").status_code == 302
    order = Order.objects.get()
    # 4,980 + 2,980 + 2,970 = 10,930; −796 (set) −470 (3 pairs for 2,500)
    assert (order.subtotal, order.discount, order.total) == (10930, 1266, 9664)
    discounts = sorted(order.discounts.values_list("rule_slug", "name", "amount"))
    assert discounts == [
        ("shirt-tie", "シャツとネクタイのセット", 796),
        ("socks-3", "ソックス3足まとめ買い", 470),
    ]
    complete = client.get("/checkout/complete/").content.decode()
    assert "ソックス3足まとめ買い" in complete and "−¥470" in complete
    assert "¥9,664" in complete


def test_order_history_shows_what_was_paid(client, django_user_model, shirt_tie_socks):
    shirt, tie, _socks = shirt_tie_socks
    client.force_login(django_user_model.objects.create_user("hanako", password="pw"))
    add_to_cart(client, shirt)
    add_to_cart(client, tie)
    client.post("/checkout/")
    order = Order.objects.get()
    # A later change to the rule does not rewrite history.
    BundleRule.objects.filter(slug="shirt-tie").update(value=Decimal("50"))
    html = client.get(f"/orders/{order.pk}/").content.decode()
    assert "シャツとネクタイのセット" in html
    assert "−¥796" in html
    assert "¥7,164" in html


def test_checkout_uses_the_rules_current_when_the_order_is_placed(client, shirt_tie_socks):
    shirt, tie, _socks = shirt_tie_socks
    add_to_cart(client, shirt)
    add_to_cart(client, tie)
    assert "−¥796" in client.get("/cart/").content.decode()
    BundleRule.objects.filter(slug="shirt-tie").update(ends_at=timezone.now() - timedelta(1))
    client.post("/checkout/")
    order = Order.objects.get()
    assert (order.discount, order.total) == (0, 7960)
    assert not order.discounts.exists()


def test_a_broken_bundle_engine_does_not_break_the_product_page(client, shirt_tie_socks):
    shirt, _tie, _socks = shirt_tie_socks
    with mock.patch.object(bundles, "fetch_rules", side_effect=RuntimeError("boom")):
        response = client.get(shirt.get_absolute_url())
    assert response.status_code == 200
    assert "カートに入れる" in response.content.decode()
