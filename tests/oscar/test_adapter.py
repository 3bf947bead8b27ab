"""OscarAdapter: Oscar's prices, availability, variants, images and settings."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import override_settings
from oscar.apps.partner.strategy import UK, US

from django_crosssell.adapter import get_adapter
from django_crosssell.checks import check_settings
from django_crosssell.conf import app_settings
from django_crosssell.contrib.oscar.adapter import OscarAdapter
from django_crosssell.money import format_money
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db

ADAPTER = "django_crosssell.contrib.oscar.adapter.OscarAdapter"


def test_the_adapter_line_is_the_whole_configuration():
    assert type(get_adapter()) is OscarAdapter
    assert app_settings.ORDER_LINE_MODEL == "order.Line"
    assert app_settings.ORDER_LINE_FIELDS == {
        "order": "order_id",
        "product": "product_id",
        "quantity": "quantity",
        "placed_at": "order__date_placed",
        "customer": "order__user_id",
        "unit_price": "unit_price_incl_tax",
    }
    assert app_settings.CATEGORY_FIELD == "categories"
    assert app_settings.CURRENCY_DECIMALS == 2  # GBP, from Babel
    assert format_money(Decimal("1234.5")) == "£1,234.50"  # Oscar's currency filter
    assert [m for m in check_settings() if m.level >= 30] == []
    call_command("check", "--fail-level", "WARNING")


def test_the_hosts_own_keys_win_and_fields_merge_key_by_key():
    own = {
        "ADAPTER": ADAPTER,
        "CURRENCY_DECIMALS": 0,
        "ORDER_LINE_FIELDS": {"unit_price": "unit_price_excl_tax"},
    }
    with override_settings(CROSSSELL=own):
        assert app_settings.CURRENCY_DECIMALS == 0
        assert app_settings.ORDER_LINE_FIELDS["unit_price"] == "unit_price_excl_tax"
        assert app_settings.ORDER_LINE_FIELDS["placed_at"] == "order__date_placed"
    with override_settings(CROSSSELL={**own, "OSCAR": 1}, OSCAR_DEFAULT_CURRENCY="JPY"):
        assert app_settings.CATEGORY_FIELD == "categories"
    with override_settings(OSCAR_DEFAULT_CURRENCY="JPY", CROSSSELL={"ADAPTER": ADAPTER}):
        assert app_settings.CURRENCY_DECIMALS == 0


def test_a_bad_order_field_is_a_system_check_error():
    bad = {"ADAPTER": ADAPTER, "ORDER_LINE_FIELDS": {"placed_at": "order__placed"}}
    with override_settings(CROSSSELL=bad):
        assert [m.id for m in check_settings() if m.id.startswith("crosssell")] == []
        from django.core.checks import run_checks

        ids = [m.id for m in run_checks(tags=["crosssell"])]
    assert ids == ["crosssell.E005"]
    with override_settings(CROSSSELL={"ADAPTER": ADAPTER, "ORDER_FILTER": {"order__nope": 1}}):
        from django.core.checks import run_checks

        assert [m.id for m in run_checks(tags=["crosssell"])] == ["crosssell.E006"]


def oscars_own_price(product):
    """What Oscar's strategy says, asked the way Oscar's templates ask (no prefetching)."""
    fresh = builders.Product.objects.get(pk=product.pk)
    strategy = builders.Selector().strategy()
    if fresh.is_parent:
        return strategy.fetch_for_parent(fresh).price.incl_tax
    return strategy.fetch_for_product(fresh).price.incl_tax


def test_another_adapter_with_the_app_installed_is_a_warning():
    from django.core.checks import run_checks

    with override_settings(CROSSSELL={}):
        ids = [m.id for m in run_checks(tags=["crosssell"])]
    assert "crosssell_oscar.W001" in ids
    assert run_checks(tags=["crosssell"]) == []


def test_prices_come_from_the_strategy_in_bulk(shop, django_assert_num_queries):
    products = list(builders.Product.objects.filter(pk__in=[
        shop.shirt.pk, shop.small.pk, shop.jeans.pk, shop.mug.pk, shop.ebook.pk
    ]))  # fmt: skip
    # Classes and stock records of all; the parents' public children and their stock
    # records; the variants' parents with their classes: the same 6 queries for any
    # number of products.
    with django_assert_num_queries(6):
        prices = get_adapter().prices(products)
    assert prices == {
        shop.shirt.pk: oscars_own_price(shop.shirt),  # "from": its first child's
        shop.small.pk: Decimal("12.50"),
        shop.jeans.pk: Decimal("49.99"),
        shop.mug.pk: Decimal("8.25"),
        shop.ebook.pk: Decimal("5.00"),
    }
    assert oscars_own_price(shop.shirt) == Decimal("14.00")  # L, the newest child, is first
    assert all(prices[p.pk] == oscars_own_price(p) for p in products)
    with django_assert_num_queries(0):
        assert get_adapter().prices(products) == prices


def test_cards_cost_the_same_queries_for_any_number_of_products(shop, django_assert_num_queries):
    adapter = get_adapter()
    standalone = [builders.product(f"Extra {n}", "1.00") for n in range(6)]
    for products, queries in (([shop.jeans], 1), (standalone, 1), ([shop.shirt, *standalone], 3)):
        loaded = list(adapter.products().filter(pk__in=[p.pk for p in products]))
        # Stock records (+ the parents' public children and their stock records); classes
        # and images came with the products.
        with django_assert_num_queries(queries):
            prices = adapter.prices(loaded)
            urls = [adapter.image_url(product) for product in loaded]
        assert set(prices) == {p.pk for p in products}
    assert urls.count("") == len(urls)
    assert adapter.image_url(shop.jeans) == "/media/images/products/jeans.jpg"


def test_prices_include_tax_when_the_strategy_knows_it(shop):
    request = builders.request()
    request.strategy = UK(request)  # 20% VAT
    assert get_adapter().prices([shop.jeans], request)[shop.jeans.pk] == Decimal("59.988")
    request.strategy = US(request)  # tax unknown until checkout: the price before tax
    assert get_adapter().prices([shop.jeans], request)[shop.jeans.pk] == Decimal("49.99")


def test_a_product_without_a_priced_stock_record_has_no_price(shop):
    bare = builders.product("Bare")
    unpriced = builders.product("Unpriced")
    builders.stock(unpriced, None)
    assert get_adapter().prices([bare, unpriced]) == {}


def available(*products):
    adapter = get_adapter()
    return set(adapter.available(adapter.products()).filter(pk__in=[p.pk for p in products]))


def test_availability_is_oscars_stock_required_rule(shop):
    everything = (shop.shirt, shop.small, shop.jeans, shop.mug, shop.socks, shop.ebook)
    assert available(*everything) == set(everything)
    # num_allocated NULL until the first sale; net stock = in stock - allocated.
    record = shop.mug.stockrecords.get()
    record.num_allocated = record.num_in_stock
    record.save()
    assert shop.mug not in available(shop.mug)
    record.num_allocated = record.num_in_stock - 1
    record.save()
    assert shop.mug in available(shop.mug)
    # A product class that does not track stock is available without any stock.
    assert shop.ebook.stockrecords.get().num_in_stock is None
    assert shop.ebook in available(shop.ebook)
    # Not public, or no price: not available.
    shop.socks.is_public = False
    shop.socks.save()
    assert shop.socks not in available(shop.socks)
    unpriced = builders.product("Unpriced")
    builders.stock(unpriced, None)
    assert available(unpriced) == set()


def test_a_parent_is_available_while_a_public_child_is(shop):
    for size in (shop.small, shop.medium):
        size.stockrecords.update(num_allocated=10)
    assert shop.shirt in available(shop.shirt)  # L is left
    shop.large.is_public = False
    shop.large.save()
    assert available(shop.shirt) == set()
    shop.large.is_public = True
    shop.large.save()
    shop.large.stockrecords.update(num_in_stock=0)
    assert available(shop.shirt) == set()


def test_variants_are_their_parent_without_a_query(shop, django_assert_num_queries):
    adapter = get_adapter()
    with django_assert_num_queries(0):
        found = adapter.canonical_ids([shop.small, shop.jeans, shop.shirt])
    assert found == {shop.small.pk: shop.shirt.pk, shop.jeans.pk: shop.jeans.pk,
                     shop.shirt.pk: shop.shirt.pk}  # fmt: skip
    with django_assert_num_queries(1):
        assert adapter.canonical_ids([shop.large.pk, shop.mug.pk]) == {
            shop.large.pk: shop.shirt.pk,
            shop.mug.pk: shop.mug.pk,
        }
    assert adapter.canonical(shop.medium) == shop.shirt


def test_images_urls_and_basket_add_urls(shop):
    adapter = get_adapter()
    assert adapter.image_url(shop.jeans) == "/media/images/products/jeans.jpg"
    assert adapter.image_url(shop.mug) == ""  # Oscar's placeholder is not shown
    # A child without images shows its parent's, as Oscar's primary_image() does.
    builders.ProductImage.objects.create(product=shop.shirt, original="images/shirt.jpg")
    assert adapter.image_url(builders.Product.objects.get(pk=shop.small.pk)) == (
        "/media/images/shirt.jpg"
    )
    assert adapter.url(shop.jeans) == f"/catalogue/jeans_{shop.jeans.pk}/"
    assert adapter.add_to_cart_url(shop.jeans) == f"/basket/add/{shop.jeans.pk}/"
    assert adapter.add_to_cart_url(shop.small) == f"/basket/add/{shop.small.pk}/"
    assert adapter.add_to_cart_url(shop.shirt) == ""  # a size must be chosen first


def test_categories_are_oscars_many_to_many(shop):
    found = get_adapter().category_ids([shop.shirt, shop.jeans, shop.mug])
    assert found[shop.shirt.pk] == found[shop.jeans.pk] != found[shop.mug.pk]
