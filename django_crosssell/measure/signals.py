"""Signals of the measurement package.

* :data:`order_placed` - a host that prefers signals to a call sends it from its checkout
  (``order_placed.send(sender=Order, order=order, request=request)``); the receiver calls
  :func:`~django_crosssell.measure.attribution.attribute_order`.
* :data:`order_refunded` - likewise for :func:`~django_crosssell.measure.attribution.reverse_order`.
* :data:`order_attributed` - sent after an order was recorded (``record``, ``attributions``).

Connected in :mod:`~django_crosssell.measure.receivers`.
"""

from __future__ import annotations

from django.dispatch import Signal

order_placed = Signal()
order_refunded = Signal()
order_attributed = Signal()
