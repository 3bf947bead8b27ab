"""Concurrent due scans on PostgreSQL: every mail is sent once, caps hold across scans."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from django_crosssell.followup import consent, flows
from django_crosssell.followup.models import Purpose, ScheduledMessage
from django_crosssell.followup.sending import run_due_scan
from tests.factories import make_order
from tests.services import require_postgresql

from .conftest import T0

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]
SCANS = 4


def scan_concurrently(now):
    barrier = threading.Barrier(SCANS)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(run_due_scan(now=now, limit=1000))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(SCANS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return [outcome for result in results for outcome in result]


def customers_with_orders(django_user_model, catalogue, count, *, same_customer=False):
    users = []
    for n in range(count):
        if same_customer and users:
            user = users[0]
        else:
            user = django_user_model.objects.create_user(
                username=f"c{n}", email=f"c{n}@example.jp", password="x"
            )
            consent.grant([Purpose.CROSS_SELL], source="checkout", customer=user.pk, at=T0)
        users.append(user)
        flows.order_paid(make_order(catalogue["beans"], customer=user, placed_at=T0), at=T0)
    return users


def test_concurrent_scans_send_each_mail_once(enabled, follow_up, catalogue, django_user_model):
    require_postgresql()
    customers_with_orders(django_user_model, catalogue, 30)

    outcomes = scan_concurrently(T0 + timedelta(days=15))

    assert Counter(outcome.status for outcome in outcomes) == {"sent": 30}
    assert len(mail.outbox) == 30
    assert len({tuple(message.to) for message in mail.outbox}) == 30
    assert set(ScheduledMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert run_due_scan(now=T0 + timedelta(days=15)) == []


def test_concurrent_scans_keep_the_frequency_cap(enabled, follow_up, catalogue, django_user_model):
    require_postgresql()
    customers_with_orders(django_user_model, catalogue, 8, same_customer=True)

    outcomes = scan_concurrently(T0 + timedelta(days=15))

    assert Counter((o.status, o.reason) for o in outcomes) == {
        ("sent", ""): 1,
        ("skipped", "frequency_cap"): 7,
    }
    assert len(mail.outbox) == 1
