"""Widgets on an Oscar shop: partners computed from orders placed through Oscar's checkout,
parent and child pages, Oscar's prices, the basket, and what they cost in queries."""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.test import override_settings
from django.utils import timezone

from django_crosssell import models as cs
from django_crosssell.adapter import get_adapter
from django_crosssell.contrib.oscar import orders
from django_crosssell.timeouts import overhead
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db

ADAPTER = "django_crosssell.contrib.oscar.adapter.OscarAdapter"


def render(source, **context):
    return Template("{% load crosssell %}" + source).render(Context(context))


def same_markup(html):
    """The markup without its CSRF tokens: each render masks the visitor's token anew."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)


def card_ids(html):
    return [int(pk) for pk in re.findall(r'data-crosssell-product="(\d+)"', html)]


@pytest.fixture
def sales(shop, customer):
    """Orders through Oscar's checkout: sizes of the T-shirt with jeans, jeans with socks,
    and a cancelled order of mugs and socks that must not count."""
    for size in (shop.small, shop.small, shop.medium, shop.large, shop.medium):
        builders.buy((size, 1), (shop.jeans, 1))
    builders.buy((shop.jeans, 1), (shop.socks, 2))
    builders.buy((shop.jeans, 1), (shop.socks, 1))
    builders.buy((shop.large, 1), (shop.mug, 1))
    for _ in range(3):
        cancelled = builders.buy((shop.mug, 1), (shop.socks, 1))
        cancelled.set_status("Being processed")
        cancelled.set_status("Cancelled")
    call_command("crosssell_recompute", verbosity=0)
    return shop


def partners(source):
    return list(
        cs.ProductAffinity.objects.filter(run__is_current=True, source=source)
        .order_by("-score")
        .values_list("target_id", flat=True)
    )


def test_order_lines_count_a_variant_as_its_parent_and_skip_cancelled_orders(sales):
    rows = list(orders.order_source(since=None, with_placed_at=False, chunk_size=3))
    products = {product for _order, product in rows}
    assert products == {sales.shirt.pk, sales.jeans.pk, sales.socks.pk, sales.mug.pk}
    assert len(rows) == 2 * 8  # the 3 cancelled orders are left out
    chunks = list(get_adapter().order_lines(since=None, with_placed_at=True, chunk_size=5))
    assert [len(chunk) for chunk in chunks] == [5, 5, 5, 1]
    assert all(len(row) == 3 for chunk in chunks for row in chunk)
    later = timezone.now() + timedelta(minutes=1)
    assert list(orders.order_source(since=later, with_placed_at=False, chunk_size=10)) == []


def test_partners_are_computed_between_the_products_customers_browse(sales):
    assert partners(sales.shirt) == [sales.jeans.pk]
    assert partners(sales.jeans)[0] == sales.shirt.pk
    assert not cs.ProductAffinity.objects.filter(source__in=[sales.small, sales.medium]).exists()
    assert partners(sales.mug) == []  # one real order with the L; the cancelled ones ignored


def test_parent_and_child_pages_show_the_parents_partners_at_oscars_prices(sales):
    request = builders.request()
    parent_page = render("{% also_recommended product %}", product=sales.shirt, request=request)
    child_page = render("{% also_recommended product %}", product=sales.medium, request=request)
    assert card_ids(parent_page)[0] == sales.jeans.pk
    assert card_ids(child_page) == card_ids(parent_page)
    sizes = {sales.shirt.pk, sales.small.pk, sales.medium.pk, sales.large.pk}
    assert not sizes & set(card_ids(parent_page))
    assert "£49.99" in parent_page
    jeans_page = render("{% also_recommended product %}", product=sales.jeans, request=request)
    assert card_ids(jeans_page)[0] == sales.shirt.pk  # the T-shirt, not "T-shirt (Size M)"
    assert "£14.00" in jeans_page  # Oscar's "from" price of the parent
    assert not {sales.small.pk, sales.medium.pk, sales.large.pk} & set(card_ids(jeans_page))


def test_a_staff_link_to_the_parent_is_kept(sales):
    cs.ProductRelation.objects.create(source=sales.mug, target=sales.shirt, kind="cross_sell")
    html = render("{% also_recommended product %}", product=sales.mug)
    assert card_ids(html)[0] == sales.shirt.pk


def test_the_basket_widget_never_offers_another_size(sales):
    basket = builders.basket((sales.small, 1))
    html = render("{% bought_together basket %}", basket=basket)
    assert card_ids(html)[0] == sales.jeans.pk
    assert not {sales.shirt.pk, sales.medium.pk, sales.large.pk} & set(card_ids(html))
    same = render("{% bought_together lines %}", lines=list(basket.all_lines()))
    assert card_ids(same) == card_ids(html)


def test_what_a_customer_bought_is_excluded_as_its_parent(sales, customer, rf):
    builders.buy((sales.medium, 1), user=customer)
    request = builders.request(customer)
    context = {"product": sales.jeans, "request": request, "user": customer}
    settings = {"ADAPTER": ADAPTER, "EXCLUDE_PURCHASED": True}
    with override_settings(CROSSSELL=settings):
        html = render("{% also_recommended product %}", **context)
        assert sales.shirt.pk not in card_ids(html)
        assert sales.socks.pk in card_ids(html)
        cancelled = builders.buy((sales.socks, 1), user=customer)
        cancelled.set_status("Cancelled")
        html = render("{% also_recommended product %}", **context)
        assert sales.socks.pk in card_ids(html)  # a cancelled purchase is not a purchase


def test_bestsellers_of_the_category_fill_in_as_parents(sales):
    belt = builders.product("Belt", "15.00", categories=(builders.category("Clothing"),))
    html = render("{% also_recommended product limit=8 %}", product=belt)
    found = card_ids(html)
    assert set(found) == {sales.shirt.pk, sales.jeans.pk, sales.socks.pk}
    assert "Popular in this category" in html


# --- queries -------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["shirt", "medium", "jeans"])
def test_a_product_widget_is_bounded_cold_and_free_warm(
    sales, page, django_assert_max_num_queries, django_assert_num_queries
):
    request = builders.request()
    product = builders.Product.objects.get(pk=getattr(sales, page).pk)
    tag = "{% also_recommended product limit=8 %}"
    # The source's categories (many-to-many), the candidates (one UNION), the products,
    # their stock records and images, and a parent's public children with theirs: at most
    # 7, whatever the number of cards.
    with django_assert_max_num_queries(7 + overhead()):  # + the bounded savepoint
        cold = render(tag, product=product, request=request)
    assert len(card_ids(cold)) >= 2
    with django_assert_num_queries(0):
        assert same_markup(render(tag, product=product, request=request)) == same_markup(cold)


def test_the_basket_widget_is_bounded_cold_and_free_warm(
    sales, django_assert_max_num_queries, django_assert_num_queries
):
    request = builders.request()
    basket = builders.basket((sales.small, 1), (sales.socks, 2))
    basket.all_lines()  # the basket page has read its lines already
    tag = "{% bought_together basket %}"
    # The candidates (one UNION), the products, their stock records and images, and a
    # parent's public children with theirs: at most 6, whatever the basket's size.
    with django_assert_max_num_queries(6 + overhead()):  # + the bounded savepoint
        cold = render(tag, basket=basket, request=request)
    assert card_ids(cold)
    with django_assert_num_queries(0):
        assert same_markup(render(tag, basket=basket, request=request)) == same_markup(cold)


def test_upgrade_prompts_use_oscars_prices(sales):
    ladder = cs.TierLadder.objects.create(name="Tops", slug="tops")
    cs.TierStep.objects.create(ladder=ladder, product=sales.socks, rank=1, label="Basic")
    cs.TierStep.objects.create(ladder=ladder, product=sales.mug, rank=2, label="Better")
    with override_settings(CROSSSELL={"ADAPTER": ADAPTER, "UPGRADE_MAX_PRICE_RATIO": 2}):
        html = render("{% upgrade_prompt product %}", product=sales.socks)
    assert card_ids(html) == [sales.mug.pk]
    assert "£8.25" in html and "£3.75" in html  # the price and the difference
