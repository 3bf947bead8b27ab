"""System checks of the follow-up mail: ``crosssell.E080``... and ``crosssell.W080``...

| id | problem |
|---|---|
| E080 | ``FOLLOWUP_SENDER_NAME`` is empty (特定電子メール法: the sender's name) |
| E081 | ``FOLLOWUP_SENDER_ADDRESS`` is empty (the sender's postal address) |
| E082 | ``FOLLOWUP_SENDER_CONTACT`` is empty (where complaints and questions go) |
| E083 | ``FOLLOWUP_SITE_URL`` is not an absolute http(s) URL (links in mails) |
| E084 | a number setting of the follow-up (caps, quiet hours, delays...) is out of range |
| E085 | ``FOLLOWUP_TIME_ZONE`` is not a known time zone |
| E086 | the unsubscribe URL is not in the URLconf (``django_crosssell.followup.urls``) |
| E087 | ``FOLLOWUP_AUDIENCE_RESOLVER`` cannot be imported |
| W080 | ``FOLLOWUP_SITE_URL`` is not https (providers distrust plain-http unsubscribe links) |
| W081 | ``FOLLOWUP_SENDER_PHONE`` is empty (特定商取引法: a phone number in mail-order ads) |
| W082 | no From address of the shop (``FOLLOWUP_FROM_EMAIL`` / ``DEFAULT_FROM_EMAIL``) |

The value checks (E084, E085, E087) always run; the sender and URL checks only with
``FOLLOWUP_ENABLED``. Imports only ``conf``; no database access.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from ..conf import app_settings

DEFAULT_DJANGO_FROM = "webmaster@localhost"
#: name -> minimum (integers)
INTEGERS = {
    "FOLLOWUP_DELAY_AFTER_DELIVERY_DAYS": 0,
    "FOLLOWUP_DELAY_AFTER_PAYMENT_DAYS": 0,
    "FOLLOWUP_ITEMS": 1,
    "FOLLOWUP_SCAN_BATCH": 1,
    "REPLENISHMENT_LEAD_DAYS": 0,
    "REPLENISHMENT_MIN_SAMPLE": 1,
    "REPLENISHMENT_MIN_OWN_GAPS": 1,
    "REPLENISHMENT_LOOKBACK_DAYS": 1,
    "SUBSCRIPTION_MIN_GAPS": 2,
}


def _error(message: str, hint: str, id_: str) -> checks.Error:
    return checks.Error(message, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


def _warning(message: str, hint: str, id_: str) -> checks.Warning:
    return checks.Warning(message, hint=hint, obj="settings.CROSSSELL", id=f"crosssell.{id_}")


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_values() -> Iterable[checks.CheckMessage]:
    for name, minimum in INTEGERS.items():
        value = getattr(app_settings, name)
        if not _is_int(value, minimum):
            yield _error(
                f"CROSSSELL['{name}'] must be an integer of at least {minimum}, not {value!r}.",
                "Remove it to use the default.",
                "E084",
            )
    caps = app_settings.FOLLOWUP_FREQUENCY_CAPS
    if not isinstance(caps, list | tuple) or not all(
        isinstance(cap, list | tuple)
        and len(cap) == 2
        and _is_int(cap[0], 1)
        and _is_int(cap[1], 1)
        for cap in caps
    ):
        yield _error(
            f"CROSSSELL['FOLLOWUP_FREQUENCY_CAPS'] = {caps!r} is not a list of "
            "[count, days] pairs.",
            "Write for example [[1, 7], [4, 30]]: one mail per 7 days, four per 30; [] for none.",
            "E084",
        )
    hours = app_settings.FOLLOWUP_QUIET_HOURS
    if hours is not None and not (
        isinstance(hours, list | tuple)
        and len(hours) == 2
        and all(_is_int(hour, 0) and hour <= 23 for hour in hours)
    ):
        yield _error(
            f"CROSSSELL['FOLLOWUP_QUIET_HOURS'] = {hours!r} is not [start hour, end hour].",
            "Write for example [21, 8] (no mail from 21:00 to 08:00), or None.",
            "E084",
        )
    for name, low in (("REPLENISHMENT_PRIOR_WEIGHT", 0), ("SUBSCRIPTION_MAX_CV", 0)):
        value = getattr(app_settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            yield _error(
                f"CROSSSELL['{name}'] must be a number of at least {low}, not {value!r}.",
                "Remove it to use the default.",
                "E084",
            )
    zone = app_settings.FOLLOWUP_TIME_ZONE
    if zone is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            yield _error(
                f"CROSSSELL['FOLLOWUP_TIME_ZONE'] = {zone!r} is not a known time zone.",
                "Use an IANA name such as 'Asia/Tokyo', or None for TIME_ZONE.",
                "E085",
            )
    resolver = app_settings.FOLLOWUP_AUDIENCE_RESOLVER
    if resolver:
        try:
            import_string(resolver)
        except ImportError as exc:
            yield _error(
                f"CROSSSELL['FOLLOWUP_AUDIENCE_RESOLVER'] = {resolver!r} cannot be imported: "
                f"{exc}.",
                "Give the dotted path of a callable name -> audience, or None.",
                "E087",
            )


def _check_sender() -> Iterable[checks.CheckMessage]:
    required = (
        ("FOLLOWUP_SENDER_NAME", "E080", "the name of the shop or company sending the mail"),
        ("FOLLOWUP_SENDER_ADDRESS", "E081", "the sender's postal address"),
        (
            "FOLLOWUP_SENDER_CONTACT",
            "E082",
            "a phone number, e-mail address or URL for complaints and questions",
        ),
    )
    for name, id_, what in required:
        if not str(getattr(app_settings, name) or "").strip():
            yield _error(
                f"CROSSSELL['{name}'] is empty, but every follow-up mail must show {what}.",
                "Japanese law (特定電子メール法, 特定商取引法) asks every promotional mail to "
                "show it; see the README's legal checklist. Or set FOLLOWUP_ENABLED = False.",
                id_,
            )
    if not str(app_settings.FOLLOWUP_SENDER_PHONE or "").strip():
        yield _warning(
            "CROSSSELL['FOLLOWUP_SENDER_PHONE'] is empty.",
            "特定商取引法 asks mail-order advertising to show a phone number (or to say that "
            "it is given without delay on request); see the README's legal checklist.",
            "W081",
        )
    site = str(app_settings.FOLLOWUP_SITE_URL or "")
    parsed = urlparse(site)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        yield _error(
            f"CROSSSELL['FOLLOWUP_SITE_URL'] = {site!r} is not an absolute URL.",
            "Mails have no request: give the shop's address, e.g. 'https://shop.example.jp'.",
            "E083",
        )
    elif parsed.scheme != "https":
        yield _warning(
            f"CROSSSELL['FOLLOWUP_SITE_URL'] = {site!r} is not https.",
            "Mail providers expect https one-click unsubscribe links (RFC 8058).",
            "W080",
        )
    try:
        reverse("crosssell_followup:unsubscribe", kwargs={"token": "x"})
    except NoReverseMatch:
        yield _error(
            "The one-click unsubscribe URL is not in the URLconf.",
            'Add path("mail/", include("django_crosssell.followup.urls")) to your urls.py.',
            "E086",
        )
    sender = app_settings.FOLLOWUP_FROM_EMAIL or getattr(settings, "DEFAULT_FROM_EMAIL", "")
    if not sender or sender == DEFAULT_DJANGO_FROM:
        yield _warning(
            f"Follow-up mail would be sent from {sender!r}.",
            "Set CROSSSELL['FOLLOWUP_FROM_EMAIL'] or DEFAULT_FROM_EMAIL to the shop's address, "
            "e.g. 'ミナト商店 <shop@example.jp>'.",
            "W082",
        )


@checks.register("crosssell")
def check_followup(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages = list(_check_values())
    if app_settings.FOLLOWUP_ENABLED:
        messages.extend(_check_sender())
    return messages
