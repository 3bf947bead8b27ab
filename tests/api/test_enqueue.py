"""Queueing a recompute: never a run left ``queued`` when no Celery app can run it.

The test suite's own Celery app (tests/celery_app.py) is eager, so the system check is
quiet and queued runs run; the fixture below swaps in what a host without a configured
Celery app has: an app with no broker, sending to Celery's ``amqp://`` default.
"""

from __future__ import annotations

import pytest
from celery import Celery, current_app
from django.core import checks

from django_crosssell import tasks
from django_crosssell.checks import check_settings
from django_crosssell.enqueue import celery_problem, enqueue_recompute
from django_crosssell.models import AffinityRun
from tests.api.helpers import api_url
from tests.factories import ProductFactory, make_order


@pytest.fixture
def no_celery_app(monkeypatch):
    """Celery's current app is one the host never configured (thread-local, restored)."""
    for name in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL", "CELERY_BROKER_READ_URL"):
        monkeypatch.delenv(name, raising=False)
    previous = current_app._get_current_object()
    bare = Celery("unconfigured-host")  # becomes the current app of this thread
    try:
        yield bare
    finally:
        previous.set_current()
        bare.close()


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.recompute_affinity, "delay", lambda **kw: calls.append(kw))
    return calls


def test_the_test_suites_eager_app_is_fine():
    assert celery_problem() is None
    assert "crosssell.W002" not in [message.id for message in check_settings()]


def test_an_app_with_a_broker_is_fine(monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    app = Celery("with-broker", set_as_current=False, broker="redis://localhost:6379/0")
    assert celery_problem(app) is None


def test_without_a_configured_celery_app_the_check_warns(no_celery_app):
    assert "amqp://" in no_celery_app.connection_for_write().as_uri()  # the fallback
    [warning] = [m for m in check_settings() if m.id == "crosssell.W002"]
    assert warning.level == checks.WARNING
    assert "'unconfigured-host' has neither a broker URL nor task_always_eager" in warning.msg
    assert "CELERY_BROKER_URL" in warning.hint and "CELERY_TASK_ALWAYS_EAGER" in warning.hint


def test_celerys_fallback_app_is_named_in_the_warning(monkeypatch):
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    fallback = Celery("default", set_as_current=False, fixups=[])
    assert "Celery's fallback app" in celery_problem(fallback)


def test_enqueue_without_a_broker_fails_the_run_at_once(
    db, sent, no_celery_app, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = enqueue_recompute(min_co_count=1)
    assert sent == []  # nothing was sent anywhere
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.FAILED
    assert run.finished_at is not None and not run.is_current
    assert run.error.startswith("Could not queue the recompute: No Celery broker is configured")
    assert run.parameters == {"min_co_count": 1}
    assert not AffinityRun.objects.filter(status=AffinityRun.Status.QUEUED).exists()


def test_post_recompute_without_a_broker_answers_with_the_failed_run(
    sent, no_celery_app, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(api_url("recompute"), {"top_k": 5}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "failed"
    assert "No Celery broker is configured" in body["error"]
    assert sent == []


def test_post_recompute_passes_allow_shrink_to_the_task(
    sent, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            api_url("recompute"), {"allow_shrink": True, "top_k": 5}, format="json"
        )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["parameters"] == {"top_k": 5, "allow_shrink": True}
    assert sent == [{"run_id": body["id"], "top_k": 5, "allow_shrink": True}]


def test_a_queued_shrink_is_refused_unless_allowed(db, django_capture_on_commit_callbacks):
    a, b = ProductFactory.create_batch(2)
    orders = [make_order(a, b) for _ in range(4)]
    first = enqueue_and_run(django_capture_on_commit_callbacks)
    assert first.is_current and first.orders_read == 4
    for order in orders[:3]:
        order.status = "cancelled"
        order.save()
    refused = enqueue_and_run(django_capture_on_commit_callbacks)
    assert refused.status == AffinityRun.Status.FAILED
    assert refused.error.startswith("RecomputeRefused:")
    assert "fewer than MIN_ORDERS_RATIO" in refused.error
    first.refresh_from_db()
    assert first.is_current
    allowed = enqueue_and_run(django_capture_on_commit_callbacks, allow_shrink=True)
    allowed.refresh_from_db()
    assert allowed.is_current and allowed.orders_read == 1
    assert allowed.parameters["allow_shrink"] is True


def enqueue_and_run(capture, **params):
    """Enqueue on the eager test app; the task runs when the transaction commits."""
    with capture(execute=True):
        run = enqueue_recompute(min_co_count=1, **params)
    run.refresh_from_db()
    return run
