"""Celery tasks of the customers package: thin wrappers (registered by importing
:mod:`django_crosssell.tasks`).

Schedule ``django_crosssell.customers.tasks.snapshot_customers`` nightly (README, "Know the
customers"). It is idempotent: a second run for the same moment writes the same rows and
records no segment change.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="django_crosssell.customers.tasks.snapshot_customers", ignore_result=True)
def snapshot_customers(scorer: str | None = None) -> dict[str, Any]:
    """Recompute every customer's RFM metrics and segment."""
    from .snapshot import run_snapshot  # numpy: only in the worker, never at import

    snapshot = run_snapshot(scorer=scorer)
    return {
        "customers": snapshot.customers,
        "segments": snapshot.segment_counts,
        "seconds": round(snapshot.duration, 2),
    }
