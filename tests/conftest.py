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
