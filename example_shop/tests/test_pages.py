"""Every storefront page renders with its Japanese text, and the extension blocks exist."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.template import engines
from django.test import RequestFactory

from .helpers import add_to_cart

pytestmark = pytest.mark.django_db


def test_product_list_groups_active_products_by_category(
    client, make_product, category, other_category
):
    make_product(name="コロンビア 200g", category=category)
    make_product(name="万年筆", category=other_category)
    make_product(name="売り切れ豆", category=category, stock=0)
    make_product(name="販売終了の豆", category=category, is_active=False)

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "すべての商品" in html
    assert "コロンビア 200g" in html and "万年筆" in html
    assert "在庫あり" in html and "在庫切れ" in html
    assert "販売終了の豆" not in html
    assert [section[0] for section in response.context["sections"]] == [category, other_category]
    assert f'href="/category/{category.slug}/"' in html
    assert '<link rel="stylesheet" href="/static/shop/shop.css">' in html


def test_category_nav_follows_position(client, make_product):
    from example_shop.shop.models import Category

    names = [("b-first", "ア", 1), ("a-second", "イ", 2), ("c-third", "ウ", 3)]
    for slug, name, position in reversed(names):
        make_product(category=Category.objects.create(slug=slug, name=name, position=position))
    Category.objects.create(slug="empty", name="空", position=0)

    response = client.get("/")

    assert [category.slug for category in response.context["categories"]] == [
        "b-first",
        "a-second",
        "c-third",
    ]


def test_category_page_filters(client, make_product, category, other_category):
    make_product(name="コロンビア 200g", category=category)
    make_product(name="万年筆", category=other_category)

    response = client.get(f"/category/{other_category.slug}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "万年筆" in html
    assert "コロンビア 200g" not in html
    assert 'aria-current="page">文房具' in html


def test_unknown_category_is_404(client, db):
    assert client.get("/category/nope/").status_code == 404


def test_product_list_queries_do_not_grow_with_products(
    client, make_product, django_assert_max_num_queries
):
    for _ in range(30):
        make_product()
    # categories, products, session: no query per product or category.
    with django_assert_max_num_queries(3):
        assert client.get("/").status_code == 200


def test_product_detail(client, product):
    response = client.get(f"/products/{product.slug}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "ハウスブレンド 200g" in html
    assert "¥1,280" in html
    assert "在庫あり" in html
    assert "自家焙煎のコーヒー豆です。" in html
    assert "カートに入れる" in html
    assert f'action="/cart/add/{product.pk}/"' in html
    assert "csrfmiddlewaretoken" in html


def test_sold_out_product_has_no_add_form(client, make_product):
    product = make_product(slug="sold-out", stock=0)

    html = client.get("/products/sold-out/").content.decode()

    assert "在庫切れ" in html
    assert f"/cart/add/{product.pk}/" not in html


def test_inactive_product_is_404(client, make_product):
    make_product(slug="retired", is_active=False)
    assert client.get("/products/retired/").status_code == 404


def test_empty_cart_page(client, db):
    response = client.get("/cart/")
    assert response.status_code == 200
    assert "カートは空です" in response.content.decode()


def test_header_shows_cart_count_and_login_link(client, product):
    add_to_cart(client, product, 3)

    html = client.get("/").content.decode()

    assert 'aria-label="カート内の商品数">3</span>' in html
    assert 'href="/accounts/login/?next=/"' in html
    assert "注文履歴" not in html


def test_header_for_logged_in_user(user_client, db):
    html = user_client.get("/").content.decode()
    assert 'href="/orders/"' in html and "注文履歴" in html
    assert 'action="/accounts/logout/"' in html and "ログアウト" in html


def test_login_page_and_login(client, user):
    response = client.get("/accounts/login/?next=/orders/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "ログイン" in html and "ユーザー名" in html and "パスワード" in html

    response = client.post(
        "/accounts/login/", {"username": "hanako", "password": "pw-hanako", "next": "/orders/"}
    )
    assert response.status_code == 302
    assert response.url == "/orders/"


def test_login_failure_is_shown(client, user):
    response = client.post("/accounts/login/", {"username": "hanako", "password": "wrong"})
    assert response.status_code == 200
    assert "message-error" in response.content.decode()


def test_logout_redirects_home(user_client):
    response = user_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.url == "/"


def _render_child(source: str, **context) -> str:
    """Render a template extending one of ours, as another engineer's edit would."""
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    return engines["django"].from_string(source).render(context, request)


def test_product_detail_extension_blocks(product):
    html = _render_child(
        '{% extends "shop/product_detail.html" %}'
        "{% block bundle_offers %}<p>BUNDLE-OFFERS</p>{% endblock %}"
        "{% block recommendations %}<p>RECOMMENDATIONS</p>{% endblock %}",
        product=product,
        category=product.category,
        form=None,
    )
    add_form = html.index("カートに入れる")
    offers = html.index("BUNDLE-OFFERS")
    recommendations = html.index("RECOMMENDATIONS")
    assert add_form < offers < recommendations
    # Recommendations sit below the product info, outside the purchase box.
    assert html.index("</article>") < recommendations


def test_cart_extension_blocks(product):
    from example_shop.shop.cart import CartLine

    line = CartLine(product=product, quantity=2, unit_price=product.price)
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.session["shop_cart"] = {str(product.pk): 2}
    request.user = AnonymousUser()
    html = (
        engines["django"]
        .from_string(
            '{% extends "shop/cart.html" %}'
            "{% block bundle_progress %}<p>BUNDLE-PROGRESS</p>{% endblock %}"
            "{% block cart_recommendations %}<p>CART-RECOMMENDATIONS</p>{% endblock %}"
        )
        .render({"rows": [(line, None)]}, request)
    )
    table_end = html.index("</table>")
    progress = html.index("BUNDLE-PROGRESS")
    total = html.index("合計")
    recommendations = html.index("CART-RECOMMENDATIONS")
    assert table_end < progress < total < recommendations


def test_templates_load_the_crosssell_library():
    for name in ("shop/product_detail.html", "shop/cart.html"):
        source = engines["django"].get_template(name).template.source
        assert "{% load crosssell" in source
