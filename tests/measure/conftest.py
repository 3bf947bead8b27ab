"""Fixtures of the measurement tests: a product with recommendations and a page to render."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory

from django_crosssell.measure.middleware import TrackingMiddleware
from tests.factories import CategoryFactory, ProductFactory, ProductRelationFactory
from tests.settings import CROSSSELL

BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
PAGE = "{% load crosssell %}{% also_recommended product %}"


@pytest.fixture
def shop(db):
    category = CategoryFactory()
    source = ProductFactory(category=category, name="Kettle", price=Decimal("4980"))
    picks = [
        ProductFactory(category=category, name=name, price=Decimal(price))
        for name, price in (("Filter", "600"), ("Beans", "1200"), ("Mug", "1500"))
    ]
    for pick in picks:
        ProductRelationFactory(source=source, target=pick)
    return {"source": source, "picks": picks}


@pytest.fixture
def tracking_settings(settings):
    def change(**extra):
        settings.CROSSSELL = {**CROSSSELL, **extra}

    change()
    return change


def make_request(path="/page/", *, method="get", user=None, agent=BROWSER, cookies=None, **headers):
    factory = RequestFactory()
    request = getattr(factory, method)(path, HTTP_USER_AGENT=agent, **headers)
    request.user = user or AnonymousUser()
    request.COOKIES.update(cookies or {})
    return request


@pytest.fixture
def page(shop):
    """``page(request) -> response`` through TrackingMiddleware, rendering the widget."""

    def view(request):
        html = Template(PAGE).render(Context({"request": request, "product": shop["source"]}))
        return HttpResponse(html)

    def call(request=None, **kwargs):
        return TrackingMiddleware(view)(request or make_request(**kwargs))

    return call
