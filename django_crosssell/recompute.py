"""Running an affinity recompute: read the orders, compute, write a new run, swap it in.

The steps live in their own modules; this one orders them and decides when a run fails:

* :mod:`.reader` reads the counting order lines into arrays (:mod:`.sources` says where
  they come from),
* :mod:`.affinity` builds the basket matrix and computes the pairs,
* :mod:`.writer` writes them (on PostgreSQL streamed into one COPY while the engine
  computes),
* :mod:`.runs` holds the lock, claims the run, makes it current and prunes old runs.

A recompute that reads no orders, or fewer than ``MIN_ORDERS_RATIO`` of the current run's,
is refused before anything is written (:class:`~.errors.RecomputeRefused`): an emptied
``ORDER_FILTER`` or a broken ``ORDER_SOURCE`` must not wipe the shop's recommendations.
``allow_shrink=True`` lets a deliberate shrink through.

Public interface (the task, the command and the benchmarks call it)::

    run_recompute(*, run=None, min_co_count=None, top_k=None, lookback_days=None,
                  half_life_days=None, metric=None, order_weighting=None,
                  max_basket_size=None, engine=None, dry_run=False, allow_shrink=False,
                  progress=None) -> AffinityRun

Queueing a recompute for the Celery worker is :func:`.enqueue.enqueue_recompute`, which
needs no numpy.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.db import DatabaseError, connections
from django.utils import timezone

from . import affinity, cache, incremental
from .adapter import CrossSellAdapter, get_adapter
from .cold_start import compute_similar, content_rows, write_similar
from .conf import app_settings, get_product_model
from .errors import RecomputeParameterError, RecomputeRefused
from .models import AffinityCounts, AffinityRun
from .params import resolve_parameters
from .reader import read_order_lines
from .runs import claim_run, current_run, make_current, mark_failed, prune_runs, recompute_lock
from .sources import counts_orders_by_time, orders_placed, shard_bounds
from .writer import PendingPairs, Progress, write_affinities, write_sales

logger = logging.getLogger("django_crosssell")


# --- Running ---------------------------------------------------------------------------


def prepare_pairs(params: dict[str, Any], progress: Progress | None = None) -> PendingPairs:
    """Read the order lines and build the basket matrix; the pairs are left pending.

    ``params`` are resolved parameters (:func:`~.params.resolve_parameters`). With
    ``INCREMENTAL`` (and settings an incremental run can reproduce) the window's counts are
    computed too, to be stored with the run.
    """
    now = timezone.now()
    if params["engine"] == "dask" and app_settings.DASK_READ == "sharded":
        return _prepare_sharded(params, now)
    if keeps_counts(params):
        return _prepare_counted(params, now, progress)
    decay = params["half_life_days"] is not None
    lines = read_order_lines(
        lookback_days=params["lookback_days"],
        with_placed_at=decay,
        now=now,
        progress=(lambda n: progress("read", n, None)) if progress else None,
    )
    baskets = affinity.build_basket_matrix(
        lines.orders,
        lines.products,
        lines.placed_at if decay else None,
        half_life_days=params["half_life_days"],
        now=now,
    )
    baskets = affinity.weigh_orders(baskets, params["order_weighting"], params["max_basket_size"])
    return PendingPairs(
        baskets=affinity.order_products_by_id(baskets),
        params=params,
        parameters={"lines_read": lines.lines_read, "lines_dropped": lines.lines_dropped},
    )


def _prepare_sharded(params: dict[str, Any], now: datetime) -> PendingPairs:
    """The window read and counted on the Dask cluster, a range of order ids per worker.

    Keeps no incremental counts (they hold every order's basket, which a sharded read
    exists to keep out of this process); the system checks reject ``INCREMENTAL`` with it.
    """
    from . import distributed

    window = distributed.read_sharded(
        scheduler=app_settings.DASK_SCHEDULER,
        shards=app_settings.DASK_SHARDS,
        bounds=shard_bounds,
        lookback_days=params["lookback_days"],
        since=_window_start(params, now),
        half_life_days=params["half_life_days"],
        now=now,
        order_weighting=params["order_weighting"],
        max_basket_size=params["max_basket_size"],
    )
    return PendingPairs(
        baskets=None,
        params=params,
        parameters={
            "lines_read": window.totals.lines_read,
            "lines_dropped": window.totals.lines_dropped,
            "shards": window.shards,
        },
        sharded=window,
    )


def keeps_counts(params: dict[str, Any]) -> bool:
    """Whether a run with ``params`` keeps its window's counts for an incremental successor."""
    return (
        bool(app_settings.INCREMENTAL)
        and params["half_life_days"] is None
        and params["order_weighting"] in incremental.INCREMENTAL_WEIGHTINGS
    )


def _read(
    params: dict[str, Any],
    now: datetime,
    since: datetime | None,
    progress: Progress | None,
    with_placed_at: bool = True,
) -> Any:
    """The lines placed since ``since``; from the window's start exactly as a full run
    computes it when ``since`` is that start (a boundary order must fall alike)."""
    if since == _window_start(params, now):
        lookback = params["lookback_days"]
    else:
        lookback = None if since is None else (now - since).total_seconds() / 86_400
    return read_order_lines(
        lookback_days=lookback,
        with_placed_at=with_placed_at,
        now=now,
        progress=(lambda n: progress("read", n, None)) if progress else None,
    )


def _by_time() -> bool:
    """Whether the window's leaving orders are looked up by time (no times are read)."""
    return type(get_adapter()).order_lines is CrossSellAdapter.order_lines and (
        counts_orders_by_time()
    )


def _window_start(params: dict[str, Any], now: datetime) -> datetime | None:
    days = params["lookback_days"]
    return None if days is None else now - timedelta(days=days)


def _prepare_counted(
    params: dict[str, Any], now: datetime, progress: Progress | None
) -> PendingPairs:
    """A full read that also computes the window's counts (``INCREMENTAL``).

    With the order-line model the lines are read without times, as in a plain run: the
    next incremental run finds the orders that left the window by a range query on the
    order time (:func:`.sources.orders_placed`). Other sources read each line's time.
    """
    since = _window_start(params, now)
    lines = _read(params, now, since, progress, with_placed_at=not _by_time())
    baskets, counts = incremental.build_window(
        lines.orders,
        lines.products,
        lines.placed_at,
        order_weighting=params["order_weighting"],
        max_basket_size=params["max_basket_size"],
    )
    return PendingPairs(
        baskets=baskets,
        params=params,
        parameters={
            "lines_read": lines.lines_read,
            "lines_dropped": lines.lines_dropped,
            "read_at": now,
        },
        counts=counts,
    )


#: An incremental run reads the orders placed since the previous window's end minus this
#: margin (orders committed late, clocks apart); orders it already holds are skipped.
READ_MARGIN = timedelta(hours=1)


def prepare_incremental(
    params: dict[str, Any], progress: Progress | None = None
) -> tuple[PendingPairs | None, str]:
    """Slide the current run's counts to the window ending now; (None, why) when it cannot.

    It cannot without stored counts, when they were kept under other settings (weighting,
    basket cap, lookback), when the settings need a full run (time decay, ``bm25``), or
    when the counts' full run is older than ``INCREMENTAL_RECONCILE_DAYS``: then a full
    run reconciles what a slide cannot see (edited or cancelled orders, deleted products).
    """
    if not keeps_counts(params):
        return None, "the settings need a full run"
    current = current_run()
    stored = AffinityCounts.objects.defer("data").filter(run=current).first() if current else None
    if current is None or stored is None:
        return None, "the current run kept no counts"
    kept = current.parameters or {}
    for name in ("order_weighting", "max_basket_size", "lookback_days"):
        if kept.get(name) != params[name]:
            return None, f"{name} changed since the counts were kept"
    now = timezone.now()
    full_at = kept.get("full_run_at")
    reconcile = app_settings.INCREMENTAL_RECONCILE_DAYS
    if full_at is None or (
        reconcile is not None
        and now - datetime.fromisoformat(full_at) > timedelta(days=float(reconcile))
    ):
        return None, "the last full run is older than INCREMENTAL_RECONCILE_DAYS"
    to_python = get_product_model()._meta.pk.to_python
    try:
        state = incremental.load(_counts_data(stored), to_python)
    except incremental.CountsFormatError:
        return None, "the stored counts are of another format"
    since = _window_start(params, now)
    read_from = stored.window_end - READ_MARGIN
    if state.placed_at is None:
        if not _by_time():
            return None, "the order source changed since the counts were kept"
        # No times: read nothing older than the new window, and look up what left it.
        if since is not None:
            read_from = max(read_from, since)
        leaving: list[Any] = []
        if since is not None and stored.window_start is not None and since > stored.window_start:
            leaving = orders_placed(stored.window_start, since)
        lines = _read(params, now, read_from, progress, with_placed_at=False)
        counts, changed = incremental.slide(
            state, lines.orders, lines.products, None, leaving=leaving
        )
    else:
        lines = _read(params, now, read_from, progress)
        counts, changed = incremental.slide(
            state,
            lines.orders,
            lines.products,
            lines.placed_at,
            since=since if since is not None else datetime.min.replace(tzinfo=UTC),
        )
    return (
        PendingPairs(
            baskets=counts.baskets(),
            params=params,
            parameters={
                "lines_read": counts.n_lines,
                "lines_read_incremental": lines.lines_read,
                "lines_dropped": lines.lines_dropped,
                **changed,
                "full_run_at": full_at,
                "read_at": now,
            },
            counts=counts,
            slid=True,
        ),
        "",
    )


def _refuse_shrink(pending: PendingPairs) -> None:
    """Raise :class:`RecomputeRefused` if ``pending`` would replace a much larger run."""
    current = current_run()
    if current is None or current.orders_read == 0:
        return  # nothing to protect
    ratio = app_settings.MIN_ORDERS_RATIO
    orders, lines = pending.n_orders, pending.parameters.get("lines_read", pending.n_lines)
    if orders == 0:
        what = f"read no orders ({lines:,} order lines)"
    elif orders < ratio * current.orders_read:
        what = (
            f"read {orders:,} orders ({lines:,} lines), fewer than MIN_ORDERS_RATIO = {ratio:g} "
            f"of the {current.orders_read:,} orders"
        )
    else:
        return
    raise RecomputeRefused(
        f"The recompute {what} of the current run #{current.pk}, so that run stays current "
        "and nothing was written. Check ORDER_FILTER, LOOKBACK_DAYS and ORDER_SOURCE; if the "
        "shop really has fewer orders now, run it with allow_shrink "
        "(manage.py crosssell_recompute --allow-shrink, or allow_shrink in the API)."
    )


def run_recompute(
    *,
    run: AffinityRun | None = None,
    min_co_count: int | None = None,
    top_k: int | None = None,
    lookback_days: float | None = None,
    half_life_days: float | None = None,
    metric: str | None = None,
    order_weighting: str | None = None,
    max_basket_size: int | None = None,
    engine: str | None = None,
    dry_run: bool = False,
    allow_shrink: bool = False,
    incremental: bool = False,
    progress: Progress | None = None,
) -> AffinityRun:
    """Recompute affinity from the configured orders and make it current.

    ``None`` parameters come from settings. ``run`` is a queued run created by
    :func:`~.enqueue.enqueue_recompute`; a run that already finished is returned untouched,
    so a redelivered task does no work twice. ``dry_run`` reads and computes but writes
    nothing and returns an unsaved run holding the figures. ``allow_shrink`` lets the run
    replace a current run although it read far fewer orders (see ``MIN_ORDERS_RATIO``).

    Raises :class:`~.errors.RecomputeParameterError` for bad parameters,
    :class:`~.errors.RecomputeLocked` when another recompute is running (nothing is
    changed), and, after marking the run failed (the previous current run stays in use),
    :class:`~.errors.RecomputeRefused` when it read far fewer orders than the current run,
    :class:`~.errors.OrderSourceError` for order lines it cannot use, or whatever else made
    it fail.
    """
    try:
        params = resolve_parameters(
            min_co_count=min_co_count,
            top_k=top_k,
            lookback_days=lookback_days,
            half_life_days=half_life_days,
            metric=metric,
            order_weighting=order_weighting,
            max_basket_size=max_basket_size,
            engine=engine,
        )
    except RecomputeParameterError as exc:
        if run is not None and not dry_run:
            mark_failed(run, exc)
        raise
    if dry_run:
        started = timezone.now()
        prepared = prepare_pairs(params, progress)
        try:
            result = prepared.result(progress)
        finally:
            prepared.close()
        preview = AffinityRun(
            status=AffinityRun.Status.SUCCEEDED,
            started_at=started,
            finished_at=timezone.now(),
            parameters={**params, "dry_run": True},
        )
        _fill_stats(preview, result)
        if progress is not None:
            progress("done", result.n_pairs, result.n_pairs)
        return preview

    recorded = {**params, "allow_shrink": True} if allow_shrink else params
    with recompute_lock():
        claimed = claim_run(run, recorded)
        if claimed is None:
            # Only an existing run can already be finished; claim_run(None) always claims.
            assert run is not None
            logger.info("django-crosssell: affinity run #%s already finished", run.pk)
            run.refresh_from_db()
            return run
        run = claimed
        began = time.monotonic()
        pending: PendingPairs | None = None
        stages: dict[str, float] = {}

        def stage(name: str) -> None:
            # Seconds since the previous stage ended: where a run's time goes (benchmarks,
            # and the admin's parameters column).
            stages[name] = max(round(time.monotonic() - began - sum(stages.values()), 3), 0.0) + 0.0

        try:
            why_full = ""
            if incremental:
                pending, why_full = prepare_incremental(params, progress)
            if pending is None:
                pending = prepare_pairs(params, progress)
            _fill_stats(run, pending)
            if not allow_shrink:
                _refuse_shrink(pending)
            stage("read")
            counted: dict[str, Any] = {}
            why = why_full if incremental else None
            run.pairs_written = write_affinities(
                run,
                pending,
                progress=progress,
                alongside=partial(_alongside, run, pending, why, counted),
            )
            stage("pairs")
            similar = _write_similar(run, pending)
            stage("sales_similar")
            counts = counted["record"] if counted else _write_counts(run, pending, why)
            stage("counts")
            run.parameters = {
                **recorded,
                "lines_dropped": pending.parameters["lines_dropped"],
                "similar_written": similar,
                **{k: v for k, v in pending.parameters.items() if k == "shards"},
                **counts,
                "seconds": round(time.monotonic() - began, 3),
                "stage_seconds": stages,
            }
            make_current(run)
            if progress is not None:
                progress("swap", 1, 1)
        except BaseException as exc:
            mark_failed(run, exc)
            raise
        finally:
            if pending is not None:
                pending.close()
    cache.invalidate()
    try:
        # Only the current run's counts are ever slid: older ones are dead weight.
        AffinityCounts.objects.exclude(run=run).delete()
        prune_runs()
    except DatabaseError:  # pruning is housekeeping: the new run is already live
        logger.exception("django-crosssell: pruning old affinity runs failed")
    if progress is not None:
        progress("done", run.pairs_written, run.pairs_written)
    logger.info(
        "django-crosssell: affinity run #%s: %s orders, %s lines, %s pairs",
        run.pk,
        run.orders_read,
        run.lines_read,
        run.pairs_written,
    )
    return run


def _write_counts(run: AffinityRun, pending: PendingPairs, why_full: str | None) -> dict[str, Any]:
    """Store the window's counts with ``run`` (``INCREMENTAL``); what to record about it."""
    record: dict[str, Any] = {}
    if why_full is not None:
        record["incremental"] = pending.slid
        if not pending.slid:
            record["full_because"] = why_full
    if pending.counts is None:
        return record
    read_at = pending.parameters["read_at"]
    if pending.slid:
        record.update(
            full_run_at=pending.parameters["full_run_at"],
            orders_added=pending.parameters["orders_added"],
            orders_removed=pending.parameters["orders_removed"],
            lines_read_incremental=pending.parameters["lines_read_incremental"],
        )
    else:
        record["full_run_at"] = read_at.isoformat()
    _store_counts(
        AffinityCounts(
            run=run, window_start=_window_start(pending.params, read_at), window_end=read_at
        ),
        incremental.dump(pending.counts),
    )
    return record


def _binary_cursor(alias: str) -> Any:
    """A psycopg 3 cursor that sends and reads bytea as bytes, or None.

    Django's PostgreSQL cursors bind parameters on the client, which sends ``bytea`` as
    hex text: 1.5 s for 32 MB of counts where the binary protocol took 0.25 s.
    """
    from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
        is_psycopg3,
    )

    connection = connections[alias]
    if connection.vendor != "postgresql" or not is_psycopg3:
        return None
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _data_column() -> tuple[str, str]:
    ops = connections[AffinityCounts.objects.db].ops
    table = ops.quote_name(AffinityCounts._meta.db_table)
    return table, ops.quote_name(AffinityCounts._meta.get_field("data").column)


def _store_counts(counts: AffinityCounts, data: bytes) -> None:
    cursor = _binary_cursor(AffinityCounts.objects.db)
    if cursor is None:
        counts.data = data
        counts.save()
        return
    counts.data = b""
    counts.save()
    table, column = _data_column()
    with cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %b WHERE id = %s", [data, counts.pk])


def _counts_data(counts: AffinityCounts) -> bytes:
    cursor = _binary_cursor(AffinityCounts.objects.db)
    if cursor is None:
        return bytes(AffinityCounts.objects.values_list("data", flat=True).get(pk=counts.pk))
    table, column = _data_column()
    with cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [counts.pk], binary=True)
        row = cursor.fetchone()
    return bytes(row[0])


def _alongside(
    run: AffinityRun, pending: PendingPairs, why_full: str | None, counted: dict[str, Any]
) -> None:
    """The run's database work that need not wait for its pairs (see ``write_affinities``).

    A slid window's counts are complete before its pairs are ranked, so they are stored
    here, while the engine ranks the first block (``counted["record"]``); a full run's
    come from its blocks, so they are stored after them.
    """
    write_sales(run, pending.product_ids, pending.item_counts)
    if pending.slid and pending.counts is not None:
        counted["record"] = _write_counts(run, pending, why_full)
    _similar_after_blocks(pending)


def _similar_after_blocks(pending: PendingPairs) -> None:
    """Have the content neighbours computed as soon as the last block of pairs is.

    The catalogue's texts are read here (while the engine computes the first block,
    before the COPY takes the connection); the neighbours then need no database, and
    computing them in a thread of their own while the COPY sends the last blocks and the
    server finishes it takes them off the run's critical path.
    """
    if not app_settings.SIMILAR_PRODUCTS:
        return
    rows = content_rows()
    product_ids = pending.product_ids

    def similar(partnered: Any) -> Any:
        return compute_similar(product_ids[partnered].tolist(), rows)

    pending.then(similar)


def _write_similar(run: AffinityRun, pending: PendingPairs) -> int:
    """Content neighbours for the products the pairs gave no partner (``SIMILAR_PRODUCTS``)."""
    if not app_settings.SIMILAR_PRODUCTS:
        return 0
    return write_similar(run, found=pending.after_blocks())


def _fill_stats(run: AffinityRun, result: affinity.AffinityResult | PendingPairs) -> None:
    run.orders_read = result.n_orders
    run.lines_read = result.parameters.get("lines_read", result.n_lines)
    run.products = result.n_products
    if isinstance(result, affinity.AffinityResult):
        run.pairs_written = result.n_pairs
