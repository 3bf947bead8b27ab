"""The host adapter: the default one reads the settings, a custom one replaces them whole."""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import override_settings

from django_crosssell import models as cs
from django_crosssell.adapter import CartLine, CrossSellAdapter, get_adapter
from django_crosssell.checks import check_settings
from django_crosssell.products import InvalidProductKey, product_key
from django_crosssell.recommend import recommend_for_cart, recommend_for_product
from django_crosssell.timeouts import overhead
from tests.factories import CategoryFactory, ProductFactory, make_order
from tests.settings import CROSSSELL
from tests.testapp.models import StockRecord

pytestmark = pytest.mark.django_db

CUSTOM = {**CROSSSELL, "ADAPTER": "tests.adapters.StockRecordAdapter", "CATEGORY_FIELD": None}


def render(source: str, **context) -> str:
    return Template("{% load crosssell %}" + source).render(Context(context))


def card_ids(html: str) -> list[str]:
    return re.findall(r'data-crosssell-product="([^"]+)"', html)


def current_run(*pairs):
    run = cs.AffinityRun.objects.create(status="succeeded", is_current=True)
    for source, target, score in pairs:
        cs.ProductAffinity.objects.create(
            run=run, source=source, target=target, co_count=3, support=0.1, confidence=score,
            lift=1.5, score=score,
        )  # fmt: skip
    return run


# --- the default adapter ---------------------------------------------------------------------


def test_default_adapter_prices_from_the_instances_without_queries(django_assert_num_queries):
    products = [ProductFactory(price=Decimal("6500.50")), ProductFactory(price=Decimal("10"))]
    with django_assert_num_queries(0):
        prices = get_adapter().prices(products)
    assert prices == {products[0].pk: Decimal("6500.50"), products[1].pk: Decimal("10")}


def test_many_to_many_category_ids_cost_one_query(django_assert_num_queries):
    red, blue = CategoryFactory(name="Red"), CategoryFactory(name="Blue")
    a, b, c = ProductFactory(), ProductFactory(), ProductFactory()
    a.tags.set([red, blue])
    b.tags.set([blue])
    tags = override_settings(CROSSSELL={**CROSSSELL, "CATEGORY_FIELD": "tags"})
    with tags, django_assert_num_queries(1):
        found = get_adapter().category_ids([a, b, c])
    assert sorted(found[a.pk]) == sorted([red.pk, blue.pk])
    assert found[b.pk] == (blue.pk,)
    assert found[c.pk] == ()


def test_a_reverse_relation_is_no_price_column_and_no_category_field():
    reverse = {**CROSSSELL, "PRICE_FIELD": "children", "CATEGORY_FIELD": "children"}
    with override_settings(CROSSSELL=reverse):
        assert get_adapter().price_column() is None  # prices then come from prices()
        with pytest.raises(ImproperlyConfigured, match="reverse relation"):
            get_adapter().category_field()


def test_a_many_to_many_category_field_fills_from_shared_categories():
    """Bestsellers of the source's tags: never a 500 or an empty widget."""
    tea, kitchen = CategoryFactory(name="Tea"), CategoryFactory(name="Kitchen")
    source, same, other = ProductFactory(), ProductFactory(), ProductFactory()
    source.tags.set([tea])
    same.tags.set([tea, kitchen])
    other.tags.set([kitchen])
    make_order(same)
    make_order(other)
    make_order(other)
    with override_settings(CROSSSELL={**CROSSSELL, "CATEGORY_FIELD": "tags"}):
        assert [r.product for r in recommend_for_product(source)] == [same]
        assert [r.product for r in recommend_for_product(source.pk)] == [same]
        html = render("{% also_recommended product %}", product=source)
    assert card_ids(html) == [str(same.pk)]
    assert "Popular in this category" in html


@pytest.mark.parametrize(
    "cart",
    [
        "tuples",
        "objects",
        "object_with_lines",
        "object_with_all_lines",
    ],
)
def test_cart_lines_read_every_shape_of_cart(cart):
    product = ProductFactory()
    line = SimpleNamespace(product=product, quantity=2, unit_price=Decimal("100"))
    shapes = {
        "tuples": [(product, 2, Decimal("100"))],
        "objects": [line],
        "object_with_lines": SimpleNamespace(lines=[line]),
        "object_with_all_lines": SimpleNamespace(all_lines=lambda: [line]),
    }
    lines = get_adapter().cart_lines(shapes[cart])
    assert lines == [CartLine(product, 2, Decimal("100"))]
    assert get_adapter().cart_product_ids(shapes[cart]) == [product.pk]


def test_cart_lines_refuse_what_is_not_a_cart():
    with pytest.raises(ValueError, match="cart"):
        get_adapter().cart_lines(None)
    with pytest.raises(ValueError, match="cart"):
        get_adapter().cart_lines("abc")


# --- one key parser ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [True, False, "１", 1.5, "x", "", None, object()])
def test_one_product_key_parser_refuses_the_same_values_everywhere(bad, client):
    ProductFactory()
    with pytest.raises(InvalidProductKey):
        product_key(bad)
    with pytest.raises(ValueError):
        recommend_for_product(bad)
    as_json = bad if bad is None or isinstance(bad, bool | int | float | str) else str(bad)
    response = client.post(
        "/api/crosssell/cart/recommendations/",
        {"product_ids": [as_json]},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content


def test_the_parser_accepts_keys_as_instances_strings_and_uuids():
    product = ProductFactory()
    assert product_key(product) == product.pk
    assert product_key(str(product.pk)) == product.pk
    assert product_key(product.pk) == product.pk


# --- a custom adapter: prices and stock elsewhere, variants ------------------------------------


@pytest.fixture
def stocked():
    """A T-shirt with two sizes, jeans, a mug; prices and stock in stock records."""
    shirt = ProductFactory(name="T-shirt", price=Decimal("1"))
    small = ProductFactory(name="T-shirt S", parent=shirt, price=Decimal("1"))
    medium = ProductFactory(name="T-shirt M", parent=shirt, price=Decimal("1"))
    jeans = ProductFactory(name="Jeans", price=Decimal("1"))
    mug = ProductFactory(name="Mug", price=Decimal("1"))
    StockRecord.objects.create(product=small, price=Decimal("2500"), num_in_stock=5)
    StockRecord.objects.create(product=medium, price=Decimal("2500"), num_in_stock=5)
    StockRecord.objects.create(product=jeans, price=Decimal("6500.50"), num_in_stock=3)
    StockRecord.objects.create(product=mug, price=Decimal("1200"), num_in_stock=2)
    current_run((shirt, jeans, 0.6), (shirt, mug, 0.4), (jeans, shirt, 0.6))
    return SimpleNamespace(shirt=shirt, small=small, medium=medium, jeans=jeans, mug=mug)


@override_settings(CROSSSELL=CUSTOM)
def test_custom_adapter_prices_reach_the_cards_in_bulk(stocked, django_assert_max_num_queries):
    # candidates, products, prices: the price band's call (two queries here: the source is a
    # parent, priced from its variants), then the cards' call
    with django_assert_max_num_queries(5 + overhead()):
        html = render("{% also_recommended product %}", product=stocked.shirt)
    assert card_ids(html) == [str(stocked.jeans.pk), str(stocked.mug.pk)]
    assert "6,501" in html and "1,200" in html
    with django_assert_max_num_queries(0):
        assert render("{% also_recommended product %}", product=stocked.shirt) == html


@override_settings(CROSSSELL=CUSTOM)
def test_a_variant_gets_its_parents_recommendations(stocked):
    assert recommend_for_product(stocked.small) == recommend_for_product(stocked.shirt)
    html = render("{% also_recommended product %}", product=stocked.medium)
    assert card_ids(html) == [str(stocked.jeans.pk), str(stocked.mug.pk)]


@override_settings(CROSSSELL=CUSTOM)
def test_a_variant_in_the_cart_counts_as_its_parent(stocked):
    recs = recommend_for_cart([stocked.small])
    assert [r.product for r in recs] == [stocked.jeans, stocked.mug]
    # The jeans' partner is the T-shirt, already in the cart as a size: not offered again.
    assert recommend_for_cart([stocked.small, stocked.jeans])[0].product == stocked.mug


@override_settings(CROSSSELL=CUSTOM)
def test_sold_out_and_repriced_stock_records_show_in_the_next_render(stocked):
    first = render("{% also_recommended product %}", product=stocked.shirt)
    assert "6,501" in first
    record = StockRecord.objects.get(product=stocked.jeans)
    record.price = Decimal("5900")
    record.save()
    repriced = render("{% also_recommended product %}", product=stocked.shirt)
    assert "5,900" in repriced and "6,501" not in repriced
    record.num_allocated = record.num_in_stock
    record.save()
    sold_out = render("{% also_recommended product %}", product=stocked.shirt)
    assert card_ids(sold_out) == [str(stocked.mug.pk)]


@override_settings(CROSSSELL=CUSTOM)
def test_tier_prompts_use_the_adapters_prices(stocked):
    ladder = cs.TierLadder.objects.create(name="Bottoms", slug="bottoms")
    cs.TierStep.objects.create(ladder=ladder, product=stocked.mug, rank=1)
    cs.TierStep.objects.create(ladder=ladder, product=stocked.jeans, rank=2)
    html = render("{% downgrade_offer product %}", product=stocked.jeans)
    assert card_ids(html) == [str(stocked.mug.pk)]
    assert "5,301" in html  # 6,500.50 - 1,200 rounded to yen


# --- checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["tests.adapters.Missing", "tests.adapters.BrokenAdapter"])
def test_a_bad_adapter_is_a_system_check_error(path):
    with override_settings(CROSSSELL={**CROSSSELL, "ADAPTER": path}):
        messages = check_settings()
    assert [m.id for m in messages] == ["crosssell.E017"]
    assert "CrossSellAdapter" in messages[0].hint


def test_settings_the_adapter_does_not_read_are_not_checked():
    with override_settings(CROSSSELL={**CUSTOM, "PRICE_FIELD": "no_such_field"}):
        assert check_settings() == []
    with override_settings(CROSSSELL={**CROSSSELL, "PRICE_FIELD": "no_such_field"}):
        assert [m.id for m in check_settings()] == ["crosssell.E007"]


def test_the_default_adapter_is_used_without_the_setting():
    assert type(get_adapter()) is CrossSellAdapter
    with override_settings(CROSSSELL=CUSTOM):
        assert type(get_adapter()).__name__ == "StockRecordAdapter"
