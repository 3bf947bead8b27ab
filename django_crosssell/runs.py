"""The life of an :class:`~.models.AffinityRun`: lock, claim, make current, fail, prune.

Readers (the recommendation service) only ever look at the run with ``is_current=True``.
A recompute writes every row of its new run first, while the previous run keeps serving,
and then :func:`make_current` flips ``is_current`` in one short transaction (a partial
unique constraint guarantees one current run). A run that fails, or a worker that is
killed, leaves the previous run current; :func:`mark_failed` records the reason and removes
the failed run's partial rows.

Two recomputes never write at once: on PostgreSQL a session-level advisory lock guards the
whole run (the server releases it if the worker dies); elsewhere a cache lock with a
timeout does, backed by a database guard on runs marked ``running`` (:func:`claim_run`).

No numpy: the task and the admin may use these without loading the engine.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from . import partitions
from .conf import app_settings
from .errors import RecomputeLocked
from .models import AffinityCounts, AffinityRun, ProductAffinity, ProductSales, ProductSimilarity

logger = logging.getLogger("django_crosssell")

#: Key of the PostgreSQL advisory lock (ASCII "xsell").
ADVISORY_LOCK_ID = 0x7873656C6C
CACHE_LOCK_KEY = "crosssell:recompute-lock"
#: How long the cache lock (non-PostgreSQL databases) may be held before it is presumed dead.
CACHE_LOCK_TIMEOUT = 6 * 60 * 60


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
    token: str | None = uuid.uuid4().hex
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


def claim_run(run: AffinityRun | None, params: dict[str, Any]) -> AffinityRun | None:
    """Mark the run as running (creating it if needed); ``None`` if it needs no work.

    Call it while holding :func:`recompute_lock`. Runs left ``running`` by a dead worker
    are failed here; on databases without advisory locks a ``running`` run younger than the
    lock timeout is taken to be alive (:class:`RecomputeLocked`).
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
            delete_rows(dead)  # their partial rows
            AffinityRun.objects.filter(pk__in=dead).update(
                status=AffinityRun.Status.FAILED,
                finished_at=now,
                error=INTERRUPTED,
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
        delete_rows([run.pk])
    else:
        ProductSales.objects.filter(run=run).delete()
    return run


INTERRUPTED = "Interrupted: the process running it stopped before it finished."
STOPPED = "Stopped by the watchdog: it ran longer than RECOMPUTE_MAX_SECONDS ({seconds} s)."


def _fail_dead(pks: list[int], message: str) -> int:
    """Fail the runs ``pks`` and delete their rows (a dead run's rows are orphans)."""
    if not pks:
        return 0
    with transaction.atomic():
        delete_rows(pks)
        return AffinityRun.objects.filter(
            pk__in=pks, status=AffinityRun.Status.RUNNING, is_current=False
        ).update(status=AffinityRun.Status.FAILED, finished_at=timezone.now(), error=message)


def lock_holder() -> int | None:
    """The PostgreSQL backend pid holding the recompute's advisory lock, if any."""
    high, low = ADVISORY_LOCK_ID >> 32, ADVISORY_LOCK_ID & 0xFFFFFFFF
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1 AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())",
            [high, low],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def watchdog(max_seconds: int | None = None) -> dict[str, int]:
    """Fail runs whose process is gone, stop runs that hang, and delete their rows.

    Run it every few minutes (the ``recompute_watchdog`` task) so that a killed worker's run
    does not stay ``running``, with its partial rows, until the next recompute notices.
    On PostgreSQL the advisory lock is the heartbeat: it lives exactly as long as the
    worker's database session, so ``running`` runs while nobody holds it are dead. A holder
    older than ``RECOMPUTE_MAX_SECONDS`` is presumed hung: its session is terminated, which
    releases the lock and makes the worker's next query fail. Elsewhere, a run older than
    that is failed and the cache lock removed.
    """
    max_seconds = int(app_settings.RECOMPUTE_MAX_SECONDS if max_seconds is None else max_seconds)
    too_old = timezone.now() - timedelta(seconds=max_seconds)
    running = AffinityRun.objects.filter(status=AffinityRun.Status.RUNNING, is_current=False)
    result = {"failed": 0, "stopped": 0}
    if connection.vendor != "postgresql":
        old = list(running.filter(started_at__lt=too_old).values_list("pk", flat=True))
        result["stopped"] = _fail_dead(old, STOPPED.format(seconds=max_seconds))
        if old:
            try:
                caches[app_settings.CACHE_ALIAS].delete(CACHE_LOCK_KEY)
            except Exception as exc:
                logger.warning("django-crosssell: could not remove the recompute lock (%s)", exc)
        return result
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_ID])
        free = cursor.fetchone()[0]
    if free:
        try:  # nobody is recomputing: every "running" run lost its process
            dead = list(running.values_list("pk", flat=True))
            result["failed"] = _fail_dead(dead, INTERRUPTED)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_ID])
        return result
    old = list(running.filter(started_at__lt=too_old).values_list("pk", flat=True))
    holder = lock_holder()
    if old and holder is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [holder])
        logger.error(
            "django-crosssell: stopped a recompute running longer than %s s (backend %s)",
            max_seconds,
            holder,
        )
        result["stopped"] = _fail_dead(old, STOPPED.format(seconds=max_seconds))
    return result


#: The tables holding a run's computed rows (deleted with a failed or pruned run).
RUN_ROW_MODELS = (ProductAffinity, ProductSales, ProductSimilarity, AffinityCounts)


def delete_rows(run_ids: list[int]) -> None:
    """Delete every computed row of the runs ``run_ids`` (one statement per table).

    A run with a table of its own (:mod:`.partitions`) has it dropped first when its lock
    is granted at once; otherwise its rows are deleted like any others.
    """
    if run_ids and partitions.enabled() and not connection.in_atomic_block:
        partitions.drop(run_ids)
    for model in RUN_ROW_MODELS:
        model.objects.filter(run_id__in=run_ids).delete()


def current_run() -> AffinityRun | None:
    """The run the recommendations come from now, if any."""
    return AffinityRun.objects.filter(is_current=True).first()


def make_current(run: AffinityRun) -> None:
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
        delete_rows(doomed)
        AffinityRun.objects.filter(pk__in=doomed).delete()
    if partitions.enabled() and not connection.in_atomic_block:
        partitions.drop_strays(AffinityRun.objects.values_list("pk", flat=True))
        partitions.analyze_runs()
    return len(doomed)


def mark_failed(run: AffinityRun, exc: BaseException) -> None:
    """Record ``run`` as failed with ``exc`` as the reason and remove its rows; never raises."""
    message = f"{type(exc).__name__}: {exc}"[:10_000]
    try:
        if connection.in_atomic_block and connection.needs_rollback:
            return  # the caller's transaction is broken; it will roll back our run anyway
        delete_rows([run.pk])
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
