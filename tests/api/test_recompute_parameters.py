"""The recompute endpoint takes the engine's newer parameters, checked by ``params.py``."""

from __future__ import annotations

import pytest

from django_crosssell import tasks
from django_crosssell.models import AffinityRun
from tests.api.helpers import api_url
from tests.factories import ProductFactory, make_order


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.recompute_affinity, "delay", lambda **kw: calls.append(kw))
    return calls


def test_weighting_basket_cap_and_incremental_reach_the_task(
    sent, staff_client, django_capture_on_commit_callbacks
):
    body = {"order_weighting": "bm25", "max_basket_size": 40, "incremental": True}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(api_url("recompute"), body, format="json")
    assert response.status_code == 202, response.json()
    run = response.json()
    assert run["parameters"] == body
    assert sent == [{"run_id": run["id"], **body}]


def test_zero_switches_the_basket_cap_off_and_incremental_defaults_to_full(
    sent, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(api_url("recompute"), {"max_basket_size": 0}, format="json")
    assert response.status_code == 202
    assert sent == [{"run_id": response.json()["id"], "max_basket_size": 0}]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"order_weighting": "idf"}, "order_weighting", "not a valid choice"),
        # 1 passes the field's own bounds; the settings' validation (params.py) rejects it
        ({"max_basket_size": 1}, "max_basket_size", "at least 2, or 0"),
        ({"max_basket_size": -3}, "max_basket_size", "greater than or equal to 0"),
        ({"max_basket_size": "many"}, "max_basket_size", "valid integer"),
        ({"incremental": "perhaps"}, "incremental", "valid boolean"),
        ({"lookback_days": 0.001}, "lookback_days", "at least one hour"),
    ],
)
def test_bad_values_are_errors_of_their_field(sent, staff_client, body, field, words):
    response = staff_client.post(api_url("recompute"), body, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field], errors
    assert words in " ".join(errors[field])
    assert sent == [] and not AffinityRun.objects.exists()


def test_an_incremental_run_through_the_api_runs(staff_client, django_capture_on_commit_callbacks):
    """With the suite's eager Celery app the queued run runs: incremental falls back to full."""
    a, b, c = ProductFactory.create_batch(3)
    for _ in range(3):
        make_order(a, b, c)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            api_url("recompute"),
            {"incremental": True, "order_weighting": "none", "min_co_count": 1},
            format="json",
        )
    run = AffinityRun.objects.get(pk=response.json()["id"])
    assert run.status == AffinityRun.Status.SUCCEEDED, run.error
    assert run.parameters["incremental"] is False  # nothing to slide yet: a full run
    assert run.parameters["order_weighting"] == "none"
    assert run.pairs_written == 6


def test_the_engine_is_checked_like_the_setting(
    sent, staff_client, settings, django_capture_on_commit_callbacks
):
    response = staff_client.post(api_url("recompute"), {"engine": "gpu"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["engine"]
    # "dask" is a valid choice, but not without a scheduler to send the blocks to
    response = staff_client.post(api_url("recompute"), {"engine": "dask"}, format="json")
    assert response.status_code == 400
    assert "DASK_SCHEDULER" in response.json()["engine"][0]
    settings.CROSSSELL = {**settings.CROSSSELL, "DASK_SCHEDULER": "tcp://127.0.0.1:8786"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(api_url("recompute"), {"engine": "dask"}, format="json")
    assert response.status_code == 202
    assert sent == [{"run_id": response.json()["id"], "engine": "dask"}]
