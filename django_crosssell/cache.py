"""Versioned caching for recommendation results.

Every cached widget result is stored under a key that embeds a global version number.
Anything that changes what a widget would show (a relation or ladder edit, a bundle edit, a
new affinity run) calls :func:`invalidate`, which bumps the version: stale entries are never
read again and simply expire. That costs one cache round trip on write and none extra on
read beyond fetching the version, and needs no key scanning (which Redis and memcached
cannot do cheaply).

The cache is an optimisation only: every function here swallows cache errors so a dead
cache server degrades to database reads instead of breaking a page. After a failure the cache
is skipped for :data:`RETRY_AFTER` seconds (per process): a dead Redis otherwise costs every
widget on every page its connect timeout and retries, which is slower than the database.
A process that saw the cache fail bumps the version once it answers again, since an
invalidation may have been lost meanwhile (a partition at a run swap); stale entries are
then recomputed one at a time (:mod:`.stampede`).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from .conf import app_settings

logger = logging.getLogger("django_crosssell")

VERSION_KEY = "crosssell:version"
#: Returned by :func:`get_versioned` when there is no fresh entry (None may be a value).
MISSING = object()
#: Seconds to leave the cache alone after it failed.
RETRY_AFTER = 10.0
_down_until = 0.0
_missed_invalidation = False
#: Invalidations asked in this process (clears per-process copies, see ``stampede``).
_epoch = 0


def epoch() -> int:
    return _epoch


def get_cache() -> BaseCache:
    return caches[app_settings.CACHE_ALIAS]


def is_down() -> bool:
    return time.monotonic() < _down_until


def _mark_down() -> None:
    global _down_until, _missed_invalidation
    _down_until = time.monotonic() + RETRY_AFTER
    # Another process may have failed to invalidate while this one could not reach the cache
    # either (a partition): bump the version once the cache answers again.
    _missed_invalidation = True


def _recovered(cache: BaseCache) -> None:
    """The cache answered: replay an invalidation that may have been lost while it did not.

    Without this a lost ``INCR`` (Redis unreachable at the moment of a run swap or an edit)
    would keep serving the old results for up to ``CACHE_TIMEOUT``.
    """
    global _missed_invalidation
    if not _missed_invalidation:
        return
    _missed_invalidation = False
    try:
        _bump(cache)
        logger.info("django-crosssell: cache back; invalidated results from before the outage")
    except Exception:
        _missed_invalidation = True
        raise


def invalidation_pending() -> bool:
    """Whether this process has an invalidation that has not reached the cache yet."""
    return _missed_invalidation


def reset() -> None:
    """Forget a recorded outage (tests, or after the cache settings changed)."""
    global _down_until, _missed_invalidation
    _down_until = 0.0
    _missed_invalidation = False


def failed(exc: BaseException, doing: str) -> None:
    """Record that the cache failed (the circuit opens for :data:`RETRY_AFTER` seconds)."""
    _mark_down()
    logger.warning("django-crosssell: cache unavailable while %s (%s)", doing, exc)


def reset_outage_timer() -> None:
    """Try the cache again now, keeping the memory of a possibly lost invalidation."""
    global _down_until
    _down_until = 0.0


@receiver(setting_changed)
def _reset_on_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CACHES", "CROSSSELL"):
        reset()


def _initial_version(cache: BaseCache) -> int:
    """Start (or restart, after eviction or a flush) the version at a value never used before.

    Random, not 1: entries written under an earlier version may outlive an evicted version
    key and must not become valid again when the count restarts (a timestamp could repeat
    within its resolution).
    """
    version = secrets.randbits(52) + 1
    if not cache.add(VERSION_KEY, version, timeout=None):
        version = cache.get(VERSION_KEY) or version  # another process was first
    return int(version)


def current_version() -> int:
    if is_down():
        return 0
    try:
        _recovered(get_cache())
        version = get_cache().get(VERSION_KEY)
        if version is None:
            return _initial_version(get_cache())
        return int(version)
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: cache unavailable (%s); reading the database", exc)
        return 0


def read(key: str) -> tuple[Any, int]:
    """``(raw entry or MISSING, current version)`` in one round trip; version 0: cache down."""
    if is_down():
        return MISSING, 0
    try:
        cache = get_cache()
        _recovered(cache)
        found = cache.get_many([VERSION_KEY, key])
        version = found.get(VERSION_KEY)
        version = _initial_version(cache) if version is None else int(version)
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: cache unavailable (%s); reading the database", exc)
        return MISSING, 0
    return found.get(key, MISSING), version


def add(key: str, value: Any, timeout: int) -> bool | None:
    """``cache.add`` behind the circuit breaker; None when the cache is down."""
    if is_down():
        return None
    try:
        return bool(get_cache().add(key, value, timeout=timeout))
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: cache write failed (%s)", exc)
        return None


def delete(key: str) -> None:
    if is_down():
        return
    try:
        get_cache().delete(key)
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: cache delete failed (%s)", exc)


def get_versioned(key: str) -> tuple[Any, int]:
    """``(value or MISSING, current version)`` in one cache round trip.

    The hot path of the widgets: the entry stores the version it was computed under, and one
    ``get_many`` reads it together with the current version, instead of one read for the
    version and a second for a key that embeds it. Write with :func:`set_versioned` and the
    version returned here, read *before* computing, so an invalidation that happens
    meanwhile makes the new entry stale at once.
    """
    entry, version = read(key)
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == version:
        return entry[1], version
    return MISSING, version


def set_versioned(key: str, value: Any, version: int, timeout: int | None = None) -> None:
    """Store ``value`` as computed under ``version`` (from :func:`get_versioned`)."""
    if version:  # 0: the cache was down when the version was read
        set(key, (version, value), timeout)


def make_key(*parts: Any, version: int | None = None) -> str:
    version = current_version() if version is None else version
    return "crosssell:v{}:{}".format(version, ":".join(str(p) for p in parts))


def _bump(cache: BaseCache) -> None:
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # key missing (evicted or never set): any new value will do
        _initial_version(cache)


def invalidate() -> bool:
    """Make every cached recommendation stale (call after any change that affects them).

    Tried even while the cache is marked down: a lost invalidation would leave stale
    widgets behind once the cache returns. When it fails, the process replays it on its
    next successful cache access (:func:`invalidation_pending`); False then.
    """
    global _missed_invalidation, _epoch
    _epoch += 1
    try:
        _bump(get_cache())
        _missed_invalidation = False
        return True
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: could not invalidate the cache (%s)", exc)
        return False


def get(key: str, default: Any = None) -> Any:
    if key.startswith("crosssell:v0:") or is_down():  # the cache was down when the key was made
        return default
    try:
        return get_cache().get(key, default)
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: cache read failed (%s)", exc)
        return default


def set(key: str, value: Any, timeout: int | None = None) -> None:
    if key.startswith("crosssell:v0:") or is_down():
        return
    try:
        get_cache().set(
            key, value, timeout=app_settings.CACHE_TIMEOUT if timeout is None else timeout
        )
    except Exception as exc:
        _mark_down()
        logger.warning("django-crosssell: cache write failed (%s)", exc)
