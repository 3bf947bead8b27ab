"""``{% after_purchase order %}`` and ``{% subscription_suggestion product %}``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.test import RequestFactory

from django_crosssell.adapter import CrossSellAdapter
from tests.factories import ProductFactory, make_order

from .conftest import T0

pytestmark = pytest.mark.django_db


def render(source, user=None, **context):
    request = RequestFactory().get("/")
    request.user = user or AnonymousUser()
    return Template("{% load crosssell %}" + source).render(
        Context({"request": request, **context})
    )


def test_the_thank_you_widget_shows_complements_never_what_was_bought(catalogue):
    order = make_order(catalogue["beans"], catalogue["mug"], placed_at=T0)

    html = render("{% after_purchase order %}", order=order)

    assert 'data-crosssell-widget="after_purchase"' in html
    assert 'data-crosssell-placement="thank_you"' in html
    assert "Paper filters" in html
    assert "Coffee beans" not in html and "Mug" not in html


def test_the_thank_you_widget_is_cached_and_costs_one_query_warm(
    catalogue, django_assert_max_num_queries
):
    order = make_order(catalogue["beans"], placed_at=T0)
    first = render("{% after_purchase order limit=2 %}", order=order)
    order = type(order).objects.get(pk=order.pk)
    with django_assert_max_num_queries(1):  # the order's lines; the widget from the cache
        assert render("{% after_purchase order limit=2 %}", order=order) == first


@pytest.mark.parametrize("value", [None, "", "order"])
def test_bad_orders_render_nothing(value, catalogue):
    assert render("{% after_purchase order %}", order=value).strip() == ""


def test_an_order_with_nothing_to_recommend_renders_nothing(settings):
    settings.CROSSSELL = {**settings.CROSSSELL, "FALLBACK": None}
    order = make_order(ProductFactory(), placed_at=T0)
    assert render("{% after_purchase order %}", order=order).strip() == ""


class SubscribingAdapter(CrossSellAdapter):
    def subscription_offer(self, customer, product, interval_days):
        return f"/subscribe/{product.pk}/?every={interval_days}"


def test_the_subscription_suggestion_for_a_regular_buyer(settings, customer):
    settings.CROSSSELL = {
        **settings.CROSSSELL,
        "ADAPTER": "tests.followup.test_widgets.SubscribingAdapter",
    }
    beans = ProductFactory(name="Beans")
    for n in range(5):
        make_order(beans, customer=customer, placed_at=T0 - timedelta(days=30 * (5 - n)))

    html = render("{% subscription_suggestion product %}", user=customer, product=beans)

    assert f'href="/subscribe/{beans.pk}/?every=30"' in html
    assert "every 30 days" in html
    # Anonymous visitors and the default adapter get nothing.
    assert render("{% subscription_suggestion product %}", product=beans).strip() == ""
    settings.CROSSSELL = {**settings.CROSSSELL, "ADAPTER": None}
    assert render("{% subscription_suggestion product %}", user=customer, product=beans) == ""
