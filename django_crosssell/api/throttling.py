"""Rate limits configured in ``CROSSSELL["API_THROTTLE_RATES"]``.

The rates live in the app's own settings rather than DRF's ``DEFAULT_THROTTLE_RATES`` so a
host does not have to touch its global REST framework configuration (where missing scopes
raise ``ImproperlyConfigured`` on the first request). A rate of ``None`` switches a scope
off. Counters live in the app's cache alias (``CROSSSELL["CACHE_ALIAS"]``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.core.cache import BaseCache, caches
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from ..conf import DEFAULTS, app_settings

if TYPE_CHECKING:
    from rest_framework.throttling import SimpleRateThrottle

    _ThrottleBase = SimpleRateThrottle
else:
    _ThrottleBase = object

logger = logging.getLogger("django_crosssell")


class _CrossSellRateMixin(_ThrottleBase):
    scope: str
    _cache: BaseCache | None = None

    @property
    def cache(self) -> BaseCache:
        """The app's cache alias, looked up on each use (unless a cache was assigned)."""
        if self._cache is not None:
            return self._cache
        return caches[app_settings.CACHE_ALIAS]

    @cache.setter
    def cache(self, value: BaseCache) -> None:
        # DRF's ``cache`` is a plain attribute: keep it assignable.
        self._cache = value

    def get_rate(self) -> str | None:
        rates = app_settings.API_THROTTLE_RATES or {}
        if self.scope in rates:
            return rates[self.scope]
        return DEFAULTS["API_THROTTLE_RATES"].get(self.scope)

    def allow_request(self, request: Request, view: Any) -> bool:
        """Fail open when the cache is down: a dead Redis must not turn every call into 500."""
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            logger.warning("django-crosssell: throttle cache unavailable (%s); not throttling", exc)
            return True


class CrossSellAnonThrottle(_CrossSellRateMixin, AnonRateThrottle):
    """Anonymous clients, keyed by IP address (DRF honours ``NUM_PROXIES``)."""

    scope = "crosssell_anon"


class CrossSellUserThrottle(_CrossSellRateMixin, UserRateThrottle):
    """Logged-in clients, keyed by user id."""

    scope = "crosssell_user"
