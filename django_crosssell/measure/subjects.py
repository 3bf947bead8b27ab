"""Hashed identities: what measurement stores instead of people.

A visitor id (a random first-party cookie), a customer key and a browser-session id are
stored only as HMAC-SHA256 digests keyed by a secret derived from ``SECRET_KEY``
(:func:`django.utils.crypto.salted_hmac`), so the tables cannot be joined back to users
without the project's secret, and rotating ``SECRET_KEY`` unlinks old rows. Imports only
Django.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from django.conf import settings

SALT = "django_crosssell.measure.subject"

_keyed: dict[tuple[str, Any], Any] = {}


def salted_sha256(key_salt: str, value: str) -> Any:
    """The HMAC-SHA256 object :func:`django.utils.crypto.salted_hmac` returns (same key
    derivation, same digests), with the derived key and the HMAC's inner and outer pads
    computed once per salt and ``SECRET_KEY`` rather than on every call: tracking signs and
    hashes a few values on every tracked page."""
    secret = settings.SECRET_KEY
    base = _keyed.get((key_salt, secret))
    if base is None:
        if len(_keyed) >= 64:  # SECRET_KEY overridden many times (tests): stay bounded
            _keyed.clear()
        raw = secret.encode() if isinstance(secret, str) else bytes(secret)
        key = hashlib.sha256(key_salt.encode() + raw).digest()
        base = _keyed[(key_salt, secret)] = hmac.new(key, digestmod=hashlib.sha256)
    mac = base.copy()
    mac.update(value.encode())
    return mac


def hashed(kind: str, value: Any) -> str:
    """``kind`` ("visitor", "customer", "session") keeps equal ids of two kinds apart."""
    if value is None or value == "":
        return ""
    return salted_sha256(f"{SALT}.{kind}", str(value)).hexdigest()


def new_id() -> str:
    return secrets.token_urlsafe(18)
