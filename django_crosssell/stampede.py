"""One computation per cold result: stale-while-revalidate and a short cache lock.

Every invalidation (an edit, a sell-out, a new affinity run) makes every cached widget cold
at once. Without this module each concurrent request for a cold widget would compute it,
all at the same moment, which is what turns a run swap under load into a pile-up of the
same queries. Here:

* An entry is ``(version, value, expires_at)`` and stays in the cache ``STALE_SECONDS``
  past its freshness. A request finding it stale (expired, or written under an older cache
  version) takes a short cache lock (``cache.add``) and recomputes; the others keep
  serving the stale value meanwhile, so a swap costs one computation per key, not one per
  request.
* A request finding nothing takes the lock or waits up to ``CACHE_LOCK_WAIT_MS`` for the
  winner's value, then computes itself (a dead winner delays a page by that much, once).
* Widgets (``defer=True``): inside a request, even the request that wins the lock serves
  the stale value and
  recomputes after its response has been sent (``request_finished``, same thread and
  language), so after a swap no visitor waits for a widget that has a stale copy.
* When the computation fails (a query timeout, see :mod:`.timeouts`) a stale value is
  served instead of nothing.
* While the shared cache is down (:func:`.cache.is_down`) results are kept in a small
  per-process memory for ``LOCAL_SECONDS``: a dead Redis must not turn every widget into
  a recomputation. Invalidations made by this process clear it; other processes' reach it
  within ``LOCAL_SECONDS``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished, request_started
from django.dispatch import receiver
from django.utils import translation

from . import cache
from .conf import app_settings

logger = logging.getLogger("django_crosssell")

#: ``compute() -> (value, expires_at)`` (a Unix time).
Compute = Callable[[], tuple[Any, float]]

#: Seconds the lock of a computation lives if its holder dies without releasing it.
LOCK_SECONDS = 30
#: Seconds between looks at the cache while waiting for another request's computation.
POLL_SECONDS = 0.02
#: Per-process memory used while the shared cache is down.
LOCAL_SECONDS = 30.0
LOCAL_SIZE = 2000
_local: OrderedDict[str, tuple[Any, float, int]] = OrderedDict()
_local_lock = threading.Lock()


def forget_local() -> None:
    """Drop the per-process copies (tests; invalidations do it through ``cache.epoch()``)."""
    with _local_lock:
        _local.clear()


def _entry(raw: Any) -> tuple[int, Any, float] | None:
    if isinstance(raw, tuple) and len(raw) == 3 and isinstance(raw[2], float):
        return raw
    return None


def _store(key: str, value: Any, expires_at: float, version: int) -> None:
    ttl = max(1, int(expires_at - time.time()))
    cache.set(key, (version, value, float(expires_at)), ttl + max(0, _stale_seconds()))


def _stale_seconds() -> int:
    return int(app_settings.STALE_SECONDS or 0)


def _from_local(key: str, compute: Compute) -> tuple[Any, float]:
    now = time.time()
    generation = cache.epoch()
    with _local_lock:
        hit = _local.get(key)
    if hit is not None and hit[1] > now and hit[2] == generation:
        return hit[0], hit[1]
    value, expires_at = compute()
    kept_until = min(float(expires_at), now + LOCAL_SECONDS)
    with _local_lock:
        if generation == cache.epoch():
            _local[key] = (value, kept_until, generation)
            _local.move_to_end(key)
            while len(_local) > LOCAL_SIZE:
                _local.popitem(last=False)
    return value, expires_at


def fetch(key: str, compute: Compute, *, defer: bool = False) -> tuple[Any, float]:
    """``(value, expires_at)`` for ``key``, computing it at most once at a time across
    processes. A stale value comes back with its past ``expires_at``, so whatever is cached
    from it (a widget's HTML) is kept for a second only.

    ``defer``: inside a request, recompute a stale value after the response rather than
    before it (widgets: a page fragment one request old is harmless; the API's answers are
    recomputed at once, so a client that just edited a link reads it back).
    """
    raw, version = cache.read(key)
    if version == 0:  # the shared cache is down
        return _from_local(key, compute)
    now = time.time()
    stale: tuple[Any, float] | None = None
    entry = _entry(raw)
    if entry is not None:
        entry_version, value, expires_at = entry
        if entry_version == version and now < expires_at:
            return value, expires_at
        if now < expires_at + _stale_seconds():
            stale = (value, expires_at)
    lock_key = f"{key}:computing"
    token = secrets.token_hex(8)
    acquired = cache.add(lock_key, token, LOCK_SECONDS)
    if defer and acquired and stale is not None and _defer(key, lock_key, compute, version):
        return stale  # recomputed once this response has been sent
    if acquired is False:
        if stale is not None:
            return stale  # someone else is computing; serve the previous value meanwhile
        found = _wait(key, lock_key)
        if found is not None:
            return found
    try:
        value, expires_at = compute()
    except Exception as exc:
        if stale is None:
            raise
        logger.warning(
            "django-crosssell: serving a stale copy of %s after %s: %s",
            key,
            type(exc).__name__,
            exc,
        )
        return stale
    finally:
        if acquired:
            cache.delete(lock_key)
    _store(key, value, expires_at, version)
    return value, expires_at


def _wait(key: str, lock_key: str) -> tuple[Any, float] | None:
    """The value another request is computing, if it arrives within the wait."""
    deadline = time.monotonic() + max(0, app_settings.CACHE_LOCK_WAIT_MS or 0) / 1000
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        raw, version = cache.read(key)
        entry = _entry(raw)
        if entry is not None and entry[0] == version and time.time() < entry[2]:
            return entry[1], entry[2]
    return None


# --- Revalidating after the response ------------------------------------------------------

_request = threading.local()
#: Computations one request may leave for after its response.
MAX_DEFERRED = 20


@receiver(request_started)
def _request_started(**kwargs: Any) -> None:
    for _job, lock_key in getattr(_request, "deferred", None) or []:  # an unfinished request
        cache.delete(lock_key)
    _request.deferred = []


@receiver(request_finished)
def _request_finished(**kwargs: Any) -> None:
    """Run the revalidations this thread's request deferred (its response is sent)."""
    jobs = getattr(_request, "deferred", None)
    _request.deferred = None
    for job, _lock_key in jobs or []:
        job()


def _defer(key: str, lock_key: str, compute: Compute, version: int) -> bool:
    """Leave the recomputation of a stale entry until after the response, if in a request.

    The request that wins the lock serves the stale value at once like every other one,
    instead of making its visitor wait for the computation.
    """
    deferred = getattr(_request, "deferred", None)
    if deferred is None or len(deferred) >= MAX_DEFERRED:
        return False
    language = translation.get_language()

    def job() -> None:
        try:
            with translation.override(language):
                value, expires_at = compute()
            _store(key, value, expires_at, version)
        except Exception as exc:
            logger.warning(
                "django-crosssell: revalidating %s failed (%s: %s); the stale copy stays",
                key,
                type(exc).__name__,
                exc,
            )
        finally:
            cache.delete(lock_key)

    deferred.append((job, lock_key))
    return True
