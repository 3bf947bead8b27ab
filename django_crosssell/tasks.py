"""Celery tasks. The library only declares ``@shared_task``s; the host owns the Celery app.

Schedule the nightly recompute with plain Celery beat::

    CELERY_BEAT_SCHEDULE = {
        "crosssell-recompute": {
            "task": "django_crosssell.tasks.recompute_affinity",
            "schedule": crontab(hour=3, minute=0),
        },
    }

or, with django-celery-beat, add a *Periodic task* in the admin whose task is
``django_crosssell.tasks.recompute_affinity`` (keyword arguments such as
``{"top_k": 30}`` override the settings for that schedule). With ``INCREMENTAL``, a
second schedule with ``{"incremental": true}`` (hourly, say) slides the window between
the full runs.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

from .cache import invalidate, invalidation_pending
from .customers import tasks as customers_tasks  # noqa: F401  (registers the customers tasks)
from .errors import RecomputeLocked
from .followup import tasks as followup_tasks  # noqa: F401  (registers the follow-up tasks)
from .measure import tasks as measure_tasks  # noqa: F401  (registers the measurement tasks)
from .models import AffinityRun
from .recompute import run_recompute
from .runs import mark_failed, watchdog

logger = logging.getLogger("django_crosssell")

#: Database errors worth retrying: a restarted server, a dropped connection, a deadlock.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
MAX_RETRIES = 5


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: exponential with jitter, capped."""
    return min(600.0, 10.0 * 2**retries) * random.uniform(0.8, 1.2)


#: A redelivered recompute is dropped after this many interrupted runs in a row.
MAX_INTERRUPTED = 3


def _redelivered(task: Any) -> bool:
    return bool((getattr(task.request, "delivery_info", None) or {}).get("redelivered"))


def interrupted_in_a_row() -> int:
    """How many of the latest finished runs were interrupted (their worker died)."""
    errors = (
        AffinityRun.objects.exclude(
            status__in=[AffinityRun.Status.QUEUED, AffinityRun.Status.RUNNING]
        )
        .order_by("-started_at", "-pk")
        .values_list("error", flat=True)[:MAX_INTERRUPTED]
    )
    count = 0
    for error in errors:
        if not error.startswith("Interrupted"):
            break
        count += 1
    return count


@shared_task(name="django_crosssell.tasks.recompute_watchdog")
def recompute_watchdog() -> dict[str, int]:
    """Fail recomputes whose worker is gone and stop hung ones (schedule every 5 minutes).

    See :func:`django_crosssell.runs.watchdog`.
    """
    return watchdog()


@shared_task(bind=True, name="django_crosssell.tasks.replay_invalidation", max_retries=360)
def replay_invalidation(self: Any) -> bool:
    """Invalidate the cache until it answers (every 10 s, for up to an hour).

    Queued by a recompute whose swap could not reach the cache: without it the previous
    run's widgets would be served until they expire (``CACHE_TIMEOUT``).
    """
    if invalidate():
        return True
    if self.request.is_eager:  # no queue to wait in: an eager retry would recurse at once
        return False
    raise self.retry(countdown=10)


@shared_task(
    bind=True,
    name="django_crosssell.tasks.recompute_affinity",
    max_retries=MAX_RETRIES,
    acks_late=True,
    # A worker process killed mid-run (OOM killer, a deploy) sends the message back to the
    # queue instead of acknowledging it: the run is redelivered, not left "running".
    reject_on_worker_lost=True,
)
def recompute_affinity(
    self: Any, run_id: int | None = None, allow_shrink: bool = False, **params: Any
) -> dict[str, Any]:
    """Recompute co-purchase affinity (see :func:`~django_crosssell.recompute.run_recompute`).

    Idempotent: a run that already finished is not recomputed when the message is
    delivered again (``acks_late`` redelivers it if the worker dies). When another
    recompute holds the lock a queued run waits by retrying; a scheduled run without an id
    simply skips, because the one running produces the same data. ``allow_shrink`` lets the
    run replace a current run although it read far fewer orders (``MIN_ORDERS_RATIO``).
    """
    run: AffinityRun | None = None
    scheduled = run_id is None
    if _redelivered(self) and interrupted_in_a_row() >= MAX_INTERRUPTED:
        # A run that kills its worker every time (memory) must not loop forever.
        logger.error(
            "django-crosssell: the last %s recomputes were interrupted; not redelivering again",
            MAX_INTERRUPTED,
        )
        if run_id is not None:
            AffinityRun.objects.filter(pk=run_id, status__in=["queued", "running"]).update(
                status=AffinityRun.Status.FAILED,
                error="Abandoned: its worker was lost on every attempt.",
            )
        return {"run_id": run_id, "status": "abandoned"}
    try:
        if run_id is None:
            explicit = {name: value for name, value in params.items() if value is not None}
            if allow_shrink:
                explicit["allow_shrink"] = True
            run = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED, parameters=explicit)
        else:
            run = AffinityRun.objects.filter(pk=run_id).first()
            if run is None:
                logger.warning("django-crosssell: affinity run #%s no longer exists", run_id)
                return {"run_id": run_id, "status": "missing"}
        result = run_recompute(run=run, allow_shrink=allow_shrink, **params)
    except RecomputeLocked as exc:
        if scheduled:
            logger.info("django-crosssell: skipped a scheduled recompute: %s", exc)
            if run is not None:
                run.delete()
            return {"run_id": None, "status": "skipped"}
        if self.request.retries >= self.max_retries:
            if run is not None:
                mark_failed(run, exc)
            raise
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            raise
        if run is not None and run.pk is not None:
            try:  # back to the queue, so that the retry runs this same run again
                AffinityRun.objects.filter(pk=run.pk).update(
                    status=AffinityRun.Status.QUEUED,
                    error=f"Retrying after {type(exc).__name__}: {exc}",
                )
            except DatabaseError:
                close_old_connections()
        logger.warning("django-crosssell: recompute failed (%s); retrying", exc)
        raise self.retry(
            exc=exc,
            countdown=backoff(self.request.retries),
            kwargs={
                **params,
                "run_id": run.pk if run is not None else None,
                "allow_shrink": allow_shrink,
            },
        ) from exc
    if invalidation_pending():  # the swap happened but the cache did not hear of it
        try:
            replay_invalidation.apply_async(countdown=10)
        except Exception as exc:  # the run itself succeeded; the broker is another matter
            logger.warning("django-crosssell: could not queue the cache invalidation (%s)", exc)
    return {
        "run_id": result.pk,
        "status": result.status,
        "orders": result.orders_read,
        "lines": result.lines_read,
        "pairs": result.pairs_written,
    }
