"""Orders placed through Oscar's checkout are attributed (``order_placed`` receiver)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from django_crosssell import models as cs
from django_crosssell.measure.subjects import hashed
from tests.oscar import shop as builders

pytestmark = pytest.mark.django_db


def clicked(product, customer):
    serve = cs.Serve.objects.create(
        id=uuid.uuid4(),
        created_at=timezone.now(),
        placement="also_recommended",
        items=[[str(product.pk), 1]],
        customer=hashed("customer", customer.pk),
    )
    cs.Event.objects.create(
        serve=serve,
        type="click",
        product=str(product.pk),
        position=1,
        created_at=timezone.now(),
        customer=hashed("customer", customer.pk),
    )
    return serve


def test_a_variant_bought_after_a_click_on_its_parent_is_direct(shop):
    customer = get_user_model().objects.create_user("hanako", email="h@example.jp")
    serve = clicked(shop.shirt, customer)
    order = builders.buy((shop.medium, 2), (shop.mug, 1), user=customer)

    record = cs.OrderRecord.objects.get(order=str(order.pk))
    assert record.revenue == Decimal("33.25")
    direct = cs.OrderAttribution.objects.get(kind="direct")
    assert (direct.product, direct.quantity, direct.serve_id) == (str(shop.medium.pk), 2, serve.pk)
    assert direct.revenue == Decimal("25.00")
    assert cs.OrderAttribution.objects.get(kind="assisted").product == str(shop.mug.pk)


def test_an_order_without_a_click_is_recorded_but_not_attributed(shop):
    customer = get_user_model().objects.create_user("taro")
    order = builders.buy((shop.jeans, 1), user=customer)
    assert cs.OrderRecord.objects.get(order=str(order.pk)).attached is False
    assert not cs.OrderAttribution.objects.exists()
