"""Fixtures of the follow-up tests: follow-up mail switched on with a complete sender, a
customer with an address, products with complements, and flows."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from django_crosssell.followup import consent
from django_crosssell.followup.models import FollowUpFlow, Purpose, ReplenishmentProfile
from tests.factories import ProductFactory, ProductRelationFactory, make_order

TOKYO = ZoneInfo("Asia/Tokyo")
#: Noon in Tokyo: outside the default quiet hours.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=TOKYO)

SENDER = {
    "FOLLOWUP_ENABLED": True,
    "FOLLOWUP_SENDER_NAME": "ミナト商店",
    "FOLLOWUP_SENDER_ADDRESS": "東京都港区芝公園4-2-8",
    "FOLLOWUP_SENDER_CONTACT": "support@minato.example.jp",
    "FOLLOWUP_SENDER_PHONE": "03-0000-0000",
    "FOLLOWUP_FROM_EMAIL": "ミナト商店 <shop@minato.example.jp>",
    "FOLLOWUP_SITE_URL": "https://minato.example.jp",
}


def crosssell_settings(base: dict, **extra) -> dict:
    return {**base, **SENDER, **extra}


@pytest.fixture
def enabled(settings):
    """Follow-up mail on; returns a function that changes more CROSSSELL keys."""
    base = dict(settings.CROSSSELL)
    settings.CROSSSELL = crosssell_settings(base)

    def change(**extra):
        settings.CROSSSELL = crosssell_settings(base, **extra)

    return change


@pytest.fixture
def customer(django_user_model):
    return django_user_model.objects.create_user(
        username="hanako", email="Hanako@Example.jp", password="x"
    )


@pytest.fixture
def catalogue(db):
    """Coffee beans with two curated complements and an unrelated product."""
    beans = ProductFactory(name="Coffee beans")
    filters = ProductFactory(name="Paper filters")
    mug = ProductFactory(name="Mug")
    ProductRelationFactory(source=beans, target=filters, position=0)
    ProductRelationFactory(source=beans, target=mug, position=1)
    other = ProductFactory(name="Notebook")
    return {"beans": beans, "filters": filters, "mug": mug, "other": other}


@pytest.fixture
def follow_up(db):
    return FollowUpFlow.objects.create(
        name="After payment", slug="after-payment", kind=FollowUpFlow.Kind.FOLLOW_UP
    )


@pytest.fixture
def replenishment_flow(db):
    return FollowUpFlow.objects.create(
        name="Restock",
        slug="restock",
        kind=FollowUpFlow.Kind.REPLENISHMENT,
        purpose=Purpose.REPLENISHMENT,
    )


@pytest.fixture
def beans_profile(catalogue):
    return ReplenishmentProfile.objects.create(product=catalogue["beans"], staff_interval_days=30)


@pytest.fixture
def consenting(customer):
    consent.grant(
        [Purpose.CROSS_SELL, Purpose.REPLENISHMENT],
        source="checkout",
        customer=customer.pk,
        email=customer.email,
        text=consent.ConsentText("v1", "メールでおすすめを受け取る"),
        at=T0 - timedelta(days=1),
    )
    return customer


@pytest.fixture
def order(catalogue, customer):
    return make_order(catalogue["beans"], customer=customer, placed_at=T0)
