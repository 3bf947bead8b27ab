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


def fetch(key: str, compute: Compute) -> tuple[Any, float]:
    """``(value, expires_at)`` for ``key``, computing it at most once at a time across
    processes. A stale value comes back with its past ``expires_at``, so whatever is cached
    from it (a widget's HTML) is kept for a second only."""
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
