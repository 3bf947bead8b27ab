"""Recompute liveness: a killed worker's run is failed (and its rows removed) by the
watchdog within one period, a hung one is stopped, and a killed task is redelivered."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from django_crosssell import runs, tasks
from django_crosssell.models import AffinityRun, ProductAffinity
from tests.factories import AffinityRunFactory, ProductAffinityFactory, ProductFactory
from tests.services import require_postgresql

RUNNING = AffinityRun.Status.RUNNING


def running_run(age: timedelta = timedelta(0), rows: int = 3) -> AffinityRun:
    run = AffinityRunFactory(status=RUNNING, started_at=timezone.now() - age)
    products = ProductFactory.create_batch(rows + 1)
    for target in products[1:]:
        ProductAffinityFactory(run=run, source=products[0], target=target)
    return run


@pytest.fixture
def lock_holder() -> Iterator[subprocess.Popen]:
    """A separate process holding the recompute's advisory lock, like a worker mid-run."""
    require_postgresql()
    settings = connection.settings_dict
    script = textwrap.dedent(
        f"""
        import sys, time, psycopg
        conn = psycopg.connect(dbname={settings["NAME"]!r}, user={settings["USER"]!r},
                               host={settings["HOST"] or None!r}, port={settings["PORT"] or None!r},
                               password={settings["PASSWORD"] or None!r}, autocommit=True)
        conn.execute("SELECT pg_advisory_lock(%s)", [{runs.ADVISORY_LOCK_ID}])
        print("locked", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    try:
        yield process
    finally:
        process.kill()
        process.wait(5)


def wait_for_lock_release(seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while runs.lock_holder() is not None and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_run_is_failed_and_its_rows_removed(lock_holder):
    require_postgresql()
    run = running_run()
    assert runs.watchdog() == {"failed": 0, "stopped": 0}  # alive: the lock is held
    assert AffinityRun.objects.get(pk=run.pk).status == RUNNING
    lock_holder.kill()  # SIGKILL, as the OOM killer does
    lock_holder.wait(5)
    wait_for_lock_release()
    assert runs.watchdog() == {"failed": 1, "stopped": 0}
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.FAILED and run.error.startswith("Interrupted")
    assert not ProductAffinity.objects.filter(run=run).exists()  # no orphan rows
    with connection.cursor() as cursor:  # the watchdog let go of the lock it tried
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [runs.ADVISORY_LOCK_ID])
        assert cursor.fetchone()[0] is True
        cursor.execute("SELECT pg_advisory_unlock(%s)", [runs.ADVISORY_LOCK_ID])


@pytest.mark.django_db(transaction=True)
def test_a_hung_recompute_is_stopped_and_its_lock_released(lock_holder):
    require_postgresql()
    run = running_run(age=timedelta(hours=7))
    current = AffinityRunFactory(current=True)
    result = runs.watchdog(max_seconds=6 * 3600)
    assert result == {"failed": 0, "stopped": 1}
    wait_for_lock_release()
    assert runs.lock_holder() is None  # its session was terminated
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.FAILED and "watchdog" in run.error
    assert not ProductAffinity.objects.filter(run=run).exists()
    current.refresh_from_db()
    assert current.is_current and current.status == AffinityRun.Status.SUCCEEDED


@pytest.mark.django_db
def test_without_postgresql_only_runs_past_the_limit_are_stopped(monkeypatch):
    # The path for databases without advisory locks; plain ORM, so it runs on any backend.
    monkeypatch.setattr(connection, "vendor", "sqlite")
    young, old = running_run(), running_run(age=timedelta(hours=7))
    assert runs.watchdog(max_seconds=6 * 3600) == {"failed": 0, "stopped": 1}
    assert AffinityRun.objects.get(pk=young.pk).status == RUNNING
    assert AffinityRun.objects.get(pk=old.pk).status == AffinityRun.Status.FAILED
    assert not ProductAffinity.objects.filter(run=old).exists()
    assert ProductAffinity.objects.filter(run=young).count() == 3


def test_a_killed_task_is_redelivered():
    task = tasks.recompute_affinity
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True


@pytest.mark.django_db
def test_a_run_that_kills_its_worker_every_time_is_abandoned(monkeypatch):
    for _ in range(tasks.MAX_INTERRUPTED):
        AffinityRunFactory(status=AffinityRun.Status.FAILED, error=runs.INTERRUPTED)
    queued = AffinityRunFactory(status=AffinityRun.Status.QUEUED)
    called = []
    monkeypatch.setattr(tasks, "run_recompute", lambda **kwargs: called.append(kwargs))
    tasks.recompute_affinity.push_request(delivery_info={"redelivered": True}, retries=0)
    try:
        result = tasks.recompute_affinity.run(run_id=queued.pk)
    finally:
        tasks.recompute_affinity.pop_request()
    assert result == {"run_id": queued.pk, "status": "abandoned"}
    assert called == []
    queued.refresh_from_db()
    assert queued.status == AffinityRun.Status.FAILED


@pytest.mark.django_db
def test_the_watchdog_task_runs_the_watchdog():
    run = running_run(age=timedelta(days=2))
    result = tasks.recompute_watchdog.delay().get(timeout=10)
    assert result["failed"] + result["stopped"] == 1
    assert AffinityRun.objects.get(pk=run.pk).status == AffinityRun.Status.FAILED


def test_a_lost_invalidation_is_replayed_by_a_task(monkeypatch):
    from django_crosssell import cache

    outcomes = iter([False, True])
    monkeypatch.setattr(tasks, "invalidate", lambda: next(outcomes))
    assert tasks.replay_invalidation.apply().get() is False  # eager: tried once, no recursion
    assert tasks.replay_invalidation.apply().get() is True
    assert not cache.invalidation_pending()


@pytest.mark.django_db
def test_a_recompute_whose_swap_missed_the_cache_queues_the_replay(monkeypatch):
    done = AffinityRunFactory(status=AffinityRun.Status.SUCCEEDED)
    monkeypatch.setattr(tasks, "run_recompute", lambda **kwargs: done)
    monkeypatch.setattr(tasks, "invalidation_pending", lambda: True)
    queued = []
    monkeypatch.setattr(
        tasks.replay_invalidation, "apply_async", lambda **kwargs: queued.append(kwargs)
    )
    result = tasks.recompute_affinity.run()
    assert result["run_id"] == done.pk
    assert queued == [{"countdown": 10}]
