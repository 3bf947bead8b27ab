import contextlib

import pytest
from django.core.cache import caches

from django_crosssell import stampede
from django_crosssell.measure import experiments
from tests.celery_app import app as celery_app  # noqa: F401  (the host's Celery app)


@pytest.fixture(autouse=True)
def _clear_caches():
    """Each test starts with empty caches, whichever backend CACHES points at."""
    for cache in caches.all():
        # A dead cache is some tests' very subject.
        with contextlib.suppress(Exception):
            cache.clear()
    stampede.forget_local()
    experiments.forget_local()
    yield


@pytest.fixture(scope="session")
def dask_client():
    """An in-process two-worker cluster, started once: each start costs about a second."""
    distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client
