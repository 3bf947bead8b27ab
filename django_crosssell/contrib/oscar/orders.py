"""Oscar's order lines for the affinity engine and the "already bought" exclusion.

The adapter's defaults point ``ORDER_SOURCE`` at :func:`order_source` because two things an
Oscar shop needs cannot be said with ``ORDER_LINE_FIELDS`` and an ``ORDER_FILTER`` dict:

* a child product (a T-shirt in size M) counts as its parent, the product customers browse,
  so the parent page gets the partners its sizes were bought with;
* lines of cancelled orders do not count (an exclusion; the filter dict only includes).

The fields (``order``, ``product``, ``placed_at``, ``customer``) and ``ORDER_FILTER`` of the
``CROSSSELL`` settings still apply, so a shop can narrow the orders further, e.g.
``{"order__status": "Complete"}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce
from oscar.core.loading import get_model

from django_crosssell.conf import app_settings, get_order_line_model

#: The dotted path the adapter's defaults give ``ORDER_SOURCE``.
ORDER_SOURCE = "django_crosssell.contrib.oscar.orders.order_source"
#: Status names that mean "cancelled" (compared case-insensitively).
CANCELLED = ("cancelled", "canceled")


def cancelled_statuses() -> set[str]:
    """``Cancelled``, and every status of ``OSCAR_ORDER_STATUS_PIPELINE`` named so."""
    pipeline = getattr(settings, "OSCAR_ORDER_STATUS_PIPELINE", None) or {}
    named = {status for status in pipeline if str(status).lower() in CANCELLED}
    return {"Cancelled", *named}


def _statuses(statuses: Iterable[str] | None) -> set[str]:
    if statuses is not None:
        return set(statuses)
    from django_crosssell.adapter import get_adapter

    adapter = get_adapter()
    method = getattr(adapter, "cancelled_statuses", None)
    return set(method()) if callable(method) else cancelled_statuses()


def _relation(path: str) -> str:
    """``product_id`` -> ``product``: the relation an id path names."""
    return path.removesuffix("_id")


def counted_lines(
    *, since: datetime | None = None, statuses: Iterable[str] | None = None
) -> models.QuerySet:
    """Order lines that count, annotated with ``crosssell_product`` (the parent's id for a
    variant): a product, not cancelled, ``ORDER_FILTER``, placed since ``since``."""
    model = get_order_line_model() or get_model("order", "Line")
    fields = app_settings.ORDER_LINE_FIELDS
    product = _relation(fields["product"])
    lines = (
        model._default_manager.filter(**(app_settings.ORDER_FILTER or {}))
        .filter(**{f"{product}__isnull": False})
        .exclude(order__status__in=_statuses(statuses))
    )
    if since is not None:
        lines = lines.filter(**{f"{fields['placed_at']}__gte": since})
    return lines.annotate(
        crosssell_product=Coalesce(F(f"{product}__parent"), F(product))
    ).order_by()


def order_source(
    *, since: datetime | None, with_placed_at: bool, chunk_size: int
) -> Iterator[tuple[Any, ...]]:
    """``CROSSSELL["ORDER_SOURCE"]``: ``(order, product[, placed_at])`` tuples, streamed.

    ``placed_at`` is read only when time decay or the lookback window needs it.
    """
    fields = app_settings.ORDER_LINE_FIELDS
    columns = [fields["order"], "crosssell_product"]
    if with_placed_at or since is not None:
        columns.append(fields["placed_at"])
    rows = counted_lines(since=since).values_list(*columns)
    yield from rows.iterator(chunk_size=chunk_size)


def chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    """``rows`` as lists of at most ``size`` (what ``adapter.order_lines()`` yields)."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def purchased(customer: Any, statuses: Iterable[str] | None = None) -> models.QuerySet:
    """One column of the canonical product ids ``customer`` bought (not cancelled)."""
    fields = app_settings.ORDER_LINE_FIELDS
    return (
        counted_lines(statuses=statuses)
        .filter(**{fields["customer"] or "order__user_id": customer})
        .values("crosssell_product")
    )


def customer_lines(*, since: datetime | None, chunk_size: int) -> Iterator[list[Any]]:
    """``(customer, order, product, placed_at, quantity, unit_price)`` chunks of counted
    lines with a customer (the customer snapshot's read)."""
    from django_crosssell.compat import fetch_chunks

    fields = app_settings.ORDER_LINE_FIELDS
    lines = counted_lines(since=since).filter(**{f"{fields['customer']}__isnull": False})
    columns = [
        str(fields["customer"]),
        str(fields["order"]),
        "crosssell_product",
        str(fields["placed_at"]),
        str(fields.get("quantity") or "quantity"),
        str(fields.get("unit_price") or "unit_price_incl_tax"),
    ]
    yield from fetch_chunks(lines.values_list(*columns), chunk_size)
