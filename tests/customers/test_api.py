"""REST endpoints of the customers package."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from django_crosssell.customers.snapshot import run_snapshot
from django_crosssell.models import Audience, CustomerMetrics, Segment
from tests.factories import ProductFactory, make_order

pytestmark = pytest.mark.django_db
API = "/api/crosssell/"
NO_THROTTLE = {"crosssell_anon": None, "crosssell_user": None}


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "API_THROTTLE_RATES": NO_THROTTLE}


@pytest.fixture
def shop(django_user_model):
    now = timezone.now()
    alice = django_user_model.objects.create_user("alice", "alice@example.com", "x")
    bob = django_user_model.objects.create_user("bob", "bob@example.com", "x")
    kettle, filters = ProductFactory(price=Decimal("1000")), ProductFactory(price=Decimal("300"))
    for days in (85, 55, 25):
        make_order(kettle, customer=alice, placed_at=now - timedelta(days=days))
    make_order(kettle, filters, customer=bob, placed_at=now - timedelta(days=3))
    run_snapshot()
    return {"alice": alice, "bob": bob, "kettle": kettle, "filters": filters}


def test_for_you_and_buy_again(client, shop):
    client.force_login(shop["alice"])
    picks = client.get(API + "me/for-you/?limit=2").json()
    assert picks[0]["product"]["id"] == str(shop["filters"].pk)
    assert picks[0]["source"] == "for_you"
    again = client.get(API + "me/buy-again/").json()
    assert [row["product"]["id"] for row in again] == [str(shop["kettle"].pk)]
    assert again[0]["reason"] == "Last bought 25 days ago"
    assert client.get(API + "me/for-you/?limit=0").status_code == 400


def test_visitors_get_bestsellers_and_nothing_to_buy_again(client, shop):
    assert client.get(API + "me/for-you/").json()[0]["source"] == "fallback"
    assert client.get(API + "me/buy-again/").json() == []


def test_staff_endpoints(admin_client, shop):
    listing = admin_client.get(API + "customers/").json()
    assert listing["count"] == 2
    alice = str(shop["alice"].pk)
    detail = admin_client.get(API + f"customers/{alice}/").json()
    assert detail["frequency"] == 3 and detail["median_gap_days"] == pytest.approx(30.0)
    assert detail["scorer"] == "quantile" and "r" in detail["thresholds"]
    assert detail["lwp"]["priority"] in "ABCD" and detail["lwp"]["pace"][0]["purchases"] == 3
    segment = detail["segment"]
    filtered = admin_client.get(API + f"customers/?segment={segment}").json()
    assert alice in [row["customer"] for row in filtered["results"]]
    segments = admin_client.get(API + "segments/").json()
    assert len(segments) == Segment.objects.count()
    assert sum(row["customers"] for row in segments) == 2
    audience = Audience.objects.create(name="Regulars", slug="regulars", frequency_min=2)
    assert admin_client.get(API + "audiences/").json()["count"] == 1
    members = admin_client.get(API + f"audiences/{audience.pk}/members/").json()
    assert [row["customer"] for row in members["results"]] == [alice]
    assert admin_client.get(API + "customers/nobody/").status_code == 404
    assert admin_client.get(API + "audiences/999/members/").status_code == 404
    response = admin_client.get(API + "audiences/abc/members/")
    assert response.status_code == 404 and "detail" in response.json()


def test_staff_endpoints_need_permission(client, shop):
    client.force_login(shop["alice"])
    for url in ("customers/", "segments/", "audiences/", f"customers/{shop['alice'].pk}/"):
        assert client.get(API + url).status_code == 403
    assert CustomerMetrics.objects.count() == 2
