"""Throttling that holds: no X-Forwarded-For bypass, atomic counts under concurrency,
the cache circuit breaker, and no unthrottled password hashing on public endpoints."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connections
from django.test import RequestFactory
from rest_framework.test import APIClient

from django_crosssell import cache
from django_crosssell.api.throttling import CrossSellAnonThrottle, client_ip
from tests.api.helpers import api_url
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def rates(settings, **values):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_THROTTLE_RATES": values}


def test_rotating_x_forwarded_for_does_not_bypass_the_anonymous_limit(settings):
    rates(settings, crosssell_anon="5/min", crosssell_user=None)
    url = api_url("product-upgrades", ProductFactory().pk)
    client = APIClient()
    statuses = [
        client.get(url, HTTP_X_FORWARDED_FOR=f"10.0.{i // 250}.{i % 250}").status_code
        for i in range(12)
    ]
    assert statuses.count(200) == 5 and statuses.count(429) == 7


def test_behind_trusted_proxies_the_client_is_what_the_outermost_proxy_saw(settings):
    factory = RequestFactory()
    forged = factory.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="10.0.0.2")
    assert client_ip(forged) == "10.0.0.2"  # default: no proxy is trusted
    settings.CROSSSELL = {**settings.CROSSSELL, "NUM_PROXIES": 1}
    assert client_ip(forged) == "203.0.113.7"  # what our proxy saw; 6.6.6.6 is the client's
    settings.CROSSSELL = {**settings.CROSSSELL, "NUM_PROXIES": 2}
    assert client_ip(forged) == "6.6.6.6"
    bare = factory.get("/", REMOTE_ADDR="10.0.0.3")
    assert client_ip(bare) == "10.0.0.3"


def test_behind_one_proxy_different_clients_have_their_own_limits(settings):
    rates(settings, crosssell_anon="2/min", crosssell_user=None)
    settings.CROSSSELL = {**settings.CROSSSELL, "NUM_PROXIES": 1}
    url = api_url("product-upgrades", ProductFactory().pk)
    client = APIClient()
    first = [client.get(url, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code for _ in range(3)]
    second = [client.get(url, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code for _ in range(3)]
    assert first == second == [200, 200, 429]


def test_the_limit_holds_under_concurrency(settings):
    """Forty simultaneous requests against a limit of ten: ten pass (the count is atomic)."""
    rates(settings, crosssell_anon="10/min", crosssell_user=None)
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.9")
    request.user = AnonymousUser()
    start = threading.Event()

    def attempt() -> bool:
        start.wait()
        try:
            return CrossSellAnonThrottle().allow_request(request, None)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(attempt) for _ in range(40)]
        start.set()
        allowed = [future.result() for future in futures]
    assert allowed.count(True) == 10


def test_a_down_cache_costs_the_throttle_nothing(settings, monkeypatch):
    rates(settings, crosssell_anon="1/min", crosssell_user=None)
    calls = []
    backend = cache.get_cache()

    def hung(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)  # a socket timeout
        raise TimeoutError("cache hung")

    monkeypatch.setattr(backend, "add", hung)
    monkeypatch.setattr(backend, "incr", hung)
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.10")
    request.user = AnonymousUser()
    try:
        started = time.monotonic()
        assert all(CrossSellAnonThrottle().allow_request(request, None) for _ in range(20))
        assert time.monotonic() - started < 1.0
        assert len(calls) == 1  # then the circuit breaker skipped the cache
    finally:
        cache.reset()


def test_public_endpoints_ignore_basic_authentication(settings, django_user_model):
    """A bogus Basic header must not cost a password hash on a public endpoint."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "rest_framework.authentication.SessionAuthentication",
            "rest_framework.authentication.BasicAuthentication",
        ],
    }
    django_user_model.objects.create_user("alice", password="right")
    checked = []
    from django.contrib.auth import backends

    real = backends.ModelBackend.authenticate

    def spy(self, request, username=None, password=None, **kwargs):
        checked.append(username)
        return real(self, request, username=username, password=password, **kwargs)

    from unittest import mock

    header = "Basic " + base64.b64encode(b"alice:wrong").decode()
    with mock.patch.object(backends.ModelBackend, "authenticate", spy):
        response = APIClient().get(
            api_url("product-upgrades", ProductFactory().pk), HTTP_AUTHORIZATION=header
        )
    assert response.status_code == 200
    assert checked == []
