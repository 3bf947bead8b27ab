"""From seeing to buying without JavaScript: card buttons, "add all", sets, bundle pages.

Widgets are cached as HTML shared by every visitor, so the CSRF token of their forms is
filled in per request: these tests post the forms exactly as a browser without JavaScript
would, with CSRF checks on, as two different visitors.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client, override_settings

from django_crosssell.models import (
    AffinityRun,
    BundleItem,
    BundleRule,
    ProductAffinity,
    TierLadder,
    TierStep,
)
from example_shop.shop.cart import SESSION_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(make_product, product):
    filters = make_product(name="コーヒーフィルター", slug="filters", price=380)
    mug = make_product(name="マグカップ", slug="mug", price=1500)
    premium = make_product(name="プレミアムブレンド", slug="premium", price=1680)
    cheap = make_product(name="お徳用ブレンド", slug="value-blend", price=980)
    run = AffinityRun.objects.create(status=AffinityRun.Status.SUCCEEDED, is_current=True)
    for target, score in ((filters, 0.9), (cheap, 0.8), (mug, 0.5)):
        ProductAffinity.objects.create(
            run=run, source=product, target=target, co_count=9, support=0.1,
            confidence=0.5, lift=2.0, score=score,
        )  # fmt: skip
    ladder = TierLadder.objects.create(name="ブレンド", slug="blend")
    for rank, item in enumerate((cheap, product, premium), 1):
        TierStep.objects.create(ladder=ladder, product=item, rank=rank)
    rule = BundleRule.objects.create(
        name="ブレンドとマグ", slug="blend-mug", kind="fixed_set",
        discount_type="fixed_price", value=Decimal("2500"),
    )  # fmt: skip
    BundleItem.objects.create(rule=rule, product=product)
    BundleItem.objects.create(rule=rule, product=mug)
    teas = BundleRule.objects.create(
        name="よりどり2点", slug="any-two", kind="mix_and_match",
        discount_type="percent", value=Decimal("10"), min_quantity=2,
    )  # fmt: skip
    BundleItem.objects.create(rule=teas, product=filters)
    BundleItem.objects.create(rule=teas, product=mug)
    return {"filters": filters, "mug": mug, "premium": premium, "cheap": cheap}


def widget(html: str, name: str) -> str:
    match = re.search(
        rf'<(section|aside) [^>]*data-crosssell-widget="{name}".*?</\1>', html, re.DOTALL
    )
    return match.group(0) if match else ""


def form_fields(form: str) -> list[tuple[str, str]]:
    fields = re.findall(r'<input type="(?:hidden|checkbox)" name="([^"]+)" value="([^"]*)"', form)
    return fields


def forms_in(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<form [^>]*? action="([^"]+)"[^>]*>(.*?)</form>', html, re.S)


def cart_of(client: Client) -> dict[str, int]:
    return client.session.get(SESSION_KEY, {})


def test_a_card_button_adds_the_product_for_each_visitor(product, shop):
    tokens = set()
    for _ in range(2):  # the second visitor reads the cached widget
        visitor = Client(enforce_csrf_checks=True)
        html = visitor.get(product.get_absolute_url()).content.decode()
        cards = widget(html, "also_recommended")
        action, form = next(f for f in forms_in(cards) if f[0].endswith(f"/{shop['mug'].pk}/"))
        fields = dict(form_fields(form))
        assert fields["quantity"] == "1" and fields["next"] == product.get_absolute_url()
        tokens.add(fields["csrfmiddlewaretoken"])
        response = visitor.post(action, fields)
        assert response.status_code == 302 and response.url == product.get_absolute_url()
        assert cart_of(visitor) == {str(shop["mug"].pk): 1}
    assert len(tokens) == 2 and "" not in tokens


def test_bought_together_adds_everything_ticked_in_one_post(product, shop):
    visitor = Client(enforce_csrf_checks=True)
    html = visitor.get(product.get_absolute_url()).content.decode()
    together = widget(html, "frequently_bought_together")
    assert "よく一緒に購入されている商品" in together and "まとめてカートに入れる" in together
    # the downsell (お徳用ブレンド, shown below as the cheaper tier) is not repeated here
    assert "お徳用ブレンド" not in together
    assert "¥3,160" in together  # 1,280 + 380 + 1,500, every box ticked
    [(action, form)] = forms_in(together)
    fields = form_fields(form)
    products = [value for name, value in fields if name == "product"]
    assert products == [str(product.pk), str(shop["filters"].pk), str(shop["mug"].pk)]
    token = dict(fields)["csrfmiddlewaretoken"]
    # the customer unticks the filters
    chosen = [str(product.pk), str(shop["mug"].pk)]
    response = visitor.post(action, {"csrfmiddlewaretoken": token, "product": chosen})
    assert response.status_code == 302
    assert cart_of(visitor) == {str(product.pk): 1, str(shop["mug"].pk): 1}


def test_add_many_is_all_or_nothing(client, product, shop):
    shop["mug"].stock = 0
    shop["mug"].save()
    response = client.post("/cart/add-many/", {"product": [product.pk, shop["mug"].pk]})
    assert response.status_code == 302
    assert cart_of(client) == {}
    assert client.post("/cart/add-many/", {"product": ["x"]}).status_code == 302
    assert cart_of(client) == {}


def test_a_set_is_added_as_a_set_and_priced_as_one(product, shop):
    visitor = Client(enforce_csrf_checks=True)
    html = visitor.get(product.get_absolute_url()).content.decode()
    offers = widget(html, "bundle_offers")
    assert "セットでカートに入れる（¥2,500）" in offers
    assert "<s>¥2,780</s>のところ¥2,500（¥280引き）" in offers
    action, form = next(f for f in forms_in(offers) if "add-many" in f[0])
    response = visitor.post(
        action,
        dict(form_fields(form)) | {"product": [v for n, v in form_fields(form) if n == "product"]},
    )
    assert response.status_code == 302
    cart = visitor.get("/cart/").content.decode()
    assert "ブレンドとマグ" in cart and "−¥280" in cart and "¥2,500" in cart
    assert "割引</dt><dd>¥0" not in cart


def test_a_mix_and_match_offer_links_to_its_eligible_products(client, product, shop):
    html = client.get(shop["filters"].get_absolute_url()).content.decode()
    offers = widget(html, "bundle_offers")
    assert 'href="/bundles/any-two/"' in offers and "対象商品を見る" in offers
    page = client.get("/bundles/any-two/").content.decode()
    assert "コーヒーフィルター" in page and "マグカップ" in page
    assert "ハウスブレンド" not in page
    shop["mug"].is_active = False
    shop["mug"].save()
    assert "マグカップ" not in client.get("/bundles/any-two/").content.decode()


def test_catalogue_search_and_pagination(client, make_product, product):
    for n in range(30):
        make_product(name=f"紅茶 {n:02d}", slug=f"tea-{n}", price=500)
    first = client.get("/").content.decode()
    assert "1 / 2ページ" in first and 'rel="next"' in first
    found = client.get("/", {"q": "ハウス"}).content.decode()
    assert "ハウスブレンド" in found and "紅茶 00" not in found
    none = client.get("/", {"q": "存在しない"}).content.decode()
    assert "「存在しない」に一致する商品はありません。" in none


@override_settings(DEBUG=False)
def test_a_real_404_page(client):
    response = client.get("/products/no-such-thing/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "ページが見つかりません" in html and "ミナト商店" in html


def test_cards_and_pages_show_product_images(client, product, shop):
    html = client.get(product.get_absolute_url()).content.decode()
    assert 'class="product-image" src="/static/shop/products/placeholder.svg"' in html
    assert 'class="crosssell-card-image" src="/static/shop/products/' in html
    assert '<link rel="icon" href="/static/shop/favicon.svg"' in html


def test_the_admin_is_branded_and_japanese(admin_client, product, shop):
    html = admin_client.get("/admin/").content.decode()
    assert "ミナト商店 管理画面" in html
    assert "Periodic Tasks" not in html and "定期実行" in html
    assert "Cross-sell" not in html
    page = admin_client.get(f"/admin/shop/product/{product.pk}/change/").content.decode()
    assert "商品ページに表示される内容" in page and "よく一緒に購入されている商品" in page


def test_a_japanese_product_name_gets_a_romaji_slug_in_the_admin(admin_client, category):
    response = admin_client.post(
        "/admin/shop/product/add/",
        {
            "name": "砥石",
            "slug": "",
            "category": category.pk,
            "price": "3300",
            "stock": "5",
            "is_active": "on",
            "description": "",
            "crosssell_relations-TOTAL_FORMS": "0",
            "crosssell_relations-INITIAL_FORMS": "0",
            "crosssell_relations-MIN_NUM_FORMS": "0",
            "crosssell_relations-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    from example_shop.shop.models import Product

    assert Product.objects.get(name="砥石").slug == "toishi"


def test_the_slug_field_is_labelled_in_japanese(admin_client):
    html = admin_client.get("/admin/shop/product/add/").content.decode()
    assert "スラッグ" in html and "空欄にすると名前から作ります" in html
