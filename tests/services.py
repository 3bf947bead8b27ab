"""Reachability of the real services some tests need.

On a user's laptop (``CROSSSELL_REQUIRE_SERVICES`` unset) a missing service skips the test
with the reason; on CI (``CROSSSELL_REQUIRE_SERVICES=1``) it fails the test instead, so a
green CI proves the service tests really ran.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlparse

import pytest
from django.db import connection

REQUIRED = os.environ.get("CROSSSELL_REQUIRE_SERVICES") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (CROSSSELL_REQUIRE_SERVICES=1, so this cannot be skipped)")
    pytest.skip(f"{reason}; set CROSSSELL_REQUIRE_SERVICES=1 on CI to make this an error")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """Return a Redis URL that answers, or skip/fail."""
    parsed = urlparse(redis_url())
    if not port_open(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        _unavailable(f"Redis does not answer at {redis_url()}")
    return redis_url()


def other_connection() -> Any:
    """A second psycopg connection to the test database (another user of the server: a
    lock held there is not ours). The caller closes it."""
    import psycopg

    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
    )


def require_postgresql() -> None:
    """The current test database must be PostgreSQL (DATABASE_URL=postgres://...)."""
    if connection.vendor != "postgresql":
        _unavailable(
            f"needs PostgreSQL but the test database is {connection.vendor} "
            "(set DATABASE_URL=postgres://postgres@127.0.0.1:5432/crosssell)"
        )
