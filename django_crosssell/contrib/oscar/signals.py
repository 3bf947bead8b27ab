"""Widget cache invalidation for Oscar's stock records.

A stock record decides what a card shows (its price) and whether the product is shown at
all (its stock). Oscar saves stock records on every sale, too: ``StockRecord.allocate()``
updates ``num_allocated`` in SQL and then sends ``post_save`` itself. Invalidating every
cached widget on each of those would empty the cache once per order, so the receivers here
compare the record before and after and invalidate only when a customer could see the
difference: a new or deleted record, another price or currency, or a product that sold out
(the order that allocated the last unit) or came back (a cancelled allocation, a restock).
That costs one query per stock record save (the stored row, read before the save).

The product itself, its images, categories and class are watched by django-crosssell's own
receivers (the adapter's ``invalidation_models()``).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from oscar.core.loading import get_model

from django_crosssell.signals import invalidate_recommendations

#: What a widget shows of a stock record: price, currency, and whether it can be sold.
State = tuple[Any, Any, bool]


def state(num_in_stock: Any, num_allocated: Any, price: Any, currency: Any) -> State:
    net = (num_in_stock or 0) - (num_allocated or 0)
    return (price, currency, net > 0)


def _stored(record: models.Model) -> State | None:
    row = (
        type(record)
        ._base_manager.filter(pk=record.pk)
        .values_list("num_in_stock", "num_allocated", "price", "price_currency")
        .first()
    )
    return None if row is None else state(*row)


def remember(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """Before a save (or Oscar's allocation update): the record as stored."""
    if kwargs.get("raw") or instance.pk is None:
        return
    instance._crosssell_before = _stored(instance)  # type: ignore[attr-defined]


def compare(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """After it: invalidate when the price or the availability changed."""
    before = getattr(instance, "_crosssell_before", None)
    instance._crosssell_before = None  # type: ignore[attr-defined]
    now = state(
        instance.num_in_stock,  # type: ignore[attr-defined]
        instance.num_allocated,  # type: ignore[attr-defined]
        instance.price,  # type: ignore[attr-defined]
        instance.price_currency,  # type: ignore[attr-defined]
    )
    if kwargs.get("created") or kwargs.get("raw") or before is None or before != now:
        invalidate_recommendations(sender, **kwargs)


def connect() -> None:
    """Connect the receivers to Oscar's (possibly forked) StockRecord; idempotent."""
    record = get_model("partner", "StockRecord")
    pre_save.connect(remember, sender=record, dispatch_uid="crosssell-oscar-stock-before")
    post_save.connect(compare, sender=record, dispatch_uid="crosssell-oscar-stock-after")
    post_delete.connect(
        invalidate_recommendations, sender=record, dispatch_uid="crosssell-oscar-stock-delete"
    )
