"""Receivers of measurement, connected from ``CrossSellConfig.ready()``.

The order signals call attribution; experiment and variant edits bump the widget cache
version (running experiments are cached with the widgets).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from .signals import order_placed, order_refunded


def _placed(sender: Any, order: Any = None, request: Any = None, **kwargs: Any) -> None:
    from .attribution import attribute_order

    attribute_order(order, request=request, lines=kwargs.get("lines"))


def _refunded(sender: Any, order: Any = None, **kwargs: Any) -> None:
    from .attribution import reverse_order

    reverse_order(order, lines=kwargs.get("lines"))


def _experiments_changed(sender: Any, **kwargs: Any) -> None:
    from .. import cache

    cache.invalidate()


def connect() -> None:
    from .models import Experiment, Variant

    order_placed.connect(_placed, dispatch_uid="crosssell-measure-placed")
    order_refunded.connect(_refunded, dispatch_uid="crosssell-measure-refunded")
    for model in (Experiment, Variant):
        label = model._meta.label_lower
        post_save.connect(_experiments_changed, sender=model, dispatch_uid=f"cs-m-save-{label}")
        post_delete.connect(_experiments_changed, sender=model, dispatch_uid=f"cs-m-del-{label}")
