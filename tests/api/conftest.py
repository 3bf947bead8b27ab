"""Fixtures of the REST API tests (``tests/api/``): users, clients and a small catalogue.

Throttling is off in this package unless a test is about it (``test_throttling.py`` sets
its own rates): the rates are per minute and tests are fast.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from tests.factories import (
    AffinityRunFactory,
    BundleItemFactory,
    BundleRuleFactory,
    ProductAffinityFactory,
    ProductFactory,
    ProductRelationFactory,
    TierLadderFactory,
    TierStepFactory,
)

CROSSSELL_MODELS = (
    "productrelation",
    "tierladder",
    "bundlerule",
    "affinityrun",
    "productaffinity",
)

NO_THROTTLE = {"crosssell_anon": None, "crosssell_user": None}


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_THROTTLE_RATES": NO_THROTTLE}


@pytest.fixture
def staff_user(django_user_model):
    """A merchandiser: staff with every django-crosssell model permission (not superuser)."""
    user = django_user_model.objects.create_user("staff", password="staff-pass", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_crosssell",
            content_type__model__in=CROSSSELL_MODELS,
        )
    )
    return user


@pytest.fixture
def customer_user(django_user_model):
    return django_user_model.objects.create_user("customer", password="customer-pass")


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def customer_client(customer_user):
    client = APIClient()
    client.force_authenticate(customer_user)
    return client


@pytest.fixture
def staff_client(staff_user):
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def catalogue():
    """A small shop with one of everything the API shows: a curated link, a ladder, a
    bundle, and a current affinity run."""
    products = [ProductFactory(price=Decimal(1000 * (i + 1))) for i in range(5)]
    a, b, c, d, _e = products
    relation = ProductRelationFactory(source=a, target=b)
    ladder = TierLadderFactory(name="Kettles", slug="kettles")
    TierStepFactory(ladder=ladder, product=a, rank=1, label="Basic")
    TierStepFactory(ladder=ladder, product=b, rank=2, label="Standard")
    rule = BundleRuleFactory(name="Breakfast set", slug="breakfast", value=Decimal("10"))
    BundleItemFactory(rule=rule, product=a)
    BundleItemFactory(rule=rule, product=c)
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(
        run=run, source=a, target=d, co_count=5, support=0.1, confidence=0.5, lift=2.0, score=0.5
    )
    return {
        "products": products,
        "relation": relation,
        "ladder": ladder,
        "rule": rule,
        "run": run,
    }
