"""The default adapter's answers about orders and customers, for the follow-up package.

:class:`~django_crosssell.adapter.CrossSellAdapter` delegates its order and customer
questions here (``order_items``, ``order_customer``, ``order_email``, ``order_cancelled``,
``purchase_history``...), so a host overrides them on its adapter, never here. They read the
settings the order-line source reads: ``ORDER_LINE_MODEL``, ``ORDER_LINE_FIELDS`` and
``ORDER_FILTER``. The order's own attributes are found from the order-line paths: with the
defaults ``order__placed_at`` and ``order__customer_id`` the order has ``placed_at`` and
``customer_id``.

Numpy-free; imports ``conf`` and ``products`` only (never ``adapter``, which imports this).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.constants import LOOKUP_SEP

from ..conf import app_settings, get_order_line_model
from ..products import product_key


class OrderItem(NamedTuple):
    """One line of an order: its key, the product's key and the quantity."""

    line: Any
    product: Any
    quantity: int


class Purchase(NamedTuple):
    """One order line of a customer's history, oldest first within (customer, product)."""

    customer: Any
    product: Any
    order: Any
    placed_at: datetime
    quantity: int


def _order_base() -> str:
    path = str(app_settings.ORDER_LINE_FIELDS.get("order") or "order_id")
    return path[:-3] if path.endswith("_id") else path


def order_attribute(name: str) -> str | None:
    """The order's own attribute behind ``ORDER_LINE_FIELDS[name]`` ("order__placed_at" ->
    "placed_at"), or None when that path does not go through the order."""
    path = app_settings.ORDER_LINE_FIELDS.get(name)
    prefix = _order_base() + LOOKUP_SEP
    if not path or not str(path).startswith(prefix):
        return None
    rest = str(path)[len(prefix) :]
    return None if LOOKUP_SEP in rest else rest


def order_key(order: Any) -> Any:
    return order.pk if isinstance(order, models.Model) else order


def _line_objects(order: Any) -> Iterable[Any] | None:
    for attribute in ("all_lines", "lines"):
        lines = getattr(order, attribute, None)
        if lines is None:
            continue
        if hasattr(lines, "all"):  # a related manager: .all() uses a prefetch when there is one
            return list(lines.all())
        return list(lines() if callable(lines) else lines)
    return None


def order_items(order: Any) -> list[OrderItem]:
    """The order's lines as :class:`OrderItem`; lines without a product are left out.

    Reads ``order.lines`` (or ``all_lines``) when the order has them, so a prefetched
    order costs no query; otherwise one query on ``ORDER_LINE_MODEL``.
    """
    fields = app_settings.ORDER_LINE_FIELDS
    lines = _line_objects(order) if isinstance(order, models.Model) else None
    items: list[OrderItem] = []
    if lines is not None:
        product_attr = str(fields.get("product") or "product_id")
        for line in lines:
            if LOOKUP_SEP not in product_attr and hasattr(line, product_attr):
                product = getattr(line, product_attr)
            else:
                related = getattr(line, "product", None)
                product = None if related is None else product_key(related)
            if product is None:
                continue
            quantity = int(getattr(line, "quantity", 1) or 1)
            items.append(OrderItem(getattr(line, "pk", None), product, quantity))
        return items
    line_model = get_order_line_model()
    if line_model is None:
        return []
    columns = ["pk", str(fields["product"])]
    if fields.get("quantity"):
        columns.append(str(fields["quantity"]))
    rows = (
        line_model._default_manager.filter(**{str(fields["order"]): order_key(order)})
        .exclude(**{f"{fields['product']}__isnull": True})
        .order_by("pk")
        .values_list(*columns)
    )
    for row in rows:
        quantity = int(row[2] or 1) if len(row) > 2 else 1
        items.append(OrderItem(row[0], row[1], quantity))
    return items


def _attribute(order: Any, name: str) -> Any:
    attribute = order_attribute(name)
    if attribute is None or not isinstance(order, models.Model):
        return None
    return getattr(order, attribute, None)


def order_customer(order: Any) -> Any:
    return _attribute(order, "customer")


def order_placed_at(order: Any) -> datetime | None:
    value = _attribute(order, "placed_at")
    return value if isinstance(value, datetime) else None


def customer_email(customer: Any) -> str:
    """The e-mail address of the user whose primary key is ``customer``, or ""."""
    if customer is None or customer == "":
        return ""
    user_model = get_user_model()
    field = user_model.get_email_field_name()
    try:
        value = (
            user_model._default_manager.filter(pk=customer).values_list(field, flat=True).first()
        )
    except (ValueError, TypeError, ValidationError):
        return ""
    return str(value or "")


def order_email(order: Any) -> str:
    own = getattr(order, "email", None)
    if isinstance(own, str) and own:
        return own
    return customer_email(order_customer(order))


def order_cancelled(order: Any) -> bool:
    """True when the order's lines are gone, or none of them matches ``ORDER_FILTER`` any
    more (a paid order whose status became cancelled or refunded)."""
    line_model = get_order_line_model()
    if line_model is None:
        return False
    field = str(app_settings.ORDER_LINE_FIELDS["order"])
    lines = line_model._default_manager.filter(**{field: order_key(order)})
    if not lines.exists():
        return True
    order_filter = app_settings.ORDER_FILTER or {}
    return bool(order_filter) and not lines.filter(**order_filter).exists()


def purchase_history(
    *,
    customers: Iterable[Any] | None = None,
    products: Iterable[Any] | None = None,
    since: datetime | None = None,
) -> Iterator[Purchase]:
    """Order lines of known customers (``ORDER_FILTER`` applied), ordered by customer,
    product and time; nothing when the order lines have no customer or come from
    ``ORDER_SOURCE``."""
    line_model = get_order_line_model()
    fields = app_settings.ORDER_LINE_FIELDS
    if line_model is None or not fields.get("customer") or app_settings.ORDER_SOURCE:
        return
    customer, product = str(fields["customer"]), str(fields["product"])
    placed_at, order = str(fields["placed_at"]), str(fields["order"])
    queryset = line_model._default_manager.filter(**(app_settings.ORDER_FILTER or {})).filter(
        **{f"{customer}__isnull": False, f"{product}__isnull": False}
    )
    if customers is not None:
        queryset = queryset.filter(**{f"{customer}__in": list(customers)})
    if products is not None:
        queryset = queryset.filter(**{f"{product}__in": list(products)})
    if since is not None:
        queryset = queryset.filter(**{f"{placed_at}__gte": since})
    columns = [customer, product, order, placed_at]
    if fields.get("quantity"):
        columns.append(str(fields["quantity"]))
    rows = queryset.order_by(customer, product, placed_at, "pk").values_list(*columns)
    for row in rows.iterator(chunk_size=int(app_settings.CHUNK_SIZE)):
        quantity = int(row[4] or 1) if len(row) > 4 else 1
        yield Purchase(row[0], row[1], row[2], row[3], quantity)
