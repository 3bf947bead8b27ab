"""Replenishment: how long a product lasts, learned from the orders, and when to remind.

For every customer who bought a product more than once, each gap between two purchases
divided by the quantity of the first is one observation of "days per unit"
(:func:`.intervals.per_unit_gaps`). A product's learned interval is the median of all its
observations, shrunk toward the staff interval while there are few of them
(``REPLENISHMENT_PRIOR_WEIGHT``); without a staff interval it is used only from
``REPLENISHMENT_MIN_SAMPLE`` observations on. A customer who has repeated the product
themselves (``REPLENISHMENT_MIN_OWN_GAPS``) gets their own median instead.

A reminder is due ``interval x quantity - lead days`` after the purchase: a few days before
the supply should run out.

Reads the orders through ``adapter.purchase_history()``; imports ``adapter``, ``conf``,
``followup.intervals`` and ``followup.models``. No numpy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..adapter import CrossSellAdapter, get_adapter
from ..conf import app_settings
from .intervals import median, per_unit_gaps, shrink
from .models import ReplenishmentProfile

#: Where the interval of a reminder came from (``ScheduledMessage.interval_source``).
FROM_CUSTOMER, FROM_LEARNED, FROM_STAFF = "customer", "learned", "staff"


@dataclass(frozen=True)
class Learned:
    """What the orders say about one product (days per unit)."""

    product: Any
    median_days: float | None
    gaps: int
    customers: int
    interval_days: float | None


@dataclass(frozen=True)
class Plan:
    """When to remind a customer about one purchased product."""

    product: Any
    interval_days: float
    source: str
    due_at: datetime


class _Canonical:
    """The adapter's canonical keys, asked once per unseen key."""

    def __init__(self, adapter: CrossSellAdapter) -> None:
        self.adapter = adapter
        self.known: dict[Any, Any] = {}

    def __call__(self, keys: Iterable[Any]) -> dict[Any, Any]:
        missing = [key for key in dict.fromkeys(keys) if key not in self.known]
        if missing:
            self.known.update(self.adapter.canonical_ids(missing))
            for key in missing:
                self.known.setdefault(key, key)
        return self.known


def gaps_by_customer_product(
    rows: Iterable[Any], canonical: _Canonical | None = None
) -> Iterator[tuple[Any, Any, list[float]]]:
    """``(customer, canonical product, per-unit gaps)`` from purchase rows sorted by
    customer (``Purchase`` tuples: customer, product, order, placed_at, quantity)."""
    for customer, customer_rows in groupby(rows, key=lambda row: row[0]):
        purchases = list(customer_rows)
        mapping = canonical([row[1] for row in purchases]) if canonical else {}
        by_product: dict[Any, list[tuple[datetime, int]]] = defaultdict(list)
        for row in purchases:
            by_product[mapping.get(row[1], row[1])].append((row[3], row[4]))
        for product, history in by_product.items():
            gaps = per_unit_gaps(history)
            if gaps:
                yield customer, product, gaps


def learned_interval(
    gaps: list[float], customers: int, staff: float | None, product: Any = None
) -> Learned:
    """The product's :class:`Learned` from all its per-unit gaps and staff's interval."""
    observed = median(gaps)
    weight = float(app_settings.REPLENISHMENT_PRIOR_WEIGHT)
    if staff is None and len(gaps) < int(app_settings.REPLENISHMENT_MIN_SAMPLE):
        interval = None
    else:
        interval = shrink(observed, len(gaps), staff, weight)
    return Learned(product, observed, len(gaps), customers, interval)


def learn_intervals(*, now: datetime | None = None, create: bool = True) -> dict[Any, Learned]:
    """Learn every product's interval from ``REPLENISHMENT_LOOKBACK_DAYS`` of orders and
    store it on its profile; products without a profile but with at least
    ``REPLENISHMENT_MIN_SAMPLE`` gaps get an inactive one for staff to review (``create``).
    Returns ``{product key: Learned}``."""
    now = now or timezone.now()
    adapter = get_adapter()
    since = now - timedelta(days=int(app_settings.REPLENISHMENT_LOOKBACK_DAYS))
    gaps: dict[Any, list[float]] = defaultdict(list)
    customers: dict[Any, int] = defaultdict(int)
    canonical = _Canonical(adapter)
    for _customer, product, observed in gaps_by_customer_product(
        adapter.purchase_history(since=since), canonical
    ):
        gaps[product].extend(observed)
        customers[product] += 1
    profiles = {str(profile.product_id): profile for profile in ReplenishmentProfile.objects.all()}
    results: dict[Any, Learned] = {}
    updated, created = [], []
    for product, observed in gaps.items():
        profile = profiles.pop(str(product), None)
        staff = (
            float(profile.staff_interval_days) if profile and profile.staff_interval_days else None
        )
        learned = learned_interval(observed, customers[product], staff, product)
        results[product] = learned
        if profile is None:
            if not create or learned.gaps < int(app_settings.REPLENISHMENT_MIN_SAMPLE):
                continue
            profile = ReplenishmentProfile(product_id=product, is_active=False)
            created.append(profile)
        else:
            updated.append(profile)
        profile.learned_median_days = learned.median_days
        profile.learned_interval_days = learned.interval_days
        profile.learned_gaps = learned.gaps
        profile.learned_customers = learned.customers
        profile.learned_at = now
    for profile in profiles.values():  # no repeat purchases (any more)
        profile.learned_median_days = profile.learned_interval_days = None
        profile.learned_gaps = profile.learned_customers = 0
        profile.learned_at = now
        updated.append(profile)
    fields = [
        "learned_median_days",
        "learned_interval_days",
        "learned_gaps",
        "learned_customers",
        "learned_at",
    ]
    with transaction.atomic():
        ReplenishmentProfile.objects.bulk_update(updated, fields, batch_size=500)
        ReplenishmentProfile.objects.bulk_create(created, batch_size=500, ignore_conflicts=True)
    return results


def customer_history(
    customer: Any, product: Any, *, adapter: CrossSellAdapter | None = None
) -> list[tuple[datetime, int]]:
    """``(placed_at, quantity)`` of the customer's purchases of ``product`` (its variants
    count as it), oldest first."""
    if customer in (None, ""):
        return []
    adapter = adapter or get_adapter()
    rows = list(adapter.purchase_history(customers=[customer]))
    mapping = _Canonical(adapter)([row[1] for row in rows])
    return [(row[3], row[4]) for row in rows if str(mapping.get(row[1], row[1])) == str(product)]


def customer_gaps(
    customer: Any, product: Any, *, adapter: CrossSellAdapter | None = None
) -> list[float]:
    """The customer's own per-unit gaps for ``product``."""
    return per_unit_gaps(customer_history(customer, product, adapter=adapter))


def plan(
    profile: ReplenishmentProfile,
    *,
    customer: Any,
    quantity: int,
    at: datetime,
    adapter: CrossSellAdapter | None = None,
) -> Plan | None:
    """When to remind ``customer`` who bought ``quantity`` units at ``at``; None when the
    profile has no interval yet."""
    own = customer_gaps(customer, profile.product_id, adapter=adapter)
    interval: float | None
    if len(own) >= int(app_settings.REPLENISHMENT_MIN_OWN_GAPS) and own:
        interval, source = median(own), FROM_CUSTOMER
    elif profile.learned_interval_days is not None:
        interval, source = profile.learned_interval_days, FROM_LEARNED
    elif profile.staff_interval_days:
        interval, source = float(profile.staff_interval_days), FROM_STAFF
    else:
        return None
    if interval is None or interval <= 0:
        return None
    lead = profile.lead_days
    if lead is None:
        lead = int(app_settings.REPLENISHMENT_LEAD_DAYS)
    lasts = timedelta(days=interval * max(quantity, 1))
    due = at + lasts - timedelta(days=lead)
    return Plan(profile.product_id, interval, source, max(due, at + timedelta(days=1)))
