"""Personal recommendations: "for you" (what this customer is likely to buy next, that they do
not own) and "buy again" (what they buy repeatedly and is due at their own pace).

``recommend_for_customer`` sums, over the products the customer bought, the weights of the
customer model the snapshot learns (:class:`~django_crosssell.models.CustomerItemWeight`,
EASE). Without a model (switched off, not computed yet, or none of their products in it) it
sums the affinity engine's partners instead, each product's partners normalised to share one
unit of confidence, plus a bestseller prior. Both were chosen by measurement on a time split
of a real shop's orders (``benchmarks/personal.py``, ``benchmarks/RESULTS.md``): the model
0.50 hit rate at 10, ALS 0.45, partners with the prior 0.41, bestsellers 0.34, the partners
summed plainly 0.19. Owned products are left out; the rest of the list is bestsellers.

Budget: at most five queries cold (the history, the weights, the partners when the model
has none, the bestsellers when not cached, the products), none warm (cached per customer
for ``PERSONAL_TIMEOUT`` seconds). Numpy-free: the web path imports it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext, ngettext

from .. import cache
from ..adapter import get_adapter
from ..conf import app_settings
from ..models import CustomerItemWeight, ProductAffinity
from . import queries
from .caching import cached, make_key
from .service import PERSONAL_TIMEOUT, _limit
from .types import BUY_AGAIN, FALLBACK, FOR_YOU, Recommendation

#: Weight of the bestseller prior when the engine's partners stand in for the model
#: (measured: 1.0 was best of 0, 0.5, 1, 2, 4).
PRIOR_WEIGHT = 1.0
#: A repeat product is "due" from this share of the customer's own median gap on.
DUE_SHARE = 0.8


@dataclass
class History:
    """One customer's purchases: per product the times bought (oldest first)."""

    times: dict[Any, list[datetime]]

    @property
    def owned(self) -> set[Any]:
        return set(self.times)

    def weights(self, now: datetime, half_life: float | None, limit: int) -> dict[Any, float]:
        """Per product, its purchases weighted by age (all equal without a half-life); the
        ``limit`` most recently bought products."""
        recent = sorted(self.times, key=lambda key: self.times[key][-1], reverse=True)[:limit]
        result = {}
        for key in recent:
            if half_life:
                ages = [(now - at).total_seconds() / 86400 for at in self.times[key]]
                result[key] = sum(0.5 ** (max(age, 0.0) / half_life) for age in ages)
            else:
                result[key] = 1.0
        return result


def read_history(customer: Any) -> History:
    """The customer's counted purchases through the adapter (one query)."""
    times: dict[Any, list[datetime]] = {}
    for purchase in get_adapter().purchase_history(customers=[customer]):
        seen = times.setdefault(purchase.product, [])
        if not seen or seen[-1] != purchase.placed_at:
            seen.append(purchase.placed_at)
    return History(times)


def rank(
    weights: dict[Any, float],
    rows: Iterable[tuple[Any, Any, float]],
    exclude: set[Any],
    *,
    normalise: bool = False,
) -> dict[Any, float]:
    """``{target: score}``: each row ``(source, target, weight)`` adds the source's history
    weight times its weight; ``normalise`` divides a source's weights by their sum first."""
    rows = list(rows)
    totals: dict[Any, float] = {}
    if normalise:
        for source, _target, value in rows:
            totals[source] = totals.get(source, 0.0) + value
    scores: dict[Any, float] = {}
    for source, target, value in rows:
        if target in exclude or source not in weights:
            continue
        share = value / totals[source] if normalise and totals.get(source) else value
        scores[target] = scores.get(target, 0.0) + weights[source] * share
    return scores


def with_prior(scores: dict[Any, float], bestsellers: list[tuple[Any, float]]) -> dict[Any, float]:
    """Scores scaled to a top of 1, plus :data:`PRIOR_WEIGHT` times the bestsellers' orders
    scaled to a top of 1 (what the engine's partners alone miss: what is selling now)."""
    top = max(scores.values(), default=0.0) or 1.0
    result = {key: value / top for key, value in scores.items()}
    best = max((count for _key, count in bestsellers), default=0.0) or 1.0
    for key, count in bestsellers:
        result[key] = result.get(key, 0.0) + PRIOR_WEIGHT * count / best
    return result


def _bestsellers() -> list[tuple[Any, float]]:
    """Shop-wide bestsellers ``(key, orders)``, cached under the cache version."""
    key = make_key("bestsellers", "shop")
    hit, version = cache.get_versioned(key)
    if hit is not cache.MISSING:
        return list(hit)
    rows = queries.union([queries.bestsellers((), None, shop_wide=True)])
    found = sorted(((row[1], float(row[2] or 0.0)) for row in rows), key=lambda r: -r[1])
    cache.set_versioned(key, found, version)
    return found


def recommend_for_customer(user: Any, limit: int | None = None) -> list[Recommendation]:
    """What ``user`` is likely to buy next, that they do not own (bestsellers for a visitor
    or a customer without orders)."""
    return recommend_for_customer_with_expiry(user, limit)[0]


def recommend_for_customer_with_expiry(
    user: Any, limit: int | None = None
) -> tuple[list[Recommendation], float]:
    limit = _limit(limit)
    customer = get_adapter().customer_key(user) if user is not None else None
    return cached(
        make_key(FOR_YOU, None if customer is None else str(customer), limit),
        lambda: (_for_you(customer, limit), PERSONAL_TIMEOUT),
    )


def _for_you(customer: Any, limit: int) -> list[Recommendation]:
    now = timezone.now()
    history = read_history(customer) if customer is not None else History({})
    owned = history.owned
    weights = history.weights(
        now, app_settings.PERSONAL_HALF_LIFE_DAYS, int(app_settings.PERSONAL_HISTORY_ITEMS)
    )
    scores: dict[Any, float] = {}
    learned = False
    if weights:
        rows = list(
            CustomerItemWeight.objects.filter(source__in=list(weights)).values_list(
                "source_id", "target_id", "weight"
            )
        )
        scores = rank(weights, rows, owned)
        learned = bool(rows)
        if not learned:
            partners = ProductAffinity.objects.filter(
                run__is_current=True, source__in=list(weights)
            ).values_list("source_id", "target_id", "confidence")
            scores = rank(weights, partners, owned, normalise=True)
    bestsellers = _bestsellers()
    if scores and not learned:
        scores = with_prior(scores, bestsellers)
    ordered = sorted(scores.items(), key=lambda item: (-item[1], str(item[0])))
    candidates = [key for key, _score in ordered[: limit * 3]]
    fallback = [key for key, _count in bestsellers if key not in owned]
    products = queries.fetch_products(list(dict.fromkeys(candidates + fallback)), customer=None)
    results: list[Recommendation] = []
    for key in dict.fromkeys(candidates + fallback):
        if key in owned or key not in products:
            continue
        personal = key in scores
        results.append(
            Recommendation(
                product=products[key],
                score=float(scores.get(key, 0.0)),
                source=FOR_YOU if personal else FALLBACK,
                reason=gettext("Picked for you from what you bought")
                if personal
                else gettext("Popular in our shop"),
                position=len(results) + 1,
            )
        )
        if len(results) >= limit:
            break
    return results


# --- buy again ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A product the customer buys repeatedly, with their own pace."""

    key: Any
    last_bought: datetime
    median_gap_days: float
    days_since: int
    purchases: int


def due_products(history: History, now: datetime) -> list[Due]:
    """Products bought at least twice whose next purchase is due at the customer's own
    median gap (from :data:`DUE_SHARE` of it on), the most overdue first."""
    found = []
    for key, times in history.times.items():
        if len(times) < 2:
            continue
        gaps = sorted((b - a).total_seconds() / 86400 for a, b in pairwise(times))
        middle = len(gaps) // 2
        gap = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
        if gap <= 0:
            continue
        since = (now - times[-1]).total_seconds() / 86400
        if since >= DUE_SHARE * gap:
            found.append(Due(key, times[-1], gap, math.floor(since), len(times)))
    found.sort(key=lambda due: (-(due.days_since / due.median_gap_days), str(due.key)))
    return found


def buy_again(user: Any, limit: int | None = None) -> list[Recommendation]:
    """Products ``user`` buys repeatedly that are due again ("last bought 28 days ago")."""
    return buy_again_with_expiry(user, limit)[0]


def buy_again_with_expiry(
    user: Any, limit: int | None = None
) -> tuple[list[Recommendation], float]:
    limit = _limit(limit)
    customer = get_adapter().customer_key(user) if user is not None else None
    if customer is None:
        return [], time.time() + int(app_settings.CACHE_TIMEOUT)

    def compute() -> tuple[list[Recommendation], int]:
        due = due_products(read_history(customer), timezone.now())[: limit * 2]
        products = queries.fetch_products([item.key for item in due], customer=None) if due else {}
        results: list[Recommendation] = []
        for item in due:
            if item.key not in products:
                continue
            reason = ngettext(
                "Last bought %(days)d day ago",
                "Last bought %(days)d days ago",
                item.days_since,
            ) % {"days": item.days_since}
            results.append(
                Recommendation(
                    product=products[item.key],
                    score=item.days_since / item.median_gap_days,
                    source=BUY_AGAIN,
                    reason=reason,
                    position=len(results) + 1,
                )
            )
            if len(results) >= limit:
                break
        return results, PERSONAL_TIMEOUT

    return cached(make_key(BUY_AGAIN, str(customer), limit), compute)
