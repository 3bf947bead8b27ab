"""The shop's Celery app is loaded with Django, so recomputes queued from the shop run."""

import pytest
from celery import current_app

from django_crosssell.enqueue import enqueue_recompute
from django_crosssell.models import AffinityRun

from .helpers import add_to_cart


def test_the_shops_celery_app_is_current():
    assert current_app.main == "example_shop"


@pytest.mark.django_db(transaction=True)
def test_a_queued_recompute_runs_on_the_shops_app(client, make_product):
    """Eager Celery (no CELERY_BROKER_URL): the run completes instead of waiting forever."""
    shirt, tie = make_product(name="シャツ"), make_product(name="ネクタイ")
    for _ in range(2):
        add_to_cart(client, shirt, 1)
        add_to_cart(client, tie, 1)
        client.post("/checkout/")
    run = enqueue_recompute(min_co_count=1)
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.SUCCEEDED
    assert run.is_current
    assert run.pairs_written == 2
