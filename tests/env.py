"""The library test suite's service configuration, read from the environment.

Zero-setup defaults: SQLite, local-memory cache and eager Celery with the in-memory broker.
``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL`` switch to the real services (what
CI does); ``CROSSSELL_TEST_DB_NAME`` names the test database so that several runs can share
one PostgreSQL server. The example shop reads the same variables in its own
``example_shop/env.py``; the library's tests import nothing from the example shop, so they
run without it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url


def databases(sqlite_path: Path | str) -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=0)
        if os.environ.get("CROSSSELL_TEST_DB_NAME"):
            config.setdefault("TEST", {})["NAME"] = os.environ["CROSSSELL_TEST_DB_NAME"]
        return {"default": config}
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(sqlite_path)}}


def caches() -> dict[str, Any]:
    url = os.environ.get("REDIS_URL")
    if url:
        backend = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": os.environ.get("CROSSSELL_CACHE_PREFIX", "crosssell"),
            # A dead cache must cost a test milliseconds, not the OS connect timeout.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    else:
        backend = {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        }
    return {"default": backend}


def celery() -> dict[str, Any]:
    broker = os.environ.get("CELERY_BROKER_URL")
    if broker:
        return {"CELERY_BROKER_URL": broker, "CELERY_TASK_ALWAYS_EAGER": False}
    return {
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": True,
        "CELERY_TASK_EAGER_PROPAGATES": True,
    }
