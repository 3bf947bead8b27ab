"""Queueing a recompute for the Celery worker (no numpy: the REST API calls it).

:func:`enqueue_recompute` validates the parameters, creates a queued
:class:`~.models.AffinityRun` and sends the task once the transaction commits, so the run's
id can go back to the client at once. The task module (and with it the engine) is imported
only when the task is sent.

A run is never left ``queued`` with nobody to run it: without a Celery app that can reach a
broker (:func:`celery_problem`, also the system check ``crosssell.W002``) the run is failed
at once with the reason, and a broker that cannot be reached fails it too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from .errors import RecomputeParameterError
from .models import AffinityRun
from .params import PARAMETER_NAMES, resolve_parameters

logger = logging.getLogger("django_crosssell")


def celery_problem(app: Any = None) -> str | None:
    """Why a task sent through ``app`` (default: Celery's current app) could never run.

    ``None`` when the app runs tasks eagerly or has a broker configured. Otherwise the host
    has not created its Celery app, or created it without configuration: Celery's fallback
    then sends to ``amqp://guest@localhost//``, where no worker of this shop listens.
    """
    if app is None:
        from celery import current_app

        app = current_app._get_current_object()
    conf = app.conf
    if conf.task_always_eager or conf.broker_url or conf.broker_write_url:
        return None
    who = (
        "Celery's fallback app (the project has not created its Celery app)"
        if app.main == "default"
        else f"the Celery app {app.main!r}"
    )
    return (
        f"No Celery broker is configured: {who} has neither a broker URL nor "
        "task_always_eager, so a queued recompute would never run."
    )


def enqueue_recompute(
    *, allow_shrink: bool = False, incremental: bool = False, **params: Any
) -> AffinityRun:
    """Create a queued run and send the task for it once the transaction commits.

    Parameters are validated first (:class:`~.errors.RecomputeParameterError`), so an API
    caller gets a clear error instead of a failed run. ``allow_shrink`` and
    ``incremental`` are handed to :func:`~.recompute.run_recompute`. Without a usable
    Celery app the run is created ``failed`` with the reason instead of waiting forever.
    """
    unknown = set(params) - set(PARAMETER_NAMES)
    if unknown:
        raise RecomputeParameterError(f"Unknown parameter(s): {', '.join(sorted(unknown))}.")
    resolve_parameters(**params)  # validation only: the task resolves again when it runs
    explicit = {name: value for name, value in params.items() if value is not None}
    if allow_shrink:
        explicit["allow_shrink"] = True
    if incremental:
        explicit["incremental"] = True
    problem = celery_problem()
    if problem is not None:
        logger.error("django-crosssell: affinity recompute not queued: %s", problem)
        return AffinityRun.objects.create(
            status=AffinityRun.Status.FAILED,
            finished_at=timezone.now(),
            parameters=explicit,
            error=f"Could not queue the recompute: {problem}",
        )
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
