"""Celery tasks of the follow-up mail: thin wrappers (registered by importing
:mod:`django_crosssell.tasks`, which Celery's ``autodiscover_tasks()`` finds).

Schedule ``django_crosssell.followup.tasks.send_due`` every few minutes and
``django_crosssell.followup.tasks.learn_replenishment`` nightly (README, "After the
purchase"). The scan is safe to run concurrently and twice: it claims each message with
``select_for_update(skip_locked=True)`` and sends it at most once.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from celery import shared_task

from .replenishment import learn_intervals
from .sending import run_due_scan


@shared_task(name="django_crosssell.followup.tasks.send_due", ignore_result=True)
def send_due(limit: int | None = None) -> dict[str, Any]:
    """Send (or skip, with the reason) the follow-up mails that are due now."""
    outcomes = run_due_scan(limit=limit)
    return dict(Counter(outcome.status for outcome in outcomes))


@shared_task(name="django_crosssell.followup.tasks.learn_replenishment", ignore_result=True)
def learn_replenishment() -> dict[str, Any]:
    """Learn every product's replenishment interval from the orders."""
    learned = learn_intervals()
    return {"products": len(learned)}
