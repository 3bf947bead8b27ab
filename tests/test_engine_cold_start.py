"""Cold start: content neighbours from product names, stored with the run, shown on the shop."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from django_crosssell import cache, similarity
from django_crosssell.models import ProductSimilarity
from django_crosssell.recommend import BOUGHT_TOGETHER, CURATED, SIMILAR, recommend_for_product
from django_crosssell.recompute import run_recompute
from tests.factories import CategoryFactory, ProductFactory, ProductRelationFactory, make_order
from tests.settings import CROSSSELL

# Five categories of a Japanese shop; the names are what a shop calls its products.
CATALOGUE = {
    "tea": [
        "静岡煎茶 100g",
        "宇治抹茶 30g 缶入り",
        "ほうじ茶ティーバッグ 20袋",
        "玄米茶 200g",
        "知覧茶 深蒸し煎茶 80g",
        "有機ほうじ茶 100g",
    ],
    "coffee": [
        "コーヒー豆 ブラジル 200g",
        "ドリップコーヒー 10袋",
        "コーヒー豆 エチオピア 深煎り 500g",
        "カフェインレスコーヒー 粉 200g",
        "コーヒーフィルター 100枚",
        "アイスコーヒー 無糖 1L",
    ],
    "shirts": [
        "オックスフォードシャツ 綿 白",
        "リネンシャツ 白",
        "形態安定シャツ 紺",
        "ギンガムチェックシャツ",
        "半袖ポロシャツ 黒",
        "ボタンダウンシャツ 青",
    ],
    "stationery": [
        "ボールペン 黒 0.5mm",
        "ゲルインクボールペン 青",
        "万年筆 細字",
        "シャープペンシル 0.3mm",
        "大学ノート A4 5冊",
        "方眼ノート B5",
    ],
    "kitchen": [
        "ステンレス包丁 三徳 18cm",
        "ペティナイフ 12cm",
        "まな板 ひのき",
        "鉄フライパン 26cm",
        "雪平鍋 18cm",
        "木製まな板 大",
    ],
}
NEW = [
    ("tea", "八女煎茶 150g"),
    ("tea", "京都 ほうじ茶 300g"),
    ("coffee", "コーヒー豆 グアテマラ 250g"),
    ("coffee", "ドリップバッグコーヒー 20袋"),
    ("shirts", "ストライプシャツ 白"),
    ("shirts", "長袖ポロシャツ 紺"),
    ("stationery", "多機能ボールペン 4色"),
    ("stationery", "リングノート A5"),
    ("kitchen", "牛刀包丁 21cm"),
    ("kitchen", "ＩＨ対応 フライパン ２８ｃｍ"),
]


def test_normalise_folds_widths_and_strips_numbers_with_units():
    assert similarity.normalise("ＩＨ対応 フライパン ２８ｃｍ") == "ih対応 フライパン"
    assert similarity.normalise("ｺｰﾋｰ豆 500g×2") == "コーヒー豆"
    assert similarity.normalise("Green Tea 3個入り, 1.5kg") == "green tea"
    assert similarity.normalise("") == ""


def test_new_products_find_their_category_by_name_alone():
    """Known answer: nine of ten new products' nearest name is in their own category."""
    texts = [name for names in CATALOGUE.values() for name in names]
    categories = [cat for cat, names in CATALOGUE.items() for _ in names]
    texts += [name for _, name in NEW]
    categories += [cat for cat, _ in NEW]
    new = np.arange(len(texts) - len(NEW), len(texts))
    # Compared without categories: the names alone must carry the answer.
    found = similarity.neighbours(texts, new, top_k=1, min_score=0.0)
    best = dict(zip(found.source.tolist(), found.target.tolist(), strict=True))
    right = sum(categories[best[i]] == categories[i] for i in new.tolist() if i in best)
    assert right >= 9


def test_category_restrict_and_boost():
    texts = ["緑茶 ティーバッグ", "緑茶 ティーバッグ 徳用", "紅茶 ティーバッグ", "ボールペン"]
    categories = ["green", "other", "green", "pens"]
    plain = similarity.neighbours(texts, np.array([0]), top_k=3, min_score=0.0)
    assert plain.target.tolist()[0] == 1  # the closest name
    restricted = similarity.neighbours(
        texts, np.array([0]), categories=categories, category_mode="restrict", min_score=0.0
    )
    assert restricted.target.tolist() == [2]
    boosted = similarity.neighbours(
        texts,
        np.array([0]),
        categories=categories,
        category_mode="boost",
        category_boost=10.0,
        min_score=0.0,
    )
    assert boosted.target.tolist()[0] == 2
    assert 3 not in similarity.neighbours(texts, np.array([0]), min_score=0.1).target.tolist()


@pytest.fixture
def shop(db):
    categories = {cat: CategoryFactory(name=cat) for cat in CATALOGUE}
    products = {
        name: ProductFactory(name=name, category=categories[cat])
        for cat, names in CATALOGUE.items()
        for name in names
    }
    # Every old product is bought with its category neighbour twice: all have partners.
    for names in CATALOGUE.values():
        for first, second in zip(names, names[1:] + names[:1], strict=True):
            make_order(products[first], products[second])
            make_order(products[first], products[second])
    new = {name: ProductFactory(name=name, category=categories[cat]) for cat, name in NEW}
    return products, new


def test_a_run_stores_neighbours_for_products_without_partners_only(shop):
    _products, new = shop
    run = run_recompute(min_co_count=2)
    sources = set(ProductSimilarity.objects.filter(run=run).values_list("source_id", flat=True))
    assert sources == {product.pk for product in new.values()}
    assert run.parameters["similar_written"] == ProductSimilarity.objects.filter(run=run).count()
    top = (
        ProductSimilarity.objects.filter(run=run, source=new["八女煎茶 150g"])
        .order_by("-score")
        .first()
    )
    assert top is not None and top.target.category.name == "tea"


def test_the_storefront_shows_similar_products_after_staff_and_partners(shop):
    products, new = shop
    cold = new["コーヒー豆 グアテマラ 250g"]
    staff_pick = products["コーヒーフィルター 100枚"]
    ProductRelationFactory(source=cold, target=staff_pick)
    run_recompute(min_co_count=2)
    cache.invalidate()
    with CaptureQueriesContext(connection) as queries:
        recs = recommend_for_product(cold, limit=4)
    assert len(queries) <= 2
    assert recs[0].source == CURATED and recs[0].product == staff_pick
    similar = [rec for rec in recs if rec.source == SIMILAR]
    assert len(similar) == 3
    assert all(rec.product.category == cold.category for rec in similar)
    assert [rec.score for rec in similar] == sorted((rec.score for rec in similar), reverse=True)
    assert recs[1].product.name.startswith("コーヒー豆")
    assert {rec.reason for rec in similar} == {"Similar products"}
    cache.invalidate()
    with translation.override("ja"):
        assert recommend_for_product(cold, limit=4)[1].reason == "似た商品"


def test_partners_rank_before_similar_products(shop):
    products, new = shop
    cold = new["ストライプシャツ 白"]
    partner = products["まな板 ひのき"]
    for _ in range(2):
        make_order(cold, partner)
    run_recompute(min_co_count=2)
    cache.invalidate()
    recs = recommend_for_product(cold, limit=4)
    # Now it has a partner: no content neighbours are stored for it.
    assert recs[0].source == BOUGHT_TOGETHER and recs[0].product == partner
    assert SIMILAR not in {rec.source for rec in recs}


@override_settings(CROSSSELL={**CROSSSELL, "SIMILAR_PRODUCTS": False})
def test_switched_off_nothing_is_stored(shop):
    run = run_recompute(min_co_count=2)
    assert not ProductSimilarity.objects.filter(run=run).exists()
    assert run.parameters["similar_written"] == 0


def test_the_widget_renders_similar_products(shop):
    _products, new = shop
    cold = new["牛刀包丁 21cm"]
    run_recompute(min_co_count=2)
    cache.invalidate()
    from django.template import Context, Template

    html = Template("{% load crosssell %}{% also_recommended product limit=3 %}").render(
        Context({"product": cold})
    )
    assert "包丁" in html.replace(cold.name, "")
