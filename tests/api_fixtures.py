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
