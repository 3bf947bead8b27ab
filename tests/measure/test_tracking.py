"""Serves and events: what is written, when nothing is, and what it costs."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth import get_user_model

from django_crosssell.measure import tracking
from django_crosssell.measure.middleware import TrackingMiddleware
from django_crosssell.models import Event, Serve

from .conftest import make_request

pytestmark = pytest.mark.django_db


def serve_id(html: str) -> str:
    return re.search(r'data-crosssell-serve="([^"]*)"', html).group(1)


def test_a_rendered_widget_is_one_serve_with_its_items(page, shop, tracking_settings):
    response = page()
    html = response.content.decode()
    serve = Serve.objects.get()
    assert serve_id(html) == serve.pk.hex
    assert serve.placement == "also_recommended" and serve.channel == "web"
    assert serve.items == [[str(p.pk), i] for i, p in enumerate(shop["picks"], start=1)]
    assert serve.source == str(shop["source"].pk)
    assert len(serve.visitor) == 64 and serve.customer == ""
    visitor = response.cookies["crosssell_vid"]
    assert visitor["httponly"] and visitor["samesite"] == "Lax"
    assert visitor.value not in serve.visitor  # stored only as a hash
    # every link carries the signed serve id and its position
    tokens = re.findall(r'href="[^"]*\?cs=([^"]+)"', html)
    assert [tracking.read_click_token(t) for t in tokens] == [
        (serve.pk, 1),
        (serve.pk, 2),
        (serve.pk, 3),
    ]
    assert tracking.PLACEHOLDER not in html


def test_each_response_is_a_new_serve_and_the_warm_widget_runs_no_query(
    page, shop, tracking_settings, django_assert_num_queries
):
    page()  # warms the cache
    request = make_request()
    state = tracking.TrackingState.for_request(request)
    request.crosssell_tracking = state
    from django.template import Context, Template

    from .conftest import PAGE

    with django_assert_num_queries(0):
        html = Template(PAGE).render(Context({"request": request, "product": shop["source"]}))
    assert len(state.serves) == 1 and serve_id(html) == state.serves[0]["id"].hex
    # the whole warm response: one INSERT of the buffered serves
    with django_assert_num_queries(1):
        page()
    assert Serve.objects.count() == 2


def test_two_widgets_on_a_page_are_written_in_one_insert(
    shop, tracking_settings, django_assert_num_queries
):
    from django.http import HttpResponse
    from django.template import Context, Template

    template = Template(
        "{% load crosssell %}{% also_recommended product %}{% also_recommended product limit=2 %}"
    )

    def view(request):
        return HttpResponse(
            template.render(Context({"request": request, "product": shop["source"]}))
        )

    TrackingMiddleware(view)(make_request())  # warm
    with django_assert_num_queries(1):
        TrackingMiddleware(view)(make_request())
    assert Serve.objects.count() == 4


def test_tracking_off_writes_nothing_and_links_carry_no_token(
    page, tracking_settings, django_assert_num_queries
):
    tracking_settings(TRACKING="off")
    page()  # warm
    with django_assert_num_queries(0):
        response = page()
    html = response.content.decode()
    assert Serve.objects.count() == 0 and "cs=" not in html and serve_id(html) == ""
    assert not response.cookies


def test_consent_writes_nothing_until_the_host_says_yes(page, tracking_settings, settings):
    tracking_settings(TRACKING="consent", TRACKING_CONSENT="tests.measure.consent.from_cookie")
    response = page()
    assert Serve.objects.count() == 0 and not response.cookies
    response = page(cookies={"measure_ok": "1"})
    assert Serve.objects.count() == 1 and "crosssell_vid" in response.cookies


@pytest.mark.parametrize(
    "kwargs",
    [
        {"agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
        {"agent": ""},
        {"HTTP_SEC_PURPOSE": "prefetch;prerender"},
        {"HTTP_PURPOSE": "prefetch"},
        {"method": "head"},
    ],
    ids=["googlebot", "no user agent", "sec-purpose", "purpose", "head"],
)
def test_bots_prefetches_and_head_are_not_counted(page, tracking_settings, kwargs):
    response = page(**kwargs)
    assert Serve.objects.count() == 0
    assert "cs=" not in response.content.decode()


def test_staff_is_not_counted(page, tracking_settings):
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    page(user=staff)
    assert Serve.objects.count() == 0


def test_a_logged_in_customer_is_stored_hashed(page, tracking_settings):
    customer = get_user_model().objects.create_user("hanako")
    page(user=customer)
    serve = Serve.objects.get()
    from django_crosssell.measure.subjects import hashed

    assert serve.customer == hashed("customer", customer.pk) != str(customer.pk)


def test_a_click_counts_from_the_link_without_javascript(page, shop, tracking_settings):
    html = page().content.decode()
    token = re.findall(r'\?cs=([^"]+)"', html)[1]
    cookies = {"crosssell_vid": "v" * 24, "crosssell_sid": "s" * 24}
    for _ in range(2):  # a reload is the same click
        TrackingMiddleware(lambda r: __import__("django.http").http.HttpResponse("ok"))(
            make_request(f"/p/?cs={token}", cookies=cookies)
        )
    click = Event.objects.get()
    assert (click.type, click.product, click.position) == ("click", str(shop["picks"][1].pk), 2)
    assert click.serve_id == Serve.objects.get().pk


def test_a_forged_click_token_is_ignored(page, tracking_settings):
    html = page().content.decode()
    token = re.findall(r'\?cs=([^"]+)"', html)[0]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    TrackingMiddleware(lambda r: __import__("django.http").http.HttpResponse("ok"))(
        make_request(f"/p/?cs={forged}")
    )
    assert Event.objects.count() == 0


def test_a_failed_write_never_costs_the_page(page, tracking_settings, monkeypatch, caplog):
    from django.db import DatabaseError

    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    from django_crosssell.measure import middleware

    monkeypatch.setattr(middleware, "insert_serves", broken)
    response = page()
    assert response.status_code == 200 and "crosssell-item" in response.content.decode()
    assert "tracking data was not written" in caplog.text


def test_the_thank_you_widget_is_a_serve_on_its_placement(shop, tracking_settings):
    from django.http import HttpResponse
    from django.template import Context, Template

    from tests.factories import make_order

    order = make_order(shop["source"])
    template = Template("{% load crosssell %}{% after_purchase order %}")

    def view(request):
        return HttpResponse(template.render(Context({"request": request, "order": order})))

    html = TrackingMiddleware(view)(make_request()).content.decode()
    serve = Serve.objects.get()
    assert serve.placement == "thank_you" and serve_id(html) == serve.pk.hex
    assert [item[1] for item in serve.items] == [1, 2, 3]


def test_many_serves_fall_back_to_bulk_create(shop, tracking_settings, monkeypatch):
    from django.db import connection

    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, objs: 1)
    from django.http import HttpResponse
    from django.template import Context, Template

    template = Template(
        "{% load crosssell %}{% also_recommended product %}{% also_recommended product limit=2 %}"
    )

    def view(request):
        context = Context({"request": request, "product": shop["source"]})
        return HttpResponse(template.render(context))

    TrackingMiddleware(view)(make_request())
    assert sorted(len(serve.items) for serve in Serve.objects.all()) == [2, 3]


def test_click_tokens_and_hashes_are_djangos_own(settings):
    """The derived key is kept between calls; the signatures and digests must stay exactly
    those of ``django.core.signing`` and ``salted_hmac`` (links already out keep working)."""
    from django.core import signing
    from django.utils.crypto import salted_hmac

    from django_crosssell.measure import subjects

    serve = "0123456789abcdef0123456789abcdef"
    for secret in ("first-secret-key-of-the-shop-0000", "a-rotated-secret-key-of-the-shop-11"):
        settings.SECRET_KEY = secret
        signed = tracking.signed_serve(serve)
        assert signed == signing.Signer(salt=tracking.CLICK_SALT).sign(serve)
        assert tracking.read_click_token(f"{signed}.2") == (uuid.UUID(serve), 2)
        expected = salted_hmac(f"{subjects.SALT}.visitor", "vïsitor", algorithm="sha256")
        assert subjects.hashed("visitor", "vïsitor") == expected.hexdigest()
    assert tracking.read_click_token(f"{serve}:forged.2") is None


def test_the_script_tag_follows_the_script_prefix(tracking_settings):
    from django.template import Context, Template
    from django.urls import set_script_prefix

    tag = Template("{% load crosssell %}{% crosssell_tracking_script %}")
    assert 'data-endpoint="/crosssell/events/"' in tag.render(Context())
    set_script_prefix("/shop/")
    try:
        assert 'data-endpoint="/shop/crosssell/events/"' in tag.render(Context())
    finally:
        set_script_prefix("/")
    assert 'data-endpoint="/crosssell/events/"' in tag.render(Context())


def test_frequently_bought_together_is_a_serve_of_its_partners(shop, tracking_settings):
    from django.http import HttpResponse
    from django.template import Context, Template

    def view(request):
        html = Template("{% load crosssell %}{% frequently_bought_together product %}").render(
            Context({"request": request, "product": shop["source"]})
        )
        return HttpResponse(html)

    html = TrackingMiddleware(view)(make_request()).content.decode()
    serve = Serve.objects.get()
    assert serve.placement == "frequently_bought_together" and serve_id(html) == serve.pk.hex
    partners = [str(p.pk) for p in shop["picks"][:2]]
    assert serve.items == [[key, position] for position, key in enumerate(partners, start=1)]
    # the product itself is shown first but is not an item and its link counts no click
    tokens = re.findall(r'href="[^"]*\?cs=([^"]+)"', html)
    assert [tracking.read_click_token(t) for t in tokens] == [(serve.pk, 1), (serve.pk, 2)]
    assert len(re.findall(r'class="crosssell-card-link" href="', html)) == 3
    assert tracking.PLACEHOLDER not in html
