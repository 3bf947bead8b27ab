"""Concurrent snapshots on PostgreSQL: one after the other, never a collision."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_crosssell.customers.snapshot import run_snapshot
from django_crosssell.models import CustomerMetrics, MetricsSnapshot
from tests.factories import ProductFactory, make_order
from tests.services import require_postgresql

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
RUNS = 3


def test_concurrent_snapshots_do_not_collide(django_user_model):
    require_postgresql()
    product = ProductFactory()
    for index in range(20):
        user = django_user_model.objects.create_user(f"c{index}", f"c{index}@example.com", "x")
        make_order(product, customer=user, placed_at=timezone.now() - timedelta(days=index))
    barrier = threading.Barrier(RUNS)
    errors: list[Exception] = []

    def worker() -> None:
        try:
            barrier.wait()
            run_snapshot()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(RUNS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert CustomerMetrics.objects.count() == 20
    assert MetricsSnapshot.objects.count() == RUNS
