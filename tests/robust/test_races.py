"""Concurrent clicks: two "duplicate for a new campaign" actions at once (PostgreSQL)."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.contrib import admin as django_admin
from django.db import connections
from django.test import RequestFactory

from django_crosssell import admin as crosssell_admin
from django_crosssell.models import BundleRule
from tests.factories import BundleItemFactory, BundleRuleFactory
from tests.services import require_postgresql


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_duplicates_both_succeed_with_their_own_slugs(admin_user):
    require_postgresql()
    rule = BundleRuleFactory(slug="summer")
    BundleItemFactory(rule=rule)
    BundleItemFactory(rule=rule)
    model_admin = django_admin.site._registry[BundleRule]
    request = RequestFactory().post("/")
    request.user = admin_user
    barrier = threading.Barrier(2)
    real = crosssell_admin._free_slug
    first_call = threading.local()

    def racing(slug: str) -> str:
        found = real(slug)
        if not getattr(first_call, "done", False):
            first_call.done = True
            barrier.wait(timeout=5)  # both found the same free slug before either saved
        return found

    errors: list[BaseException] = []

    def click() -> None:
        try:
            model_admin.duplicate_for_new_campaign(request, BundleRule.objects.filter(pk=rule.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    with (
        mock.patch.object(crosssell_admin, "_free_slug", racing),
        mock.patch.object(model_admin, "message_user"),
    ):
        threads = [threading.Thread(target=click) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert errors == []
    copies = BundleRule.objects.exclude(pk=rule.pk).order_by("slug")
    assert [copy.slug for copy in copies] == ["summer-copy", "summer-copy-2"]
    assert all(copy.items.count() == 2 and not copy.is_active for copy in copies)
