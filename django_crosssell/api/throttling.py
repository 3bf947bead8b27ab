"""Rate limits configured in ``CROSSSELL["API_THROTTLE_RATES"]``.

The rates live in the app's own settings rather than DRF's ``DEFAULT_THROTTLE_RATES`` so a
host does not have to touch its global REST framework configuration (where missing scopes
raise ``ImproperlyConfigured`` on the first request). A rate of ``None`` switches a scope
off. Counters live in the app's cache alias (``CROSSSELL["CACHE_ALIAS"]``).

Three differences from DRF's throttles, each found by a load test:

* Anonymous clients are keyed by ``REMOTE_ADDR``, or by the address ``NUM_PROXIES``
  trusted proxies saw; DRF's default reads ``X-Forwarded-For`` when no proxy count is set,
  which lets a client rotate that header past any limit.
* The count is one atomic ``INCR`` per request in a fixed window, so concurrent requests
  cannot all read the same history and all pass (DRF keeps a list it reads and writes
  back). A fixed window lets up to twice the rate through across a window boundary.
* They sit behind the app's cache circuit breaker (:func:`django_crosssell.cache.is_down`):
  a dead or hung cache means no throttling for ``RETRY_AFTER`` seconds, not a socket timeout
  on every request.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from django.core.cache import BaseCache, caches
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from .. import cache as app_cache
from ..conf import DEFAULTS, app_settings

if TYPE_CHECKING:
    from rest_framework.throttling import SimpleRateThrottle

    _ThrottleBase = SimpleRateThrottle
else:
    _ThrottleBase = object

logger = logging.getLogger("django_crosssell")


def client_ip(request: Any) -> str:
    """The client's address, trusting ``X-Forwarded-For`` only as far as ``NUM_PROXIES``.

    Each trusted proxy appends the address it received the request from, so with ``n``
    proxies the ``n``-th entry from the right is what the outermost one saw; anything to its
    left was written by the client and proves nothing.
    """
    meta = getattr(request, "META", {})
    remote = str(meta.get("REMOTE_ADDR") or "")
    proxies = app_settings.NUM_PROXIES or 0
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in str(forwarded).split(",") if part.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]


class _CrossSellRateMixin(_ThrottleBase):
    scope: str
    _cache: BaseCache | None = None
    _window_ends: float = 0.0
    _count: int = 0
    # Set by DRF's ``SimpleRateThrottle.__init__`` from the rate (the stubs omit them).
    num_requests: int | None
    duration: int | None

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

    def get_ident(self, request: Request) -> str:
        return client_ip(request)

    def allow_request(self, request: Request, view: Any) -> bool:
        """One atomic count per request; fail open while the cache is down."""
        limit, duration = self.num_requests, self.duration
        if self.rate is None or limit is None or duration is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None or app_cache.is_down():
            return True
        window = int(time.time() // duration)
        key = f"{key}:{window}"
        self._window_ends = (window + 1) * duration
        try:
            store = self.cache
            store.add(key, 0, timeout=duration + 1)
            try:
                count = store.incr(key)
            except ValueError:  # expired between add and incr
                store.add(key, 1, timeout=duration + 1)
                count = 1
        except Exception as exc:
            app_cache.failed(exc, "throttling; not throttling")
            return True
        self._count = int(count)
        return self._count <= limit

    def wait(self) -> float | None:
        """Seconds until the window ends (``Retry-After``)."""
        limit = self.num_requests
        if limit is None or self._count <= limit:
            return None
        return max(0.0, self._window_ends - time.time())


class CrossSellAnonThrottle(_CrossSellRateMixin, AnonRateThrottle):
    """Anonymous clients, keyed by IP address (see :func:`client_ip`)."""

    scope = "crosssell_anon"


class CrossSellUserThrottle(_CrossSellRateMixin, UserRateThrottle):
    """Logged-in clients, keyed by user id."""

    scope = "crosssell_user"
