"""django-anymail's tracking signal feeds the suppression list, when anymail is installed.

A hard bounce (``bounced``) or a spam complaint (``complained``) suppresses the address for
every purpose; a provider-side unsubscribe (``unsubscribed``) does too and records a
withdrawal of every purpose in the consent ledger (source ``provider``), as does a
complaint. Soft bounces (``deferred``) and everything else change nothing.

:func:`connect` runs in ``AppConfig.ready()`` and connects only when ``anymail`` can be
imported. Imports ``followup.consent`` and ``followup.models``.
"""

from __future__ import annotations

import logging
from typing import Any

from . import consent
from .models import ConsentEvent, Suppression

logger = logging.getLogger("django_crosssell")

DISPATCH_UID = "django_crosssell.followup.anymail_tracking"
SUPPRESSING_EVENTS = {
    "bounced": Suppression.Reason.BOUNCED,
    "complained": Suppression.Reason.COMPLAINED,
    "unsubscribed": Suppression.Reason.UNSUBSCRIBED,
}
WITHDRAWING_EVENTS = {"complained", "unsubscribed"}


def connect() -> bool:
    """Connect to ``anymail.signals.tracking``; False when anymail is not installed."""
    try:
        from anymail.signals import tracking
    except ImportError:
        return False
    tracking.connect(on_tracking, dispatch_uid=DISPATCH_UID)
    return True


def on_tracking(sender: Any, event: Any, esp_name: str = "", **kwargs: Any) -> None:
    handle_provider_event(
        str(getattr(event, "event_type", "") or ""),
        str(getattr(event, "recipient", "") or ""),
        provider=esp_name,
        description=str(
            getattr(event, "description", "") or getattr(event, "reject_reason", "") or ""
        ),
    )


def handle_provider_event(
    event_type: str, recipient: str, *, provider: str = "", description: str = ""
) -> Suppression | None:
    """Suppress (and for complaints and unsubscribes, withdraw) ``recipient``."""
    reason = SUPPRESSING_EVENTS.get(event_type)
    email = consent.normalize_email(recipient)
    if reason is None or not email:
        return None
    detail = f"{provider}: {event_type} {description}".strip()[:255]
    if event_type in WITHDRAWING_EVENTS:
        consent.withdraw(
            consent.ALL_PURPOSES,
            source=ConsentEvent.Source.PROVIDER,
            email=email,
            note=detail,
        )
    logger.info("django-crosssell: %s suppressed after %s from %s", email, event_type, provider)
    return consent.suppress(
        email, reason=reason, purpose="", source=ConsentEvent.Source.PROVIDER, detail=detail
    )
