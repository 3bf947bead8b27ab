"""The demo shop's after-purchase: consent at checkout (unchecked by default), the thank-you
widget, and mails from ``crosssell_send_due --now`` with a working one-click unsubscribe."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from django_crosssell.models import ConsentEvent, ProductRelation, ScheduledMessage, Suppression
from example_shop.shop.followup_demo import CHECKOUT_CONSENT, seed_followup
from example_shop.shop.models import Order

from .helpers import add_to_cart

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(make_product):
    beans = make_product(name="ハウスブレンド 200g", slug="beans-house-blend", price=1280, stock=50)
    filters = make_product(name="ペーパーフィルター 100枚", slug="filter-paper-100", price=380)
    ProductRelation.objects.create(source=beans, target=filters, kind="cross_sell")
    seed_followup({"beans-house-blend": beans, "filter-paper-100": filters})
    return beans, filters


@pytest.fixture
def hanako(django_user_model):
    return django_user_model.objects.create_user(
        username="hanako", email="hanako@example.jp", password="pw"
    )


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_consent_checkbox_is_offered_unchecked(shop, hanako):
    client = logged_in(hanako)
    add_to_cart(client, shop[0])
    html = client.get("/checkout/").content.decode()
    assert 'name="marketing_consent"' in html
    checkbox = html[html.index('name="marketing_consent"') - 40 : html.index(CHECKOUT_CONSENT.text)]
    assert "checked" not in checkbox
    assert CHECKOUT_CONSENT.text in html


def test_guests_are_not_asked(client, shop):
    add_to_cart(client, shop[0])
    assert "marketing_consent" not in client.get("/checkout/").content.decode()


def test_checking_the_box_records_consent_with_the_texts_version_and_hash(shop, hanako):
    client = logged_in(hanako)
    add_to_cart(client, shop[0])
    client.post("/checkout/", {"marketing_consent": "1"})

    events = ConsentEvent.objects.order_by("purpose")
    assert [(e.purpose, e.action, e.source) for e in events] == [
        ("cross_sell", "grant", "checkout"),
        ("replenishment", "grant", "checkout"),
    ]
    assert events[0].text_version == CHECKOUT_CONSENT.version
    assert events[0].text_hash == hashlib.sha256(CHECKOUT_CONSENT.text.encode()).hexdigest()
    assert events[0].email == "hanako@example.jp"
    # Both flows were scheduled for the paid order (the beans have a replenishment profile).
    assert sorted(ScheduledMessage.objects.values_list("flow__slug", flat=True)) == [
        "after-payment",
        "restock",
    ]
    # Next time the customer is told instead of asked again.
    add_to_cart(client, shop[0])
    html = client.get("/checkout/").content.decode()
    assert "marketing_consent" not in html and "受け取る設定になっています" in html


def test_an_unchecked_box_records_nothing(shop, hanako):
    client = logged_in(hanako)
    add_to_cart(client, shop[0])
    client.post("/checkout/")
    assert not ConsentEvent.objects.exists()


def test_the_thank_you_page_shows_what_goes_with_the_order(shop, hanako):
    beans, filters = shop
    client = logged_in(hanako)
    add_to_cart(client, beans)
    response = client.post("/checkout/", follow=True)
    html = response.content.decode()
    assert "ご注文ありがとうございました" in html
    widget = html[html.index('data-crosssell-widget="after_purchase"') :]
    assert 'data-crosssell-placement="thank_you"' in widget
    assert filters.name in widget
    assert beans.name not in widget  # never what was just bought


def test_the_due_scan_sends_the_mail_and_its_unsubscribe_link_works(shop, hanako, capsys):
    client = logged_in(hanako)
    add_to_cart(client, shop[0])
    client.post("/checkout/", {"marketing_consent": "1"})
    order = Order.objects.get()
    day = timezone.localtime(order.placed_at + timedelta(days=15)).strftime("%Y-%m-%dT12:00")

    call_command("crosssell_send_due", "--now", day)
    call_command("crosssell_send_due", "--now", day)

    out = capsys.readouterr().out
    assert "1 sent, 0 skipped" in out and "0 sent, 0 skipped" in out
    (sent,) = mail.outbox
    assert sent.to == ["hanako@example.jp"]
    assert "ミナト商店" in sent.body and "東京都港区" in sent.body
    assert "ペーパーフィルター 100枚" in sent.body
    url = sent.extra_headers["List-Unsubscribe"].strip("<>")
    assert url.startswith("http://127.0.0.1:8000/mail/unsubscribe/")
    path = url.removeprefix("http://127.0.0.1:8000")

    assert Client().get(path).status_code == 200
    assert not Suppression.objects.exists()
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Suppression.objects.get().email == "hanako@example.jp"
    assert ConsentEvent.objects.filter(action="withdraw", source="one_click").count() == 1


def test_without_consent_the_outbox_says_why(shop, hanako, capsys):
    client = logged_in(hanako)
    add_to_cart(client, shop[0])
    client.post("/checkout/")
    order = Order.objects.get()
    day = timezone.localtime(order.placed_at + timedelta(days=40)).strftime("%Y-%m-%dT12:00")
    call_command("crosssell_send_due", "--now", day)
    assert "0 sent, 2 skipped" in capsys.readouterr().out
    assert set(ScheduledMessage.objects.values_list("reason", flat=True)) == {"no_consent"}
    assert mail.outbox == []
