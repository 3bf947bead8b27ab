"""An experiment's results: units per variant, their orders after first exposure, the tests.

A unit counts from its recorded first exposure; its orders are the measured orders
(:class:`~django_crosssell.measure.models.OrderRecord`, cancelled ones out) placed by the
same hashed visitor (or customer, for customer experiments) after that moment and before
the experiment's end. The first variant (lowest position) is the control. Imports
:mod:`~django_crosssell.measure.stats` (scipy, statsmodels): commands, tasks and the staff
dashboard only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.utils import timezone

from . import stats
from .models import Experiment, Exposure, OrderRecord, Variant

METRICS = ("conversion", "revenue", "aov", "attach")


@dataclass
class Arm:
    variant: Variant
    revenue: np.ndarray
    orders: np.ndarray
    attached: int

    @property
    def size(self) -> int:
        return int(self.revenue.size)

    @property
    def converted(self) -> int:
        return int((self.orders > 0).sum())

    @property
    def order_count(self) -> int:
        return int(self.orders.sum())


def _units(experiment: Experiment) -> dict[int, dict[str, datetime]]:
    by_variant: dict[int, dict[str, datetime]] = defaultdict(dict)
    for variant_id, subject, first_at in Exposure.objects.filter(experiment=experiment).values_list(
        "variant_id", "subject", "first_at"
    ):
        by_variant[variant_id][subject] = first_at
    return by_variant


def _orders(experiment: Experiment) -> dict[str, list[tuple[datetime, Decimal, bool]]]:
    field = "customer" if experiment.unit == Experiment.Unit.CUSTOMER else "visitor"
    subjects = Exposure.objects.filter(experiment=experiment).values("subject")
    rows = OrderRecord.objects.filter(cancelled_at__isnull=True, **{f"{field}__in": subjects})
    if experiment.ends_at:
        rows = rows.filter(placed_at__lt=experiment.ends_at)
    orders: dict[str, list[tuple[datetime, Decimal, bool]]] = defaultdict(list)
    for subject, placed_at, revenue, attached in rows.values_list(
        field, "placed_at", "revenue", "attached"
    ):
        orders[subject].append((placed_at, revenue, attached))
    return orders


def experiment_report(experiment: Experiment | str, *, seed: int = 0) -> dict[str, Any]:
    """Everything the report command, the dashboard and the API show for one experiment."""
    if isinstance(experiment, str):
        experiment = Experiment.objects.get(key=experiment)
    variants = list(experiment.variants.order_by("position", "pk"))
    units = _units(experiment)
    orders = _orders(experiment)
    arms = []
    for variant in variants:
        members = units.get(variant.pk, {})
        revenue, counts, attached = [], [], 0
        for subject, first_at in members.items():
            mine = [order for order in orders.get(subject, []) if order[0] >= first_at]
            revenue.append(float(sum((order[1] for order in mine), Decimal(0))))
            counts.append(float(len(mine)))
            attached += sum(1 for order in mine if order[2])
        arms.append(
            Arm(
                variant,
                np.asarray(revenue, dtype=float),
                np.asarray(counts, dtype=float),
                attached,
            )
        )
    firsts = [first for members in units.values() for first in members.values()]
    end = experiment.ends_at or timezone.now()
    days = (end - min(firsts)).total_seconds() / 86400 if firsts else 0.0
    sizes = [arm.size for arm in arms]
    srm = stats.sample_ratio(sizes, [variant.weight for variant in variants])
    summary = []
    for arm in arms:
        n, order_count = arm.size, arm.order_count
        total = float(arm.revenue.sum())
        summary.append(
            {
                "variant": arm.variant.key,
                "weight": arm.variant.weight,
                "config": arm.variant.config,
                "units": n,
                "conversions": arm.converted,
                "conversion_rate": arm.converted / n if n else None,
                "orders": order_count,
                "revenue": total,
                "revenue_per_unit": total / n if n else None,
                "aov": total / order_count if order_count else None,
                "attach_rate": arm.attached / order_count if order_count else None,
            }
        )
    comparisons = []
    alpha = experiment.alpha
    if arms:
        control = arms[0]
        for arm in arms[1:]:
            results = {
                "conversion": stats.conversion(
                    control.converted, control.size, arm.converted, arm.size, alpha
                ),
                "revenue": stats.revenue_per_visitor(
                    control.revenue, arm.revenue, alpha, seed=seed
                ),
                "aov": stats.average_order_value(
                    control.revenue, control.orders, arm.revenue, arm.orders, alpha
                ),
                "attach": stats.attach_rate(
                    control.attached, control.order_count, arm.attached, arm.order_count, alpha
                ),
            }
            primary = results[experiment.primary_metric]
            comparisons.append(
                {
                    "variant": arm.variant.key,
                    "against": control.variant.key,
                    "metrics": {name: result.as_dict() for name, result in results.items()},
                    "verdict": stats.verdict(
                        primary,
                        alpha=alpha,
                        srm=srm,
                        sizes=[control.size, arm.size],
                        min_sample=experiment.min_sample,
                        days=days,
                        min_days=experiment.min_days,
                    ),
                }
            )
    return {
        "experiment": experiment.key,
        "name": experiment.name,
        "status": experiment.status,
        "unit": experiment.unit,
        "primary_metric": experiment.primary_metric,
        "alpha": alpha,
        "days": round(days, 2),
        "min_sample": experiment.min_sample,
        "min_days": experiment.min_days,
        "variants": summary,
        "sample_ratio": srm.as_dict(),
        "comparisons": comparisons,
    }
