"""Celery tasks of measurement: thin wrappers (registered by importing
:mod:`django_crosssell.tasks`).

Schedule ``django_crosssell.measure.tasks.rollup`` hourly (it recounts yesterday and today,
so the dashboard's past days never read raw events) and
``django_crosssell.measure.tasks.purge`` daily (raw serves and events older than
``EVENT_RETENTION_DAYS``; rollups and attributed lines stay).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from . import rollups


@shared_task(name="django_crosssell.measure.tasks.rollup", ignore_result=True)
def rollup() -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "yesterday": rollups.rollup(today - timedelta(days=1)),
        "today": rollups.rollup(today),
    }


@shared_task(name="django_crosssell.measure.tasks.purge", ignore_result=True)
def purge() -> dict[str, Any]:
    return {"serves": rollups.purge()}
