"""The event endpoint: batches, limits before validation, JSON errors, throttling."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from django_crosssell.models import Event, Serve

from .conftest import BROWSER

pytestmark = pytest.mark.django_db
URL = "/crosssell/events/"


@pytest.fixture
def client():
    return Client(HTTP_USER_AGENT=BROWSER)


@pytest.fixture
def serve(page, tracking_settings):
    page()
    return Serve.objects.get()


def post(client, payload, **extra):
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    return client.post(URL, body, content_type="text/plain", **extra)


def test_a_batch_of_views_and_clicks(client, serve):
    events = [
        {"serve": serve.pk.hex, "type": "view", "product": "", "position": 0},
        {"serve": serve.pk.hex, "type": "view", "product": "", "position": 0},  # once per serve
        {"serve": serve.pk.hex, "type": "click", "product": "ignored", "position": 3},
        {"serve": "0" * 32, "type": "view"},  # not a serve: dropped
        {"serve": serve.pk.hex, "type": "purchase"},  # not an accepted type
    ]
    response = post(client, {"events": events})
    assert response.status_code == 202
    assert response.json()["rejected"] == 1
    assert sorted(Event.objects.values_list("type", "product", "position")) == [
        ("click", serve.items[2][0], 3),
        ("view", "", 0),
    ]


def test_a_click_on_a_position_the_serve_did_not_show_is_dropped(client, serve):
    post(client, {"events": [{"serve": serve.pk.hex, "type": "click", "position": 9}]})
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (b"{not json", 400, "invalid JSON"),
        ({"events": "x"}, 400, 'expected {"events": [...]}'),
        ({"events": [{}] * 51}, 413, "too many events in one request"),
        ("x" * 20_000, 413, "request body too large"),
    ],
)
def test_errors_are_json(client, tracking_settings, payload, status, message):
    response = post(client, payload)
    assert response.status_code == status
    assert response.json() == {"error": message}


def test_get_is_refused(client, tracking_settings):
    assert client.get(URL).status_code == 405


def test_a_cross_site_origin_is_refused(client, serve):
    event = {"serve": serve.pk.hex, "type": "view"}
    response = post(client, {"events": [event]}, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403 and Event.objects.count() == 0


def test_requests_are_throttled(client, serve, tracking_settings):
    tracking_settings(TRACKING_RATE_PER_MINUTE=2)
    client.cookies["crosssell_vid"] = "v" * 24
    codes = [post(client, {"events": []}).status_code for _ in range(3)]
    assert codes == [202, 202, 429]


def test_bots_and_tracking_off_write_nothing(serve, tracking_settings):
    bot = Client(HTTP_USER_AGENT="Googlebot/2.1 (+http://www.google.com/bot.html)")
    post(bot, {"events": [{"serve": serve.pk.hex, "type": "view"}]})
    tracking_settings(TRACKING="off")
    post(Client(HTTP_USER_AGENT=BROWSER), {"events": [{"serve": serve.pk.hex, "type": "view"}]})
    assert Event.objects.count() == 0


def test_the_script_tag_has_no_inline_code(tracking_settings):
    from django.template import Context, Template

    html = Template("{% load crosssell %}{% crosssell_tracking_script %}").render(Context())
    assert html == (
        '<script src="/static/django_crosssell/tracking.js" '
        'data-endpoint="/crosssell/events/" defer></script>'
    )
    tracking_settings(TRACKING="off")
    assert Template("{% load crosssell %}{% crosssell_tracking_script %}").render(Context()) == ""
