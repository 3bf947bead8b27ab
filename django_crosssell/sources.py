"""Streaming the host's order lines into numpy arrays for the affinity engine.

The app never owns orders. By default it reads ``CROSSSELL["ORDER_LINE_MODEL"]`` through
the ORM paths of ``ORDER_LINE_FIELDS``, restricted by ``ORDER_FILTER``. A host whose orders
live elsewhere (another database, a warehouse export) names a callable in
``CROSSSELL["ORDER_SOURCE"]`` instead::

    def my_order_lines(*, since: datetime | None, with_placed_at: bool, chunk_size: int):
        # yield (order_id, product_id, placed_at) tuples; placed_at may be None unless
        # with_placed_at is true; lines older than ``since`` may be yielded (they are
        # dropped), but skipping them at the source is cheaper.
        ...

Why ``values_list().iterator(chunk_size=...)`` and chunks of arrays: a shop with ten
million lines must not build ten million model instances (about 1 KB each); tuples go
straight into numpy arrays a chunk at a time, and on PostgreSQL ``iterator()`` uses a
server-side cursor, so the database sends rows as they are consumed. ``placed_at`` is only
fetched when time decay needs it, because converting datetimes is the most expensive part
of reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain, islice
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured
from django.db import connections, models, transaction
from django.db.models.sql.constants import MULTI
from django.utils import timezone
from django.utils.module_loading import import_string

from .checks import resolve_field_path
from .conf import app_settings, get_order_line_model, get_product_model

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


def batched(iterable: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """``itertools.batched`` (Python 3.12+) for Python 3.11."""
    iterator = iter(iterable)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def _column(values: tuple[Any, ...]) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        return array
    return np.asarray(values, dtype=object)


def _configured_source() -> Callable[..., Iterable[tuple[Any, ...]]] | None:
    path = app_settings.ORDER_SOURCE
    if not path:
        return None
    return import_string(path) if isinstance(path, str) else path


def order_line_queryset(*, since: datetime | None = None) -> models.QuerySet:
    """Order lines that count for affinity: the host's filter, a product, inside the window."""
    model = get_order_line_model()
    if model is None:
        raise ImproperlyConfigured(
            "CROSSSELL['ORDER_LINE_MODEL'] (or ORDER_SOURCE) must be set to compute affinity."
        )
    fields = app_settings.ORDER_LINE_FIELDS
    queryset = model._default_manager.filter(**(app_settings.ORDER_FILTER or {}))
    queryset = queryset.filter(**{f"{fields['product']}__isnull": False})
    if since is not None:
        if not fields.get("placed_at"):
            raise ImproperlyConfigured(
                "A lookback window needs CROSSSELL['ORDER_LINE_FIELDS']['placed_at']; set it "
                "or set LOOKBACK_DAYS to None."
            )
        queryset = queryset.filter(**{f"{fields['placed_at']}__gte": since})
    return queryset.order_by()


def iter_line_chunks(
    *,
    since: datetime | None = None,
    with_placed_at: bool = False,
    chunk_size: int | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Yield lists of ``(order, product[, placed_at])`` tuples, ``chunk_size`` at a time."""
    chunk_size = chunk_size or app_settings.CHUNK_SIZE
    source = _configured_source()
    if source is not None:
        rows = source(since=since, with_placed_at=with_placed_at, chunk_size=chunk_size)
        for chunk in batched(rows, chunk_size):
            if since is not None or with_placed_at:
                yield [
                    (row[0], row[1], row[2] if len(row) > 2 else None)
                    for row in chunk
                    if since is None or (len(row) > 2 and row[2] is not None and row[2] >= since)
                ]
            else:
                yield [(row[0], row[1]) for row in chunk]
        return
    fields = app_settings.ORDER_LINE_FIELDS
    paths = [fields["order"], fields["product"]]
    if with_placed_at:
        paths.append(fields["placed_at"])
    queryset = order_line_queryset(since=since).values_list(*paths)
    yield from fetch_chunks(queryset, chunk_size)


def fetch_chunks(queryset: models.QuerySet, chunk_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """``values_list(...).iterator(chunk_size)``, a fetched chunk at a time.

    The same SQL, the same server-side cursor on PostgreSQL and the same value converters
    as ``iterator()``, but each chunk arrives as the list the cursor's ``fetchmany()``
    returns instead of one generator step per row: at a million lines those steps cost as
    much as the query itself.
    """
    connection = connections[queryset.db]
    chunked = connection.features.can_use_chunked_reads and not connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    )
    compiler = queryset.query.get_compiler(using=queryset.db)
    # Outside a transaction Django declares the server-side cursor ``WITH HOLD``, and
    # PostgreSQL then runs the whole query and stores its result before the first fetch
    # (at a million lines that storing cost about a third of the query again). Inside a
    # transaction the cursor streams straight from the running query. (No savepoint: inside
    # a caller's transaction there is nothing to add, and the read changes nothing.)
    with transaction.atomic(using=queryset.db, savepoint=False):
        results = compiler.execute_sql(MULTI, chunked_fetch=chunked, chunk_size=chunk_size)
        converters = None
        for rows in results:
            if converters is None:
                fields = [select[0] for select in compiler.select[: compiler.col_count]]
                converters = compiler.get_converters(fields)
            if converters:
                rows = list(compiler.apply_converters(rows, converters))
            # Without a server-side cursor the driver may hand over everything at once.
            for start in range(0, len(rows), chunk_size):
                yield rows[start : start + chunk_size]


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
    for chunk in iter_line_chunks(
        since=since, with_placed_at=with_placed_at, chunk_size=chunk_size
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
    keep = _in_catalogue(products)
    dropped = int(len(keep) - keep.sum())
    if dropped:
        orders, products = orders[keep], products[keep]
        if placed_at is not None:
            placed_at = placed_at[keep]
    return OrderLines(orders, products, placed_at, lines_read=total, lines_dropped=dropped)


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


# --- Configuration checks (called by checks.py) --------------------------------------


def check_source_configuration() -> list[tuple[str, str]]:
    """Problems with the configured order source as ``(setting, sentence)`` pairs.

    ``setting`` is the ``CROSSSELL`` key at fault, so ``checks.py`` can give each its id;
    the list is empty when the source is usable.

    Checks that the dotted-path override imports and is callable, or that the order-line
    model exists, every configured field path resolves on it (``order`` and ``product`` are
    required, ``placed_at`` must be a date/datetime and is required while ``LOOKBACK_DAYS``
    or ``HALF_LIFE_DAYS`` is set), the product path leads to the product model, and
    ``ORDER_FILTER`` is a valid set of lookups. Nothing here touches the database.
    """
    problems: list[tuple[str, str]] = []
    source_path = app_settings.ORDER_SOURCE
    if source_path:
        try:
            source = import_string(source_path) if isinstance(source_path, str) else source_path
        except ImportError as exc:
            message = f"CROSSSELL['ORDER_SOURCE'] {source_path!r} cannot be imported: {exc}"
            return [("ORDER_SOURCE", message)]
        if not callable(source):
            problems.append(
                ("ORDER_SOURCE", f"CROSSSELL['ORDER_SOURCE'] {source_path!r} is not callable.")
            )
        return problems
    try:
        model = get_order_line_model()
    except ImproperlyConfigured as exc:
        return [("ORDER_LINE_MODEL", str(exc))]
    if model is None:
        return []  # computed affinity is switched off
    fields = app_settings.ORDER_LINE_FIELDS
    label = model._meta.label
    for key in ("order", "product"):
        if not fields.get(key):
            problems.append(
                ("ORDER_LINE_FIELDS", f"CROSSSELL['ORDER_LINE_FIELDS'][{key!r}] is required.")
            )
    if not fields.get("placed_at") and (
        app_settings.LOOKBACK_DAYS is not None or app_settings.HALF_LIFE_DAYS is not None
    ):
        problems.append(
            (
                "ORDER_LINE_FIELDS",
                "CROSSSELL['ORDER_LINE_FIELDS']['placed_at'] is required while LOOKBACK_DAYS or "
                "HALF_LIFE_DAYS is set.",
            )
        )
    for key, path in fields.items():
        if not path:
            continue
        if not isinstance(path, str):
            problems.append(
                ("ORDER_LINE_FIELDS", f"CROSSSELL['ORDER_LINE_FIELDS'][{key!r}] must be a string.")
            )
            continue
        try:
            field = resolve_field_path(model, path)
        except FieldDoesNotExist as exc:
            problems.append(
                (
                    "ORDER_LINE_FIELDS",
                    f"CROSSSELL['ORDER_LINE_FIELDS'][{key!r}] = {path!r} does not resolve on "
                    f"{label}: {exc}",
                )
            )
            continue
        if key == "product" and field.is_relation:
            try:
                product_model = get_product_model()
            except ImproperlyConfigured:
                continue
            if field.related_model is not product_model:
                problems.append(
                    (
                        "ORDER_LINE_FIELDS",
                        f"CROSSSELL['ORDER_LINE_FIELDS']['product'] = {path!r} points at "
                        f"{field.related_model._meta.label}, not at the product model "
                        f"{product_model._meta.label}.",
                    )
                )
        if key == "placed_at" and not isinstance(field, models.DateField):
            problems.append(
                (
                    "ORDER_LINE_FIELDS",
                    f"CROSSSELL['ORDER_LINE_FIELDS']['placed_at'] = {path!r} must be a date or "
                    f"datetime field, not {type(field).__name__}.",
                )
            )
    order_filter = app_settings.ORDER_FILTER or {}
    if not isinstance(order_filter, dict):
        problems.append(("ORDER_FILTER", "CROSSSELL['ORDER_FILTER'] must be a dict of lookups."))
    else:
        try:
            model._default_manager.filter(**order_filter).query  # noqa: B018 - builds SQL
        except (FieldError, FieldDoesNotExist, ValueError, TypeError) as exc:
            problems.append(
                ("ORDER_FILTER", f"CROSSSELL['ORDER_FILTER'] is not valid on {label}: {exc}")
            )
    return problems
