"""Attribution at order placement: last click, window, canonical product, bundles, refunds."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.http import HttpResponse
from django.utils import timezone

from django_crosssell.measure import attribute_order, revenue_by_placement, reverse_order
from django_crosssell.measure.middleware import TrackingMiddleware
from django_crosssell.models import OrderAttribution, OrderRecord
from tests.factories import BundleItemFactory, BundleRuleFactory, ProductFactory, make_order

from .conftest import make_request

pytestmark = pytest.mark.django_db
COOKIES = {"crosssell_vid": "visitor-0123456789abcdef", "crosssell_sid": "session-0123456789abcdef"}


def click(page, position, cookies=COOKIES):
    html = page(cookies=cookies).content.decode()
    token = re.findall(r'\?cs=([^"]+)"', html)[position - 1]
    TrackingMiddleware(lambda r: HttpResponse("ok"))(
        make_request(f"/p/?cs={token}", cookies=cookies)
    )


def checkout_request(cookies=COOKIES):
    """A request that went through the middleware (its tracking state attached)."""
    seen = {}

    def view(request):
        seen["request"] = request
        return HttpResponse("ok")

    TrackingMiddleware(view)(make_request("/checkout/", method="post", cookies=cookies))
    return seen["request"]


def test_the_clicked_line_is_direct_and_the_others_assisted(page, shop, tracking_settings):
    beans, mug = shop["picks"][1], shop["picks"][2]
    other = ProductFactory(price=Decimal("700"))
    click(page, 2)  # Beans
    order = make_order(beans, other)
    record = attribute_order(order, request=checkout_request())

    assert record.revenue == Decimal("1900") and record.attached
    direct = OrderAttribution.objects.get(kind="direct")
    assert (direct.product, direct.position, direct.revenue) == (str(beans.pk), 2, Decimal(1200))
    assert direct.placement == "also_recommended" and direct.same_session
    assisted = OrderAttribution.objects.get(kind="assisted")
    assert (assisted.product, assisted.revenue) == (str(other.pk), Decimal(700))
    assert revenue_by_placement() == {"also_recommended": Decimal(1200)}
    assert str(mug.pk) not in OrderAttribution.objects.values_list("product", flat=True)


def test_attribution_is_idempotent(page, shop, tracking_settings):
    click(page, 1)
    order = make_order(shop["picks"][0])
    first = attribute_order(order, request=checkout_request())
    assert attribute_order(order, request=checkout_request()) == first
    assert OrderAttribution.objects.count() == 1


def test_a_click_outside_the_window_is_not_credited(page, shop, tracking_settings):
    click(page, 1)
    order = make_order(shop["picks"][0])
    attribute_order(order, request=checkout_request(), placed_at=timezone.now() + timedelta(days=8))
    assert OrderAttribution.objects.count() == 0
    assert OrderRecord.objects.get().attached is False


def test_another_browser_session_is_not_same_session(page, shop, tracking_settings):
    click(page, 1)
    order = make_order(shop["picks"][0])
    later = {**COOKIES, "crosssell_sid": "another-session-0123456"}
    attribute_order(order, request=checkout_request(later))
    assert OrderAttribution.objects.get().same_session is False


def test_a_logged_in_buyer_matches_by_customer(page, shop, tracking_settings, django_user_model):
    customer = django_user_model.objects.create_user("hanako")
    html = page(user=customer, cookies=COOKIES).content.decode()
    token = re.findall(r'\?cs=([^"]+)"', html)[0]
    request = make_request(f"/p/?cs={token}", user=customer, cookies=COOKIES)
    TrackingMiddleware(lambda r: HttpResponse("ok"))(request)
    order = make_order(shop["picks"][0], customer=customer)
    # another device: no visitor cookie in common, the customer matches
    attribute_order(order, customer=customer.pk)
    assert OrderAttribution.objects.get().kind == "direct"


def test_revenue_is_net_of_bundle_discounts(page, shop, tracking_settings):
    filters, beans = shop["picks"][0], shop["picks"][1]
    rule = BundleRuleFactory(discount_type="percent", value=Decimal("20"))
    BundleItemFactory(rule=rule, product=filters)
    BundleItemFactory(rule=rule, product=beans)
    click(page, 2)
    record = attribute_order(make_order(filters, beans), request=checkout_request())
    # 360 off a 1800 pair, spread by price: 120 on the filter, 240 on the beans
    assert record.bundle_discount == Decimal(360) and record.revenue == Decimal(1440)
    assert OrderAttribution.objects.get(kind="direct").revenue == Decimal(960)
    assert OrderAttribution.objects.get(kind="assisted").revenue == Decimal(480)


def test_a_refund_takes_the_revenue_back(page, shop, tracking_settings):
    click(page, 1)
    order = make_order(shop["picks"][0], shop["picks"][1])
    attribute_order(order, request=checkout_request())
    line = order.lines.get(product=shop["picks"][1])
    assert reverse_order(order, lines=[line.pk]) == 1  # the assisted line only
    assert revenue_by_placement() == {"also_recommended": Decimal(600)}
    reverse_order(order)
    assert revenue_by_placement() == {}
    assert OrderRecord.objects.get().cancelled_at is not None


def test_staff_orders_and_tracking_off_are_not_recorded(page, shop, tracking_settings, admin_user):
    order = make_order(shop["picks"][0])
    seen = {}
    TrackingMiddleware(lambda r: seen.setdefault("r", r) and HttpResponse())(
        make_request(user=admin_user)
    )
    assert attribute_order(order, request=seen["r"]) is None
    tracking_settings(TRACKING="off")
    assert attribute_order(order) is None
    assert OrderRecord.objects.count() == 0


def test_the_signal_attributes(page, shop, tracking_settings):
    from django_crosssell.measure.signals import order_placed

    click(page, 1)
    order = make_order(shop["picks"][0])
    order_placed.send(sender=type(order), order=order, request=checkout_request())
    assert OrderAttribution.objects.get().kind == "direct"
