"""Reading the host's order lines into numpy arrays for the affinity engine.

The lines come from the adapter's ``order_lines()`` (by default
:func:`.sources.iter_line_chunks`: the order-line model or the ``ORDER_SOURCE`` callable), a
chunk at a time, with variants replaced by their parent (``canonical_ids``); each chunk goes
straight into numpy arrays, so ten million lines never exist as Python objects at once. Lines
whose product is not in the catalogue (deleted, or unknown to a custom source) are dropped
here.

On PostgreSQL with psycopg 3, lines from the order-line model are read by a binary COPY of
the same query instead (:func:`_copy_lines`): its rows of integer keys are records of one
fixed size, which numpy reads straight into arrays as the bytes arrive, with no Python
object per value. Anything else (UUID or text keys, NULLs, the order time, an
``ORDER_SOURCE``, an adapter's own ``order_lines()``, another database or driver) reads
through the chunks, with the same result. The COPY runs with ``READ_WORK_MEM``: PostgreSQL
plans it as a hash join, which with the server's default 4MB spills a 200k-order shop to disk
in two batches and hands the lines over out of order (the cursor's merge join hands them
over sorted by order), both of which cost time here and in the engine.

The order time (``with_placed_at``, time decay) is fetched even from the model: the COPY's
plan returns the lines in another order than the cursor's, and decay's weighted sums then
add in another order (same lines and times, results apart in the last bits), although
reading the times this way took 0.5 s instead of 4.6 s at a million lines.

Imports numpy and pandas: only the recompute and ``crosssell_evaluate`` use it, never the
web path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from django.db import connections
from django.utils import timezone

from .adapter import CrossSellAdapter, get_adapter
from .compat import batched, binary_copy, copy_out, work_mem
from .conf import app_settings, get_product_model
from .sources import OrderRange, iter_line_chunks, line_values, reads_line_model

logger = logging.getLogger("django_crosssell")

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
    order_range: OrderRange | None = None,
) -> OrderLines:
    """Read every counting order line into arrays, dropping products not in the catalogue.

    ``order_range`` reads one shard of the orders (a sharded read on Dask,
    :mod:`.distributed`) with the same query, straight from the order-line model: a
    sharded read needs the adapter's default ``order_lines()`` (the system checks say so).
    """
    now = now or timezone.now()
    since = now - timedelta(days=lookback_days) if lookback_days is not None else None
    order_parts: list[np.ndarray] = []
    product_parts: list[np.ndarray] = []
    placed_parts: list[np.ndarray] = []
    total = 0
    adapter = get_adapter()
    size = chunk_size or int(app_settings.CHUNK_SIZE)
    copied = None
    if (
        not with_placed_at
        and reads_line_model()
        and (order_range is not None or type(adapter).order_lines is CrossSellAdapter.order_lines)
    ):
        copied = _copy_lines(line_values(since=since, order_range=order_range), size, progress)
    chunks: Iterable[list[Any]]
    if copied is not None:
        chunks = ()
        total = len(copied[0])
        if total:
            order_parts, product_parts = [copied[0]], [copied[1]]
    elif order_range is None:
        chunks = adapter.order_lines(since=since, with_placed_at=with_placed_at, chunk_size=size)
    else:
        chunks = iter_line_chunks(
            since=since, with_placed_at=with_placed_at, chunk_size=size, order_range=order_range
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


#: Bytes of an integer by the server's column type (binary COPY sends them big-endian).
COPY_WIDTHS = {"smallint": 2, "integer": 4, "bigint": 8}
#: A binary COPY starts with this signature, 32-bit flags and a 32-bit extension length.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


class CopyLayoutError(ValueError):
    """The COPY's bytes are not records of the fixed size expected (a NULL, another type)."""


def _copy_lines(
    queryset: Any, chunk_size: int, progress: ReadProgress | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(orders, products)`` as int64 arrays through a binary COPY, or None to fetch instead.

    Each row of two non-NULL integer columns is the same record: a 16-bit field count, then
    per field a 32-bit length and the big-endian value. The bytes are read as a structured
    array ``chunk_size`` rows at a time, so ten million lines never sit in memory as both
    bytes and arrays. Every record's count and lengths are checked, and the server's row
    count against the records read: a NULL (a shorter row), or anything but the expected
    layout makes this return None, after reading to the end so the
    connection (and a caller's transaction) stays usable, and the caller reads the lines
    the usual way. Errors of the database itself are raised, as the fetch would raise them.
    """
    query = binary_copy(queryset)
    if query is None:
        return None
    statement, types = query
    widths = [COPY_WIDTHS.get(str(kind)) for kind in types]
    if len(widths) != 2 or None in widths:
        return None
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    for index, width in enumerate(widths):
        fields += [(f"length{index}", ">i4"), (f"value{index}", f">i{width}")]
    record = np.dtype(fields)
    parser = _CopyParser(record, [int(width or 0) for width in widths], progress)
    with work_mem(queryset.db, app_settings.READ_WORK_MEM):
        pieces = copy_out(queryset.db, statement, record.itemsize * max(chunk_size, 1))
        while True:
            try:
                piece = next(pieces)
            except StopIteration as stop:
                rowcount = stop.value
                break
            parser.add(piece)
    try:
        if parser.problem is not None:
            raise parser.problem
        return parser.finish(rowcount)
    except CopyLayoutError as exc:
        logger.warning("django-crosssell: binary COPY of the order lines not used: %s", exc)
        return None


class _CopyParser:
    """Reads a binary COPY's pieces into arrays (see :func:`_copy_lines`)."""

    def __init__(self, record: np.dtype, widths: list[int], progress: ReadProgress | None) -> None:
        self.record = record
        self.widths = widths
        self.progress = progress
        self.pending = bytearray()
        self.header = False
        self.columns: list[list[np.ndarray]] = [[] for _ in widths]
        self.rows = 0
        self.problem: CopyLayoutError | None = None

    def add(self, piece: bytearray) -> None:
        if self.problem is not None:
            return  # read to the end, not parsed
        self.pending += piece
        try:
            self._parse(final=False)
        except CopyLayoutError as exc:  # the fetch path reads the lines instead
            self.problem = exc
            self.pending.clear()

    def finish(self, rowcount: int) -> tuple[np.ndarray, np.ndarray]:
        self._parse(final=True)
        if rowcount != self.rows:
            raise CopyLayoutError(f"{self.rows} records read, the server sent {rowcount} rows")
        empty = [np.zeros(0, dtype=np.int64)]
        orders, products = (np.concatenate(parts or empty) for parts in self.columns)
        return orders, products

    def _parse(self, *, final: bool) -> None:
        pending = self.pending
        start = 0
        if not self.header:
            if len(pending) < 19 or not pending.startswith(COPY_SIGNATURE):
                raise CopyLayoutError("no binary COPY signature")
            flags, extension = np.frombuffer(pending, ">i4", count=2, offset=11).tolist()
            if flags & (1 << 16):  # rows carry OIDs
                raise CopyLayoutError("rows with OIDs")
            start = 19 + extension
            if start > len(pending):
                raise CopyLayoutError("a header extension")
            self.header = True
        size = self.record.itemsize
        count = (len(pending) - start) // size
        end = start + count * size
        if final and pending[end:] != b"\xff\xff":
            raise CopyLayoutError("rows of another size than fixed-width values")
        if count:
            records = np.frombuffer(pending, dtype=self.record, count=count, offset=start)
            problem = self._check(records)
            if problem is None:
                for index, parts in enumerate(self.columns):
                    parts.append(records[f"value{index}"].astype(np.int64))
            del records  # the view pins the buffer's size (a traceback would keep it)
            if problem is not None:
                raise CopyLayoutError(problem)
            self.rows += count
            if self.progress is not None:
                self.progress(self.rows)
        del pending[:end]

    def _check(self, records: np.ndarray) -> str | None:
        if not (records["fields"] == len(self.widths)).all():
            return "a row of another field count"
        for index, width in enumerate(self.widths):
            if not (records[f"length{index}"] == width).all():
                return "a NULL or a value of another width"
        return None


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
