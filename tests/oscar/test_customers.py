"""The customer snapshot on Oscar's orders (variants as parents, cancelled orders out)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from django_crosssell.customers.snapshot import run_snapshot
from django_crosssell.models import CustomerMetrics

from . import shop

pytestmark = pytest.mark.django_db


def test_the_snapshot_reads_oscars_orders(django_user_model):
    made = shop.catalogue()
    alice = django_user_model.objects.create_user("alice", "alice@example.com", "x")
    shop.buy((made.small, 2), (made.mug, 1), user=alice)
    shop.buy((made.jeans, 1), user=alice)
    cancelled = shop.buy((made.socks, 1), user=alice)
    cancelled.status = "Cancelled"
    cancelled.save()
    shop.buy((made.mug, 1))  # a guest
    snapshot = run_snapshot()
    assert snapshot.customers == 1
    row = CustomerMetrics.objects.get(customer=str(alice.pk))
    assert row.frequency == 2
    assert row.monetary == Decimal("2") * Decimal("12.50") + Decimal("8.25") + Decimal("49.99")
    assert row.segment is not None
