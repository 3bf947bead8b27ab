"""The due scan: each mail once, and only to who may get it, with the reason otherwise."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from django_crosssell.followup import consent, flows
from django_crosssell.followup.models import ConsentEvent, Purpose, ScheduledMessage
from django_crosssell.followup.sending import run_due_scan
from tests.factories import ProductFactory, make_order
from tests.testapp.models import Order

from .conftest import T0, TOKYO

pytestmark = pytest.mark.django_db
Status, Reason = ScheduledMessage.Status, ScheduledMessage.Reason


def statuses():
    return sorted(ScheduledMessage.objects.values_list("status", "reason"))


# --- scheduling ------------------------------------------------------------------------------


def test_order_paid_schedules_a_follow_up_fourteen_days_later(enabled, follow_up, order):
    (message,) = flows.order_paid(order, at=T0)

    assert message.flow == follow_up
    assert message.due_at == T0 + timedelta(days=14)
    assert message.anchor_order == str(order.pk)
    assert message.anchor_line == str(order.lines.get().pk)
    assert message.email == "hanako@example.jp"  # normalised
    assert message.customer == str(order.customer_id)


def test_delivery_flows_wait_seven_days_and_a_flow_delay_wins(enabled, follow_up, order):
    follow_up.trigger = "delivered"
    follow_up.save()
    (message,) = flows.order_delivered(order, at=T0)
    assert message.due_at == T0 + timedelta(days=7)

    follow_up.delay_days = 3
    follow_up.save()
    ScheduledMessage.objects.all().delete()
    (message,) = flows.order_delivered(order, at=T0)
    assert message.due_at == T0 + timedelta(days=3)


def test_scheduling_twice_is_idempotent(enabled, follow_up, order):
    first = flows.order_paid(order, at=T0)
    second = flows.order_paid(order, at=T0 + timedelta(hours=1))  # a webhook delivered twice

    assert [m.pk for m in first] == [m.pk for m in second]
    assert ScheduledMessage.objects.count() == 1


def test_nothing_is_scheduled_while_switched_off(settings, follow_up, order):
    assert flows.order_paid(order, at=T0) == []
    assert ScheduledMessage.objects.count() == 0


def test_replenishment_is_due_before_the_supply_runs_out(
    enabled, replenishment_flow, beans_profile, catalogue, customer
):
    order = make_order(catalogue["beans"], catalogue["other"], customer=customer, placed_at=T0)
    line = order.lines.get(product=catalogue["beans"])
    line.quantity = 2
    line.save()

    (message,) = flows.order_paid(order, at=T0)  # only the beans have a profile

    assert message.product_id == catalogue["beans"].pk
    assert message.interval_source == "staff"
    assert message.due_at == T0 + timedelta(days=2 * 30 - 3)  # 2 units x 30 days - 3 lead days


# --- the scan --------------------------------------------------------------------------------


def test_running_the_due_scan_twice_sends_each_mail_once(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)

    assert run_due_scan(now=T0 + timedelta(days=13)) == []  # not due yet
    first = run_due_scan(now=T0 + timedelta(days=15))
    second = run_due_scan(now=T0 + timedelta(days=15))
    third = run_due_scan(now=T0 + timedelta(days=16))

    assert [outcome.status for outcome in first] == ["sent"]
    assert second == [] and third == []
    assert len(mail.outbox) == 1
    message = ScheduledMessage.objects.get()
    assert message.status == Status.SENT
    assert message.sent_at == T0 + timedelta(days=15)


def test_the_mail(enabled, follow_up, consenting, order, catalogue):
    flows.order_paid(order, at=T0)
    run_due_scan(now=T0 + timedelta(days=15))

    (sent,) = mail.outbox
    message = ScheduledMessage.objects.get()
    assert sent.to == ["hanako@example.jp"]
    assert sent.from_email == "ミナト商店 <shop@minato.example.jp>"
    assert "goes well with your recent order" in sent.subject
    # Multipart: text and HTML.
    ((html, mimetype),) = sent.alternatives
    assert mimetype == "text/html"
    # Complements of what was bought, never what was bought.
    assert "Paper filters" in sent.body and "Mug" in sent.body
    assert "Coffee beans" not in sent.body and "Coffee beans" not in html
    assert message.items == [str(catalogue["filters"].pk), str(catalogue["mug"].pk)]
    assert "https://minato.example.jp/shop/products/" in sent.body  # absolute links
    # What the law asks every mail to show.
    for text in (
        "ミナト商店",
        "東京都港区芝公園4-2-8",
        "support@minato.example.jp",
        "03-0000-0000",
    ):
        assert text in sent.body and text in html
    # One-click unsubscribe (RFC 8058) to a POST endpoint with an opaque token.
    header = sent.extra_headers["List-Unsubscribe"]
    assert header.startswith("<https://minato.example.jp/mail/unsubscribe/")
    token = header.strip("<>").rstrip("/").rsplit("/", 1)[1]
    assert "hanako" not in token.lower() and "example" not in token  # names nobody
    assert str(message.uuid.hex) in token  # the random id, signed
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header.strip("<>")
    assert url in sent.body and url in html
    # The message as bytes has both headers.
    raw = sent.message().as_string()
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


def test_japanese_mail(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0, language="ja")
    run_due_scan(now=T0 + timedelta(days=15))

    (sent,) = mail.outbox
    assert "送信者" in sent.body
    assert "先日はご注文いただき" in sent.body
    assert "Thank you" not in sent.body


def test_the_mailto_unsubscribe_is_added_when_configured(enabled, follow_up, consenting, order):
    enabled(FOLLOWUP_UNSUBSCRIBE_MAILTO="unsubscribe@minato.example.jp")
    flows.order_paid(order, at=T0)
    run_due_scan(now=T0 + timedelta(days=15))
    header = mail.outbox[0].extra_headers["List-Unsubscribe"]
    assert header.endswith(", <mailto:unsubscribe@minato.example.jp>")


def test_without_consent_nothing_is_sent_and_the_outbox_says_why(enabled, follow_up, order):
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))

    assert (outcome.status, outcome.reason) == ("skipped", "no_consent")
    assert mail.outbox == []
    assert statuses() == [(Status.SKIPPED, Reason.NO_CONSENT)]


def test_consent_for_another_purpose_is_not_enough(enabled, follow_up, customer, order):
    consent.grant([Purpose.NEWSLETTER], source="account", customer=customer.pk, at=T0)
    flows.order_paid(order, at=T0)
    run_due_scan(now=T0 + timedelta(days=15))
    assert statuses() == [(Status.SKIPPED, Reason.NO_CONSENT)]


def test_a_withdrawal_after_the_order_stops_the_mail(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)
    consent.withdraw([Purpose.CROSS_SELL], source="account", customer=consenting.pk, at=T0)
    run_due_scan(now=T0 + timedelta(days=15))
    assert statuses() == [(Status.SKIPPED, Reason.NO_CONSENT)]
    assert mail.outbox == []


def test_a_suppressed_address_gets_nothing(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)
    consent.suppress("HANAKO@example.jp ", reason="bounced", source="provider")
    run_due_scan(now=T0 + timedelta(days=15))
    assert statuses() == [(Status.SKIPPED, Reason.SUPPRESSED)]
    assert mail.outbox == []


def test_a_customer_who_already_bought_again_gets_nothing(
    enabled, follow_up, consenting, order, catalogue
):
    flows.order_paid(order, at=T0)
    make_order(catalogue["other"], customer=consenting, placed_at=T0 + timedelta(days=3))
    run_due_scan(now=T0 + timedelta(days=15))
    assert statuses() == [(Status.SKIPPED, Reason.REPURCHASED)]
    assert mail.outbox == []


def test_replenishment_is_skipped_only_when_the_same_product_was_bought_again(
    enabled, replenishment_flow, beans_profile, consenting, order, catalogue
):
    (message,) = flows.order_paid(order, at=T0)
    make_order(catalogue["other"], customer=consenting, placed_at=T0 + timedelta(days=3))
    run_due_scan(now=message.due_at)
    assert statuses() == [(Status.SENT, "")]

    second = make_order(catalogue["beans"], customer=consenting, placed_at=T0 + timedelta(days=40))
    (again,) = flows.order_paid(second, at=second.placed_at)
    make_order(catalogue["beans"], customer=consenting, placed_at=T0 + timedelta(days=45))
    run_due_scan(now=again.due_at)
    again.refresh_from_db()
    assert (again.status, again.reason) == (Status.SKIPPED, Reason.REPURCHASED)


def test_a_cancelled_order_gets_nothing(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    run_due_scan(now=T0 + timedelta(days=15))
    assert statuses() == [(Status.SKIPPED, Reason.ORDER_CANCELLED)]


def test_an_inactive_flow_sends_nothing(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)
    follow_up.is_active = False
    follow_up.save()
    run_due_scan(now=T0 + timedelta(days=15))
    assert statuses() == [(Status.SKIPPED, Reason.FLOW_INACTIVE)]


def test_the_frequency_cap_skips_the_second_mail_of_the_week(
    enabled, follow_up, consenting, catalogue
):
    first = make_order(catalogue["beans"], customer=consenting, placed_at=T0)
    second = make_order(catalogue["beans"], customer=consenting, placed_at=T0)
    flows.order_paid(first, at=T0)
    flows.order_paid(second, at=T0)

    outcomes = run_due_scan(now=T0 + timedelta(days=15))

    assert sorted((o.status, o.reason) for o in outcomes) == [
        ("sent", ""),
        ("skipped", "frequency_cap"),
    ]
    assert len(mail.outbox) == 1


def test_the_thirty_day_cap(enabled, follow_up, consenting, catalogue):
    enabled(FOLLOWUP_FREQUENCY_CAPS=[[4, 30]])
    for day in range(5):
        order = make_order(catalogue["beans"], customer=consenting, placed_at=T0)
        flows.order_paid(order, at=T0 + timedelta(days=day))
    # The customer buys nothing again in between: make each scan see only its own message.
    sent = []
    for day in range(5):
        sent += run_due_scan(now=T0 + timedelta(days=14 + day, hours=1))
    assert [o.reason for o in sent] == ["", "", "", "", "frequency_cap"]


def test_quiet_hours_defer_the_mail_to_the_morning(enabled, follow_up, consenting, order):
    (message,) = flows.order_paid(order, at=T0)
    evening = (T0 + timedelta(days=14)).replace(hour=23)

    (outcome,) = run_due_scan(now=evening)

    assert outcome.status == "deferred"
    message.refresh_from_db()
    assert message.status == Status.SCHEDULED
    assert message.due_at == (evening + timedelta(days=1)).replace(hour=8)
    assert mail.outbox == []
    assert run_due_scan(now=evening + timedelta(hours=2)) == []
    (outcome,) = run_due_scan(now=message.due_at)
    assert outcome.status == "sent"


def test_quiet_hours_are_in_the_shops_time_zone(enabled, follow_up, consenting, order):
    enabled(FOLLOWUP_TIME_ZONE="UTC")  # 23:00 in Tokyo is 14:00 UTC: not quiet there
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=(T0 + timedelta(days=14)).replace(hour=23, tzinfo=TOKYO))
    assert outcome.status == "sent"


def only_vips(recipient):
    return recipient.email.startswith("vip")


def test_the_audience_seam_takes_a_callable(enabled, follow_up, consenting, order):
    follow_up.audience = "tests.followup.test_sending.only_vips"
    follow_up.save()
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert (outcome.status, outcome.reason) == ("skipped", "not_in_audience")


def resolve_audience(name):
    from django.contrib.auth import get_user_model

    if name == "hanako-only":
        return get_user_model().objects.filter(username="hanako")
    if name == "nobody":
        return {"someone@else.example"}
    return None


@pytest.mark.parametrize(("name", "status"), [("hanako-only", "sent"), ("nobody", "skipped")])
def test_the_audience_seam_takes_a_queryset_or_a_collection_by_name(
    enabled, follow_up, consenting, order, name, status
):
    enabled(FOLLOWUP_AUDIENCE_RESOLVER="tests.followup.test_sending.resolve_audience")
    follow_up.audience = name
    follow_up.save()
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert outcome.status == status


def test_a_broken_audience_fails_the_message(enabled, follow_up, consenting, order):
    follow_up.audience = "tests.followup.no_such_audience"
    follow_up.save()
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert outcome.status == "failed"
    assert "cannot be resolved" in ScheduledMessage.objects.get().detail
    assert mail.outbox == []


def test_the_mails_items_are_a_serve_with_tracked_links(
    enabled, follow_up, consenting, order, catalogue
):
    from django_crosssell.measure import tracking
    from django_crosssell.models import Serve

    flows.order_paid(order, at=T0)
    run_due_scan(now=T0 + timedelta(days=15))

    serve = Serve.objects.get()
    assert (serve.channel, serve.placement) == ("email", "followup:after-payment")
    assert serve.items == [[str(catalogue["filters"].pk), 1], [str(catalogue["mug"].pk), 2]]
    message = ScheduledMessage.objects.get()
    assert message.serve_id == serve.pk.hex
    body = mail.outbox[0].body
    for position in (1, 2):
        token = tracking.click_token(serve.pk.hex, position)
        assert f"?cs={token}" in body


def test_the_holdout_skips_the_mail(enabled, follow_up, consenting, order, monkeypatch):
    from django_crosssell.measure import experiments, subjects

    held_out = subjects.hashed("customer", consenting.pk)
    monkeypatch.setattr(experiments, "in_holdout", lambda unit: unit == held_out)
    enabled(HOLDOUT=0.05)
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert (outcome.status, outcome.reason) == ("skipped", "holdout")


def test_without_a_holdout_nobody_is_held_out(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert outcome.status == "sent"


def test_nothing_to_recommend_skips(enabled, follow_up, consenting, customer):
    lonely = ProductFactory(name="Lonely")
    order = make_order(lonely, customer=customer, placed_at=T0)
    enabled(FALLBACK=None)
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert (outcome.status, outcome.reason) == ("skipped", "no_items")


def test_an_unavailable_product_is_not_reminded(
    enabled, replenishment_flow, beans_profile, consenting, order, catalogue
):
    (message,) = flows.order_paid(order, at=T0)
    catalogue["beans"].stock = 0
    catalogue["beans"].save()
    (outcome,) = run_due_scan(now=message.due_at)
    assert (outcome.status, outcome.reason) == ("skipped", "unavailable")


def test_the_replenishment_mail(
    enabled, replenishment_flow, beans_profile, consenting, order, catalogue
):
    (message,) = flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=message.due_at)

    assert outcome.status == "sent"
    (sent,) = mail.outbox
    assert "time to restock Coffee beans?" in sent.subject
    assert "you ordered Coffee beans (1 item)" in sent.body
    assert sent.body.index("Coffee beans") < sent.body.index("Paper filters")
    assert ScheduledMessage.objects.get().items[0] == str(catalogue["beans"].pk)


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp is down")


def test_a_send_error_fails_the_message_and_it_is_not_retried(
    enabled, follow_up, consenting, order, settings
):
    settings.EMAIL_BACKEND = "tests.followup.test_sending.FailingBackend"
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert (outcome.status, outcome.reason) == ("failed", "send_error")
    assert "smtp is down" in ScheduledMessage.objects.get().detail
    assert run_due_scan(now=T0 + timedelta(days=16)) == []


def test_a_message_left_sending_is_marked_interrupted_never_resent(
    enabled, follow_up, consenting, order
):
    (message,) = flows.order_paid(order, at=T0)
    ScheduledMessage.objects.filter(pk=message.pk).update(
        status=Status.SENDING, updated_at=timezone.now() - timedelta(hours=2)
    )
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert (outcome.status, outcome.reason) == ("failed", "interrupted")
    assert mail.outbox == []


def test_the_customers_current_address_is_used(enabled, follow_up, consenting, order):
    flows.order_paid(order, at=T0)
    consenting.email = "hanako.new@example.jp"
    consenting.save()
    run_due_scan(now=T0 + timedelta(days=15))
    assert mail.outbox[0].to == ["hanako.new@example.jp"]


def test_a_guest_order_with_consent_by_address(enabled, follow_up, catalogue):
    order = make_order(catalogue["beans"], placed_at=T0)
    order.email = "guest@example.jp"  # the adapter reads order.email when there is one
    consent.grant([Purpose.CROSS_SELL], source="checkout", email="guest@example.jp", at=T0)
    flows.order_paid(order, at=T0)
    (outcome,) = run_due_scan(now=T0 + timedelta(days=15))
    assert outcome.status == "sent"
    assert mail.outbox[0].to == ["guest@example.jp"]


def test_switched_off_the_scan_does_nothing(enabled, follow_up, consenting, order, settings):
    flows.order_paid(order, at=T0)
    enabled(FOLLOWUP_ENABLED=False)
    assert run_due_scan(now=T0 + timedelta(days=15)) == []
    assert ScheduledMessage.objects.get().status == Status.SCHEDULED
    assert ConsentEvent.objects.count() == 2
