"""The session cart: its API (used by the widget and bundle engineers) and its views."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from django_crosssell.timeouts import overhead
from example_shop.shop.cart import (
    MAX_QUANTITY,
    SESSION_KEY,
    AppliedDiscount,
    Cart,
    CartLine,
    get_cart,
)
from example_shop.shop.context_processors import cart as cart_processor

from .helpers import add_to_cart, messages_of

pytestmark = pytest.mark.django_db


def _request(items: dict[str, int] | None = None):
    request = RequestFactory().get("/")
    request.session = SessionStore()
    if items is not None:
        request.session[SESSION_KEY] = items
    return request


# --- the Cart API ------------------------------------------------------------------------


def test_cart_api_totals(make_product):
    first = make_product(price=1280)
    second = make_product(price=500)
    cart = Cart(_request())

    cart.add(first, 2)
    cart.add(second)
    cart.add(first, 1)

    assert [(line.product, line.quantity, line.unit_price) for line in cart.lines] == [
        (first, 3, 1280),
        (second, 1, 500),
    ]
    assert all(isinstance(line, CartLine) for line in cart.lines)
    assert cart.lines[0].line_total == 3840
    assert cart.lines[0].product_name == first.name
    assert cart.products == [first, second]
    assert cart.count == 4
    assert cart.subtotal == 4340
    assert cart.discount == 0
    assert cart.applied_discounts == []
    assert cart.total == 4340
    assert cart.evaluate_discounts() == (0, [])


def test_cart_set_remove_clear(make_product):
    first, second = make_product(), make_product()
    cart = Cart(_request())
    cart.add(first)
    cart.add(second)

    cart.set(first, 5)
    assert cart.quantity_of(first) == 5
    cart.set(first, 0)
    assert cart.products == [second]
    assert cart.last_removed == first

    cart.clear()
    assert cart.lines == [] and cart.count == 0 and cart.total == 0
    assert cart.last_removed is None


def test_last_removed_is_cleared_by_the_next_add(make_product):
    first, second = make_product(), make_product()
    cart = Cart(_request())
    cart.add(first)
    cart.remove(first)
    assert cart.last_removed == first

    cart.add(second)

    assert cart.last_removed is None


def test_removing_a_product_not_in_the_cart_keeps_last_removed(make_product):
    first, second = make_product(), make_product()
    cart = Cart(_request())
    cart.add(first)
    cart.remove(first)
    cart.remove(second)
    assert cart.last_removed == first


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_cart_add_rejects_bad_quantities(make_product, quantity):
    cart = Cart(_request())
    with pytest.raises(ValueError):
        cart.add(make_product(), quantity)
    assert cart.lines == []


@pytest.mark.parametrize("quantity", ["2", 1.5, True, None])
def test_cart_add_rejects_non_integers(make_product, quantity):
    with pytest.raises(TypeError):
        Cart(_request()).add(make_product(), quantity)


def test_cart_quantity_is_capped(make_product):
    product = make_product()
    cart = Cart(_request())
    cart.add(product, MAX_QUANTITY)
    cart.add(product, 5)
    assert cart.quantity_of(product) == MAX_QUANTITY


def test_inactive_and_deleted_products_drop_out(make_product):
    kept, retired, deleted = make_product(), make_product(), make_product()
    request = _request()
    cart = Cart(request)
    for product in (kept, retired, deleted):
        cart.add(product)
    retired.is_active = False
    retired.save()
    deleted.delete()

    cart = Cart(request)

    assert cart.products == [kept]
    assert cart.count == 1
    assert request.session[SESSION_KEY] == {str(kept.pk): 1}


def test_garbage_in_the_session_is_ignored(make_product):
    product = make_product()
    cart = Cart(_request({str(product.pk): 2, "x": 1, "999999": 1, str(product.pk + 1): "3"}))
    assert [(line.product, line.quantity) for line in cart.lines] == [(product, 2)]
    assert Cart(_request({"a": "b"})).lines == []
    request = _request()
    request.session[SESSION_KEY] = ["not", "a", "dict"]
    assert Cart(request).lines == []


def test_cart_lines_load_with_one_query(make_product, django_assert_num_queries):
    products = [make_product() for _ in range(25)]
    cart = Cart(_request({str(product.pk): 1 for product in products}))

    with django_assert_num_queries(1):
        assert len(cart.lines) == 25
        assert cart.count == 25
        assert cart.subtotal == sum(product.price for product in products)
        assert {line.product.category.name for line in cart.lines} == {"コーヒー"}
    # The bundle rules of the cart's products (+ the savepoint of the bounded wait).
    with django_assert_num_queries(1 + overhead()):
        assert cart.total == cart.subtotal


def test_discount_never_exceeds_subtotal(make_product, monkeypatch):
    monkeypatch.setattr(
        Cart, "evaluate_discounts", lambda self: (10**9, [AppliedDiscount("大割引", 10**9)])
    )
    cart = Cart(_request())
    cart.add(make_product(price=1000))
    assert cart.discount == 1000
    assert cart.total == 0


def test_get_cart_is_shared_within_a_request():
    request = _request()
    assert get_cart(request) is get_cart(request)


def test_context_processor_is_lazy(django_assert_num_queries):
    class ExplodingSession:
        def get(self, *args):
            raise AssertionError("the session was read")

    request = RequestFactory().get("/")
    request.session = ExplodingSession()
    with django_assert_num_queries(0):
        context = cart_processor(request)
    with pytest.raises(AssertionError, match="session was read"):
        _ = context["cart"].count


# --- the views -----------------------------------------------------------------------------


def test_add_view(client, product):
    response = add_to_cart(client, product, 2)

    assert response.status_code == 302
    assert response.url == "/cart/"
    response = client.get("/cart/")
    assert "「ハウスブレンド 200g」をカートに追加しました。" in messages_of(response)
    html = response.content.decode()
    assert "ハウスブレンド 200g" in html
    assert "¥2,560" in html
    assert response.context["cart"].count == 2


def test_add_view_follows_a_local_next_only(client, product):
    response = client.post(f"/cart/add/{product.pk}/", {"quantity": 1, "next": "/?x=1"})
    assert response.url == "/?x=1"
    response = client.post(
        f"/cart/add/{product.pk}/", {"quantity": 1, "next": "https://evil.example/"}
    )
    assert response.url == "/cart/"


@pytest.mark.parametrize(
    ("quantity", "error"),
    [
        ("0", "数量は1以上で入力してください。"),
        ("-3", "数量は1以上で入力してください。"),
        ("abc", "数量は整数で入力してください。"),
        ("", "数量を入力してください。"),
        (str(MAX_QUANTITY + 1), f"数量は{MAX_QUANTITY}以下で入力してください。"),
    ],
)
def test_add_view_rejects_invalid_quantity(client, product, quantity, error):
    response = add_to_cart(client, product, quantity)

    assert response.status_code == 302
    assert response.url == product.get_absolute_url()
    response = client.get(response.url)
    assert error in messages_of(response)
    assert response.context["cart"].count == 0


def test_add_view_refuses_more_than_stock(client, product):
    add_to_cart(client, product, 4)
    response = add_to_cart(client, product, 2)

    response = client.get(response.url)
    assert "「ハウスブレンド 200g」の在庫が足りません（残り5点）。" in messages_of(response)
    assert response.context["cart"].count == 4


def test_add_view_refuses_sold_out(client, make_product):
    product = make_product(name="売り切れ豆", stock=0)
    response = client.get(add_to_cart(client, product, 1).url)
    assert "「売り切れ豆」は在庫切れです。" in messages_of(response)
    assert response.context["cart"].count == 0


def test_add_view_inactive_product_is_404(client, make_product):
    product = make_product(is_active=False)
    assert add_to_cart(client, product, 1).status_code == 404
    assert client.get("/cart/").context["cart"].count == 0


def test_cart_changes_need_post(client, product):
    assert client.get(f"/cart/add/{product.pk}/").status_code == 405
    assert client.get(f"/cart/update/{product.pk}/").status_code == 405
    assert client.get(f"/cart/remove/{product.pk}/").status_code == 405


def test_cart_changes_need_csrf(product):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert add_to_cart(client, product, 1).status_code == 403


def test_update_view(client, product):
    add_to_cart(client, product, 1)

    response = client.post(f"/cart/update/{product.pk}/", {"quantity": 3})

    assert response.url == "/cart/"
    response = client.get("/cart/")
    assert "「ハウスブレンド 200g」の数量を3に変更しました。" in messages_of(response)
    assert response.context["cart"].count == 3
    assert "¥3,840" in response.content.decode()


@pytest.mark.parametrize("quantity", ["-1", "x", "", "100"])
def test_update_view_rejects_invalid_quantity(client, product, quantity):
    add_to_cart(client, product, 2)
    client.post(f"/cart/update/{product.pk}/", {"quantity": quantity})
    response = client.get("/cart/")
    assert response.context["cart"].count == 2
    assert any("数量" in message for message in messages_of(response))


def test_update_view_refuses_more_than_stock(client, product):
    add_to_cart(client, product, 2)
    client.post(f"/cart/update/{product.pk}/", {"quantity": 6})
    response = client.get("/cart/")
    assert response.context["cart"].count == 2
    assert "「ハウスブレンド 200g」の在庫が足りません（残り5点）。" in messages_of(response)


def test_update_to_zero_removes(client, product):
    add_to_cart(client, product, 2)
    client.post(f"/cart/update/{product.pk}/", {"quantity": 0})
    response = client.get("/cart/")
    assert response.context["cart"].count == 0
    assert "カートは空です" in response.content.decode()


def test_remove_view_remembers_the_product(client, product, make_product):
    add_to_cart(client, product, 2)

    response = client.post(f"/cart/remove/{product.pk}/")

    assert response.url == "/cart/"
    response = client.get("/cart/")
    assert "「ハウスブレンド 200g」をカートから削除しました。" in messages_of(response)
    cart = response.context["cart"]
    assert cart.count == 0
    assert cart.last_removed == product
    add_to_cart(client, make_product(), 1)
    assert client.get("/cart/").context["cart"].last_removed is None


def test_cart_page_drops_a_product_taken_off_sale(client, product):
    add_to_cart(client, product, 2)
    product.is_active = False
    product.save()

    response = client.get("/cart/")

    assert "カートは空です" in response.content.decode()
    assert response.context["cart"].count == 0


def test_cart_page_queries_do_not_grow_with_lines(
    client, make_product, django_assert_max_num_queries
):
    for _ in range(12):
        add_to_cart(client, make_product(), 1)
    # session + products (+ savepoint-free session save when lines dropped) + one query for
    # the bundle rules of the cart's products: no N+1.
    # + the savepoints of the bounded waits (the cart's evaluation, a widget's queries)
    with django_assert_max_num_queries(4 + 2 * overhead()):
        response = client.get("/cart/")
    assert response.context["cart"].count == 12
    assert response.content.decode().count('class="qty-form"') == 12
