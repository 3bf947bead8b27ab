"""Running an affinity recompute: read the orders, compute, write a new run, swap it in.

Readers (the recommendation service) only ever look at the run with ``is_current=True``.
A recompute therefore writes every row of its new :class:`~.models.AffinityRun` first,
while the previous run keeps serving, and then flips ``is_current`` in one short
transaction (a partial unique constraint guarantees one current run). A run that fails, or
a worker that is killed, leaves the previous run current; the failed run is marked with the
reason and its partial rows are removed.

On PostgreSQL the pairs are never held whole: the engine computes them in a background
thread a block of source products at a time, and each finished block goes into the run's
one binary COPY while the next is computed (:func:`write_affinities`).

Two recomputes never write at once: on PostgreSQL a session-level advisory lock guards the
whole run (the server releases it if the worker dies); elsewhere a cache lock with a
timeout does, backed by a database guard on runs marked ``running``.

Public interface (the REST API, the admin and the task call these)::

    run_recompute(*, run=None, min_co_count=None, top_k=None, lookback_days=None,
                  half_life_days=None, metric=None, dry_run=False, progress=None) -> AffinityRun
    enqueue_recompute(**params) -> AffinityRun
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from . import affinity, cache
from .conf import app_settings
from .models import AffinityRun, ProductAffinity
from .sources import read_order_lines

logger = logging.getLogger("django_crosssell")

#: ``progress(stage, done, total)``; stages in order: "read" (total None), "pairs", "write",
#: "swap", "done".
Progress = Callable[[str, int, int | None], None]

#: Key of the PostgreSQL advisory lock (ASCII "xsell").
ADVISORY_LOCK_ID = 0x7873656C6C
CACHE_LOCK_KEY = "crosssell:recompute-lock"
#: How long the cache lock (non-PostgreSQL databases) may be held before it is presumed dead.
CACHE_LOCK_TIMEOUT = 6 * 60 * 60
#: Rows per COPY / bulk insert round trip.
WRITE_BATCH = 100_000
#: The engine's work is cut into at least this many blocks on PostgreSQL, so the COPY can
#: send one block while a background thread computes the next (see :func:`_in_background`).
PIPELINE_BLOCKS = 8
#: Finished blocks waiting for the writer; bounds the memory the overlap adds.
PIPELINE_DEPTH = 2
BULK_CREATE_BATCH = 2_000

PARAMETER_NAMES = ("min_co_count", "top_k", "lookback_days", "half_life_days", "metric")


class RecomputeError(Exception):
    """Base class of the errors a recompute reports to its caller."""


class RecomputeParameterError(RecomputeError, ValueError):
    """A parameter is out of range; the message says which and why."""


class RecomputeLocked(RecomputeError):
    """Another recompute holds the lock; nothing was read or written."""


# --- Parameters ----------------------------------------------------------------------


def resolve_parameters(
    *,
    min_co_count: int | None = None,
    top_k: int | None = None,
    lookback_days: float | None = None,
    half_life_days: float | None = None,
    metric: str | None = None,
) -> dict[str, Any]:
    """Fill ``None`` from settings and validate.

    ``0`` switches a limit off: ``top_k=0`` keeps every partner, ``lookback_days=0`` reads
    every order, ``half_life_days=0`` weighs every order the same.
    """
    params = {
        "min_co_count": app_settings.MIN_CO_COUNT if min_co_count is None else min_co_count,
        "top_k": app_settings.TOP_K if top_k is None else top_k,
        "lookback_days": app_settings.LOOKBACK_DAYS if lookback_days is None else lookback_days,
        "half_life_days": (
            app_settings.HALF_LIFE_DAYS if half_life_days is None else half_life_days
        ),
        "metric": app_settings.METRIC if metric is None else metric,
    }
    for name, least in (("min_co_count", 1), ("top_k", 0)):
        value = params[name]
        if value is None and name == "top_k":  # TOP_K = None in settings: every partner
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise RecomputeParameterError(f"{name} must be a whole number of at least {least}.")
    if params["top_k"] == 0:
        params["top_k"] = None
    for name in ("lookback_days", "half_life_days"):
        value = params[name]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RecomputeParameterError(f"{name} must be a number of days, 0 or more.")
        params[name] = None if value == 0 else value
    if params["metric"] not in affinity.METRICS:
        raise RecomputeParameterError(
            f"metric must be one of {', '.join(affinity.METRICS)}, not {params['metric']!r}."
        )
    return params


# --- Locking -------------------------------------------------------------------------


@contextmanager
def recompute_lock() -> Iterator[None]:
    """Hold the one-recompute-at-a-time lock, or raise :class:`RecomputeLocked` at once."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_ID])
            acquired = cursor.fetchone()[0]
        if not acquired:
            raise RecomputeLocked("Another affinity recompute is running.")
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_ID])
            except DatabaseError:  # a broken session: closing it releases the lock
                connection.close()
        return
    lock_cache = caches[app_settings.CACHE_ALIAS]
    token = uuid.uuid4().hex
    try:
        acquired = lock_cache.add(CACHE_LOCK_KEY, token, timeout=CACHE_LOCK_TIMEOUT)
    except Exception as exc:
        logger.warning("django-crosssell: recompute cache lock unavailable (%s)", exc)
        acquired, token = True, None
    if not acquired:
        raise RecomputeLocked("Another affinity recompute is running.")
    try:
        yield
    finally:
        if token is not None:
            try:
                if lock_cache.get(CACHE_LOCK_KEY) == token:
                    lock_cache.delete(CACHE_LOCK_KEY)
            except Exception as exc:
                logger.warning("django-crosssell: could not release the recompute lock (%s)", exc)


def _claim(run: AffinityRun | None, params: dict[str, Any]) -> AffinityRun | None:
    """Mark the run as running (creating it if needed); ``None`` if it needs no work.

    Runs left ``running`` by a dead worker are failed here; on databases without advisory
    locks a ``running`` run younger than the lock timeout is taken to be alive.
    """
    now = timezone.now()
    with transaction.atomic():
        others = AffinityRun.objects.select_for_update().filter(status=AffinityRun.Status.RUNNING)
        if run is not None:
            others = others.exclude(pk=run.pk)
        running = list(others)
        stale_before = now - timedelta(seconds=CACHE_LOCK_TIMEOUT)
        for other in running:
            if connection.vendor != "postgresql" and other.started_at > stale_before:
                raise RecomputeLocked(
                    f"Affinity run #{other.pk} has been running since "
                    f"{timezone.localtime(other.started_at):%Y-%m-%d %H:%M}; a run whose "
                    f"process was killed counts as dead after {CACHE_LOCK_TIMEOUT // 3600} hours."
                )
        if running:
            dead = [other.pk for other in running]
            ProductAffinity.objects.filter(run_id__in=dead).delete()  # their partial rows
            AffinityRun.objects.filter(pk__in=dead).update(
                status=AffinityRun.Status.FAILED,
                finished_at=now,
                error="Interrupted: the process running it stopped before it finished.",
            )
        if run is None:
            return AffinityRun.objects.create(
                status=AffinityRun.Status.RUNNING, started_at=now, parameters=params
            )
        run = AffinityRun.objects.select_for_update().get(pk=run.pk)
        if run.status in (AffinityRun.Status.SUCCEEDED, AffinityRun.Status.FAILED):
            return None  # a redelivered task: the work is done
        run.status = AffinityRun.Status.RUNNING
        run.started_at = now
        run.finished_at = None
        run.error = ""
        run.parameters = {**(run.parameters or {}), **params}
        run.save(update_fields=["status", "started_at", "finished_at", "error", "parameters"])
    if ProductAffinity.objects.filter(run=run).exists():  # a rerun after a crash
        ProductAffinity.objects.filter(run=run).delete()
    return run


# --- Computing ---------------------------------------------------------------------


@dataclasses.dataclass
class PendingPairs:
    """Order lines read and the basket matrix built; the pairs are computed when consumed.

    Kept lazy so the PostgreSQL writer can stream the engine's blocks into its COPY while
    the next block is computed, instead of computing everything and then writing
    everything. ``result()`` computes them all at once (dry runs, other databases).
    """

    baskets: affinity.BasketMatrix
    params: dict[str, Any]
    parameters: dict[str, Any]  # lines_read and lines_dropped, for the run's record

    @property
    def n_orders(self) -> int:
        return self.baskets.n_orders

    @property
    def n_lines(self) -> int:
        return self.baskets.n_lines

    @property
    def n_products(self) -> int:
        return self.baskets.n_products

    @property
    def product_ids(self) -> np.ndarray:
        return self.baskets.product_ids

    def blocks(
        self, *, min_blocks: int = 1, progress: affinity.ProgressCallback | None = None
    ) -> Iterator[affinity.AffinityResult]:
        """The engine's pairs a block of source products at a time, in product order."""
        return affinity.iter_pair_blocks(
            self.baskets,
            min_co_count=self.params["min_co_count"],
            top_k=self.params["top_k"],
            metric=self.params["metric"],
            min_blocks=min_blocks,
            progress=progress,
        )

    def result(self, progress: Progress | None = None) -> affinity.AffinityResult:
        result = affinity.compute_pairs(
            self.baskets,
            min_co_count=self.params["min_co_count"],
            top_k=self.params["top_k"],
            metric=self.params["metric"],
            progress=progress,
        )
        result.parameters.update(self.parameters)
        return result


def _by_product_id(baskets: affinity.BasketMatrix) -> affinity.BasketMatrix:
    """The basket matrix with its products (columns) in ascending id order.

    The engine emits sources in column order; in id order the pairs reach the COPY in the
    order of the ``(run, source, -score)`` index (PostgreSQL compares integer and UUID keys
    as Python does), so they can be streamed block by block without a global re-sort, and
    every new index entry lands right of the previous one. Partners tied on score are then
    ranked by ascending id on every database. Ids that do not sort are left as they are.
    """
    ids = baskets.product_ids
    if len(ids) < 2:
        return baskets
    try:
        order = np.argsort(ids, kind="stable")
    except TypeError:
        return baskets
    if (order[1:] > order[:-1]).all():
        return baskets
    column_of = np.empty(len(order), dtype=np.int64)
    column_of[order] = np.arange(len(order))
    matrix = baskets.matrix
    remapped = matrix.__class__(
        (matrix.data, column_of[matrix.indices].astype(matrix.indices.dtype), matrix.indptr),
        shape=matrix.shape,
    )
    return dataclasses.replace(baskets, matrix=remapped, product_ids=ids[order])


_DONE = object()


def _in_background(items: Iterator[Any], depth: int = PIPELINE_DEPTH) -> Iterator[Any]:
    """Run the iterator ``items`` in a thread, ``depth`` items ahead of the consumer.

    numpy, scipy's sparse products and psycopg's socket writes release the GIL, so on two
    cores the engine computes block n + 1 while the caller writes block n. An exception in
    the thread is re-raised here, in the caller; closing this generator (the caller
    failed) stops the thread after the block it is computing.
    """
    handoff: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((_DONE, exc))

    thread = threading.Thread(target=produce, name="crosssell-affinity-engine", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        thread.join()


# --- Writing -------------------------------------------------------------------------

_BINARY_TYPES = {"integer": ">i4", "bigint": ">i8", "smallint": ">i2", "uuid": "uuid"}
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COLUMNS = ("run", "source", "target", "co_count", "support", "confidence", "lift", "score")


def _encode_ids(ids: np.ndarray, kind: str) -> np.ndarray:
    if kind == "uuid":
        values = [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in ids.tolist()]
        raw = b"".join(v.bytes for v in values)
        return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), 16)
    return np.asarray(ids.tolist(), dtype=np.int64).astype(kind)


def _binary_rows(
    run_id: int,
    kinds: dict[str, str],
    ids: np.ndarray,
    result: affinity.AffinityResult,
    start: int,
    stop: int,
) -> bytes:
    """PostgreSQL binary COPY tuples for pairs ``start:stop``, built by numpy in one go."""
    values: dict[str, Any] = {
        "run": run_id,
        "source": ids[result.source[start:stop]],
        "target": ids[result.target[start:stop]],
        "co_count": result.co_count[start:stop],
        "support": result.support[start:stop],
        "confidence": result.confidence[start:stop],
        "lift": result.lift[start:stop],
        "score": result.score[start:stop],
    }
    dtype: list[tuple[Any, ...]] = [("n", ">i2")]
    for name in _COLUMNS:
        kind = kinds[name]
        dtype.append((f"{name}_len", ">i4"))
        dtype.append((name, "u1", (16,)) if kind == "uuid" else (name, kind))
    rows = np.empty(stop - start, dtype=np.dtype(dtype))
    rows["n"] = len(_COLUMNS)
    for name in _COLUMNS:
        kind = kinds[name]
        rows[f"{name}_len"] = 16 if kind == "uuid" else np.dtype(kind).itemsize
        rows[name] = values[name]
    return rows.tobytes()


def _column_kinds() -> dict[str, str] | None:
    """Binary COPY types of ProductAffinity's columns, or None if one is not supported."""
    kinds: dict[str, str] = {}
    for name in _COLUMNS:
        field = ProductAffinity._meta.get_field(name)
        db_type = field.db_type(connection) or ""
        if db_type == "double precision":
            kinds[name] = ">f8"
        elif db_type in _BINARY_TYPES:
            kinds[name] = _BINARY_TYPES[db_type]
        else:
            return None
    return kinds


def _column_sql() -> str:
    table = connection.ops.quote_name(ProductAffinity._meta.db_table)
    columns = ", ".join(
        connection.ops.quote_name(ProductAffinity._meta.get_field(name).column) for name in _COLUMNS
    )
    return f"COPY {table} ({columns}) FROM STDIN"


def _index_order(ids: np.ndarray, source: np.ndarray) -> np.ndarray | None:
    """Permutation putting the pairs in the order of the (run, source, -score) index.

    The engine emits each source's partners best first, but sources in order of first
    appearance in the orders. Sorting by the encoded source key (stable, so each source
    keeps its score order) makes every new index entry land to the right of the previous
    one, so PostgreSQL appends to hot index pages instead of touching random ones. ``None``
    when the pairs are in order already.
    """
    if len(source) < 2:
        return None
    if ids.ndim == 2:  # UUIDs as 16 big-endian bytes: PostgreSQL compares them bytewise
        keys = ids.view(">u8").reshape(len(ids), 2)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[np.lexsort((keys[:, 1], keys[:, 0]))] = np.arange(len(ids))
    else:
        rank = np.empty(len(ids), dtype=np.int64)
        rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    source_rank = rank[source]
    if (np.diff(source_rank) >= 0).all():
        return None
    return np.argsort(source_rank, kind="stable")


def write_affinities(
    run: AffinityRun,
    result: affinity.AffinityResult | PendingPairs,
    *,
    progress: Progress | None = None,
) -> int:
    """Insert the run's pairs: binary COPY on PostgreSQL, batched inserts elsewhere.

    The table has no uniqueness index or enforced foreign keys (see
    :class:`~.models.ProductAffinity`), so this writer is what keeps it right: one row per
    (source, target) pair of the engine, only products the read just found in the catalogue.
    Given :class:`PendingPairs` on PostgreSQL, the engine runs in a background thread and
    each finished block goes into the one COPY while the next is computed; an error on
    either side aborts the COPY, so none of the run's rows are committed.
    """
    if connection.vendor == "postgresql":
        kinds = _column_kinds()
        if kinds is not None:
            return _copy_binary(run, result, kinds, progress)
    if isinstance(result, PendingPairs):
        result = result.result(progress)
    total = result.n_pairs
    if total == 0:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.copy(_column_sql()) as copy:
            for row in _python_rows(run.pk, result, 0, total):  # text COPY, unusual keys
                copy.write_row(row)
        if progress is not None:
            progress("write", total, total)
        return total
    for start in range(0, total, WRITE_BATCH):
        stop = min(start + WRITE_BATCH, total)
        ProductAffinity.objects.bulk_create(
            [
                ProductAffinity(
                    run_id=row[0],
                    source_id=row[1],
                    target_id=row[2],
                    co_count=row[3],
                    support=row[4],
                    confidence=row[5],
                    lift=row[6],
                    score=row[7],
                )
                for row in _python_rows(run.pk, result, start, stop)
            ],
            batch_size=BULK_CREATE_BATCH,
        )
        if progress is not None:
            progress("write", stop, total)
    return total


def _copy_binary(
    run: AffinityRun,
    result: affinity.AffinityResult | PendingPairs,
    kinds: dict[str, str],
    progress: Progress | None,
) -> int:
    """One binary COPY of every pair, streamed from the engine when it is still pending."""
    ids = _encode_ids(result.product_ids, kinds["source"])
    n_products = len(ids)
    if isinstance(result, PendingPairs):
        blocks = _in_background(_numbered(result))
    else:
        order = _index_order(ids, result.source)
        blocks = _in_background(
            iter([(result.take(order) if order is not None else result, n_products)])
        )
    written = 0
    try:
        # Its own transaction (a savepoint inside a caller's): a failure part-way, on the
        # server or in the engine, then rolls back just the COPY and leaves the connection
        # usable for marking the run failed.
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(_column_sql() + " (FORMAT BINARY)") as copy,
        ):
            copy.write(_COPY_HEADER)
            for block, done in blocks:
                total = block.n_pairs
                for start in range(0, total, WRITE_BATCH):
                    stop = min(start + WRITE_BATCH, total)
                    copy.write(_binary_rows(run.pk, kinds, ids, block, start, stop))
                written += total
                if progress is not None:
                    progress("pairs", done, n_products)
                del block
            copy.write(_COPY_TRAILER)
    finally:
        blocks.close()  # stops the engine thread if the COPY failed
    if progress is not None:  # the server has checked and indexed every row
        progress("write", written, written)
    return written


def _numbered(pending: PendingPairs) -> Iterator[tuple[affinity.AffinityResult, int]]:
    """The pending blocks, each with how many source products are done after it."""
    done = [0]

    def count(stage: str, products_done: int, total: int) -> None:
        done[0] = products_done

    for block in pending.blocks(min_blocks=PIPELINE_BLOCKS, progress=count):
        yield block, done[0]


def _python_rows(
    run_id: int, result: affinity.AffinityResult, start: int, stop: int
) -> Iterator[tuple[Any, ...]]:
    ids = result.product_ids.tolist()
    return zip(
        [run_id] * (stop - start),
        [ids[i] for i in result.source[start:stop].tolist()],
        [ids[i] for i in result.target[start:stop].tolist()],
        result.co_count[start:stop].tolist(),
        result.support[start:stop].tolist(),
        result.confidence[start:stop].tolist(),
        result.lift[start:stop].tolist(),
        result.score[start:stop].tolist(),
        strict=True,
    )


# --- Swapping and pruning --------------------------------------------------------------


def _make_current(run: AffinityRun) -> None:
    """Retire the current run and promote ``run`` in one transaction."""
    with transaction.atomic():
        list(AffinityRun.objects.select_for_update().filter(is_current=True))
        AffinityRun.objects.filter(is_current=True).exclude(pk=run.pk).update(is_current=False)
        run.status = AffinityRun.Status.SUCCEEDED
        run.is_current = True
        run.finished_at = timezone.now()
        run.save()


def prune_runs(keep: int | None = None) -> int:
    """Delete all but the newest ``keep`` finished runs of each outcome; returns runs deleted.

    The current run always stays. Deleting a run deletes its rows in one statement.
    """
    keep = app_settings.KEEP_RUNS if keep is None else keep
    keep = max(int(keep), 1)
    doomed: list[int] = []
    for status in (AffinityRun.Status.SUCCEEDED, AffinityRun.Status.FAILED):
        pks = list(
            AffinityRun.objects.filter(status=status, is_current=False)
            .order_by("-started_at", "-pk")
            .values_list("pk", flat=True)
        )
        kept = keep - 1 if status == AffinityRun.Status.SUCCEEDED else keep
        doomed.extend(pks[kept:])
    if doomed:
        ProductAffinity.objects.filter(run_id__in=doomed).delete()
        AffinityRun.objects.filter(pk__in=doomed).delete()
    return len(doomed)


def _mark_failed(run: AffinityRun, exc: BaseException) -> None:
    message = f"{type(exc).__name__}: {exc}"[:10_000]
    try:
        if connection.in_atomic_block and connection.needs_rollback:
            return  # the caller's transaction is broken; it will roll back our run anyway
        ProductAffinity.objects.filter(run=run).delete()
        AffinityRun.objects.filter(pk=run.pk).update(
            status=AffinityRun.Status.FAILED,
            is_current=False,
            finished_at=timezone.now(),
            error=message,
        )
    except DatabaseError:
        logger.exception("django-crosssell: could not mark affinity run #%s failed", run.pk)
        if not connection.in_atomic_block:
            connection.close()  # a fresh connection for whatever runs next
    run.status = AffinityRun.Status.FAILED
    run.error = message


# --- Running ---------------------------------------------------------------------------


def _compute(params: dict[str, Any], progress: Progress | None) -> PendingPairs:
    """Read the order lines and build the basket matrix; the pairs are left pending."""
    now = timezone.now()
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
    return PendingPairs(
        baskets=_by_product_id(baskets),
        params=params,
        parameters={"lines_read": lines.lines_read, "lines_dropped": lines.lines_dropped},
    )


def run_recompute(
    *,
    run: AffinityRun | None = None,
    min_co_count: int | None = None,
    top_k: int | None = None,
    lookback_days: float | None = None,
    half_life_days: float | None = None,
    metric: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> AffinityRun:
    """Recompute affinity from the configured orders and make it current.

    ``None`` parameters come from settings. ``run`` is a queued run created by
    :func:`enqueue_recompute`; a run that already finished is returned untouched, so a
    redelivered task does no work twice. ``dry_run`` reads and computes but writes nothing
    and returns an unsaved run holding the figures.

    Raises :class:`RecomputeParameterError` for bad parameters, :class:`RecomputeLocked`
    when another recompute is running (nothing is changed), and re-raises whatever made
    the run fail after marking it failed (the previous current run stays in use).
    """
    try:
        params = resolve_parameters(
            min_co_count=min_co_count,
            top_k=top_k,
            lookback_days=lookback_days,
            half_life_days=half_life_days,
            metric=metric,
        )
    except RecomputeParameterError as exc:
        if run is not None and not dry_run:
            _mark_failed(run, exc)
        raise
    if dry_run:
        started = timezone.now()
        result = _compute(params, progress).result(progress)
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

    with recompute_lock():
        claimed = _claim(run, params)
        if claimed is None:
            logger.info("django-crosssell: affinity run #%s already finished", run.pk)
            run.refresh_from_db()
            return run
        run = claimed
        began = time.monotonic()
        try:
            result = _compute(params, progress)
            _fill_stats(run, result)
            run.pairs_written = write_affinities(run, result, progress=progress)
            run.parameters = {
                **params,
                "lines_dropped": result.parameters["lines_dropped"],
                "seconds": round(time.monotonic() - began, 3),
            }
            _make_current(run)
            if progress is not None:
                progress("swap", 1, 1)
        except BaseException as exc:
            _mark_failed(run, exc)
            raise
    cache.invalidate()
    try:
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


def _fill_stats(run: AffinityRun, result: affinity.AffinityResult | PendingPairs) -> None:
    run.orders_read = result.n_orders
    run.lines_read = result.parameters.get("lines_read", result.n_lines)
    run.products = result.n_products
    if isinstance(result, affinity.AffinityResult):
        run.pairs_written = result.n_pairs


def enqueue_recompute(**params: Any) -> AffinityRun:
    """Create a queued run and send the task for it once the transaction commits.

    Parameters are validated first (``RecomputeParameterError``), so an API caller gets a
    clear error instead of a failed run; the run id can be returned to the client at once.
    """
    unknown = set(params) - set(PARAMETER_NAMES)
    if unknown:
        raise RecomputeParameterError(f"Unknown parameter(s): {', '.join(sorted(unknown))}.")
    resolve_parameters(**params)  # validation only: the task resolves again when it runs
    explicit = {name: value for name, value in params.items() if value is not None}
    run = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED, parameters=explicit)

    transaction.on_commit(lambda: _send(run, explicit))
    return run


def _send(run: AffinityRun, params: dict[str, Any]) -> None:
    """Send the task; a broker that cannot be reached fails the run instead of the caller.

    The run was already committed and handed to the client, so the clearest outcome of an
    unreachable broker is that run turning ``failed`` with the reason (the API shows it).
    """
    from .tasks import recompute_affinity

    try:
        recompute_affinity.delay(run_id=run.pk, **params)
    except Exception as exc:
        logger.exception("django-crosssell: could not queue affinity run #%s", run.pk)
        AffinityRun.objects.filter(pk=run.pk, status=AffinityRun.Status.QUEUED).update(
            status=AffinityRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"Could not queue the recompute ({type(exc).__name__}: {exc}).",
        )
