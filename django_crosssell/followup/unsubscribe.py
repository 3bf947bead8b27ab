"""One-click unsubscribe (RFC 8058): opaque signed tokens and what an unsubscribe records.

A token is the message's random UUID signed with :mod:`django.core.signing` (salted, so a
token is good for nothing else). It names no address and no customer; it cannot be forged
or guessed, and it keeps working as long as the outbox row exists, as RFC 8058 asks.

Imports ``conf``, ``followup.consent`` and ``followup.models``.
"""

from __future__ import annotations

import uuid

from django.core import signing
from django.db import transaction
from django.urls import reverse

from ..conf import app_settings
from . import consent
from .models import ConsentEvent, ScheduledMessage, Suppression

SALT = "django_crosssell.followup.unsubscribe"
URL_NAME = "crosssell_followup:unsubscribe"


def make_token(message: ScheduledMessage) -> str:
    return signing.Signer(salt=SALT).sign(message.uuid.hex)


def read_token(token: str) -> ScheduledMessage | None:
    """The message a token was made for, or None for a bad or unknown token."""
    try:
        value = uuid.UUID(hex=signing.Signer(salt=SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        return None
    return ScheduledMessage.objects.select_related("flow").filter(uuid=value).first()


def absolute(path_or_url: str) -> str:
    """``FOLLOWUP_SITE_URL`` + a path; absolute URLs are returned unchanged."""
    if not path_or_url or "://" in path_or_url:
        return path_or_url
    base = str(app_settings.FOLLOWUP_SITE_URL or "").rstrip("/")
    return f"{base}/{path_or_url.lstrip('/')}"


def unsubscribe_url(message: ScheduledMessage) -> str:
    return absolute(reverse(URL_NAME, kwargs={"token": make_token(message)}))


def unsubscribe(
    message: ScheduledMessage, *, every_purpose: bool = False, note: str = ""
) -> Suppression:
    """Withdraw consent (ledger, source one-click) and suppress the message's address for
    its flow's purpose, or for every purpose. Idempotent in effect: a second call adds a
    second withdrawal event and finds the suppression already there."""
    purpose = message.flow.purpose
    purposes = consent.ALL_PURPOSES if every_purpose else (purpose,)
    with transaction.atomic():
        consent.withdraw(
            purposes,
            source=ConsentEvent.Source.ONE_CLICK,
            customer=message.customer or None,
            email=message.email,
            note=note or f"message {message.uuid}",
        )
        return consent.suppress(
            message.email,
            purpose="" if every_purpose else purpose,
            reason=Suppression.Reason.UNSUBSCRIBED,
            source=ConsentEvent.Source.ONE_CLICK,
            detail=f"message {message.uuid}",
        )
