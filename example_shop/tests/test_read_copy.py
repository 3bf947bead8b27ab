"""The recompute's read through a binary COPY (integer keys: the example shop's models).

On PostgreSQL with psycopg 3 the order lines are read by a binary COPY of the same query
(``reader._copy_lines``); everywhere else, and whenever the bytes are not the expected
records, through the chunked fetch. Both must give the same arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import numpy as np
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from django_crosssell import compat, reader, sources
from django_crosssell.adapter import CrossSellAdapter
from django_crosssell.conf import app_settings
from example_shop.shop.crosssell import ShopAdapter
from example_shop.shop.models import Order, OrderLine, Product
from tests.services import require_postgresql

ON_POSTGRESQL = connection.vendor == "postgresql"


def read(**kwargs: Any) -> tuple[reader.OrderLines, list[Any]]:
    """The lines, and what each binary COPY attempt returned (None: it fell back)."""
    attempts: list[Any] = []
    original = reader._copy_lines

    def spy(*args: Any) -> Any:
        attempts.append(original(*args))
        return attempts[-1]

    with mock.patch.object(reader, "_copy_lines", spy):
        return reader.read_order_lines(**kwargs), attempts


def fetched(**kwargs: Any) -> reader.OrderLines:
    with mock.patch.object(reader, "_copy_lines", return_value=None):
        return reader.read_order_lines(**kwargs)


def assert_same(one: reader.OrderLines, other: reader.OrderLines) -> None:
    for name in ("orders", "products"):
        a, b = getattr(one, name), getattr(other, name)
        assert a.dtype == b.dtype
        assert a.tolist() == b.tolist()  # values and order
    assert (one.lines_read, one.lines_dropped) == (other.lines_read, other.lines_dropped)
    assert one.placed_at is None and other.placed_at is None


@pytest.fixture
def on_postgresql(db) -> None:
    """The binary COPY is PostgreSQL's (skipped on a laptop's SQLite, a failure on CI)."""
    require_postgresql()


@pytest.fixture
def shop(make_product) -> Iterator[dict[str, Any]]:
    """Paid orders in the window, one cancelled, one too old, a line of a deleted product."""
    products = [make_product() for _ in range(6)]
    orders = []
    for index in range(12):
        status = Order.Status.CANCELLED if index == 5 else Order.Status.PAID
        placed = timezone.now() - timedelta(days=400 if index == 7 else index)
        order = Order.objects.create(status=status, placed_at=placed)
        for product in products[index % 3 : index % 3 + 2 + index % 4]:
            OrderLine.objects.create(
                order=order, product=product, product_name=product.name, unit_price=1
            )
        orders.append(order)
    # A line whose product the catalogue no longer has (foreign keys are checked at commit,
    # and it is deleted before the test's end): the reader drops it, after the read.
    gone = OrderLine.objects.create(
        order=orders[0], product_id=products[-1].pk + 1000, product_name="gone", unit_price=1
    )
    yield {"products": products, "orders": orders}
    OrderLine.objects.filter(pk=gone.pk).delete()


@pytest.mark.parametrize("chunk_size", [1, 4, 20_000])
@pytest.mark.parametrize("lookback_days", [None, 365])
def test_the_copy_gives_the_arrays_of_the_fetch(on_postgresql, shop, chunk_size, lookback_days):
    now = timezone.now()
    seen: list[int] = []
    lines, attempts = read(
        lookback_days=lookback_days, chunk_size=chunk_size, now=now, progress=seen.append
    )
    assert len(attempts) == 1 and attempts[0] is not None  # the COPY was used
    assert_same(lines, fetched(lookback_days=lookback_days, chunk_size=chunk_size, now=now))
    assert lines.orders.dtype == np.int64
    assert lines.lines_dropped == 1
    assert shop["orders"][5].pk not in lines.orders.tolist()  # cancelled
    assert (shop["orders"][7].pk in lines.orders.tolist()) == (lookback_days is None)
    # Progress as the pieces arrive, ``chunk_size`` lines at a time.
    assert seen == sorted(seen) and seen[-1] == lines.lines_read
    if chunk_size == 4:
        assert seen[:2] == [4, 8]


def test_each_shard_of_a_sharded_read_is_copied_as_it_is_fetched(on_postgresql, shop):
    bounds = sources.shard_bounds(3)
    assert len(bounds) == 3
    total = 0
    for order_range in bounds:
        lines, attempts = read(order_range=order_range, chunk_size=3)
        assert attempts and attempts[0] is not None
        assert_same(lines, fetched(order_range=order_range, chunk_size=3))
        total += len(lines)
    assert total == len(fetched())


def test_no_lines_read_through_the_copy_are_empty_arrays(on_postgresql):
    lines, attempts = read()
    assert len(attempts) == 1 and [len(column) for column in attempts[0]] == [0, 0]
    assert_same(lines, fetched())
    assert lines.lines_read == 0


@pytest.mark.django_db
def test_sqlite_and_mysql_fetch():
    queryset = sources.line_values()
    assert (compat.binary_copy(queryset) is None) == (not ON_POSTGRESQL)


def test_psycopg2_fetches(on_postgresql, shop):
    with mock.patch("django.db.backends.postgresql.psycopg_any.is_psycopg3", False):
        lines, attempts = read()
    assert attempts == [None]
    assert_same(lines, fetched())


@pytest.mark.django_db
def test_lines_fetched_elsewhere_are_the_same(shop):
    """SQLite (and MySQL) fetch; on PostgreSQL the COPY's result is the fetch's."""
    lines, attempts = read(lookback_days=365)
    assert attempts == [None] if not ON_POSTGRESQL else attempts[0] is not None
    assert_same(lines, fetched(lookback_days=365))
    assert lines.lines_dropped == 1


@pytest.mark.django_db
def test_null_keys_fall_back_to_the_fetch(shop, django_user_model):
    """Orders keyed by their customer, who is NULL for most: a row with a NULL is shorter."""
    customer = django_user_model.objects.create(username="someone")
    Order.objects.filter(pk=shop["orders"][3].pk).update(customer=customer)
    fields = {**app_settings.ORDER_LINE_FIELDS, "order": "order__customer"}
    with override_settings(CROSSSELL={**settings.CROSSSELL, "ORDER_LINE_FIELDS": fields}):
        lines, attempts = read(chunk_size=4)
        expected = fetched(chunk_size=4)
    assert attempts == [None]
    assert lines.orders.dtype == object and None in lines.orders.tolist()
    assert lines.orders.tolist() == expected.orders.tolist()
    assert lines.products.tolist() == expected.products.tolist()


@pytest.mark.django_db
def test_times_are_fetched(shop):
    """Decay's weighted sums depend on the order of the lines, which the COPY's plan changes."""
    lines, attempts = read(with_placed_at=True)
    assert attempts == []
    assert lines.placed_at.dtype == object and len(lines.placed_at) == len(lines)


class OwnLines(ShopAdapter):
    def order_lines(self, *, since, with_placed_at, chunk_size):
        return CrossSellAdapter.order_lines(
            self, since=since, with_placed_at=with_placed_at, chunk_size=chunk_size
        )


def own_source(*, since, with_placed_at, chunk_size):
    return iter(OrderLine.objects.values_list("order_id", "product_id").order_by("pk"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "crosssell",
    [
        {"ADAPTER": f"{__name__}.OwnLines"},
        {"ORDER_SOURCE": f"{__name__}.own_source", "LOOKBACK_DAYS": None},
    ],
)
def test_an_adapters_or_a_sources_own_lines_are_not_copied(shop, crosssell):
    with override_settings(CROSSSELL={**settings.CROSSSELL, **crosssell}):
        lines, attempts = read()
        expected = fetched()
    assert attempts == []
    assert_same(lines, expected)
    assert lines.lines_read > 0


@pytest.mark.parametrize(
    "problem",
    [
        {"COPY_WIDTHS": {"bigint": 4, "integer": 8}},  # records of another size
        {"COPY_SIGNATURE": b"PGCOPY\n\xff\r\n\x01"},
    ],
)
def test_a_copy_that_does_not_parse_falls_back_inside_a_transaction(
    on_postgresql, shop, problem, caplog
):
    expected = fetched(chunk_size=4)
    with transaction.atomic():
        with mock.patch.multiple(reader, **problem):
            lines, attempts = read(chunk_size=4)
        assert attempts == [None]
        assert_same(lines, expected)
        assert Product.objects.count() == 6  # the transaction is still usable
    assert "binary COPY of the order lines not used" in caplog.text


def test_a_row_count_that_does_not_match_falls_back(on_postgresql, shop):
    parser = reader._CopyParser

    class Short(parser):
        def finish(self, rowcount):
            return super().finish(rowcount + 1)

    with mock.patch.object(reader, "_CopyParser", Short):
        lines, attempts = read()
    assert attempts == [None]
    assert_same(lines, fetched())


def copied_bytes(pieces: Any) -> tuple[bytes, int]:
    data = bytearray()
    while True:
        try:
            data += next(pieces)
        except StopIteration as stop:
            return bytes(data), stop.value


COPY_IDS = "COPY (SELECT id FROM shop_product ORDER BY id) TO STDOUT (FORMAT BINARY)"


def test_libpq_and_the_cursor_copy_give_the_same_bytes(on_postgresql, shop):
    alias = Product.objects.db
    pieces = list(compat.copy_out(alias, COPY_IDS, 30))
    assert all(len(piece) >= 30 for piece in pieces[:-1]) and len(pieces) > 1
    fast, rows = copied_bytes(compat.copy_out(alias, COPY_IDS, 30))
    # A psycopg without the libpq calls reads through cursor.copy().
    with mock.patch.object(compat, "LIBPQ_CALLS", ("no_such_call",)):
        slow, slow_rows = copied_bytes(compat.copy_out(alias, COPY_IDS, 30))
    assert fast == slow and rows == slow_rows == 6
    assert fast.startswith(reader.COPY_SIGNATURE) and fast.endswith(b"\xff\xff")


def test_a_server_error_in_the_copy_is_djangos_and_the_connection_stays_usable(on_postgresql, shop):
    from django.db import DatabaseError

    failing = "COPY (SELECT 1 / (id - %d) FROM shop_product) TO STDOUT (FORMAT BINARY)"
    with pytest.raises(DatabaseError, match="division by zero"), transaction.atomic():
        copied_bytes(compat.copy_out("default", failing % shop["products"][3].pk, 8))
    with pytest.raises(DatabaseError, match="syntax"), transaction.atomic():
        copied_bytes(compat.copy_out("default", "COPY (SELEC 1) TO STDOUT", 8))
    assert Product.objects.count() == 6


def test_a_copy_left_early_is_read_to_its_end(on_postgresql, shop):
    with transaction.atomic():
        pieces = compat.copy_out("default", COPY_IDS, 8)
        next(pieces)
        pieces.close()
        assert Product.objects.count() == 6


def test_work_mem_is_set_for_the_copy_only(on_postgresql, shop):
    def current() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW work_mem")
            return cursor.fetchone()[0]

    before = current()
    seen = []
    original = compat.copy_out

    def spy(*args):
        seen.append(current())
        return original(*args)

    with mock.patch.object(reader, "copy_out", spy):
        lines = reader.read_order_lines(chunk_size=4)
        with override_settings(CROSSSELL={**settings.CROSSSELL, "READ_WORK_MEM": None}):
            assert_same(reader.read_order_lines(chunk_size=4), lines)
    assert seen == ["64MB", before] and before != "64MB"
    assert current() == before
    assert_same(lines, fetched(chunk_size=4))


def test_work_mem_is_put_back_by_the_rollback_of_a_failed_read(on_postgresql, shop):
    from django.db import DatabaseError

    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        before = cursor.fetchone()[0]
    with (
        pytest.raises(DatabaseError, match="division by zero"),
        transaction.atomic(),
        compat.work_mem("default", "32MB"),
    ):
        list(compat.copy_out("default", "COPY (SELECT 1 / 0) TO STDOUT", 8))
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == before
