"""The due scan: send what is due, once, after checking again that it may go.

:func:`run_due_scan` is what the periodic task and ``manage.py crosssell_send_due`` run.
Messages wait in the outbox (:class:`~.models.ScheduledMessage`) until their due time;
there are no long Celery ETAs (Redis redelivers those after its visibility timeout).

Each message is claimed in its own short transaction with
``select_for_update(skip_locked=True)``, so scans running at the same time never take the
same row; on PostgreSQL an advisory lock per address makes the frequency caps hold across
concurrent scans too. Inside that transaction the message is checked again, in this order:

1. the flow is still active (``flow_inactive``);
2. there is an address (``no_address``; a customer's current address wins);
3. the address is not suppressed for the flow's purpose (``suppressed``);
4. the customer or address has consent for the purpose in the ledger (``no_consent``);
5. the order was not cancelled or refunded (``order_cancelled``, ``adapter.order_cancelled``);
6. the customer has not bought again since (``repurchased``: any order for a follow-up, the
   same product for a replenishment reminder);
7. the flow's audience includes them (``not_in_audience``);
8. they are not held out by measurement (``holdout``);
9. outside quiet hours, else the message waits until they end (not skipped);
10. under the frequency caps (``frequency_cap``);
11. there is something to show (``unavailable``, ``no_items``).

A message that passes is marked ``sending`` and committed *before* the mail goes out, then
``sent``; a worker that dies in between leaves it ``sending`` and the next scan marks it
``failed`` (``interrupted``) instead of sending it again. A mail is sent at most once.

Imports ``adapter``, ``conf``, ``money``, ``recommend`` and the ``followup`` modules
``audience``, ``consent``, ``measurement``, ``models``, ``subscription``, ``unsubscribe``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string, select_template
from django.utils import timezone, translation

from ..adapter import CrossSellAdapter, get_adapter
from ..conf import app_settings
from ..money import format_money
from ..recommend import recommend_for_cart
from . import audience, consent, measurement
from .models import FollowUpFlow, Purpose, ScheduledMessage
from .subscription import suggestion
from .unsubscribe import absolute, unsubscribe_url

logger = logging.getLogger("django_crosssell")

Status = ScheduledMessage.Status
Reason = ScheduledMessage.Reason
#: A message left ``sending`` for longer than this was interrupted.
INTERRUPTED_AFTER = timedelta(hours=1)
TEMPLATE_DIR = "django_crosssell/followup/email"
ADVISORY_NAMESPACE = 0x63534D4C  # "cSML": keeps our advisory locks apart from others'


@dataclass
class Outcome:
    """What one scan did with one message."""

    message: ScheduledMessage
    status: str  # "sent", "skipped", "failed" or "deferred"
    reason: str = ""
    detail: str = ""


class Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Defer(Exception):
    def __init__(self, until: datetime, detail: str) -> None:
        super().__init__(detail)
        self.until = until
        self.detail = detail


# --- the scan --------------------------------------------------------------------------------


def run_due_scan(*, now: datetime | None = None, limit: int | None = None) -> list[Outcome]:
    """Handle up to ``limit`` (``FOLLOWUP_SCAN_BATCH``) messages due at ``now``."""
    if not app_settings.FOLLOWUP_ENABLED:
        return []
    now = now or timezone.now()
    limit = int(limit or app_settings.FOLLOWUP_SCAN_BATCH)
    outcomes = mark_interrupted(now)
    adapter = get_adapter()
    while len(outcomes) < limit:
        claimed = claim_next(now, adapter)
        if claimed is None:
            break
        if claimed.status == "sending":
            claimed = deliver(claimed.message, adapter)
        outcomes.append(claimed)
    return outcomes


def mark_interrupted(now: datetime) -> list[Outcome]:
    """Messages stuck in ``sending`` (a worker died mid-send) become ``failed``: they may
    have gone out, so they are never sent again."""
    stuck = list(
        ScheduledMessage.objects.filter(
            status=Status.SENDING, updated_at__lt=timezone.now() - INTERRUPTED_AFTER
        ).select_related("flow")
    )
    outcomes = []
    for message in stuck:
        updated = ScheduledMessage.objects.filter(pk=message.pk, status=Status.SENDING).update(
            status=Status.FAILED, reason=Reason.INTERRUPTED, updated_at=timezone.now()
        )
        if updated:
            message.status, message.reason = Status.FAILED, Reason.INTERRUPTED
            outcomes.append(Outcome(message, Status.FAILED, Reason.INTERRUPTED))
    return outcomes


def claim_next(now: datetime, adapter: CrossSellAdapter) -> Outcome | None:
    """Lock the next due message nobody else holds, check it and record the decision."""
    with transaction.atomic():
        message = (
            ScheduledMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("flow")
            .filter(status=Status.SCHEDULED, due_at__lte=now)
            .order_by("due_at", "pk")
            .first()
        )
        if message is None:
            return None
        try:
            _lock_address(message.email)
            items = check(message, now, adapter)
        except Skip as skip:
            message.status, message.reason, message.detail = (
                Status.SKIPPED,
                skip.reason,
                skip.detail,
            )
            message.save(update_fields=["status", "reason", "detail", "email", "updated_at"])
            return Outcome(message, Status.SKIPPED, skip.reason, skip.detail)
        except Defer as defer:
            message.due_at, message.detail = defer.until, defer.detail
            message.save(update_fields=["due_at", "detail", "email", "updated_at"])
            return Outcome(message, "deferred", "", defer.detail)
        except ImproperlyConfigured as exc:  # a broken audience: staff must fix the flow
            message.status, message.detail = Status.FAILED, str(exc)
            message.save(update_fields=["status", "detail", "updated_at"])
            return Outcome(message, Status.FAILED, "", str(exc))
        message.status, message.items, message.sent_at = Status.SENDING, items, now
        message.save(update_fields=["status", "items", "sent_at", "email", "updated_at"])
        return Outcome(message, "sending")


def _lock_address(email: str) -> None:
    """Serialise the checks of one address across concurrent scans (PostgreSQL)."""
    if connection.vendor != "postgresql" or not email:
        return
    key = zlib.crc32(email.encode()) - 2**31  # a signed 32-bit key
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_NAMESPACE, key])


# --- the checks ------------------------------------------------------------------------------


def check(message: ScheduledMessage, now: datetime, adapter: CrossSellAdapter) -> list[str]:
    """The product keys the mail shows; raises :class:`Skip` or :class:`Defer`."""
    flow = message.flow
    if not flow.is_active:
        raise Skip(Reason.FLOW_INACTIVE)
    if message.customer:
        current = consent.normalize_email(adapter.customer_email(message.customer))
        message.email = current or message.email
    if not message.email:
        raise Skip(Reason.NO_ADDRESS)
    suppression = consent.active_suppression(message.email, flow.purpose)
    if suppression is not None:
        raise Skip(Reason.SUPPRESSED, f"{suppression.get_reason_display()} ({suppression.source})")
    if not consent.has_consent(flow.purpose, customer=message.customer, email=message.email):
        raise Skip(Reason.NO_CONSENT, flow.get_purpose_display())
    if adapter.order_cancelled(message.anchor_order):
        raise Skip(Reason.ORDER_CANCELLED)
    if message.customer and repurchased(message, adapter):
        raise Skip(Reason.REPURCHASED)
    recipient = audience.Recipient(
        message.customer or None, message.email, message.anchor_order, flow.slug
    )
    if not audience.in_audience(flow.audience, recipient):
        raise Skip(Reason.NOT_IN_AUDIENCE, flow.audience)
    if measurement.in_holdout(message):
        raise Skip(Reason.HOLDOUT)
    quiet_until = end_of_quiet_hours(now)
    if quiet_until is not None:
        raise Defer(quiet_until, f"quiet hours: waits until {quiet_until.isoformat()}")
    over = over_frequency_cap(message.email, now)
    if over:
        raise Skip(Reason.FREQUENCY_CAP, over)
    return items_for(message, adapter)


def repurchased(message: ScheduledMessage, adapter: CrossSellAdapter) -> bool:
    """Whether the customer ordered again after the anchor order (the same product, for a
    replenishment reminder)."""
    since = message.anchor_at - timedelta(days=366)
    rows = list(adapter.purchase_history(customers=[message.customer], since=since))
    anchor = [row for row in rows if str(row[2]) == message.anchor_order]
    placed = min((row[3] for row in anchor), default=message.anchor_at)
    later = [row for row in rows if str(row[2]) != message.anchor_order and row[3] > placed]
    if message.flow.kind == FollowUpFlow.Kind.FOLLOW_UP or message.product_id is None:
        return bool(later)
    canonical = adapter.canonical_ids([row[1] for row in later])
    return any(str(canonical.get(row[1], row[1])) == str(message.product_id) for row in later)


def shop_zone() -> ZoneInfo:
    return ZoneInfo(str(app_settings.FOLLOWUP_TIME_ZONE or settings.TIME_ZONE or "UTC"))


def end_of_quiet_hours(now: datetime) -> datetime | None:
    """When the quiet hours around ``now`` end, or None outside them."""
    hours = app_settings.FOLLOWUP_QUIET_HOURS
    if not hours:
        return None
    start, end = int(hours[0]), int(hours[1])
    local = now.astimezone(shop_zone())
    hour = local.hour
    quiet = (start <= hour < end) if start < end else (hour >= start or hour < end)
    if start == end or not quiet:
        return None
    until = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until


def over_frequency_cap(email: str, now: datetime) -> str:
    """Which frequency cap a mail to ``email`` now would break, or "" when none."""
    for count, days in app_settings.FOLLOWUP_FREQUENCY_CAPS or ():
        sent = ScheduledMessage.objects.filter(
            email=email,
            status__in=[Status.SENT, Status.SENDING],
            sent_at__gt=now - timedelta(days=int(days)),
        ).count()
        if sent >= int(count):
            return f"{sent} in {days} days (cap {count})"
    return ""


def _purchased(customer: str, adapter: CrossSellAdapter) -> set[str]:
    if not customer:
        return set()
    bought = adapter.purchased_product_ids(customer)
    if bought is None:
        return set()
    return {str(value) for row in bought for value in row.values()}


def items_for(message: ScheduledMessage, adapter: CrossSellAdapter) -> list[str]:
    """The products of the mail (keys as strings): the replenished product first, then
    what goes with the order or the product, never what the customer already bought."""
    flow = message.flow
    limit = int(flow.items or app_settings.FOLLOWUP_ITEMS)
    keys: list[str] = []
    if flow.kind == FollowUpFlow.Kind.REPLENISHMENT:
        if message.product_id is None:
            raise Skip(Reason.UNAVAILABLE, "the product was deleted")
        available = adapter.available(adapter.products().filter(pk=message.product_id))
        if not available.exists():
            raise Skip(Reason.UNAVAILABLE)
        keys.append(str(message.product_id))
        basis: Sequence[Any] = [message.product_id]
    else:
        basis = [item.product for item in adapter.order_items(message.anchor_order)]
    if len(keys) < limit and basis:
        exclude = _purchased(message.customer, adapter) - set(keys)
        for rec in recommend_for_cart(basis, limit=min(limit + len(exclude), 20)):
            key = str(rec.product.pk)
            if key not in exclude and key not in keys:
                keys.append(key)
            if len(keys) >= limit:
                break
    if not keys:
        raise Skip(Reason.NO_ITEMS)
    return keys


# --- the mail --------------------------------------------------------------------------------


def deliver(message: ScheduledMessage, adapter: CrossSellAdapter) -> Outcome:
    """Render and send a claimed (``sending``) message; ``sent`` or ``failed``."""
    try:
        products = _products(message.items, adapter)
        serve_id = measurement.record_email_serve(message, products)
        mail = build_mail(message, products, serve_id=serve_id, adapter=adapter)
        mail.send()
    except Exception as exc:
        logger.warning(
            "django-crosssell: follow-up mail %s failed: %s: %s",
            message.uuid,
            type(exc).__name__,
            exc,
            exc_info=True,
        )
        detail = f"{type(exc).__name__}: {exc}"[:2000]
        ScheduledMessage.objects.filter(pk=message.pk).update(
            status=Status.FAILED, reason=Reason.SEND_ERROR, detail=detail, updated_at=timezone.now()
        )
        message.status, message.reason, message.detail = Status.FAILED, Reason.SEND_ERROR, detail
        return Outcome(message, Status.FAILED, Reason.SEND_ERROR, detail)
    ScheduledMessage.objects.filter(pk=message.pk).update(
        status=Status.SENT, serve_id=serve_id, updated_at=timezone.now()
    )
    message.status, message.serve_id = Status.SENT, serve_id
    return Outcome(message, Status.SENT)


def _products(keys: Sequence[str], adapter: CrossSellAdapter) -> list[Any]:
    found = {str(product.pk): product for product in adapter.products().filter(pk__in=list(keys))}
    return [found[key] for key in keys if key in found]


def sender() -> dict[str, str]:
    """Who sends, as the law asks every mail to say (the README's legal checklist)."""
    return {
        "name": str(app_settings.FOLLOWUP_SENDER_NAME or ""),
        "address": str(app_settings.FOLLOWUP_SENDER_ADDRESS or ""),
        "contact": str(app_settings.FOLLOWUP_SENDER_CONTACT or ""),
        "phone": str(app_settings.FOLLOWUP_SENDER_PHONE or ""),
        "responsible": str(app_settings.FOLLOWUP_SENDER_RESPONSIBLE or ""),
    }


def mail_context(
    message: ScheduledMessage, products: Sequence[Any], *, serve_id: str, adapter: CrossSellAdapter
) -> dict[str, Any]:
    prices = adapter.prices(products) if products else {}
    items = []
    for position, product in enumerate(products, start=1):
        url = absolute(adapter.url(product))
        items.append(
            {
                "product": product,
                "name": str(product),
                "url": measurement.tracked_url(
                    url, serve_id=serve_id, product=product, position=position
                )
                if url
                else "",
                "image_url": absolute(adapter.image_url(product)),
                "price": format_money(prices.get(product.pk)),
                "position": position,
            }
        )
    flow = message.flow
    replenished = items[0] if flow.kind == FollowUpFlow.Kind.REPLENISHMENT and items else None
    offer = None
    if replenished is not None and message.customer:
        offer = suggestion(message.customer, replenished["product"], adapter=adapter)
    return {
        "message": message,
        "flow": flow,
        "kind": flow.kind,
        "items": items,
        "replenished": replenished,
        "others": items[1:] if replenished else items,
        "quantity": message.quantity,
        "interval_days": round(message.interval_days) if message.interval_days else None,
        "ordered_on": message.anchor_at.astimezone(shop_zone()).date(),
        "subscription": offer,
        "purpose": Purpose(flow.purpose).label,
        "sender": sender(),
        "site_url": str(app_settings.FOLLOWUP_SITE_URL or "").rstrip("/"),
        "unsubscribe_url": unsubscribe_url(message),
    }


def template_names(message: ScheduledMessage, suffix: str) -> list[str]:
    flow = message.flow
    language = (message.language or settings.LANGUAGE_CODE or "en").split("-")[0]
    names = [f"{flow.template_prefix}{suffix}"] if flow.template_prefix else []
    names += [
        f"{TEMPLATE_DIR}/{language}/{flow.kind}{suffix}",
        f"{TEMPLATE_DIR}/{flow.kind}{suffix}",
    ]
    return names


def build_mail(
    message: ScheduledMessage,
    products: Sequence[Any],
    *,
    serve_id: str = "",
    adapter: CrossSellAdapter | None = None,
) -> EmailMultiAlternatives:
    """The multipart (text + HTML) mail with the one-click unsubscribe headers."""
    adapter = adapter or get_adapter()
    with translation.override(message.language or settings.LANGUAGE_CODE):
        context = mail_context(message, products, serve_id=serve_id, adapter=adapter)
        subject = " ".join(
            render_to_string(template_names(message, "_subject.txt"), context).split()
        )
        text = render_to_string(template_names(message, ".txt"), context)
        html = select_template(template_names(message, ".html")).render(context)
    unsubscribe = [f"<{context['unsubscribe_url']}>"]
    if app_settings.FOLLOWUP_UNSUBSCRIBE_MAILTO:
        unsubscribe.append(f"<mailto:{app_settings.FOLLOWUP_UNSUBSCRIBE_MAILTO}>")
    mail = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=app_settings.FOLLOWUP_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL,
        to=[message.email],
        reply_to=list(app_settings.FOLLOWUP_REPLY_TO or []),
        headers={
            "List-Unsubscribe": ", ".join(unsubscribe),
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    mail.attach_alternative(html, "text/html")
    # django-anymail reads these (tags and metadata at the provider, and back in its
    # tracking webhooks); Django's own backends ignore them.
    mail.tags = [f"crosssell-{message.flow.slug}"]  # type: ignore[attr-defined]
    mail.metadata = {"crosssell_message": str(message.uuid)}  # type: ignore[attr-defined]
    return mail
