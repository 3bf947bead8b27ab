"""The Celery task: eager behaviour, retries, the lock, and a real worker on Redis.

Eager retries need ``task_eager_propagates`` off (fixture ``retries_applied``): with it on,
the ``Retry`` escapes instead of being applied again as a worker would.
"""

from __future__ import annotations

import time
import uuid
from unittest import mock

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.db import OperationalError

from django_crosssell import tasks
from django_crosssell.errors import RecomputeLocked, RecomputeRefused
from django_crosssell.models import AffinityRun, ProductAffinity
from django_crosssell.recompute import run_recompute
from tests.factories import ProductFactory, make_order
from tests.services import require_redis

TASK_NAME = "django_crosssell.tasks.recompute_affinity"


@pytest.fixture
def orders(db):
    a, b, c = ProductFactory.create_batch(3)
    for _ in range(2):
        make_order(a, b, c)
    return a, b, c


@pytest.fixture
def retries_applied():
    conf = tasks.recompute_affinity._get_app().conf
    previous = conf.task_eager_propagates
    conf.task_eager_propagates = False
    yield
    conf.task_eager_propagates = previous


def test_task_without_id_creates_and_finishes_a_run(orders):
    result = tasks.recompute_affinity.apply(kwargs={"top_k": 1}).get()
    run = AffinityRun.objects.get()
    assert result == {
        "run_id": run.pk,
        "status": "succeeded",
        "orders": 2,
        "lines": 6,
        "pairs": 3,
    }
    assert run.is_current
    assert run.parameters["top_k"] == 1


def test_task_is_idempotent_for_a_finished_run(orders):
    run = run_recompute()
    with mock.patch("django_crosssell.recompute.prepare_pairs") as compute:
        result = tasks.recompute_affinity.apply(kwargs={"run_id": run.pk}).get()
    compute.assert_not_called()
    assert result["run_id"] == run.pk
    assert AffinityRun.objects.count() == 1


def test_task_for_a_deleted_run_does_nothing(db):
    assert tasks.recompute_affinity.apply(kwargs={"run_id": 999}).get() == {
        "run_id": 999,
        "status": "missing",
    }


def test_transient_database_errors_are_retried_on_the_same_run(orders, retries_applied):
    real = tasks.run_recompute
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["run"].pk)
        if len(calls) == 1:
            raise OperationalError("could not connect to server")
        return real(**kwargs)

    queued = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED)
    with (
        mock.patch.object(tasks, "run_recompute", flaky),
        mock.patch.object(tasks, "backoff", return_value=0) as backoff,
    ):
        result = tasks.recompute_affinity.apply(kwargs={"run_id": queued.pk})
    assert result.get()["status"] == "succeeded"
    assert calls == [queued.pk, queued.pk]
    backoff.assert_called_once_with(0)
    queued.refresh_from_db()
    assert queued.status == AffinityRun.Status.SUCCEEDED
    assert queued.is_current


def test_retries_give_up_and_leave_the_run_failed(orders, retries_applied):
    real = tasks.run_recompute

    def always_broken(**kwargs):
        with mock.patch(
            "django_crosssell.recompute.write_affinities",
            side_effect=OperationalError("deadlock detected"),
        ):
            return real(**kwargs)

    queued = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED)
    with (
        mock.patch.object(tasks, "run_recompute", always_broken),
        mock.patch.object(tasks, "backoff", return_value=0),
    ):
        result = tasks.recompute_affinity.apply(kwargs={"run_id": queued.pk})
    with pytest.raises(OperationalError):
        result.get()
    queued.refresh_from_db()
    assert queued.status == AffinityRun.Status.FAILED
    assert "deadlock detected" in queued.error
    assert not ProductAffinity.objects.exists()


def test_backoff_grows_and_is_capped():
    assert 8 <= tasks.backoff(0) <= 12
    assert 32 <= tasks.backoff(2) <= 48
    assert tasks.backoff(20) <= 720


def test_a_scheduled_run_skips_while_another_runs(orders):
    with mock.patch.object(tasks, "run_recompute", side_effect=RecomputeLocked("busy")):
        result = tasks.recompute_affinity.apply().get()
    assert result == {"run_id": None, "status": "skipped"}
    assert not AffinityRun.objects.exists()


def test_a_queued_run_waits_for_the_lock_by_retrying(orders, retries_applied):
    real = tasks.run_recompute
    attempts = []

    def busy_then_free(**kwargs):
        attempts.append(1)
        if len(attempts) < 3:
            raise RecomputeLocked("busy")
        return real(**kwargs)

    queued = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED)
    with (
        mock.patch.object(tasks, "run_recompute", busy_then_free),
        mock.patch.object(tasks, "backoff", return_value=0),
    ):
        result = tasks.recompute_affinity.apply(kwargs={"run_id": queued.pk}).get()
    assert len(attempts) == 3
    assert result["status"] == "succeeded"


def test_the_task_refuses_a_shrink_unless_allowed(orders):
    from tests.testapp.models import Order

    first = run_recompute()
    Order.objects.update(status="cancelled")
    with pytest.raises(RecomputeRefused, match="read no orders"):
        tasks.recompute_affinity.apply()
    first.refresh_from_db()
    assert first.is_current
    result = tasks.recompute_affinity.apply(kwargs={"allow_shrink": True}).get()
    assert result["status"] == "succeeded" and result["orders"] == 0
    run = AffinityRun.objects.get(pk=result["run_id"])
    assert run.is_current and run.parameters["allow_shrink"] is True


# --- A real worker ---------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_task_runs_through_a_real_celery_worker_on_redis():
    broker = require_redis()
    a, b, c = ProductFactory.create_batch(3)
    for _ in range(3):
        make_order(a, b)
    make_order(a, c)
    app = Celery("crosssell-worker-test", set_as_current=False)
    app.conf.update(
        broker_url=broker,
        result_backend=None,
        task_always_eager=False,
        # A queue of its own: other test runs may share this Redis database.
        task_default_queue=f"crosssell-test-{uuid.uuid4().hex}",
        broker_connection_retry_on_startup=False,
        worker_hijack_root_logger=False,
    )
    app.loader.import_module("django_crosssell.tasks")
    assert TASK_NAME in app.tasks
    queued = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        app.tasks[TASK_NAME].apply_async(kwargs={"run_id": queued.pk, "min_co_count": 1})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            queued.refresh_from_db()
            if queued.status in (AffinityRun.Status.SUCCEEDED, AffinityRun.Status.FAILED):
                break
            time.sleep(0.2)
    assert queued.status == AffinityRun.Status.SUCCEEDED, queued.error
    assert queued.is_current
    pairs = set(ProductAffinity.objects.filter(run=queued).values_list("source_id", "target_id"))
    assert pairs == {(a.pk, b.pk), (b.pk, a.pk), (a.pk, c.pk), (c.pk, a.pk)}
