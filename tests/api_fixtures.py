"""Users, clients and URLs shared by the REST API tests (tests/test_api*.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

CROSSSELL_MODELS = (
    "productrelation",
    "tierladder",
    "bundlerule",
    "affinityrun",
    "productaffinity",
)

#: Throttling off unless a test is about it; the rates are per minute and tests are fast.
NO_THROTTLE = {"crosssell_anon": None, "crosssell_user": None}


def api_url(name: str, *args: object) -> str:
    return reverse(f"crosssell_api:{name}", args=args)


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


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_THROTTLE_RATES": NO_THROTTLE}


@pytest.fixture
def catalogue():
    """A small shop with one of everything the API shows: a curated link, a ladder, a
    bundle, and a current affinity run."""
    from decimal import Decimal

    from django_crosssell.models import AffinityRun, ProductAffinity
    from tests.factories import (
        BundleItemFactory,
        BundleRuleFactory,
        ProductFactory,
        ProductRelationFactory,
        TierLadderFactory,
        TierStepFactory,
    )

    products = [ProductFactory(price=Decimal(1000 * (i + 1))) for i in range(5)]
    a, b, c, d, _e = products
    relation = ProductRelationFactory(source=a, target=b)
    ladder = TierLadderFactory(name="Kettles", slug="kettles")
    TierStepFactory(ladder=ladder, product=a, rank=1, label="Basic")
    TierStepFactory(ladder=ladder, product=b, rank=2, label="Standard")
    rule = BundleRuleFactory(name="Breakfast set", slug="breakfast", value=Decimal("10"))
    BundleItemFactory(rule=rule, product=a)
    BundleItemFactory(rule=rule, product=c)
    run = AffinityRun.objects.create(status=AffinityRun.Status.SUCCEEDED, is_current=True)
    ProductAffinity.objects.create(
        run=run, source=a, target=d, co_count=5, support=0.1, confidence=0.5, lift=2.0, score=0.5
    )
    return {
        "products": products,
        "relation": relation,
        "ladder": ladder,
        "rule": rule,
        "run": run,
    }
