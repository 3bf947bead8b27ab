"""Versioned caching for recommendation results.

Every cached widget result is stored under a key that embeds a global version number.
Anything that changes what a widget would show (a relation or ladder edit, a bundle edit, a
new affinity run) calls :func:`invalidate`, which bumps the version: stale entries are never
read again and simply expire. That costs one cache round trip on write and none extra on
read beyond fetching the version, and needs no key scanning (which Redis and memcached
cannot do cheaply).

The cache is an optimisation only: every function here swallows cache errors so a dead
cache server degrades to database reads instead of breaking a page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import BaseCache, caches

from .conf import app_settings

logger = logging.getLogger("django_crosssell")

VERSION_KEY = "crosssell:version"
_MISSING = object()


def get_cache() -> BaseCache:
    return caches[app_settings.CACHE_ALIAS]


def current_version() -> int:
    try:
        version = get_cache().get(VERSION_KEY)
        if version is None:
            version = 1
            get_cache().add(VERSION_KEY, version, timeout=None)
        return int(version)
    except Exception as exc:  # noqa: BLE001 - any cache failure degrades to no cache
        logger.warning("django-crosssell: cache unavailable (%s); reading the database", exc)
        return 0


def make_key(*parts: Any, version: int | None = None) -> str:
    version = current_version() if version is None else version
    return "crosssell:v{}:{}".format(version, ":".join(str(p) for p in parts))


def invalidate() -> None:
    """Make every cached recommendation stale (call after any change that affects them)."""
    cache = get_cache()
    try:
        try:
            cache.incr(VERSION_KEY)
        except ValueError:  # key missing (evicted or never set)
            cache.set(VERSION_KEY, 2, timeout=None)
    except Exception as exc:  # noqa: BLE001
        logger.warning("django-crosssell: could not invalidate the cache (%s)", exc)


def get(key: str, default: Any = None) -> Any:
    if key.startswith("crosssell:v0:"):  # the cache was down when the key was made
        return default
    try:
        return get_cache().get(key, default)
    except Exception as exc:  # noqa: BLE001
        logger.warning("django-crosssell: cache read failed (%s)", exc)
        return default


def set(key: str, value: Any, timeout: int | None = None) -> None:  # noqa: A001
    if key.startswith("crosssell:v0:"):
        return
    try:
        get_cache().set(
            key, value, timeout=app_settings.CACHE_TIMEOUT if timeout is None else timeout
        )
    except Exception as exc:  # noqa: BLE001
        logger.warning("django-crosssell: cache write failed (%s)", exc)
