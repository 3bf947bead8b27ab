"""Cached results of the recommendation service.

Keys are unversioned and hashed; the entries carry the cache version they were computed
under (:func:`django_crosssell.stampede.fetch`), so one ``invalidate()`` makes every entry
stale at once (served only while one request recomputes it). A key holds everything
besides the arguments that changes a result: the settings that shape it, the adapter class
and the language.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.utils import translation

from .. import stampede
from ..conf import app_settings, get_product_model


def fingerprint() -> str:
    """Everything besides the arguments that changes what a result or widget holds."""
    return repr(
        (
            get_product_model()._meta.label,
            app_settings.ADAPTER,
            app_settings.AVAILABLE_PRODUCTS_FILTER,
            app_settings.CATEGORY_FIELD,
            app_settings.FALLBACK,
            app_settings.PRICE_FIELD,
            app_settings.PRICE_FORMATTER,
            app_settings.CURRENCY_DECIMALS,
            app_settings.ROUNDING,
            app_settings.IMAGE_FIELD,
            app_settings.DEFAULT_LIMIT,
            app_settings.MAX_LIMIT,
            app_settings.UPGRADE_MAX_PRICE_RATIO,
            app_settings.PARTNER_MAX_PRICE_RATIO,
            app_settings.EXCLUDE_PURCHASED,
            app_settings.ORDER_LINE_MODEL,
            app_settings.ORDER_FILTER,
            app_settings.LOOKBACK_DAYS,
            translation.get_language(),
        )
    )


def make_key(prefix: str, *parts: Any) -> str:
    """An unversioned key: entries carry their version (see ``stampede.fetch``)."""
    # Hashed: product keys may hold characters memcached refuses, and carts may be long.
    digest = hashlib.blake2b(repr((parts, fingerprint())).encode(), digest_size=16).hexdigest()
    return f"crosssell:e:{prefix}:{digest}"


def cached(key: str, compute: Callable[[], tuple[Any, int]]) -> tuple[Any, float]:
    """``(value, expires_at)`` from the cache, or from ``compute() -> (value, timeout)``.

    The expiry travels with the value so a widget caching its rendered HTML never keeps it
    longer than the data it was made from (a campaign that starts in ten minutes).
    """

    def timed() -> tuple[Any, float]:
        value, timeout = compute()
        return value, time.time() + timeout

    return stampede.fetch(key, timed)  # one computation at a time, stale meanwhile
