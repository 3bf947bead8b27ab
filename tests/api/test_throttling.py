"""Rate limits from CROSSSELL["API_THROTTLE_RATES"], without touching DRF's settings."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from django_crosssell.api.throttling import CrossSellAnonThrottle
from django_crosssell.conf import app_settings
from tests.api.helpers import api_url
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def rates(settings, **values):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_THROTTLE_RATES": values}


def test_anonymous_reads_are_throttled(settings):
    rates(settings, crosssell_anon="3/min", crosssell_user=None)
    url = api_url("product-recommendations", ProductFactory().pk)
    client = APIClient()
    statuses = [client.get(url).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get(url)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"]


def test_clients_are_counted_per_address(settings):
    rates(settings, crosssell_anon="1/min", crosssell_user=None)
    url = api_url("product-upgrades", ProductFactory().pk)
    first = APIClient(REMOTE_ADDR="10.0.0.1")
    second = APIClient(REMOTE_ADDR="10.0.0.2")
    assert first.get(url).status_code == 200
    assert first.get(url).status_code == 429
    assert second.get(url).status_code == 200


def test_logged_in_users_have_their_own_rate(settings, customer_user):
    rates(settings, crosssell_anon="1/min", crosssell_user="2/min")
    url = api_url("product-upgrades", ProductFactory().pk)
    client = APIClient()
    client.force_authenticate(customer_user)
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 429]


def test_writes_count_too(settings):
    rates(settings, crosssell_anon="1/min", crosssell_user=None)
    url = api_url("cart-recommendations")
    client = APIClient()
    assert client.post(url, {"product_ids": []}, format="json").status_code == 200
    assert client.post(url, {"product_ids": []}, format="json").status_code == 429


def test_none_switches_a_scope_off(settings):
    rates(settings, crosssell_anon=None, crosssell_user=None)
    url = api_url("product-upgrades", ProductFactory().pk)
    client = APIClient()
    assert {client.get(url).status_code for _ in range(30)} == {200}


def test_missing_scope_falls_back_to_the_default_rate(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_THROTTLE_RATES": {}}
    assert CrossSellAnonThrottle().rate == "120/min"


def test_a_dead_cache_does_not_break_the_api(settings, monkeypatch):
    """Throttle counters live in the cache; when it fails the API serves, unthrottled."""
    from django_crosssell import cache as crosssell_cache

    rates(settings, crosssell_anon="1/min", crosssell_user=None)
    url = api_url("product-upgrades", ProductFactory().pk)

    def boom(*args, **kwargs):
        raise ConnectionError("cache down")

    backend = caches["default"]
    for method in ("get", "set", "add", "incr"):
        monkeypatch.setattr(backend, method, boom)
    client = APIClient()
    try:
        assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    finally:
        crosssell_cache.reset()


def test_the_throttle_cache_follows_the_setting_and_stays_assignable():
    throttle = CrossSellAnonThrottle()
    assert throttle.cache is caches[app_settings.CACHE_ALIAS]
    replacement = caches.create_connection(app_settings.CACHE_ALIAS)
    throttle.cache = replacement  # a plain attribute on DRF's throttles
    assert throttle.cache is replacement
    assert CrossSellAnonThrottle().cache is caches[app_settings.CACHE_ALIAS]  # per instance
