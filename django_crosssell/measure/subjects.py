"""Hashed identities: what measurement stores instead of people.

A visitor id (a random first-party cookie), a customer key and a browser-session id are
stored only as HMAC-SHA256 digests keyed by a secret derived from ``SECRET_KEY``
(:func:`django.utils.crypto.salted_hmac`), so the tables cannot be joined back to users
without the project's secret, and rotating ``SECRET_KEY`` unlinks old rows. Imports only
Django.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.utils.crypto import salted_hmac

SALT = "django_crosssell.measure.subject"


def hashed(kind: str, value: Any) -> str:
    """``kind`` ("visitor", "customer", "session") keeps equal ids of two kinds apart."""
    if value is None or value == "":
        return ""
    return salted_hmac(f"{SALT}.{kind}", str(value), algorithm="sha256").hexdigest()


def new_id() -> str:
    return secrets.token_urlsafe(18)
