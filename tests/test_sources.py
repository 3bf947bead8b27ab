"""Reading the host's order lines: filter, window, deleted products, override, config checks.

``sources`` says where the lines come from (and checks its configuration), ``reader``
turns them into arrays, ``compat.fetch_chunks`` streams the query.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone

from django_crosssell import compat, reader, sources
from django_crosssell.errors import OrderSourceError
from tests.factories import OrderLineFactory, ProductFactory, make_order
from tests.testapp.models import Order, Product

BASE = {
    "ORDER_LINE_MODEL": "testapp.OrderLine",
    "ORDER_FILTER": {"order__status": "paid"},
}

#: Lines yielded by the dotted-path source below (set by the test using it).
CUSTOM_ROWS: list[tuple] = []


def custom_source(*, since, with_placed_at, chunk_size):
    assert chunk_size > 0
    return iter(CUSTOM_ROWS)


def line_pairs(lines):
    return sorted(zip(lines.orders.tolist(), lines.products.tolist(), strict=True), key=str)


@pytest.mark.django_db
def test_reads_paid_lines_in_the_window_as_arrays(django_assert_max_num_queries):
    a, b = ProductFactory.create_batch(2)
    paid = make_order(a, b)
    make_order(a, b, status=Order.Status.CANCELLED)
    old = make_order(a, placed_at=timezone.now() - timedelta(days=400))
    with django_assert_max_num_queries(3):  # the lines, then the catalogue (count + ids)
        lines = reader.read_order_lines(lookback_days=365, chunk_size=1)
    assert line_pairs(lines) == sorted([(paid.pk, a.pk), (paid.pk, b.pk)], key=str)
    assert lines.placed_at is None  # only fetched when decay needs it
    everything = reader.read_order_lines(lookback_days=None)
    assert (old.pk, a.pk) in line_pairs(everything)


@pytest.mark.django_db
def test_placed_at_is_read_when_asked():
    a = ProductFactory()
    order = make_order(a)
    lines = reader.read_order_lines(with_placed_at=True)
    assert lines.placed_at.tolist() == [order.placed_at]


@pytest.mark.django_db
def test_chunks_are_streamed_not_loaded_at_once():
    products = ProductFactory.create_batch(5)
    for _ in range(3):
        make_order(*products)
    seen = []
    lines = reader.read_order_lines(chunk_size=4, progress=seen.append)
    assert seen == [4, 8, 12, 15]
    assert len(lines) == 15


@pytest.mark.django_db
def test_deleted_products_are_dropped():
    a, b = ProductFactory.create_batch(2)
    make_order(a, b)
    b.delete()  # the line's FK is SET_NULL
    lines = reader.read_order_lines()
    assert lines.products.tolist() == [a.pk]


@pytest.mark.django_db
def test_products_missing_from_the_catalogue_are_dropped_from_a_custom_source():
    a = ProductFactory()
    gone = Product(pk=a.pk.__class__(int=12345), name="gone", sku="gone", price=1)
    CUSTOM_ROWS[:] = [(1, a.pk, None), (1, gone.pk, None), (2, a.pk, None)]
    with override_settings(CROSSSELL={**BASE, "ORDER_SOURCE": f"{__name__}.custom_source"}):
        lines = reader.read_order_lines()
    assert lines.products.tolist() == [a.pk, a.pk]
    assert lines.lines_read == 3
    assert lines.lines_dropped == 1


@pytest.mark.django_db
def test_custom_source_lines_outside_the_window_are_dropped():
    a = ProductFactory()
    now = timezone.now()
    CUSTOM_ROWS[:] = [(1, a.pk, now), (2, a.pk, now - timedelta(days=40))]
    with override_settings(CROSSSELL={**BASE, "ORDER_SOURCE": f"{__name__}.custom_source"}):
        lines = reader.read_order_lines(lookback_days=30, now=now)
    assert lines.orders.tolist() == [1]


@pytest.mark.django_db
@pytest.mark.parametrize("missing", [(3, None), (3,)], ids=["None", "two-tuple"])
@pytest.mark.parametrize(
    "options", [{"lookback_days": 30}, {"with_placed_at": True}], ids=["window", "decay"]
)
def test_a_custom_source_line_without_placed_at_is_an_error_not_dropped(missing, options):
    a = ProductFactory()
    now = timezone.now()
    order, *rest = missing
    CUSTOM_ROWS[:] = [(1, a.pk, now), (order, a.pk, *rest)]
    with (
        override_settings(CROSSSELL={**BASE, "ORDER_SOURCE": f"{__name__}.custom_source"}),
        pytest.raises(OrderSourceError) as raised,
    ):
        reader.read_order_lines(now=now, **options)
    message = str(raised.value)
    assert "CROSSSELL['ORDER_SOURCE'] yielded an order line without placed_at" in message
    assert "(order_id, product_id, placed_at)" in message
    assert "set LOOKBACK_DAYS and HALF_LIFE_DAYS to None" in message


@pytest.mark.django_db
def test_a_custom_source_needs_no_placed_at_without_window_and_decay():
    a = ProductFactory()
    CUSTOM_ROWS[:] = [(1, a.pk, None), (2, a.pk)]
    with override_settings(CROSSSELL={**BASE, "ORDER_SOURCE": f"{__name__}.custom_source"}):
        lines = reader.read_order_lines(lookback_days=None)
    assert lines.orders.tolist() == [1, 2]


@pytest.mark.django_db
def test_an_order_line_without_placed_at_is_an_error_under_decay():
    """A nullable time field: ``customer__last_login`` is empty for a guest's order."""
    a = ProductFactory()
    make_order(a)  # no customer, so no last_login
    fields = {"placed_at": "order__customer__last_login"}
    with (
        override_settings(CROSSSELL={**BASE, "ORDER_LINE_FIELDS": fields}),
        pytest.raises(OrderSourceError, match="has no placed_at") as raised,
    ):
        reader.read_order_lines(with_placed_at=True)
    assert "{'order__customer__last_login__isnull': False}" in str(raised.value)


# --- compat.fetch_chunks: the private fast path and the public fallback -----------------


@pytest.fixture
def thirteen_lines(db):
    products = ProductFactory.create_batch(4)
    for size in (4, 4, 3, 2):
        make_order(*products[:size])
    fields = ("order_id", "product_id", "order__placed_at", "unit_price")
    return sources.order_line_queryset().values_list(*fields).order_by("pk")


def as_tuples(chunks):
    return [[tuple(row) for row in chunk] for chunk in chunks]


def test_this_django_takes_the_fast_path(thirteen_lines):
    assert compat.supports_chunk_fetch(thirteen_lines.query.get_compiler(thirteen_lines.db))


@pytest.mark.parametrize("chunk_size", [1, 5, 13, 1000])
def test_the_public_fallback_gives_the_same_chunks(thirteen_lines, chunk_size):
    fast = list(compat.fetch_chunks(thirteen_lines, chunk_size))
    with mock.patch.object(compat, "supports_chunk_fetch", return_value=False):
        fallback = list(compat.fetch_chunks(thirteen_lines, chunk_size))
    assert as_tuples(fallback) == as_tuples(fast)
    assert [len(chunk) for chunk in fast] == [
        min(chunk_size, 13 - start) for start in range(0, 13, chunk_size)
    ]
    rows = [tuple(row) for chunk in fast for row in chunk]
    assert rows == [tuple(row) for row in thirteen_lines]  # converted like the ORM does
    assert isinstance(rows[0][1], uuid.UUID) and isinstance(rows[0][3], Decimal)


def test_the_reader_gives_the_same_arrays_through_the_fallback(thirteen_lines):
    fast = reader.read_order_lines(with_placed_at=True, chunk_size=5)
    with mock.patch.object(compat, "supports_chunk_fetch", return_value=False):
        fallback = reader.read_order_lines(with_placed_at=True, chunk_size=5)
    for name in ("orders", "products", "placed_at"):
        assert getattr(fallback, name).tolist() == getattr(fast, name).tolist()
    assert len(fast) == fast.lines_read == 13


def test_a_compiler_without_the_private_api_takes_the_fallback():
    class OldCompiler:
        select = None

        def execute_sql(self, result_type):  # no chunked_fetch / chunk_size
            raise AssertionError("not called")

        def get_converters(self, expressions):
            return {}

        def apply_converters(self, rows, converters):
            return rows

    assert not compat.supports_chunk_fetch(OldCompiler())
    del OldCompiler.apply_converters
    OldCompiler.execute_sql = lambda self, result_type, chunked_fetch, chunk_size: None
    assert not compat.supports_chunk_fetch(OldCompiler())


@pytest.mark.django_db
def test_no_orders_gives_empty_arrays():
    lines = reader.read_order_lines()
    assert len(lines) == 0
    assert lines.lines_read == 0


@pytest.mark.django_db
def test_lines_without_product_are_skipped_by_the_query():
    a = ProductFactory()
    order = make_order(a)
    OrderLineFactory(order=order, product=None, unit_price=1)
    assert reader.read_order_lines().products.tolist() == [a.pk]


def test_the_test_settings_are_valid():
    assert sources.check_source_configuration() == []


@pytest.mark.parametrize(
    ("crosssell", "fragment"),
    [
        ({"ORDER_LINE_FIELDS": {"product": "item_id"}}, "['product'] = 'item_id' does not resolve"),
        ({"ORDER_LINE_FIELDS": {"placed_at": "order__when"}}, "'order__when' does not resolve"),
        ({"ORDER_LINE_FIELDS": {"placed_at": "order__status"}}, "must be a date or datetime"),
        ({"ORDER_LINE_FIELDS": {"product": "order"}}, "not at the product model"),
        ({"ORDER_LINE_FIELDS": {"order": None}}, "['order'] is required"),
        ({"ORDER_LINE_FIELDS": {"placed_at": None}}, "'placed_at'] is required while"),
        ({"ORDER_FILTER": {"order__state": "paid"}}, "ORDER_FILTER'] is not valid"),
        ({"ORDER_LINE_MODEL": "testapp.Nope"}, "not an installed model"),
        ({"ORDER_SOURCE": "tests.nowhere.source"}, "cannot be imported"),
        ({"ORDER_SOURCE": "tests.test_sources.CUSTOM_ROWS"}, "is not callable"),
    ],
)
def test_bad_configuration_is_reported(crosssell, fragment):
    with override_settings(CROSSSELL={**BASE, **crosssell}):
        problems = sources.check_source_configuration()
    assert any(fragment in message for _setting, message in problems), problems


def test_no_order_model_means_affinity_is_off_not_an_error():
    with override_settings(CROSSSELL={}):
        assert sources.check_source_configuration() == []


def test_placed_at_may_be_absent_without_window_and_decay():
    crosssell = {**BASE, "ORDER_LINE_FIELDS": {"placed_at": None}, "LOOKBACK_DAYS": None}
    with override_settings(CROSSSELL=crosssell):
        assert sources.check_source_configuration() == []
