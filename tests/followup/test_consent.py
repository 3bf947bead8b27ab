"""The consent ledger is append-only, its current state derived, and it exports as CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta

import pytest

from django_crosssell.followup import consent
from django_crosssell.followup.models import AppendOnlyError, ConsentEvent, Purpose, Suppression
from django_crosssell.followup.signals import handle_provider_event

from .conftest import T0

pytestmark = pytest.mark.django_db


def test_the_ledger_is_append_only():
    (event,) = consent.grant([Purpose.CROSS_SELL], source="checkout", email="a@example.jp")
    event.note = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.filter(pk=event.pk).update(note="x")
    with pytest.raises(AppendOnlyError):
        ConsentEvent.objects.all().delete()
    assert ConsentEvent.objects.get().note == ""


def test_the_current_state_is_the_latest_event_of_the_customer_or_the_address():
    consent.grant([Purpose.CROSS_SELL], source="checkout", customer=7, email="A@Example.jp", at=T0)
    assert consent.has_consent(Purpose.CROSS_SELL, customer=7)
    assert consent.has_consent(Purpose.CROSS_SELL, email="a@example.jp")
    assert not consent.has_consent(Purpose.REPLENISHMENT, customer=7)
    # Withdrawn from a mail, which knows only the address: the account is covered too.
    consent.withdraw(
        [Purpose.CROSS_SELL], source="one_click", email="a@example.jp", at=T0 + timedelta(days=1)
    )
    assert not consent.has_consent(Purpose.CROSS_SELL, customer=7, email="a@example.jp")
    consent.grant([Purpose.CROSS_SELL], source="account", customer=7, at=T0 + timedelta(days=2))
    assert consent.has_consent(Purpose.CROSS_SELL, customer=7, email="a@example.jp")
    state = consent.current_state(customer=7)
    assert state[Purpose.CROSS_SELL].source == "account"
    assert state[Purpose.NEWSLETTER] is None
    assert ConsentEvent.objects.count() == 3


def test_nobody_has_consent_without_an_event():
    assert not consent.has_consent(Purpose.CROSS_SELL)
    assert not consent.has_consent(Purpose.CROSS_SELL, customer=1, email="x@example.jp")


def test_the_text_version_and_hash_are_recorded():
    text = consent.ConsentText("checkout-2026-01", "おすすめ商品をメールで受け取る")
    (event,) = consent.grant([Purpose.CROSS_SELL], source="checkout", customer=1, text=text)
    assert event.text_version == "checkout-2026-01"
    assert event.text_hash == hashlib.sha256(text.text.encode()).hexdigest()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="customer or an e-mail"):
        consent.grant([Purpose.CROSS_SELL], source="admin")
    with pytest.raises(ValueError, match="Unknown consent purposes"):
        consent.grant(["spam"], source="admin", customer=1)


def test_a_grant_lifts_an_unsubscribe_but_not_a_bounce():
    consent.suppress("a@example.jp", purpose=Purpose.CROSS_SELL, reason="unsubscribed")
    consent.suppress("b@example.jp", reason="bounced")
    consent.grant([Purpose.CROSS_SELL], source="account", email="a@example.jp")
    consent.grant([Purpose.CROSS_SELL], source="account", email="b@example.jp")
    assert consent.active_suppression("a@example.jp", Purpose.CROSS_SELL) is None
    assert consent.active_suppression("b@example.jp", Purpose.CROSS_SELL).reason == "bounced"


def test_suppressing_twice_keeps_one_row():
    first = consent.suppress("a@example.jp", reason="bounced")
    second = consent.suppress(" A@example.jp", reason="complained")
    assert first.pk == second.pk
    assert Suppression.objects.count() == 1


def test_the_ledger_exports_as_csv():
    consent.grant([Purpose.CROSS_SELL], source="checkout", customer=1, email="a@example.jp", at=T0)
    consent.withdraw([Purpose.CROSS_SELL], source="one_click", email="a@example.jp")
    out = io.StringIO()

    assert consent.export_csv(out) == 2

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["action"] for row in rows] == ["grant", "withdraw"]
    assert rows[0]["created_at"] == "2026-03-02T03:00:00+00:00"
    assert list(rows[0]) == list(consent.EXPORT_COLUMNS)


# --- the e-mail provider (django-anymail) ---------------------------------------------------


def test_anymail_tracking_events_feed_the_suppressions():
    from anymail.signals import AnymailTrackingEvent, tracking

    def send(event_type, recipient):
        event = AnymailTrackingEvent(event_type=event_type, recipient=recipient)
        tracking.send(sender=object, event=event, esp_name="Postmark")

    send("delivered", "a@example.jp")
    send("deferred", "a@example.jp")  # a soft bounce
    assert not Suppression.objects.exists()

    send("bounced", "a@example.jp")
    send("complained", "b@example.jp")
    bounced, complained = Suppression.objects.order_by("email")
    assert (bounced.reason, bounced.purpose, bounced.source) == ("bounced", "", "provider")
    assert "Postmark" in bounced.detail
    assert complained.reason == "complained"
    # A complaint also withdraws every purpose in the ledger; a bounce does not.
    assert set(ConsentEvent.objects.values_list("email", "action")) == {
        ("b@example.jp", "withdraw")
    }
    assert ConsentEvent.objects.count() == len(Purpose.values)


def test_provider_events_without_anymail():
    """What the signal handler does, called directly (hosts on another mail backend)."""
    assert handle_provider_event("opened", "a@example.jp") is None
    suppression = handle_provider_event("unsubscribed", "A@example.jp", provider="SES")
    assert (suppression.email, suppression.reason) == ("a@example.jp", "unsubscribed")
