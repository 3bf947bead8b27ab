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
``{"top_k": 30}`` override the settings for that schedule).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

from .customers import tasks as customers_tasks  # noqa: F401  (registers the customers tasks)
from .errors import RecomputeLocked
from .followup import tasks as followup_tasks  # noqa: F401  (registers the follow-up tasks)
from .models import AffinityRun
from .recompute import run_recompute
from .runs import mark_failed

logger = logging.getLogger("django_crosssell")

#: Database errors worth retrying: a restarted server, a dropped connection, a deadlock.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)
MAX_RETRIES = 5


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: exponential with jitter, capped."""
    return min(600.0, 10.0 * 2**retries) * random.uniform(0.8, 1.2)


@shared_task(
    bind=True,
    name="django_crosssell.tasks.recompute_affinity",
    max_retries=MAX_RETRIES,
    acks_late=True,
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
    return {
        "run_id": result.pk,
        "status": result.status,
        "orders": result.orders_read,
        "lines": result.lines_read,
        "pairs": result.pairs_written,
    }
