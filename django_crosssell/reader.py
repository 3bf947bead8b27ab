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
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from django.db import connections
from django.utils import timezone

from .adapter import CrossSellAdapter, get_adapter
from .compat import batched
from .conf import app_settings, get_product_model

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
    for chunk in adapter.order_lines(
        since=since,
        with_placed_at=with_placed_at,
        chunk_size=chunk_size or int(app_settings.CHUNK_SIZE),
    ):
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
