"""Receivers of measurement, connected from ``CrossSellConfig.ready()``.

The order signals call attribution; experiment and variant edits bump the widget cache
version (running experiments are cached with the widgets); the request signals write the
tracking rows after the response has been sent (see :mod:`.middleware`).
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
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from . import middleware
    from .models import Experiment, Variant

    request_started.connect(middleware.request_started, dispatch_uid="crosssell-measure-started")
    request_finished.connect(middleware.request_finished, dispatch_uid="crosssell-measure-sent")
    # Django connects close_old_connections to request_finished when django.db is imported,
    # so it would close the request's connection (CONN_MAX_AGE = 0, the default) before the
    # tracking write and the write would open a new one. Moved after ours (public API; the
    # test client disconnects and reconnects it around close() the same way).
    if request_finished.disconnect(close_old_connections):
        request_finished.connect(close_old_connections)

    order_placed.connect(_placed, dispatch_uid="crosssell-measure-placed")
    order_refunded.connect(_refunded, dispatch_uid="crosssell-measure-refunded")
    for model in (Experiment, Variant):
        label = model._meta.label_lower
        post_save.connect(_experiments_changed, sender=model, dispatch_uid=f"cs-m-save-{label}")
        post_delete.connect(_experiments_changed, sender=model, dispatch_uid=f"cs-m-del-{label}")
