"""Consent and suppression: what may be sent to whom, and the record of why.

Consent is a ledger (:class:`~.models.ConsentEvent`): every grant and every withdrawal is a
new row with its source, the consent text's version and SHA-256, and the time. The current
state of a purpose for a customer is the latest event that names the customer or their
address, so a withdrawal made from a mail (which knows the address) also stops mail to the
customer account, and a grant made while logged in also covers the account's address.

A :class:`~.models.Suppression` stops mail to an address regardless of consent: an
unsubscribe (for that purpose, or every purpose), a hard bounce or a spam complaint.

Imports only ``followup.models``.
"""

from __future__ import annotations

import csv
import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ConsentEvent, Purpose, Suppression

GRANT = ConsentEvent.Action.GRANT
WITHDRAW = ConsentEvent.Action.WITHDRAW
#: Every purpose a withdrawal "from everything" covers.
ALL_PURPOSES: tuple[str, ...] = tuple(Purpose.values)


def normalize_email(email: Any) -> str:
    """Addresses are compared trimmed and lower-cased (providers treat them so)."""
    return str(email or "").strip().lower()


def text_hash(text: str) -> str:
    """SHA-256 (hex) of a consent text, after Unicode NFC normalisation and trimming."""
    return hashlib.sha256(unicodedata.normalize("NFC", text.strip()).encode()).hexdigest()


@dataclass(frozen=True)
class ConsentText:
    """The wording a customer agreed to, versioned by the shop ("checkout-2026-01")."""

    version: str
    text: str

    @property
    def hash(self) -> str:
        return text_hash(self.text)


def _subject(customer: Any, email: str) -> Q | None:
    condition = Q()
    found = False
    if customer not in (None, ""):
        condition |= Q(customer=str(customer))
        found = True
    if email:
        condition |= Q(email=email)
        found = True
    return condition if found else None


def record(
    *,
    purposes: Iterable[str],
    action: str,
    source: str,
    customer: Any = None,
    email: str = "",
    text: ConsentText | None = None,
    note: str = "",
    at: datetime | None = None,
) -> list[ConsentEvent]:
    """Append one event per purpose; a grant lifts the address's "unsubscribed"
    suppressions for those purposes (a bounce or a complaint stays)."""
    email = normalize_email(email)
    customer_key = "" if customer is None else str(customer)
    if not customer_key and not email:
        raise ValueError("Consent needs a customer or an e-mail address.")
    purposes = list(dict.fromkeys(purposes))
    unknown = [purpose for purpose in purposes if purpose not in ALL_PURPOSES]
    if unknown or not purposes:
        raise ValueError(f"Unknown consent purposes {unknown!r}; use {ALL_PURPOSES!r}.")
    if action not in (GRANT, WITHDRAW):
        raise ValueError(f"action must be 'grant' or 'withdraw', not {action!r}.")
    at = at or timezone.now()
    with transaction.atomic():
        events = [
            ConsentEvent.objects.create(
                customer=customer_key,
                email=email,
                purpose=purpose,
                action=action,
                source=source,
                text_version=text.version if text else "",
                text_hash=text.hash if text else "",
                note=note[:255],
                created_at=at,
            )
            for purpose in purposes
        ]
        if action == GRANT and email:
            Suppression.objects.filter(
                email=email,
                purpose__in=[*purposes, ""],
                reason=Suppression.Reason.UNSUBSCRIBED,
                lifted_at__isnull=True,
            ).update(lifted_at=at)
    return events


def grant(purposes: Iterable[str], **kwargs: Any) -> list[ConsentEvent]:
    return record(purposes=purposes, action=GRANT, **kwargs)


def withdraw(purposes: Iterable[str], **kwargs: Any) -> list[ConsentEvent]:
    return record(purposes=purposes, action=WITHDRAW, **kwargs)


def latest_event(purpose: str, *, customer: Any = None, email: str = "") -> ConsentEvent | None:
    """The event deciding ``purpose`` for this customer or address, or None (no consent)."""
    condition = _subject(customer, normalize_email(email))
    if condition is None:
        return None
    return (
        ConsentEvent.objects.filter(condition, purpose=purpose)
        .order_by("-created_at", "-pk")
        .first()
    )


def has_consent(purpose: str, *, customer: Any = None, email: str = "") -> bool:
    event = latest_event(purpose, customer=customer, email=email)
    return event is not None and event.action == GRANT


def current_state(*, customer: Any = None, email: str = "") -> dict[str, ConsentEvent | None]:
    """``{purpose: deciding event or None}`` for every purpose (one query)."""
    state: dict[str, ConsentEvent | None] = dict.fromkeys(ALL_PURPOSES)
    condition = _subject(customer, normalize_email(email))
    if condition is None:
        return state
    for event in ConsentEvent.objects.filter(condition).order_by("-created_at", "-pk"):
        if state.get(event.purpose) is None:
            state[event.purpose] = event
    return state


# --- suppressions ----------------------------------------------------------------------------


def suppress(
    email: str,
    *,
    reason: str,
    purpose: str = "",
    source: str = ConsentEvent.Source.ADMIN,
    detail: str = "",
    at: datetime | None = None,
) -> Suppression:
    """Suppress ``email`` for ``purpose`` ("" = every purpose); idempotent."""
    email = normalize_email(email)
    if not email:
        raise ValueError("A suppression needs an e-mail address.")
    existing = Suppression.objects.filter(email=email, purpose=purpose, lifted_at__isnull=True)
    found = existing.first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return Suppression.objects.create(
                email=email,
                purpose=purpose,
                reason=reason,
                source=source,
                detail=detail[:255],
                created_at=at or timezone.now(),
            )
    except IntegrityError:  # suppressed concurrently
        return existing.get()


def active_suppression(email: str, purpose: str) -> Suppression | None:
    """The suppression stopping mail of ``purpose`` to ``email``, or None."""
    email = normalize_email(email)
    if not email:
        return None
    return (
        Suppression.objects.filter(email=email, purpose__in=[purpose, ""], lifted_at__isnull=True)
        .order_by("created_at", "pk")
        .first()
    )


# --- export ----------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "customer",
    "email",
    "purpose",
    "action",
    "source",
    "text_version",
    "text_hash",
    "note",
)


def export_csv(out: IO[str], events: QuerySet[ConsentEvent] | None = None) -> int:
    """Write the ledger (or ``events``) as CSV, oldest first, timestamps in UTC ISO 8601;
    returns the number of rows."""
    if events is None:
        events = ConsentEvent.objects.all()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for event in events.order_by("created_at", "pk").iterator():
        writer.writerow(
            [
                event.pk,
                event.created_at.astimezone(UTC).isoformat(),
                event.customer,
                event.email,
                event.purpose,
                event.action,
                event.source,
                event.text_version,
                event.text_hash,
                event.note,
            ]
        )
        count += 1
    return count
