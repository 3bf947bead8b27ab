"""The versioned cache under the widgets: one round trip, no stale entry, never raises."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_crosssell import cache

DEAD = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.1},
    }
}


def test_entries_are_fresh_until_invalidated():
    value, version = cache.get_versioned("k")
    assert value is cache.MISSING and version > 0
    cache.set_versioned("k", ["x"], version)
    assert cache.get_versioned("k") == (["x"], version)
    cache.invalidate()
    value, newer = cache.get_versioned("k")
    assert value is cache.MISSING and newer > version


def test_an_entry_computed_during_an_invalidation_is_stale_at_once():
    _, version = cache.get_versioned("k")
    cache.invalidate()  # an admin edit while the entry was being computed
    cache.set_versioned("k", "old data", version)
    assert cache.get_versioned("k")[0] is cache.MISSING


def test_an_evicted_version_never_revives_old_entries():
    _, version = cache.get_versioned("k")
    cache.set_versioned("k", "old", version)
    cache.get_cache().delete(cache.VERSION_KEY)  # evicted, or flushed by someone
    value, restarted = cache.get_versioned("k")
    assert value is cache.MISSING and restarted != version
    cache.get_cache().delete(cache.VERSION_KEY)
    cache.invalidate()  # invalidating a missing version also starts a new one
    assert cache.get_versioned("k")[0] is cache.MISSING


def test_a_dead_cache_answers_missing_and_is_left_alone_for_a_while(caplog):
    with override_settings(CACHES=DEAD):
        assert cache.get_versioned("k") == (cache.MISSING, 0)
        assert cache.is_down()
        cache.set_versioned("k", "v", 0)  # no-op, no error
        assert cache.current_version() == 0
        assert cache.get(cache.make_key("x")) is None
        cache.invalidate()  # tried anyway, and survives
    assert "cache unavailable" in caplog.text
    assert not cache.is_down()


@pytest.mark.parametrize("value", [None, "", [], 0])
def test_falsy_values_are_cached_too(value):
    _, version = cache.get_versioned("k")
    cache.set_versioned("k", value, version)
    assert cache.get_versioned("k") == (value, version)
