"""No stampede: a cold or invalidated result is computed once while concurrent requests
get the previous value or wait briefly; invalidation survives a cache outage.

The thread tests run against whatever ``CACHES`` points at (local memory by default, Redis
with ``REDIS_URL``); the widget test needs PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.template import Context, Template
from django.test import override_settings

from django_crosssell import cache, stampede
from django_crosssell.recommend import service
from tests.factories import (
    AffinityRunFactory,
    CategoryFactory,
    ProductAffinityFactory,
    ProductFactory,
)
from tests.services import port_open, require_postgresql, require_redis
from tests.settings import CROSSSELL

THREADS = 8


def slow(counter: list[int], value: Any, seconds: float = 0.3) -> Callable[[], tuple[Any, float]]:
    lock = threading.Lock()

    def compute() -> tuple[Any, float]:
        with lock:
            counter.append(1)
        time.sleep(seconds)
        return value, time.time() + 60

    return compute


def together(function: Callable[[], Any], threads: int = THREADS) -> list[Any]:
    """Call ``function`` from ``threads`` threads released at the same moment."""
    barrier = threading.Barrier(threads)

    def run() -> Any:
        barrier.wait()
        try:
            return function()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(threads) as pool:
        return [future.result() for future in [pool.submit(run) for _ in range(threads)]]


def test_a_cold_key_is_computed_once_while_the_others_wait():
    calls: list[int] = []
    results = together(lambda: stampede.fetch("crosssell:test:cold", slow(calls, "fresh"))[0])
    assert results == ["fresh"] * THREADS
    assert len(calls) == 1


def test_after_an_invalidation_the_others_get_the_stale_value_at_once():
    stampede.fetch("crosssell:test:swr", lambda: ("old", time.time() + 60))
    cache.invalidate()
    calls: list[int] = []

    def timed() -> tuple[Any, float]:
        started = time.monotonic()
        value = stampede.fetch("crosssell:test:swr", slow(calls, "new", 0.5))[0]
        return value, time.monotonic() - started

    results = together(timed)
    assert len(calls) == 1
    values = [value for value, _ in results]
    assert values.count("new") == 1 and values.count("old") == THREADS - 1
    assert all(elapsed < 0.3 for value, elapsed in results if value == "old")
    assert stampede.fetch("crosssell:test:swr", slow(calls, "newer"))[0] == "new"
    assert len(calls) == 1


def test_an_expired_value_is_stale_too():
    stampede.fetch("crosssell:test:expired", lambda: ("old", time.time() - 1))
    calls: list[int] = []
    assert stampede.fetch("crosssell:test:expired", slow(calls, "new", 0))[0] == "new"
    assert len(calls) == 1


def test_a_failed_computation_serves_the_stale_value_or_raises_without_one(caplog):
    stampede.fetch("crosssell:test:fail", lambda: ("old", time.time() + 60))
    cache.invalidate()

    def broken() -> tuple[Any, float]:
        raise RuntimeError("database went away")

    assert stampede.fetch("crosssell:test:fail", broken)[0] == "old"
    assert "serving a stale copy" in caplog.text
    with pytest.raises(RuntimeError):
        stampede.fetch("crosssell:test:nothing", broken)


def test_without_stale_revalidation_an_invalidated_value_is_never_served():
    with override_settings(CROSSSELL={**CROSSSELL, "STALE_SECONDS": 0}):
        stampede.fetch("crosssell:test:off", lambda: ("old", time.time() + 60))
        cache.invalidate()
        assert stampede.fetch("crosssell:test:off", lambda: ("new", time.time() + 60))[0] == "new"


def test_a_dead_cache_keeps_results_in_process_memory(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(cache, "is_down", lambda: True)
    for _ in range(3):
        assert stampede.fetch("crosssell:test:local", slow(calls, "v", 0))[0] == "v"
    assert len(calls) == 1
    cache.invalidate()  # an edit in this process reaches its own copies at once
    assert stampede.fetch("crosssell:test:local", slow(calls, "v2", 0))[0] == "v2"
    assert len(calls) == 2


def test_a_lost_invalidation_is_replayed_when_the_cache_answers_again(monkeypatch):
    """A partition at the swap: the INCR fails; the first successful access replays it."""
    stampede.fetch("crosssell:test:partition", lambda: ("old run", time.time() + 3600))
    real = cache.get_cache

    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            raise ConnectionError("partitioned")

    monkeypatch.setattr(cache, "get_cache", lambda: Unreachable())
    assert cache.invalidate() is False
    assert cache.invalidation_pending()
    monkeypatch.setattr(cache, "get_cache", real)
    cache.reset_outage_timer()  # RETRY_AFTER has passed
    value = stampede.fetch("crosssell:test:partition", lambda: ("new run", time.time() + 60))[0]
    assert value == "new run"
    assert not cache.invalidation_pending()


# --- A real Redis of our own, stopped and hung ---------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen, dict]]:
    """A private redis-server on port 6390 (never the shared one) that tests may pause."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = int(os.environ.get("CROSSSELL_FAULT_REDIS_PORT", "6390"))
    if port_open("127.0.0.1", port):
        pytest.skip(f"port {port} is taken")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    try:
        yield process, caches
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(5)


@pytest.mark.slow
def test_a_hung_redis_at_the_swap_does_not_keep_the_old_run(own_redis):
    process, caches = own_redis
    with override_settings(CACHES=caches):
        stampede.fetch("crosssell:test:hung", lambda: ("old run", time.time() + 3600))
        process.send_signal(signal.SIGSTOP)  # hung: accepts nothing, answers nothing
        started = time.monotonic()
        assert cache.invalidate() is False
        for _ in range(20):  # further work skips the hung server (circuit breaker)
            stampede.fetch("crosssell:test:hung", lambda: ("during", time.time() + 60))
        assert time.monotonic() - started < 2.0
        process.send_signal(signal.SIGCONT)
        cache.reset_outage_timer()
        value = stampede.fetch("crosssell:test:hung", lambda: ("new run", time.time() + 60))[0]
    assert value == "new run"


# --- Widgets on PostgreSQL and Redis -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_cold_widgets_compute_once(monkeypatch):
    require_postgresql()
    require_redis()
    category = CategoryFactory()
    source = ProductFactory(category=category, price=Decimal("1000"))
    partner = ProductFactory(category=category)
    run = AffinityRunFactory(current=True)
    ProductAffinityFactory(run=run, source=source, target=partner, co_count=3, score=0.5, lift=2)
    real = service._compute_for_product
    calls: list[int] = []
    lock = threading.Lock()

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            calls.append(1)
        time.sleep(0.2)  # a slow aggregate on a big shop
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "_compute_for_product", counted)
    template = Template("{% load crosssell %}{% also_recommended product %}")

    def page() -> list[str]:
        html = template.render(Context({"product": source}))
        return re.findall(r'data-crosssell-product="([^"]+)"', html)

    assert together(page) == [[str(partner.pk)]] * THREADS
    assert len(calls) == 1
    cache.invalidate()  # a swap: everything stale at once
    assert together(page) == [[str(partner.pk)]] * THREADS
    assert len(calls) == 2


def test_in_a_request_the_stale_value_is_revalidated_after_the_response(db):
    from django.core.signals import request_finished, request_started

    stampede.fetch("crosssell:test:deferred", lambda: ("old", time.time() + 60))
    cache.invalidate()
    calls: list[int] = []
    request_started.send(sender=None)
    started = time.monotonic()
    value = stampede.fetch("crosssell:test:deferred", slow(calls, "new", 0.3), defer=True)[0]
    assert value == "old" and calls == []  # the visitor did not wait
    assert time.monotonic() - started < 0.2
    request_finished.send(sender=None)  # the response has been sent
    assert len(calls) == 1
    assert stampede.fetch("crosssell:test:deferred", slow(calls, "newer"))[0] == "new"
    assert len(calls) == 1
    # Without defer (the API's results) the winner recomputes before answering.
    cache.invalidate()
    request_started.send(sender=None)
    try:
        assert stampede.fetch("crosssell:test:deferred", slow(calls, "api", 0))[0] == "api"
    finally:
        request_finished.send(sender=None)


def test_a_cold_key_in_a_request_is_still_computed_at_once(db):
    from django.core.signals import request_finished, request_started

    calls: list[int] = []
    request_started.send(sender=None)
    try:
        value = stampede.fetch("crosssell:test:cold-request", slow(calls, "v", 0), defer=True)
        assert value[0] == "v"
        assert len(calls) == 1  # nothing stale to serve: computed now
    finally:
        request_finished.send(sender=None)
