"""Interval statistics for replenishment and subscription suggestions (standard library).

A customer's repeat purchases of one product give *gaps*: the days between one purchase and
the next, divided by the quantity of the first (a 3-pack bought on day 0 and again on day 90
lasted 30 days per unit). Everything here works on those per-unit gaps.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime
from itertools import pairwise

#: Purchases closer together than this (days) count as one (two orders on one afternoon).
MERGE_WITHIN_DAYS = 1.0
DAY = 86400.0  # seconds


def per_unit_gaps(purchases: Iterable[tuple[datetime, int]]) -> list[float]:
    """Days per unit between consecutive purchases ``(placed_at, quantity)`` of one customer
    and one product; purchases within :data:`MERGE_WITHIN_DAYS` are merged first."""
    merged: list[tuple[datetime, int]] = []
    for placed_at, quantity in sorted(purchases, key=lambda item: item[0]):
        units = max(int(quantity or 1), 1)
        if merged and (placed_at - merged[-1][0]).total_seconds() < MERGE_WITHIN_DAYS * DAY:
            merged[-1] = (merged[-1][0], merged[-1][1] + units)
            continue
        merged.append((placed_at, units))
    return [
        (later - earlier).total_seconds() / DAY / units
        for (earlier, units), (later, _) in pairwise(merged)
    ]


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return float(statistics.median(values)) if values else None


def shrink(observed: float | None, sample: int, prior: float | None, weight: float) -> float | None:
    """``observed`` (a median of ``sample`` gaps) pulled toward ``prior`` (staff's value).

    ``(sample * observed + weight * prior) / (sample + weight)``: with few gaps the staff
    value dominates, with many the orders do. Without a prior the observed value is
    returned as is (the caller decides whether the sample is large enough).
    """
    if observed is None:
        return prior
    if prior is None or weight <= 0:
        return observed
    return (sample * observed + weight * prior) / (sample + weight)


def coefficient_of_variation(values: Iterable[float]) -> float | None:
    """Sample standard deviation / mean; None for fewer than two values or a zero mean."""
    values = list(values)
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    if mean <= 0:
        return None
    return statistics.stdev(values) / mean
