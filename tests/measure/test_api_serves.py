"""API answers are serves too (channel "api"), under the same rules as pages."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from django_crosssell.measure import tracking
from django_crosssell.models import Event, Serve

from .conftest import BROWSER

pytestmark = pytest.mark.django_db
NO_THROTTLE = {"crosssell_anon": None, "crosssell_user": None}


@pytest.fixture
def api(tracking_settings):
    tracking_settings(API_THROTTLE_RATES=NO_THROTTLE)
    return Client(HTTP_USER_AGENT=BROWSER)


def product_url(shop) -> str:
    return f"/api/crosssell/products/{shop['source'].pk}/recommendations/"


def test_a_product_answer_is_a_serve_whose_id_the_client_gets(api, shop):
    response = api.get(product_url(shop))
    assert response.status_code == 200
    serve = Serve.objects.get()
    assert response["Crosssell-Serve"] == serve.pk.hex
    assert serve.channel == "api" and serve.placement == "product_recommendations"
    assert serve.source == str(shop["source"].pk)
    shown = [(str(item["product"]["id"]), item["position"]) for item in response.json()]
    assert [tuple(item) for item in serve.items] == shown
    assert len(serve.visitor) == 64  # the first-party visitor, hashed, as on a page
    # the client reports a view and a click with the id it was given
    events = [
        {"serve": response["Crosssell-Serve"], "type": "view"},
        {"serve": response["Crosssell-Serve"], "type": "click", "position": 2},
    ]
    body = json.dumps({"events": events})
    assert api.post("/crosssell/events/", body, content_type="text/plain").status_code == 202
    click = Event.objects.get(type="click")
    assert click.serve_id == serve.pk and click.product == shown[1][0]
    # a link the client renders counts a click without JavaScript through the token
    token = f"{response['Crosssell-Click-Token']}.3"
    assert tracking.read_click_token(token) == (serve.pk, 3)


def test_a_cart_answer_is_a_serve(api, shop):
    body = json.dumps({"product_ids": [str(shop["source"].pk)]})
    response = api.post(
        "/api/crosssell/cart/recommendations/", body, content_type="application/json"
    )
    assert response.status_code == 200
    serve = Serve.objects.get()
    assert response["Crosssell-Serve"] == serve.pk.hex
    assert serve.channel == "api" and serve.placement == "cart_recommendations"
    assert [item[0] for item in serve.items] == [
        str(item["product"]["id"]) for item in response.json()
    ]


def test_the_answer_runs_no_extra_query_and_the_serve_is_one_insert(api, shop, tracking_settings):
    api.get(product_url(shop))  # warm
    tracking_settings(API_THROTTLE_RATES=NO_THROTTLE, TRACKING="off")
    with CaptureQueriesContext(connection) as untracked:
        api.get(product_url(shop))
    tracking_settings(API_THROTTLE_RATES=NO_THROTTLE)
    with CaptureQueriesContext(connection) as tracked:
        api.get(product_url(shop))
    inserts = [q["sql"] for q in tracked.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1 and "django_crosssell_serve" in inserts[0]
    assert len(tracked.captured_queries) == len(untracked.captured_queries) + 1


@pytest.mark.parametrize(
    "case",
    ["off", "bot", "prefetch", "head", "staff", "no consent"],
)
def test_excluded_requests_record_nothing_and_get_no_id(
    api, shop, tracking_settings, case, django_user_model
):
    url = product_url(shop)
    client, extra = api, {}
    if case == "off":
        tracking_settings(API_THROTTLE_RATES=NO_THROTTLE, TRACKING="off")
    elif case == "bot":
        client = Client(HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
    elif case == "prefetch":
        extra = {"HTTP_SEC_PURPOSE": "prefetch"}
    elif case == "staff":
        client.force_login(django_user_model.objects.create_user("s", password="p", is_staff=True))
    elif case == "no consent":
        tracking_settings(
            API_THROTTLE_RATES=NO_THROTTLE,
            TRACKING="consent",
            TRACKING_CONSENT="tests.measure.consent.from_cookie",
        )
    response = client.head(url, **extra) if case == "head" else client.get(url, **extra)
    assert response.status_code == 200
    assert "Crosssell-Serve" not in response and "Crosssell-Click-Token" not in response
    assert Serve.objects.count() == 0


def test_consent_given_records(api, shop, tracking_settings):
    tracking_settings(
        API_THROTTLE_RATES=NO_THROTTLE,
        TRACKING="consent",
        TRACKING_CONSENT="tests.measure.consent.from_cookie",
    )
    api.cookies["measure_ok"] = "1"
    response = api.get(product_url(shop))
    assert response["Crosssell-Serve"] == Serve.objects.get().pk.hex
