"""Reading the host's order lines into numpy arrays for the affinity engine.

The lines come from the adapter's ``order_lines()`` (by default
:func:`.sources.iter_line_chunks`: the order-line model or the ``ORDER_SOURCE`` callable), a
chunk at a time, with variants replaced by their parent (``canonical_ids``); each chunk goes
straight into numpy arrays, so ten million lines never exist as Python objects at once. Lines
whose product is not in the catalogue (deleted, or unknown to a custom source) are dropped
here.

Imports numpy and pandas: only the recompute and ``crosssell_evaluate`` use it, never the
web path.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.utils import timezone

from .adapter import CrossSellAdapter, get_adapter
from .compat import batched
from .conf import app_settings, get_order_line_model, get_product_model
from .orm import resolve_field_path
from .sources import order_line_queryset

#: ``progress(lines_read_so_far)``
ReadProgress = Callable[[int], None]


@dataclass
class OrderLines:
    """Order lines as parallel arrays (``placed_at`` only when it was asked for)."""

    orders: np.ndarray
    products: np.ndarray
    placed_at: np.ndarray | None
    lines_read: int  # before lines of missing products were dropped
    lines_dropped: int = 0

    def __len__(self) -> int:
        return len(self.orders)


def _column(values: tuple[Any, ...]) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        return array
    return np.asarray(values, dtype=object)


def read_order_lines(
    *,
    lookback_days: float | None = None,
    with_placed_at: bool = False,
    chunk_size: int | None = None,
    now: datetime | None = None,
    progress: ReadProgress | None = None,
) -> OrderLines:
    """Read every counting order line into arrays, dropping products not in the catalogue."""
    now = now or timezone.now()
    since = now - timedelta(days=lookback_days) if lookback_days is not None else None
    order_parts: list[np.ndarray] = []
    product_parts: list[np.ndarray] = []
    placed_parts: list[np.ndarray] = []
    total = 0
    adapter = get_adapter()
    copied = None
    if not with_placed_at and type(adapter).order_lines is CrossSellAdapter.order_lines:
        copied = copy_integer_lines(since=since, progress=progress)
    if copied is not None and len(copied[0]):
        order_parts.append(copied[0])
        product_parts.append(copied[1])
        total = len(copied[0])
    chunks = (
        ()
        if copied is not None
        else adapter.order_lines(
            since=since,
            with_placed_at=with_placed_at,
            chunk_size=chunk_size or int(app_settings.CHUNK_SIZE),
        )
    )
    for chunk in chunks:
        if not chunk:
            continue
        pair = None
        if not with_placed_at:
            try:  # integer keys: straight from the tuples into one array, no Python lists
                flat = chain.from_iterable(chunk)
                pair = np.fromiter(flat, dtype=np.int64, count=2 * len(chunk)).reshape(-1, 2)
            except (TypeError, ValueError, OverflowError):
                pair = None
        if pair is not None:
            order_parts.append(pair[:, 0])
            product_parts.append(pair[:, 1])
        else:
            columns = list(zip(*chunk, strict=True))
            order_parts.append(_column(columns[0]))
            product_parts.append(_column(columns[1]))
            if with_placed_at:
                placed_parts.append(np.asarray(columns[2], dtype=object))
        total += len(chunk)
        if progress is not None:
            progress(total)
    if not order_parts:
        empty = np.zeros(0, dtype=np.int64)
        return OrderLines(empty, empty, np.zeros(0, object) if with_placed_at else None, 0)
    orders = _concat(order_parts)
    products = _concat(product_parts)
    placed_at = np.concatenate(placed_parts) if with_placed_at else None
    products = _canonical(adapter, products)
    keep = _in_catalogue(products)
    dropped = int(len(keep) - keep.sum())
    if dropped:
        orders, products = orders[keep], products[keep]
        if placed_at is not None:
            placed_at = placed_at[keep]
    return OrderLines(orders, products, placed_at, lines_read=total, lines_dropped=dropped)


#: Byte widths of the integer fields the binary COPY reader parses (by internal type).
_INTEGER_WIDTHS = {
    "SmallAutoField": 2,
    "SmallIntegerField": 2,
    "PositiveSmallIntegerField": 2,
    "AutoField": 4,
    "IntegerField": 4,
    "PositiveIntegerField": 4,
    "BigAutoField": 8,
    "BigIntegerField": 8,
    "PositiveBigIntegerField": 8,
}
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
#: Bytes of COPY data parsed at a time (whole rows; the rest waits for the next block).
_COPY_PARSE_BYTES = 1 << 22


def copy_integer_lines(
    *, since: datetime | None = None, progress: ReadProgress | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(orders, products)`` of the order-line model straight from a binary COPY.

    Why: the query's rows as Python tuples (psycopg parsing text, a tuple per line, then
    numpy reading the tuples) took a read of a million lines to about 1.6 times what
    PostgreSQL needs to send them (``COPY ... TO STDOUT (FORMAT BINARY)``, the benchmark's
    read floor). Two integer columns in COPY's binary format are fixed-width records
    that numpy reads in place, so the read costs what sending costs.

    Only for the default source (``ORDER_LINE_MODEL``, no ``ORDER_SOURCE``) on PostgreSQL
    with psycopg 3, when both columns are integers; None otherwise, and when a value is
    NULL: the caller then reads through :func:`.sources.iter_line_chunks`. The same
    query (the same SQL the ORM builds), so the same lines.
    """
    if app_settings.ORDER_SOURCE:
        return None
    fields = app_settings.ORDER_LINE_FIELDS
    queryset = order_line_queryset(since=since).values_list(fields["order"], fields["product"])
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        import psycopg
    except ImportError:  # psycopg2: the ORM path
        return None
    widths = [_integer_width(get_order_line_model(), fields[key]) for key in ("order", "product")]
    if None in widths:
        return None
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as wrapper:
        raw = wrapper.cursor
        if not isinstance(raw, psycopg.Cursor):
            return None
        statement = psycopg.ClientCursor(raw.connection).mogrify(sql, params)
        copy_sql = f"COPY ({statement}) TO STDOUT (FORMAT BINARY)"
        # Logged like any query while Django debugs queries (tests count them).
        logged = getattr(wrapper, "debug_sql", None)
        with logged(copy_sql) if logged else nullcontext(), raw.copy(copy_sql) as copy:
            return _parse_copy(copy, widths[0], widths[1], progress)


def _integer_width(model: Any, path: str) -> int | None:
    """Bytes of the integer column ``path`` ends on (the key a relation stores); None if
    it is not an integer."""
    try:
        field = resolve_field_path(model, path)
    except FieldDoesNotExist:
        return None
    if field.is_relation:
        field = getattr(field, "target_field", None)
        if field is None:
            return None
    return _INTEGER_WIDTHS.get(field.get_internal_type())


def _parse_copy(
    blocks: Any, order_width: int, product_width: int, progress: ReadProgress | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The two integer columns of a binary COPY stream; None when a value is NULL."""
    record = np.dtype(
        [
            ("fields", ">i2"),
            ("order_width", ">i4"),
            ("order", f">i{order_width}"),
            ("product_width", ">i4"),
            ("product", f">i{product_width}"),
        ]
    )
    orders: list[np.ndarray] = []
    products: list[np.ndarray] = []
    pending = bytearray()
    header: int | None = None
    valid = True
    total = 0
    for block in blocks:
        pending += block
        if header is None:
            if len(pending) < 19:
                continue
            if bytes(pending[:11]) != _COPY_SIGNATURE:
                raise ValueError("unexpected COPY header")
            header = 19 + int.from_bytes(pending[15:19], "big")
            if len(pending) < header:
                header = None
                continue
            del pending[:header]
        if len(pending) < _COPY_PARSE_BYTES:
            continue
        rows = len(pending) // record.itemsize
        if valid:
            valid = _take_records(pending, rows, record, orders, products)
        del pending[: rows * record.itemsize]
        total += rows
        if progress is not None:
            progress(total)
    if header is None or bytes(pending[-2:]) != b"\xff\xff":
        raise ValueError("truncated COPY data")
    del pending[-2:]
    if len(pending) % record.itemsize:
        return None  # not the fixed-width records expected (a NULL)
    if valid:
        valid = _take_records(pending, len(pending) // record.itemsize, record, orders, products)
    if not valid:
        return None
    if not orders:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(orders), np.concatenate(products)


def _take_records(
    buffer: bytearray,
    rows: int,
    record: np.dtype,
    orders: list[np.ndarray],
    products: list[np.ndarray],
) -> bool:
    """Append ``rows`` records of ``buffer``; False when one is not two non-NULL values."""
    if not rows:
        return True
    parsed = np.frombuffer(buffer, dtype=record, count=rows)
    if (
        (parsed["fields"] != 2).any()
        or (parsed["order_width"] != record["order"].itemsize).any()
        or (parsed["product_width"] != record["product"].itemsize).any()
    ):
        return False
    orders.append(parsed["order"].astype(np.int64))
    products.append(parsed["product"].astype(np.int64))
    return True


def _canonical(adapter: CrossSellAdapter, products: np.ndarray) -> np.ndarray:
    """Variants replaced by the product customers browse (the adapter's ``canonical_ids``).

    Skipped for adapters without variants (the default maps every id to itself); otherwise
    one ``canonical_ids`` call per batch of distinct ids, and one vectorised mapping.
    """
    if type(adapter).canonical_ids is CrossSellAdapter.canonical_ids:
        return products
    unique = pd.unique(products)
    unique = unique[pd.notna(unique)].tolist()
    mapping: dict[Any, Any] = {}
    for ids in batched(unique, 5_000):
        mapping.update(adapter.canonical_ids(ids))
    if all(mapping.get(key, key) == key for key in unique):
        return products
    mapped = pd.Series(products).map(lambda key: mapping.get(key, key)).to_numpy()
    return mapped.astype(products.dtype) if products.dtype.kind in "iu" else mapped


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if all(part.dtype.kind in "iu" for part in parts):
        return np.concatenate(parts).astype(np.int64, copy=False)
    return np.concatenate([part.astype(object) for part in parts])


def _in_catalogue(products: np.ndarray) -> np.ndarray:
    """Mask of lines whose product still exists (a custom source may hold stale ids).

    Small catalogues are read whole (one cheap query); otherwise the ids seen are looked
    up in batches that respect the database's parameter limit.
    """
    unique = pd.unique(products)
    unique = unique[pd.notna(unique)]
    manager = get_product_model()._base_manager
    existing: list[Any] = []
    if manager.count() <= 4 * len(unique):
        existing = list(manager.values_list("pk", flat=True).order_by())
    else:
        limit = connections[manager.db].features.max_query_params or 5_000
        for ids in batched(unique.tolist(), min(limit, 5_000)):
            existing.extend(manager.filter(pk__in=ids).values_list("pk", flat=True).order_by())
    existing_set = set(existing)
    if all(value in existing_set for value in unique.tolist()):
        return np.asarray(pd.notna(products))
    return pd.Series(products).isin(existing_set).to_numpy()
