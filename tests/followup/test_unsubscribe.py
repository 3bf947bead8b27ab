"""One-click unsubscribe: a POST suppresses and is in the ledger; a GET changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client

from django_crosssell.followup import flows
from django_crosssell.followup.models import ConsentEvent, Purpose, ScheduledMessage, Suppression
from django_crosssell.followup.sending import run_due_scan
from django_crosssell.followup.unsubscribe import make_token, read_token

from .conftest import T0

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(enabled, follow_up, consenting, order):
    """A sent follow-up mail; returns (message, the path of its List-Unsubscribe URL)."""
    flows.order_paid(order, at=T0)
    run_due_scan(now=T0 + timedelta(days=15))
    url = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    return ScheduledMessage.objects.get(), url.removeprefix("https://minato.example.jp")


def test_a_get_shows_a_confirmation_and_changes_nothing(sent):
    _message, path = sent
    events = ConsentEvent.objects.count()

    response = Client().get(path)

    assert response.status_code == 200
    html = response.content.decode()
    assert "h***@example.jp" in html and "hanako@example.jp" not in html
    assert 'method="post"' in html
    assert ConsentEvent.objects.count() == events
    assert not Suppression.objects.exists()
    assert response["Cache-Control"] == "no-store"


def test_a_one_click_post_suppresses_and_records_the_withdrawal(sent, customer):
    _message, path = sent
    client = Client(enforce_csrf_checks=True)  # the mail provider has no CSRF token

    response = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200  # no login, no redirect
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.purpose, suppression.reason, suppression.source) == (
        "hanako@example.jp",
        Purpose.CROSS_SELL,
        "unsubscribed",
        "one_click",
    )
    withdrawal = ConsentEvent.objects.order_by("-pk").first()
    assert (withdrawal.purpose, withdrawal.action, withdrawal.source) == (
        Purpose.CROSS_SELL,
        "withdraw",
        "one_click",
    )
    assert withdrawal.customer == str(customer.pk)
    # A second click changes nothing but adds a ledger line.
    assert client.post(path).status_code == 200
    assert Suppression.objects.count() == 1


def test_after_unsubscribing_the_next_mail_of_that_purpose_is_skipped_not_the_others(
    sent, catalogue, customer, replenishment_flow, beans_profile
):
    _message, path = sent
    Client().post(path)
    from tests.factories import make_order

    later = make_order(catalogue["beans"], customer=customer, placed_at=T0 + timedelta(days=20))
    follow, restock = sorted(flows.order_paid(later, at=later.placed_at), key=lambda m: m.flow.slug)
    run_due_scan(now=T0 + timedelta(days=20 + 40))

    follow.refresh_from_db()
    restock.refresh_from_db()
    assert (follow.status, follow.reason) == ("skipped", "suppressed")
    assert restock.status == "sent"  # replenishment reminders were not unsubscribed


def test_every_purpose(sent):
    _message, path = sent
    Client().post(path, {"scope": "all"})
    assert Suppression.objects.get().purpose == ""
    withdrawn = ConsentEvent.objects.filter(action="withdraw").values_list("purpose", flat=True)
    assert sorted(withdrawn) == sorted(Purpose.values)


@pytest.mark.parametrize("token", ["nonsense", "0" * 32 + ":forged", ""])
def test_bad_tokens_change_nothing(sent, token):
    response = Client().post(f"/mail/unsubscribe/{token}x/")
    assert response.status_code == 404
    assert not Suppression.objects.exists()


def test_other_methods_are_refused(sent):
    _message, path = sent
    assert Client().put(path).status_code == 405


def test_tokens_are_signed_and_name_nobody(sent):
    message, _path = sent
    token = make_token(message)
    assert read_token(token) == message
    assert read_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert "hanako" not in token and "@" not in token


def test_the_page_speaks_the_mails_language(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0, language="ja")
    run_due_scan(now=T0 + timedelta(days=15))
    path = mail.outbox[0].extra_headers["List-Unsubscribe"].strip("<>")
    path = path.removeprefix("https://minato.example.jp")
    html = Client().post(path).content.decode()
    assert "配信を停止しました" in html
