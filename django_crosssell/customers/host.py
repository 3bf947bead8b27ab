"""The default adapter's answers for customer analysis (numpy-free).

:class:`~django_crosssell.adapter.CrossSellAdapter` delegates ``customer_order_lines``,
``customers_who_bought`` and ``product_categories`` here, so a host overrides them on its
adapter, never here. They read the settings the order-line source reads
(``ORDER_LINE_MODEL``, ``ORDER_LINE_FIELDS``, ``ORDER_FILTER``); with ``ORDER_SOURCE`` (no
customers) they yield nothing.

Imports ``conf`` and ``compat`` only (never ``adapter``, which imports this).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import F

from ..compat import fetch_chunks
from ..conf import app_settings, get_order_line_model

#: The columns of a customer order line, in order.
LINE_COLUMNS = ("customer", "order", "product", "placed_at", "quantity", "unit_price")


def _lines() -> models.QuerySet | None:
    line_model = get_order_line_model()
    fields = app_settings.ORDER_LINE_FIELDS
    if (
        line_model is None
        or app_settings.ORDER_SOURCE
        or not fields.get("customer")
        or not fields.get("placed_at")
    ):
        return None
    return line_model._default_manager.filter(**(app_settings.ORDER_FILTER or {})).filter(
        **{f"{fields['customer']}__isnull": False, f"{fields['product']}__isnull": False}
    )


def customer_order_lines(*, since: datetime | None, chunk_size: int) -> Iterator[list[Any]]:
    """Chunks of ``(customer, order, product, placed_at, quantity, unit_price)`` rows.

    ``quantity`` is 1 and ``unit_price`` None when the host has no such column. One
    streamed query (a server-side cursor on PostgreSQL), no model instances.
    """
    queryset = _lines()
    if queryset is None:
        return
    fields = app_settings.ORDER_LINE_FIELDS
    if since is not None:
        queryset = queryset.filter(**{f"{fields['placed_at']}__gte": since})
    columns: dict[str, Any] = {
        "cs_customer": F(str(fields["customer"])),
        "cs_order": F(str(fields["order"])),
        "cs_product": F(str(fields["product"])),
        "cs_placed_at": F(str(fields["placed_at"])),
    }
    if fields.get("quantity"):
        columns["cs_quantity"] = F(str(fields["quantity"]))
    if fields.get("unit_price"):
        columns["cs_price"] = F(str(fields["unit_price"]))
    rows = queryset.order_by().values_list(*columns.values())
    has_quantity, has_price = "cs_quantity" in columns, "cs_price" in columns
    for chunk in fetch_chunks(rows, chunk_size):
        if has_quantity and has_price:
            yield chunk
        else:
            yield [
                (
                    *row[:4],
                    row[4] if has_quantity else 1,
                    row[-1] if has_price else None,
                )
                for row in chunk
            ]


def customers_who_bought(
    *, products: Iterable[Any] | None = None, product_query: models.QuerySet | None = None
) -> set[str] | None:
    """Customer keys (as strings) with a counted order of any of ``products`` or of a product
    in ``product_query`` (a one-column ``values("pk")`` query); None when the order lines
    carry no customer."""
    queryset = _lines()
    if queryset is None:
        return None
    fields = app_settings.ORDER_LINE_FIELDS
    if products is not None:
        queryset = queryset.filter(**{f"{fields['product']}__in": list(products)})
    if product_query is not None:
        queryset = queryset.filter(**{f"{fields['product']}__in": product_query})
    keys = queryset.order_by().values_list(str(fields["customer"]), flat=True).distinct()
    return {str(key) for key in keys}


def product_categories(
    field: models.Field | None, queryset: models.QuerySet
) -> dict[Any, tuple[Any, ...]]:
    """``{product key: (category id, ...)}`` of ``queryset`` without building instances."""
    if field is None:
        return {}
    result: dict[Any, list[Any]] = {}
    path = field.name if isinstance(field, models.ManyToManyField) else field.attname
    rows = queryset.filter(**{f"{field.name}__isnull": False}).order_by().values_list("pk", path)
    for pk, category in rows:
        result.setdefault(pk, []).append(category)
    return {pk: tuple(ids) for pk, ids in result.items()}
