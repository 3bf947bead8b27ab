"""LWP: List (the audience), What (room to expand), Pace (the customer's own rhythm), and the
A-D priority matrix, with the reasons staff read in the admin.

* **What**: the categories a customer bought, and the complementary categories they have not
  bought yet. Complementary means bought together: the current affinity run's pairs summed
  by (category, category), one grouped query, cached until the next recompute.
* **Pace**: per product the customer bought more than once, their median gap in days, when
  they last bought it and when the next purchase is due at that pace.
* **Priority** (track record x room to expand): A = strong record and room to expand (offer
  the complementary categories), B = strong record, little room (keep them, upgrades),
  C = weak record, room to expand (nurture with entry products), D = weak record, little
  room (low priority).

Numpy-free (the admin imports it); imports ``adapter``, ``cache``, ``conf``, ``models``,
``followup.intervals`` and ``customers.models``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import cache
from ..adapter import get_adapter
from ..followup.intervals import median
from ..models import ProductAffinity
from .models import CustomerMetrics

#: Complementary categories shown per customer.
MAX_COMPLEMENTS = 5
#: A category is complementary to another when their products were bought together at least
#: this many times in the current run.
MIN_CATEGORY_CO_COUNT = 3


@dataclass
class PaceRow:
    product: Any  # key
    purchases: int
    median_gap_days: float | None
    last_bought: datetime
    next_due: datetime | None


@dataclass
class Lwp:
    bought: list[str]
    complements: list[str]
    pace: list[PaceRow]
    priority: str
    reasons: list[str] = field(default_factory=list)


def category_complements() -> dict[str, dict[str, int]]:
    """``{category: {other category: co-purchases}}`` from the current affinity run (cached)."""
    key = cache.make_key("category-complements")
    found = cache.get(key)
    if found is not None:
        return dict(found)
    category = get_adapter().category_field()
    result: dict[str, dict[str, int]] = {}
    if category is not None:
        rows = (
            ProductAffinity.objects.filter(run__is_current=True)
            .values(a=F(f"source__{category.name}"), b=F(f"target__{category.name}"))
            .annotate(n=Sum("co_count"))
            .order_by()
        )
        for a, b, n in rows.values_list("a", "b", "n"):
            if a is None or b is None or a == b or (n or 0) < MIN_CATEGORY_CO_COUNT:
                continue
            result.setdefault(str(a), {})[str(b)] = int(n)
    cache.set(key, result)
    return result


def complements_for(bought: list[str]) -> list[str]:
    """Categories bought together with ``bought`` that are not in it, strongest first."""
    table = category_complements()
    scores: dict[str, int] = {}
    for category in bought:
        for other, count in table.get(category, {}).items():
            if other not in bought:
                scores[other] = scores.get(other, 0) + count
    return [name for name, _n in sorted(scores.items(), key=lambda item: (-item[1], item[0]))][
        :MAX_COMPLEMENTS
    ]


def pace(customer: Any, now: datetime | None = None) -> list[PaceRow]:
    """The products the customer bought more than once, with their own median gap, the
    soonest due first (one query)."""
    now = now or timezone.now()
    by_product: dict[Any, list[datetime]] = {}
    for purchase in get_adapter().purchase_history(customers=[customer]):
        times = by_product.setdefault(purchase.product, [])
        if not times or times[-1] != purchase.placed_at:
            times.append(purchase.placed_at)
    rows = []
    for product, times in by_product.items():
        if len(times) < 2:
            continue  # one purchase has no pace
        gaps = [(later - earlier).total_seconds() / 86400 for earlier, later in pairwise(times)]
        gap = median(gaps) if gaps else None
        rows.append(
            PaceRow(
                product=product,
                purchases=len(times),
                median_gap_days=None if gap is None else round(gap, 1),
                last_bought=times[-1],
                next_due=None if gap is None else times[-1] + timedelta(days=gap),
            )
        )
    rows.sort(key=lambda row: (row.next_due is None, row.next_due or now, str(row.product)))
    return rows


def priority(metrics: CustomerMetrics, complements: list[str]) -> tuple[str, list[str]]:
    """The A-D cell and the sentences that put the customer there."""
    strong = metrics.f_score >= 4 or metrics.m_score >= 4
    room = len(complements) >= 2 or (bool(complements) and len(metrics.categories or []) <= 1)
    reasons = [
        _("Track record is strong: F score %(f)s, M score %(m)s (4 or more on either).")
        % {"f": metrics.f_score, "m": metrics.m_score}
        if strong
        else _("Track record is modest: F score %(f)s, M score %(m)s (both below 4).")
        % {"f": metrics.f_score, "m": metrics.m_score},
        _("Room to expand: %(count)s complementary categories not bought yet.")
        % {"count": len(complements)}
        if room
        else _("Little room to expand: %(count)s complementary categories not bought yet.")
        % {"count": len(complements)},
    ]
    cell = {(True, True): "A", (True, False): "B", (False, True): "C", (False, False): "D"}
    return cell[(strong, room)], reasons


ACTIONS = {
    "A": gettext_lazy("Offer the complementary categories: they already trust the shop."),
    "B": gettext_lazy("Keep them: thank-you offers, upgrades within what they buy."),
    "C": gettext_lazy("Nurture: entry products of the complementary categories."),
    "D": gettext_lazy("Low priority: general newsletters only."),
}


def category_names(ids: list[str]) -> dict[str, str]:
    """``{category id: name}`` for display (one query; plain value fields are their names)."""
    field = get_adapter().category_field()
    model = getattr(field, "related_model", None) if field is not None else None
    if model is None or not ids:
        return {value: value for value in ids}
    found = {str(obj.pk): str(obj) for obj in model._default_manager.filter(pk__in=ids)}
    return {value: found.get(value, value) for value in ids}


def analyse(metrics: CustomerMetrics, customer: Any = None) -> Lwp:
    """What, Pace and the priority of one customer (``customer``: their original key)."""
    bought = [str(value) for value in (metrics.categories or [])]
    complements = complements_for(bought)
    cell, reasons = priority(metrics, complements)
    rows = pace(metrics.customer if customer is None else customer)
    return Lwp(bought, complements, rows, cell, reasons)
