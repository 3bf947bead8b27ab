"""Checkout turns the cart into a paid order; order history shows each user their own."""

from __future__ import annotations

import pytest

from django_crosssell.timeouts import overhead
from example_shop.shop.cart import AppliedDiscount, Cart
from example_shop.shop.models import Order, OrderDiscount, OrderLine, Product

from .helpers import add_to_cart, messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_products(make_product):
    return (
        make_product(name="コーヒーメーカー", price=8980, stock=3),
        make_product(name="ペーパーフィルター", price=380, stock=50),
    )


def _fill(client, two_products):
    maker, filters = two_products
    add_to_cart(client, maker, 1)
    add_to_cart(client, filters, 3)


def test_confirmation_page(client, two_products):
    _fill(client, two_products)

    response = client.get("/checkout/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "ご注文内容の確認" in html
    maker, filters = two_products
    assert f'<a href="{maker.get_absolute_url()}">コーヒーメーカー</a>' in html
    assert f'<a href="{filters.get_absolute_url()}">ペーパーフィルター</a>' in html
    assert "¥10,120" in html  # 8,980 + 3 × 380
    assert "注文を確定する" in html
    assert Order.objects.count() == 0


def test_checkout_creates_the_order(client, two_products):
    maker, filters = two_products
    _fill(client, two_products)

    response = client.post("/checkout/")

    assert response.status_code == 302
    assert response.url == "/checkout/complete/"
    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert order.customer is None
    assert (order.subtotal, order.discount, order.total) == (10120, 0, 10120)
    lines = list(
        order.lines.order_by("pk").values_list("product", "product_name", "quantity", "unit_price")
    )
    assert lines == [
        (maker.pk, "コーヒーメーカー", 1, 8980),
        (filters.pk, "ペーパーフィルター", 3, 380),
    ]
    assert Product.objects.get(pk=maker.pk).stock == 2
    assert Product.objects.get(pk=filters.pk).stock == 47

    response = client.get(response.url)
    html = response.content.decode()
    assert "ご注文ありがとうございました" in html
    assert f"#{order.pk}" in html
    assert f'<a href="{maker.get_absolute_url()}">コーヒーメーカー</a>' in html
    assert response.context["cart"].count == 0


def test_checkout_records_the_logged_in_customer(user_client, user, two_products):
    _fill(user_client, two_products)
    user_client.post("/checkout/")
    order = Order.objects.get()
    assert order.customer == user
    html = user_client.get("/checkout/complete/").content.decode()
    assert f'href="/orders/{order.pk}/"' in html


def test_checkout_stores_applied_discounts(client, two_products, monkeypatch):
    def evaluate(self):
        return 1000, [
            AppliedDiscount("セット割引", 700, "set-rule"),
            AppliedDiscount("まとめ買い", 300, "multi-rule"),
        ]

    monkeypatch.setattr(Cart, "evaluate_discounts", evaluate)
    _fill(client, two_products)
    assert "セット割引" in client.get("/cart/").content.decode()

    client.post("/checkout/")

    order = Order.objects.get()
    assert (order.subtotal, order.discount, order.total) == (10120, 1000, 9120)
    assert list(order.discounts.order_by("pk").values_list("name", "rule_slug", "amount")) == [
        ("セット割引", "set-rule", 700),
        ("まとめ買い", "multi-rule", 300),
    ]


@pytest.mark.parametrize("method", ["get", "post"])
def test_empty_cart_checkout_is_refused(client, db, method):
    response = getattr(client, method)("/checkout/")

    assert response.status_code == 302
    assert response.url == "/cart/"
    assert "カートが空のため、注文できません。" in messages_of(client.get("/cart/"))
    assert Order.objects.count() == 0


def test_checkout_twice_places_one_order(client, two_products):
    _fill(client, two_products)
    client.post("/checkout/")
    response = client.post("/checkout/")
    assert response.url == "/cart/"
    assert Order.objects.count() == 1


def test_stock_shortfall_rolls_everything_back(client, two_products):
    maker, filters = two_products
    add_to_cart(client, filters, 3)
    add_to_cart(client, maker, 2)
    Product.objects.filter(pk=maker.pk).update(stock=1)  # someone else bought one

    response = client.post("/checkout/")

    assert response.url == "/cart/"
    assert Order.objects.count() == 0 and OrderLine.objects.count() == 0
    assert Product.objects.get(pk=filters.pk).stock == 50
    response = client.get("/cart/")
    assert "「コーヒーメーカー」の在庫が足りません（残り1点）。" in messages_of(response)
    assert response.context["cart"].count == 5


def test_product_taken_off_sale_before_checkout_is_not_ordered(client, two_products):
    maker, filters = two_products
    _fill(client, two_products)
    Product.objects.filter(pk=maker.pk).update(is_active=False)

    client.post("/checkout/")

    order = Order.objects.get()
    assert list(order.lines.values_list("product", flat=True)) == [filters.pk]
    assert order.total == 1140


def test_complete_page_needs_an_order_of_this_session(client, db):
    response = client.get("/checkout/complete/")
    assert response.status_code == 302
    assert response.url == "/"


# --- order history ---------------------------------------------------------------------------


def _order(customer, product, quantity=1, discount=0):
    subtotal = product.price * quantity
    order = Order.objects.create(
        customer=customer, subtotal=subtotal, discount=discount, total=subtotal - discount
    )
    OrderLine.objects.create(
        order=order,
        product=product,
        product_name=product.name,
        quantity=quantity,
        unit_price=product.price,
    )
    if discount:
        OrderDiscount.objects.create(
            order=order, name="シャツとネクタイのセットで10%引き", rule_slug="set", amount=discount
        )
    return order


@pytest.mark.parametrize("path", ["/orders/", "/orders/1/"])
def test_order_history_requires_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == f"/accounts/login/?next={path}"


def test_order_list_shows_only_own_orders(user_client, user, other_user, product):
    mine = _order(user, product, 2)
    theirs = _order(other_user, product, 1)
    _order(None, product, 1)

    response = user_client.get("/orders/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "注文履歴" in html
    assert [order.pk for order in response.context["orders"]] == [mine.pk]
    assert f'href="/orders/{mine.pk}/"' in html
    assert f'href="/orders/{theirs.pk}/"' not in html
    assert "¥2,560" in html


def test_order_list_empty(user_client):
    assert "まだご注文はありません。" in user_client.get("/orders/").content.decode()


def test_order_list_queries_are_bounded(user_client, user, product, django_assert_max_num_queries):
    for _ in range(15):
        _order(user, product)
    # session, user, count, page of orders: independent of the number of orders; the
    # personal widgets ({% buy_again %}, {% for_you %}) add at most 7 while not cached, with
    # the bounded waits' statements of each (PostgreSQL); tracking writes one row of serves.
    with django_assert_max_num_queries(4 + 7 + 2 * overhead() + 1):
        response = user_client.get("/orders/")
    assert len(response.context["orders"]) == 15
    with django_assert_max_num_queries(4 + 1):  # the widgets from the cache
        user_client.get("/orders/")


def test_order_detail_shows_lines_discounts_and_totals(user_client, user, product):
    order = _order(user, product, 2, discount=256)

    response = user_client.get(f"/orders/{order.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f"注文 #{order.pk}" in html
    assert "ハウスブレンド 200g" in html
    assert "¥1,280" in html and "¥2,560" in html
    assert "シャツとネクタイのセットで10%引き" in html and "−¥256" in html
    assert "¥2,304" in html
    assert "支払い済み" in html


def test_order_detail_of_someone_else_is_404(user_client, other_user, product):
    order = _order(other_user, product)
    assert user_client.get(f"/orders/{order.pk}/").status_code == 404


def test_order_detail_survives_a_deleted_product(user_client, user, product):
    order = _order(user, product)
    OrderLine.objects.filter(order=order).update(product=None)
    html = user_client.get(f"/orders/{order.pk}/").content.decode()
    assert "ハウスブレンド 200g" in html


def test_selling_out_invalidates_the_widget_cache(
    client, two_products, django_capture_on_commit_callbacks
):
    """update() sends no signal, so checkout itself tells django-crosssell about a sell-out."""
    from django_crosssell import cache as crosssell_cache

    maker, filters = two_products
    add_to_cart(client, filters, 3)
    before = crosssell_cache.current_version()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/checkout/")
    assert crosssell_cache.current_version() == before  # nothing sold out

    add_to_cart(client, maker, 3)  # the last three units
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/checkout/")
    assert Product.objects.get(pk=maker.pk).stock == 0
    assert crosssell_cache.current_version() != before
