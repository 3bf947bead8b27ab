"""The recommendation widgets on the example shop's product and cart pages."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from django_crosssell.models import (
    AffinityRun,
    ProductAffinity,
    ProductRelation,
    TierLadder,
    TierStep,
)
from django_crosssell.timeouts import is_bookkeeping

from .helpers import add_to_cart

pytestmark = pytest.mark.django_db

DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
    }
}


def cards(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-crosssell-product="(\d+)"', html)]


def widget(html: str, name: str) -> str:
    match = re.search(
        rf'<(section|aside) [^>]*data-crosssell-widget="{name}".*?</\1>', html, re.DOTALL
    )
    return match.group(0) if match else ""


@pytest.fixture
def catalogue(make_product, product):
    """``product`` (house blend) with a computed partner, a staff pick and a tier ladder."""
    filters, mug, dripper = (
        make_product(name="コーヒーフィルター", price=380),
        make_product(name="マグカップ", price=1500),
        make_product(name="ドリッパー", price=2200),
    )
    premium = make_product(name="プレミアムブレンド 200g", price=1680)
    run = AffinityRun.objects.create(status="succeeded", is_current=True)
    for source, target, count in [
        (product, filters, 37),
        (product, mug, 12),
        (filters, dripper, 20),
        (mug, dripper, 9),
    ]:
        ProductAffinity.objects.create(
            run=run, source=source, target=target, co_count=count, support=0.1,
            confidence=count / 100, lift=2.0, score=count / 100,
        )  # fmt: skip
    ProductRelation.objects.create(source=product, target=dripper, position=1)
    ladder = TierLadder.objects.create(name="ブレンド", slug="blend")
    TierStep.objects.create(ladder=ladder, product=product, rank=1, label="ハウス")
    TierStep.objects.create(
        ladder=ladder, product=premium, rank=2, label="プレミアム", pitch="希少な豆を使用"
    )
    return {"filters": filters, "mug": mug, "dripper": dripper, "premium": premium}


def test_product_page_shows_recommendations_and_an_upgrade(client, product, catalogue):
    html = client.get(product.get_absolute_url()).content.decode()

    recommended = widget(html, "also_recommended")
    assert "こちらもおすすめ" in recommended
    assert cards(recommended)[:3] == [
        catalogue["dripper"].pk,
        catalogue["filters"].pk,
        catalogue["mug"].pk,
    ]
    assert product.pk not in cards(recommended)
    assert "スタッフのおすすめ" in recommended
    assert "37人がこれらを一緒に購入しています" in recommended
    assert "¥380" in recommended and "¥380.00" not in recommended
    assert f'href="{catalogue["filters"].get_absolute_url()}"' in recommended

    upgrade = widget(html, "upgrade_prompt")
    assert "ひとつ上のモデル" in upgrade and "プレミアム" in upgrade
    assert "希少な豆を使用" in upgrade
    assert "ご覧の商品との差額：+¥400" in upgrade
    assert '<link rel="stylesheet" href="/static/django_crosssell/crosssell.css">' in html


def test_pages_work_without_any_recommendation(client, product):
    response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "data-crosssell-widget" not in html
    add_to_cart(client, product)
    response = client.get("/cart/")
    assert response.status_code == 200
    assert "data-crosssell-widget" not in response.content.decode()


def test_cart_page_recommends_partners_but_never_the_cart(client, product, catalogue):
    add_to_cart(client, product)
    add_to_cart(client, catalogue["filters"])

    html = client.get("/cart/").content.decode()

    together = widget(html, "bought_together")
    assert "よく一緒に購入されている商品" in together
    shown = cards(together)
    assert catalogue["dripper"].pk in shown and catalogue["mug"].pk in shown
    assert product.pk not in shown and catalogue["filters"].pk not in shown
    assert "downgrade_offer" not in html


def test_removing_an_item_offers_the_cheaper_tier(client, product, catalogue):
    add_to_cart(client, catalogue["premium"])
    client.post(f"/cart/remove/{catalogue['premium'].pk}/")

    html = client.get("/cart/").content.decode()

    offer = widget(html, "downgrade_offer")
    assert "より低価格のモデル" in offer
    assert cards(offer) == [product.pk]
    assert "価格差：¥400安くなります" in offer


def test_widget_queries_on_the_product_page(client, product, catalogue):
    url = product.get_absolute_url()
    with CaptureQueriesContext(connection) as cold:
        client.get(url)
    with CaptureQueriesContext(connection) as warm:
        client.get(url)

    def ours(context) -> list[str]:
        return [q["sql"] for q in context.captured_queries if "crosssell" in q["sql"]]

    # also_recommended and frequently_bought_together: one union and one product query
    # each; upgrade_prompt: one ladder query (shared with bought together's downsell check);
    # bundle_offers: one bundle-rule query.
    def data(context) -> list[str]:  # without the savepoints of the bounded waits
        return [q["sql"] for q in context.captured_queries if not is_bookkeeping(q["sql"])]

    assert 0 < len(data(cold)) - len(data(warm)) <= 6
    assert ours(cold) and ours(warm) == []


def test_a_dead_cache_still_shows_recommendations(client, product, catalogue, caplog):
    with override_settings(CACHES=DEAD_REDIS):
        response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    recommended = widget(response.content.decode(), "also_recommended")
    assert catalogue["filters"].pk in cards(recommended)
    assert "cache unavailable" in caplog.text
