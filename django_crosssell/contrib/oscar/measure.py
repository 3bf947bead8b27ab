"""Oscar's ``order_placed`` signal -> :func:`django_crosssell.measure.attribute_order`.

Oscar sends ``order_placed`` from ``OrderCreator.place_order()`` with the order and the
user, but no request: the visitor and browser session come from the request the tracking
middleware is handling (its context variable), the customer from ``order.user``. Line
prices are Oscar's ``line_price_incl_tax`` (after discounts), so the bundle offer (booked by
Oscar as a discount) is already taken off and not taken off again. A variant is attributed
to a click on its parent through the adapter's ``canonical_ids``.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from oscar.core.loading import get_class

from django_crosssell.measure import attribute_order

logger = logging.getLogger("django_crosssell")


def lines_of(order: Any) -> list[tuple[Any, int, Decimal, Any]]:
    lines = []
    for line in order.lines.select_related("product"):
        if line.product is None or not line.quantity:
            continue
        net = Decimal(line.line_price_incl_tax) / line.quantity
        lines.append((line.product, line.quantity, net, line.pk))
    return lines


def on_order_placed(sender: Any, order: Any = None, user: Any = None, **kwargs: Any) -> None:
    if order is None:
        return
    customer = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    try:
        lines = lines_of(order)
    except Exception:  # the order has succeeded: measurement must not break it
        logger.warning("django-crosssell: Oscar order %s not attributed", order.pk, exc_info=True)
        return
    attribute_order(
        order,
        lines=lines,
        order_key=order.pk,
        customer=customer,
        placed_at=getattr(order, "date_placed", None),
        net_of_bundles=True,
    )


def connect() -> None:
    order_placed = get_class("order.signals", "order_placed")
    order_placed.connect(on_order_placed, dispatch_uid="crosssell-oscar-order-placed")
