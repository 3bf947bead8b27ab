"""The admin: flows with counts, profiles (learned vs staff), the outbox, the consent ledger
(history per customer, CSV export, staff entries) and suppressions."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from django_crosssell.followup import consent, flows
from django_crosssell.followup.models import (
    ConsentEvent,
    FollowUpFlow,
    Purpose,
    ScheduledMessage,
    Suppression,
)
from django_crosssell.followup.sending import run_due_scan

from .conftest import T0

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(enabled, follow_up, consenting, order, catalogue, customer):
    """One sent and one skipped message."""
    from tests.factories import make_order

    flows.order_paid(order, at=T0)
    flows.order_paid(make_order(catalogue["mug"], customer=customer, placed_at=T0), at=T0)
    run_due_scan(now=T0 + timedelta(days=15))
    return ScheduledMessage.objects.all()


@pytest.mark.parametrize(
    "model",
    ["followupflow", "replenishmentprofile", "scheduledmessage", "consentevent", "suppression"],
)
def test_every_changelist_loads(admin_client, outbox, beans_profile, model):
    response = admin_client.get(reverse(f"admin:django_crosssell_{model}_changelist"))
    assert response.status_code == 200


def test_the_flow_list_counts_messages_per_status(admin_client, outbox):
    response = admin_client.get(reverse("admin:django_crosssell_followupflow_changelist"))
    flow = response.context["cl"].result_list[0]
    assert (flow._sent, flow._skipped, flow._scheduled, flow._failed) == (1, 1, 0, 0)


def test_the_flow_list_shows_attributed_revenue(admin_client, outbox):
    from django_crosssell.models import OrderAttribution, OrderRecord

    record = OrderRecord.objects.create(order="o-1", placed_at=timezone.now(), revenue=12800)
    OrderAttribution.objects.create(
        record=record,
        kind="direct",
        product="1",
        revenue=12800,
        placement="followup:after-payment",
        channel="email",
        clicked_at=timezone.now(),
        created_at=timezone.now(),
    )
    response = admin_client.get(reverse("admin:django_crosssell_followupflow_changelist"))
    assert "12,800" in response.content.decode()
    from django_crosssell.followup.measurement import attributed_revenue

    assert attributed_revenue([FollowUpFlow.objects.get().pk]) == {
        FollowUpFlow.objects.get().pk: Decimal(12800)
    }


def test_the_flow_list_shows_a_dash_with_tracking_off(admin_client, outbox, settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "TRACKING": "off"}
    response = admin_client.get(reverse("admin:django_crosssell_followupflow_changelist"))
    assert "—" in response.content.decode()


def test_the_outbox_says_why(admin_client, outbox):
    response = admin_client.get(
        reverse("admin:django_crosssell_scheduledmessage_changelist") + "?status=skipped"
    )
    html = response.content.decode()
    assert "frequency cap reached" in html


def test_the_outbox_is_read_only_and_staff_can_cancel(admin_client, enabled, follow_up, order):
    (message,) = flows.order_paid(order, at=T0)
    url = reverse("admin:django_crosssell_scheduledmessage_changelist")
    admin_client.post(url, {"action": "cancel", "_selected_action": [message.pk]})
    message.refresh_from_db()
    assert (message.status, message.reason) == ("skipped", "cancelled")
    assert "admin" in message.detail
    change = admin_client.get(
        reverse("admin:django_crosssell_scheduledmessage_change", args=[message.pk])
    )
    assert b'name="_save"' not in change.content


def test_consent_history_per_customer_and_csv_export(admin_client, consenting):
    consent.withdraw([Purpose.CROSS_SELL], source="one_click", email=consenting.email)
    url = reverse("admin:django_crosssell_consentevent_changelist")

    history = admin_client.get(url, {"q": "hanako@example.jp"})
    assert len(history.context["cl"].result_list) == 3

    events = ConsentEvent.objects.values_list("pk", flat=True)
    response = admin_client.post(url, {"action": "export_csv", "_selected_action": list(events)})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["action"] for row in rows] == ["grant", "grant", "withdraw"]


def test_staff_record_consent_as_a_new_ledger_event(admin_client, customer):
    url = reverse("admin:django_crosssell_consentevent_add")
    response = admin_client.post(
        url,
        {
            "customer": str(customer.pk),
            "email": "",
            "purpose": "newsletter",
            "action": "grant",
            "note": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = ConsentEvent.objects.get()
    assert (event.source, event.purpose, event.action) == ("admin", "newsletter", "grant")
    assert event.note == "by admin"
    assert consent.has_consent("newsletter", customer=customer.pk)
    # Never edited or deleted in the admin.
    change = admin_client.post(
        reverse("admin:django_crosssell_consentevent_change", args=[event.pk]), {"note": "x"}
    )
    assert change.status_code == 403 or ConsentEvent.objects.get().note == "by admin"
    delete = admin_client.post(
        reverse("admin:django_crosssell_consentevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert ConsentEvent.objects.count() == 1


def test_staff_add_and_lift_suppressions(admin_client):
    add = reverse("admin:django_crosssell_suppression_add")
    admin_client.post(
        add,
        {
            "email": " Someone@Example.jp",
            "purpose": "",
            "reason": "manual",
            "detail": "asked by phone",
        },
    )
    suppression = Suppression.objects.get()
    assert (suppression.email, suppression.source) == ("someone@example.jp", "admin")
    admin_client.post(
        reverse("admin:django_crosssell_suppression_changelist"),
        {"action": "lift", "_selected_action": [suppression.pk]},
    )
    suppression.refresh_from_db()
    assert suppression.lifted_at is not None
    assert consent.active_suppression("someone@example.jp", "cross_sell") is None


def test_profiles_show_learned_and_staff_intervals_and_learn_on_demand(
    admin_client, beans_profile, catalogue, customer
):
    from tests.factories import make_order

    for n in range(3):
        make_order(catalogue["beans"], customer=customer, placed_at=T0 - timedelta(days=40 * n))
    url = reverse("admin:django_crosssell_replenishmentprofile_changelist")
    admin_client.post(url, {"action": "learn_now", "_selected_action": [beans_profile.pk]})
    beans_profile.refresh_from_db()
    assert beans_profile.learned_median_days == pytest.approx(40)
    assert beans_profile.learned_interval_days == pytest.approx((2 * 40 + 10 * 30) / 12)
    html = admin_client.get(url).content.decode()
    assert "31.7" in html and ">30<" in html.replace('value="30"', ">30<")  # interval used
    change = reverse("admin:django_crosssell_replenishmentprofile_change", args=[beans_profile.pk])
    html = admin_client.get(change).content.decode()  # the learned details
    assert "31.7" in html and "40.0" in html


def test_an_unresolvable_audience_is_refused_on_the_form(admin_client):
    response = admin_client.post(
        reverse("admin:django_crosssell_followupflow_add"),
        {
            "name": "VIP",
            "slug": "vip",
            "kind": "follow_up",
            "is_active": "on",
            "trigger": "paid",
            "purpose": "cross_sell",
            "audience": "no.such.audience",
        },
    )
    assert response.status_code == 200
    assert "audience" in response.context["adminform"].form.errors
    assert not FollowUpFlow.objects.exists()


# --- manage.py crosssell_send_due ------------------------------------------------------------


def test_the_command_prints_what_it_sent_and_skipped(
    enabled, follow_up, consenting, order, catalogue, customer, capsys
):
    from tests.factories import make_order

    flows.order_paid(order, at=T0)
    flows.order_paid(make_order(catalogue["mug"], customer=customer, placed_at=T0), at=T0)

    call_command("crosssell_send_due", "--now", "2026-03-17T10:00")

    out = capsys.readouterr().out
    assert "sent     #" in out and "after-payment -> h***@example.jp" in out
    assert "skipped  #" in out and "frequency_cap" in out
    assert "1 sent, 1 skipped, 0 failed, 0 deferred (at 2026-03-17 10:00 JST)." in out
    call_command("crosssell_send_due", "--now", "2026-03-17T10:00")
    assert "0 sent, 0 skipped" in capsys.readouterr().out


def test_the_command_when_switched_off(capsys):
    call_command("crosssell_send_due")
    assert "switched off" in capsys.readouterr().out


def test_the_command_learns_first(enabled, beans_profile, capsys):
    call_command("crosssell_send_due", "--learn", "--now", "2026-03-17")
    assert "Learned intervals of 0 products" in capsys.readouterr().out


def test_the_command_refuses_a_bad_date(enabled):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("crosssell_send_due", "--now", "next tuesday")
