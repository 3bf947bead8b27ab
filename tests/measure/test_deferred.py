"""The tracking rows are written after the response has been sent, exactly once.

Django sends ``request_finished`` from the response's ``close()``, which a WSGI server calls
once the body is out; these tests drive Django's own ``WSGIHandler`` the way a server does
(``close_old_connections`` kept off, as ``django.test.Client`` does, so the test's
transaction survives) and check what exists before and after ``close()``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import include, path

from django_crosssell.measure.middleware import TrackingMiddleware
from django_crosssell.models import Event, Serve

from .conftest import BROWSER, PAGE, make_request

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

_shown: dict[str, Any] = {}


def product_page(request):
    context = Context({"request": request, "product": _shown["product"]})
    return HttpResponse(Template(PAGE).render(context))


urlpatterns = [
    path("product/", product_page),
    path("ok/", lambda r: HttpResponse("ok")),
    path("shop/", include("tests.testapp.urls")),
]


@contextlib.contextmanager
def server_cycle() -> Iterator[None]:
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def serve(url: str, cookies: str = "") -> tuple[Any, list[tuple[str, str]]]:
    """What a WSGI server holds once Django's handler returned: the response (body not
    yet sent, ``close()`` not yet called) and the headers passed to ``start_response``."""
    environ = RequestFactory().get(url, HTTP_USER_AGENT=BROWSER).environ
    if cookies:
        environ["HTTP_COOKIE"] = cookies
    headers: list[tuple[str, str]] = []
    response = WSGIHandler()(environ, lambda status, sent: headers.extend(sent))
    return response, headers


@pytest.fixture
def product(shop, tracking_settings):
    _shown["product"] = shop["source"]
    return shop


def test_the_visitor_gets_the_page_and_cookies_before_anything_is_written(product):
    with server_cycle():
        response, headers = serve("/product/")
        assert Serve.objects.count() == 0  # the handler returned: nothing written yet
        cookies = [value.strip() for name, value in headers if name == "Set-Cookie"]
        assert any(value.startswith("crosssell_vid=") for value in cookies)
        assert any(value.startswith("crosssell_sid=") for value in cookies)
        body = b"".join(response).decode()
        response.close()  # what the server does after sending the body
    written = Serve.objects.get()
    assert f'data-crosssell-serve="{written.pk.hex}"' in body
    assert [item[1] for item in written.items] == [1, 2, 3]


def test_a_link_click_and_the_serves_are_written_exactly_once(product):
    with server_cycle():
        response, _ = serve("/product/")
        body = b"".join(response).decode()
        response.close()
        token = re.findall(r'\?cs=([^"]+)"', body)[2]
        cookies = "crosssell_vid=" + "v" * 24 + "; crosssell_sid=" + "s" * 24
        clicked, _ = serve(f"/ok/?cs={token}", cookies)
        assert Event.objects.count() == 0
        clicked.close()
        clicked.close()  # a second close() (some servers) writes nothing more
        later, _ = serve("/ok/", cookies)  # nor does the next request on this thread
        later.close()
    click = Event.objects.get()
    assert (click.type, click.position, click.product) == ("click", 3, str(product["picks"][2].pk))
    assert Serve.objects.count() == 1


def test_a_request_outside_the_started_cycle_is_written_at_once(product):
    """The middleware called with a request the handler did not start (a hand-built one)
    writes before returning, even while another request's cycle is open on the thread."""
    with server_cycle():
        request_started.send(sender=WSGIHandler, environ={"PATH_INFO": "/other/"})
        try:
            TrackingMiddleware(product_page)(make_request("/product/"))
            assert Serve.objects.count() == 1
        finally:
            request_finished.send(sender=WSGIHandler)
    assert Serve.objects.count() == 1


def test_rows_of_a_response_never_closed_are_written_by_the_next_request(product):
    with server_cycle():
        _abandoned, _ = serve("/product/")  # a server that forgets close()
        assert Serve.objects.count() == 0
        response, _ = serve("/ok/")
        assert Serve.objects.count() == 1
        response.close()
    assert Serve.objects.count() == 1


def test_djangos_connection_cleanup_runs_after_the_write():
    """With ``CONN_MAX_AGE = 0`` Django closes the request's connection on
    ``request_finished``; the write must come first, or it would open a new connection."""
    from django_crosssell.measure import middleware

    order = [receiver() for _key, receiver, *_ in request_finished.receivers]
    order = [r.__func__ if hasattr(r, "__func__") else r for r in order if r is not None]
    assert order.index(middleware.request_finished) < order.index(close_old_connections)


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_rows_follow_the_last_body_message(product):
    """Django's ASGI handler calls ``close()`` after the last body message: the serve is
    not there while the body goes out, and is there once the handler has finished."""
    import asyncio

    from asgiref.sync import sync_to_async
    from django.core.handlers.asgi import ASGIHandler

    seen: dict[str, Any] = {}

    async def run() -> None:
        done = asyncio.Event()
        calls = []

        async def receive() -> dict[str, Any]:
            calls.append(1)
            if len(calls) == 1:
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["headers"] = dict(message["headers"]) | {b"status": message["status"]}
            elif not message.get("more_body"):
                count = sync_to_async(Serve.objects.count, thread_sensitive=False)
                seen["while sending"] = await count()
                seen["body"] = message["body"].decode()
                done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/product/",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"testserver"), (b"user-agent", BROWSER.encode())],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
        }
        await ASGIHandler()(scope, receive, send)

    asyncio.run(run())
    assert seen["headers"][b"status"] == 200 and seen["while sending"] == 0
    written = Serve.objects.get()
    assert f'data-crosssell-serve="{written.pk.hex}"' in seen["body"]
