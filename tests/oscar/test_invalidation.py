"""A repriced or sold-out stock record shows in the next rendered widget; a sale that
changes nothing a customer sees keeps the cache warm."""

import re
from decimal import Decimal

import pytest
from django.template import Context, Template

from django_crosssell import cache
from django_crosssell import models as cs
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db

TAG = "{% load crosssell %}{% also_recommended product %}"


def render(product):
    return Template(TAG).render(Context({"product": product, "request": builders.request()}))


def card_ids(html):
    return [int(pk) for pk in re.findall(r'data-crosssell-product="(\d+)"', html)]


@pytest.fixture
def page(shop):
    """The jeans page recommends the T-shirt, the mug and the socks (staff links)."""
    for position, target in enumerate((shop.shirt, shop.mug, shop.socks)):
        cs.ProductRelation.objects.create(source=shop.jeans, target=target, position=position)
    html = render(shop.jeans)
    assert card_ids(html) == [shop.shirt.pk, shop.mug.pk, shop.socks.pk]
    assert "£8.25" in html
    return shop


def test_a_repriced_stock_record_shows_in_the_next_render(page):
    record = page.mug.stockrecords.get()
    record.price = Decimal("7.50")
    record.save()
    html = render(page.jeans)
    assert "£7.50" in html and "£8.25" not in html


def test_a_stock_record_sold_out_in_the_dashboard_disappears(page):
    record = page.mug.stockrecords.get()
    record.num_allocated = record.num_in_stock
    record.save()
    assert card_ids(render(page.jeans)) == [page.shirt.pk, page.socks.pk]
    record.num_in_stock += 5  # restocked
    record.save()
    assert card_ids(render(page.jeans)) == [page.shirt.pk, page.mug.pk, page.socks.pk]


def test_an_order_that_sells_the_last_unit_disappears_it(page, django_assert_num_queries):
    record = page.mug.stockrecords.get()
    record.num_in_stock = 3
    record.save()
    render(page.jeans)
    builders.buy((page.mug, 2))  # one left: nothing a customer sees changed
    with django_assert_num_queries(0):
        assert page.mug.pk in card_ids(render(page.jeans))
    order = builders.buy((page.mug, 1))  # Oscar's allocate() takes the last one
    assert card_ids(render(page.jeans)) == [page.shirt.pk, page.socks.pk]
    line = order.lines.get()
    line.stockrecord.cancel_allocation(1)  # the order is cancelled: back in stock
    assert page.mug.pk in card_ids(render(page.jeans))


def test_a_parent_disappears_when_its_last_size_sells_out(page):
    for size in (page.small, page.medium):
        record = size.stockrecords.get()
        record.num_allocated = record.num_in_stock
        record.save()
    assert page.shirt.pk in card_ids(render(page.jeans))  # L is left
    large = page.large.stockrecords.get()
    builders.buy((page.large, large.num_in_stock))
    assert page.shirt.pk not in card_ids(render(page.jeans))


def test_new_and_deleted_stock_records_invalidate(page):
    page.mug.stockrecords.get().delete()
    assert page.mug.pk not in card_ids(render(page.jeans))
    builders.stock(page.mug, "9.10")
    assert "£9.10" in render(page.jeans)


def test_product_edits_in_oscar_invalidate(page):
    page.mug.title = "Big mug"
    page.mug.save()
    assert "Big mug" in render(page.jeans)
    builders.ProductImage.objects.create(product=page.mug, original="images/mug.jpg")
    assert "/media/images/mug.jpg" in render(page.jeans)
    page.socks.is_public = False
    page.socks.save()
    assert page.socks.pk not in card_ids(render(page.jeans))
    books = builders.product_class("Books", track_stock=False)
    page.mug.product_class = books
    page.mug.save()
    page.mug.stockrecords.update(num_in_stock=0)  # bulk: no signal...
    cache.invalidate()  # ...so the host invalidates, as the README says
    assert page.mug.pk in card_ids(render(page.jeans))  # does not track stock
    books.track_stock = True
    books.save()  # the class decides availability: watched too
    assert page.mug.pk not in card_ids(render(page.jeans))


def test_a_save_that_changes_nothing_visible_keeps_the_cache(page):
    version = cache.current_version()
    record = page.mug.stockrecords.get()
    record.partner_sku = "MUG-2"
    record.save()
    record.allocate(1)  # still 9 left
    assert cache.current_version() == version
