"""Measuring the effect: serves, events, attribution, experiments (README "Measuring the effect").

The public API, importable without loading numpy or the statistics (those live in
:mod:`django_crosssell.measure.stats` and are imported only by reports and commands).
"""

from .api import (
    in_holdout,
    record_response_serve,
    record_serve,
    revenue_by_placement,
    track_add_to_cart,
    tracked_url,
)
from .attribution import attribute_order, reverse_order

__all__ = [
    "attribute_order",
    "in_holdout",
    "record_response_serve",
    "record_serve",
    "revenue_by_placement",
    "reverse_order",
    "track_add_to_cart",
    "tracked_url",
]
