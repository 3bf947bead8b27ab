"""Where the host's order lines come from, and whether that is configured right (no numpy).

The app never owns orders. By default it reads ``CROSSSELL["ORDER_LINE_MODEL"]`` through
the ORM paths of ``ORDER_LINE_FIELDS``, restricted by ``ORDER_FILTER``. A host whose orders
live elsewhere (another database, a warehouse export) names a callable in
``CROSSSELL["ORDER_SOURCE"]`` instead::

    def my_order_lines(*, since: datetime | None, with_placed_at: bool, chunk_size: int):
        # yield (order_id, product_id, placed_at) tuples; placed_at is required while
        # ``since`` is set or ``with_placed_at`` is true (a line without it is an error,
        # not silently dropped); lines older than ``since`` may be yielded (they are
        # dropped), but skipping them at the source is cheaper.
        ...

Why ``values_list()`` chunks: a shop with ten million lines must not build ten million
model instances (about 1 KB each); tuples go straight to the reader
(:mod:`django_crosssell.reader`, which turns them into numpy arrays) a chunk at a time, and
on PostgreSQL the query runs on a server-side cursor, so the database sends rows as they are
consumed. ``placed_at`` is only fetched when time decay needs it, because converting
datetimes is the most expensive part of reading.

This module imports no numpy: the system checks call :func:`check_source_configuration`
in every process that runs ``manage.py check`` or a web server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import pairwise
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError, ImproperlyConfigured
from django.db import models
from django.db.models import Max, Min
from django.utils.module_loading import import_string

from .compat import batched, fetch_chunks
from .conf import app_settings, get_order_line_model, get_product_model
from .errors import OrderSourceError
from .orm import resolve_field_path


def _configured_source() -> Callable[..., Iterable[tuple[Any, ...]]] | None:
    path = app_settings.ORDER_SOURCE
    if not path:
        return None
    return import_string(path) if isinstance(path, str) else path


#: ``(low, high)`` order keys of one shard of a sharded read: lines whose order key is
#: ``>= low`` and ``< high``; ``None`` leaves that side open.
OrderRange = tuple[Any, Any]


def order_line_queryset(
    *, since: datetime | None = None, order_range: OrderRange | None = None
) -> models.QuerySet:
    """Order lines that count for affinity: the host's filter, a product, inside the window.

    ``order_range`` keeps one shard of the orders (:func:`shard_bounds`): every line of an
    order falls in the same shard, so each shard sees whole baskets.
    """
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
    if order_range is not None:
        low, high = order_range
        if low is not None:
            queryset = queryset.filter(**{f"{fields['order']}__gte": low})
        if high is not None:
            queryset = queryset.filter(**{f"{fields['order']}__lt": high})
    return queryset.order_by()


def shard_bounds(shards: int, *, since: datetime | None = None) -> list[OrderRange]:
    """At most ``shards`` order-key ranges covering every counting order line.

    Integer keys are cut into equal ranges between the smallest and the largest key (one
    aggregate query); other keys (UUIDs, order numbers) at every n-th distinct key, read
    in order from the database (the keys stream past, only the cut points are kept). The
    first range is open below and the last open above, so lines committed after this query
    still fall into a shard.
    """
    if shards < 1:
        raise ValueError("shards must be at least 1")
    path = app_settings.ORDER_LINE_FIELDS["order"]
    queryset = order_line_queryset(since=since)
    low_high = queryset.aggregate(cs_low=Min(path), cs_high=Max(path))
    low, high = low_high["cs_low"], low_high["cs_high"]
    if low is None or shards == 1:
        return [(None, None)]
    if isinstance(low, int) and isinstance(high, int):
        width = (high - low + shards) // shards  # ceiling of (high - low + 1) / shards
        cuts = [low + i * width for i in range(1, shards) if low + i * width <= high]
    else:
        keys = queryset.values_list(path, flat=True).distinct().order_by(path)
        count = keys.count()
        step = -(-count // shards)
        cuts = []
        for index, key in enumerate(keys.iterator(chunk_size=50_000)):
            if index and index % step == 0:
                cuts.append(key)
    edges: list[Any] = [None, *cuts, None]
    return list(pairwise(edges))


def counts_orders_by_time() -> bool:
    """Whether the orders a window loses can be looked up by time (:func:`orders_placed`).

    True for the order-line model with a ``placed_at`` path (not for ``ORDER_SOURCE``):
    then a run that keeps its counts reads the lines without times, as a plain run does.
    Reading a time per line cost a 1M-line run half a second or more (psycopg parsing
    datetimes, or PostgreSQL computing epochs), a grouped query of order times as much.
    """
    if _configured_source() is not None or not app_settings.ORDER_LINE_FIELDS.get("placed_at"):
        return False
    return get_order_line_model() is not None


def orders_placed(start: datetime, end: datetime) -> list[Any]:
    """Ids of the orders placed in ``[start, end)``: one range query on the order time.

    ``ORDER_FILTER`` is not applied: an incremental run subtracts, of these, the orders
    it counted, as it counted them, even if one has been cancelled since.
    """
    model = get_order_line_model()
    assert model is not None  # counts_orders_by_time() was true
    fields = app_settings.ORDER_LINE_FIELDS
    placed = fields["placed_at"]
    queryset = (
        model._default_manager.filter(**{f"{placed}__gte": start, f"{placed}__lt": end})
        .order_by()
        .values_list(fields["order"], flat=True)
        .distinct()
    )
    return list(queryset.iterator(chunk_size=50_000))


def iter_line_chunks(
    *,
    since: datetime | None = None,
    with_placed_at: bool = False,
    chunk_size: int | None = None,
    order_range: OrderRange | None = None,
) -> Iterator[list[Any]]:
    """Yield lists of ``(order, product[, placed_at])`` rows, ``chunk_size`` at a time.

    ``order_range`` (one shard of a sharded read) needs the order-line model: an
    ``ORDER_SOURCE`` callable cannot be asked for a range of orders.

    ``placed_at`` is in the rows only when ``with_placed_at`` is true. While a window
    (``since``) or decay (``with_placed_at``) needs the time of each order, a line without
    one raises :class:`~.errors.OrderSourceError`: dropping it would quietly shrink the
    data the recommendations come from.
    """
    chunk_size = chunk_size or app_settings.CHUNK_SIZE
    source = _configured_source()
    if source is not None and order_range is not None:
        raise ImproperlyConfigured(
            "A sharded read (DASK_READ = 'sharded') reads ORDER_LINE_MODEL by order ranges; "
            "it cannot shard an ORDER_SOURCE callable."
        )
    if source is not None:
        rows = source(since=since, with_placed_at=with_placed_at, chunk_size=chunk_size)
        for batch in batched(rows, chunk_size):
            chunk: list[Any] = list(batch)
            if since is None and not with_placed_at:
                yield [(row[0], row[1]) for row in chunk]
                continue
            for row in chunk:
                if len(row) < 3 or row[2] is None:
                    raise missing_placed_at(row)
            if since is not None:
                chunk = [row for row in chunk if row[2] >= since]
            if with_placed_at:
                yield [(row[0], row[1], row[2]) for row in chunk]
            else:
                yield [(row[0], row[1]) for row in chunk]
        return
    queryset = line_values(since=since, with_placed_at=with_placed_at, order_range=order_range)
    for rows_read in fetch_chunks(queryset, chunk_size):
        if with_placed_at:
            for row in rows_read:
                if row[2] is None:
                    raise missing_placed_at(row)
        yield rows_read


def reads_line_model() -> bool:
    """Whether :func:`iter_line_chunks` reads the order-line model (not ``ORDER_SOURCE``).

    Then its rows are exactly those of :func:`line_values`, which a reader may fetch by
    another route (the binary COPY of :mod:`.reader`).
    """
    return _configured_source() is None


def line_values(
    *,
    since: datetime | None = None,
    with_placed_at: bool = False,
    order_range: OrderRange | None = None,
) -> models.QuerySet:
    """The ``values_list()`` of ``(order, product[, placed_at])`` that the model's lines are
    read from: one definition, so every route of reading them runs the same SQL."""
    fields = app_settings.ORDER_LINE_FIELDS
    paths = [fields["order"], fields["product"]]
    if with_placed_at:
        if not fields.get("placed_at"):
            raise ImproperlyConfigured(
                "Time decay needs CROSSSELL['ORDER_LINE_FIELDS']['placed_at']; set it or set "
                "HALF_LIFE_DAYS to None."
            )
        paths.append(fields["placed_at"])
    # A window leaves lines without a time out in SQL (NULL >= since is not true).
    return order_line_queryset(since=since, order_range=order_range).values_list(*paths)


def missing_placed_at(row: Any) -> OrderSourceError:
    """The error for an order line without ``placed_at`` while a window or decay needs it."""
    shown = tuple(row)[:3]
    if app_settings.ORDER_SOURCE:
        return OrderSourceError(
            f"CROSSSELL['ORDER_SOURCE'] yielded an order line without placed_at {shown!r} "
            "while a lookback window or time decay is in use (LOOKBACK_DAYS or "
            "HALF_LIFE_DAYS, or lookback_days / half_life_days of this run). Make the source "
            "yield (order_id, product_id, placed_at) for every line, or set LOOKBACK_DAYS "
            "and HALF_LIFE_DAYS to None (lookback_days=0 and half_life_days=0 for one run)."
        )
    path = app_settings.ORDER_LINE_FIELDS.get("placed_at")
    return OrderSourceError(
        f"An order line has no placed_at ({path!r} is empty: {shown!r}) while time decay is "
        "in use (HALF_LIFE_DAYS, or half_life_days of this run). Leave such lines out with "
        f"ORDER_FILTER, e.g. {{{(str(path) + '__isnull')!r}: False}}, or set HALF_LIFE_DAYS "
        "to None (half_life_days=0 for one run)."
    )


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
                related = field.related_model
                label = related._meta.label if isinstance(related, type) else str(related)
                problems.append(
                    (
                        "ORDER_LINE_FIELDS",
                        f"CROSSSELL['ORDER_LINE_FIELDS']['product'] = {path!r} points at "
                        f"{label}, not at the product model "
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
