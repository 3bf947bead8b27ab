"""Scheduling: when an order is paid or delivered, put the flows' mails in the outbox.

The host calls :func:`order_paid` when an order is paid (a payment webhook, the checkout
view for a shop that takes payment at once) and :func:`order_delivered` when it is
delivered. Each active flow of that trigger gets one :class:`~.models.ScheduledMessage`:

* a **follow-up** flow one per order, anchored at its first line, due ``delay_days``
  later (default 7 after delivery, 14 after payment);
* a **replenishment** flow one per line whose product has an active profile with an
  interval, due a few days before the supply should run out (:mod:`.replenishment`).

The idempotency key is (flow, anchor order line): calling these twice for one order (a
webhook delivered twice) schedules nothing new. Nothing is checked here but the flow's
trigger; consent, suppression, cancellation, repurchase, audience and caps are checked when
the message is due (:mod:`.sending`), so the outbox shows why a mail did not go.

Imports ``adapter``, ``conf``, ``followup.consent``, ``followup.models`` and
``followup.replenishment``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone, translation

from ..adapter import get_adapter
from ..conf import app_settings
from .consent import normalize_email
from .models import FollowUpFlow, ReplenishmentProfile, ScheduledMessage
from .replenishment import plan

PAID = FollowUpFlow.Trigger.PAID
DELIVERED = FollowUpFlow.Trigger.DELIVERED


def default_delay_days(trigger: str) -> int:
    if trigger == DELIVERED:
        return int(app_settings.FOLLOWUP_DELAY_AFTER_DELIVERY_DAYS)
    return int(app_settings.FOLLOWUP_DELAY_AFTER_PAYMENT_DAYS)


def order_paid(
    order: Any, *, at: datetime | None = None, language: str | None = None
) -> list[ScheduledMessage]:
    """Schedule the mails of every active "order paid" flow for ``order``."""
    return schedule(order, trigger=PAID, at=at, language=language)


def order_delivered(
    order: Any, *, at: datetime | None = None, language: str | None = None
) -> list[ScheduledMessage]:
    """Schedule the mails of every active "order delivered" flow for ``order``."""
    return schedule(order, trigger=DELIVERED, at=at, language=language)


def schedule(
    order: Any, *, trigger: str, at: datetime | None = None, language: str | None = None
) -> list[ScheduledMessage]:
    """The messages (new or already there) of ``order`` for the active flows of
    ``trigger``; nothing while ``FOLLOWUP_ENABLED`` is off.

    ``at`` is when the order was paid or delivered (default: what the adapter says, else
    now); ``language`` the mail's language (default: the active one, as at checkout).
    """
    if not app_settings.FOLLOWUP_ENABLED:
        return []
    flows = list(FollowUpFlow.objects.filter(is_active=True, trigger=trigger).order_by("pk"))
    if not flows:
        return []
    adapter = get_adapter()
    items = adapter.order_items(order)
    if not items:
        return []
    if at is None:
        at = adapter.order_paid_at(order) if trigger == PAID else adapter.order_delivered_at(order)
    at = at or timezone.now()
    order_key = str(adapter.order_key(order))
    customer = adapter.order_customer(order)
    common = {
        "anchor_order": order_key,
        "anchor_at": at,
        "customer": "" if customer is None else str(customer),
        "email": normalize_email(adapter.order_email(order)),
        "language": (language or translation.get_language() or settings.LANGUAGE_CODE)[:10],
    }

    def line_key(index: int) -> str:
        line = items[index].line
        return str(line) if line is not None else f"{order_key}:{index}"

    rows: list[ScheduledMessage] = []
    for flow in flows:
        if flow.kind == FollowUpFlow.Kind.FOLLOW_UP:
            delay = flow.delay_days if flow.delay_days is not None else default_delay_days(trigger)
            rows.append(
                ScheduledMessage(
                    flow=flow,
                    anchor_line=line_key(0),
                    quantity=items[0].quantity,
                    due_at=at + timedelta(days=delay),
                    **common,
                )
            )
            continue
        canonical = adapter.canonical_ids([item.product for item in items])
        profiles = {
            str(profile.product_id): profile
            for profile in ReplenishmentProfile.objects.filter(
                is_active=True, product__in=set(canonical.values())
            )
        }
        for index, item in enumerate(items):
            profile = profiles.get(str(canonical.get(item.product, item.product)))
            if profile is None:
                continue
            found = plan(profile, customer=customer, quantity=item.quantity, at=at, adapter=adapter)
            if found is None:
                continue
            rows.append(
                ScheduledMessage(
                    flow=flow,
                    anchor_line=line_key(index),
                    product_id=profile.product_id,
                    quantity=item.quantity,
                    interval_days=found.interval_days,
                    interval_source=found.source,
                    due_at=found.due_at,
                    **common,
                )
            )
    if rows:
        ScheduledMessage.objects.bulk_create(rows, ignore_conflicts=True)
    keys = {(row.flow_id, row.anchor_line) for row in rows}
    existing = ScheduledMessage.objects.filter(
        flow__in=flows, anchor_line__in={line for _, line in keys}
    ).select_related("flow")
    return [message for message in existing if (message.flow_id, message.anchor_line) in keys]
