"""The figures of the "Cross-sell performance" dashboard, its CSV and the staff API.

Every day comes from the daily rollups (one small query however many events there were);
today from its rollup once the hourly task has made one (the page says as of when), and
from the raw rows (its serves and events, by the indexed ``created_at``) before that.
Links come from the link rollups likewise; top products and bundle redemptions read the
window's attributed lines and measured orders, one grouped query each. No numpy: the
experiment results (scipy) are added by the view, lazily.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from ..conf import get_product_model
from .models import DailyLinkRollup, DailyRollup, OrderAttribution, OrderRecord
from .rollups import FIELDS, count_day, day_bounds, link_clicks

TOP = 10


def _rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _names(keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}
    model = get_product_model()
    found: dict[str, str] = {}
    try:
        for product in model._default_manager.filter(pk__in=keys):
            found[str(product.pk)] = str(product)
    except Exception:  # keys of another type (a deleted product's): show the key
        return {}
    return found


def performance(days: int = 30, today: date | None = None) -> dict[str, Any]:
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    per_day: dict[str, dict[str, Any]] = {}
    per_placement: dict[str, dict[str, Any]] = defaultdict(
        lambda: (
            {name: 0 for name in FIELDS} | {"revenue": Decimal(0), "assisted_revenue": Decimal(0)}
        )
    )

    def add(day: date, placement: str, values: dict[str, Any]) -> None:
        row = per_day.setdefault(
            day.isoformat(),
            {name: 0 for name in FIELDS} | {"revenue": Decimal(0), "assisted_revenue": Decimal(0)},
        )
        for name in FIELDS:
            row[name] += values[name]
            per_placement[placement][name] += values[name]

    # Today from its rollup when the hourly task has made one (figures as of then), else
    # counted from the raw rows; past days always from the rollups.
    today_rolled = DailyRollup.objects.filter(day=today).order_by("computed_at").first()
    last_day = today if today_rolled is not None else today - timedelta(days=1)
    for rollup in DailyRollup.objects.filter(day__gte=first, day__lte=last_day):
        add(rollup.day, rollup.placement, {name: getattr(rollup, name) for name in FIELDS})
    if today_rolled is None:
        for placement, values in count_day(today).items():
            add(today, placement, values)
    daily = []
    for offset in range(days):
        day = (first + timedelta(days=offset)).isoformat()
        row = per_day.get(day) or {name: 0 for name in FIELDS}
        daily.append(_with_rates({"day": day, **row}))
    placements = [
        _with_rates({"placement": placement, **values})
        for placement, values in sorted(per_placement.items())
    ]
    start, _end = day_bounds(first)
    live = OrderAttribution.objects.filter(created_at__gte=start, reversed_at__isnull=True)
    products = list(
        live.filter(kind="direct")
        .values("product")
        .annotate(revenue=Sum("revenue"), quantity=Sum("quantity"), orders=Count("record"))
        .order_by("-revenue", "product")[:TOP]
    )
    # Past days from the link rollups, today from the raw clicks.
    counts: dict[tuple[str, str], int] = defaultdict(int)
    past = (
        DailyLinkRollup.objects.filter(day__gte=first, day__lte=last_day)
        .values("source", "product")
        .annotate(total=Sum("clicks"))
    )
    for row in past:
        counts[(row["source"], row["product"])] += row["total"] or 0
    if today_rolled is None:
        for row in link_clicks(day_bounds(today)[0]):
            counts[(row["serve__source"], row["product"])] += row["clicks"]
    links: list[dict[str, Any]] = [
        {"serve__source": source, "product": product, "clicks": clicks}
        for (source, product), clicks in sorted(
            counts.items(), key=lambda item: (-item[1], item[0][1], item[0][0])
        )[:TOP]
    ]
    names = _names(
        list(
            {row["product"] for row in products}
            | {row["product"] for row in links}
            | {row["serve__source"] for row in links if row["serve__source"]}
        )
    )
    bundles = OrderRecord.objects.filter(
        placed_at__gte=start, cancelled_at__isnull=True, bundle_discount__gt=0
    ).aggregate(orders=Count("pk"), discount=Sum("bundle_discount"))
    totals = {name: sum(row[name] for row in placements) for name in FIELDS}
    return {
        "days": days,
        "first_day": first.isoformat(),
        "last_day": today.isoformat(),
        "today_as_of": today_rolled.computed_at.isoformat() if today_rolled else None,
        "totals": _with_rates(totals),
        "daily": [_plain(row) for row in daily],
        "placements": [_plain(row) for row in placements],
        "top_products": [
            {
                "product": row["product"],
                "name": names.get(row["product"], row["product"]),
                "orders": row["orders"],
                "quantity": row["quantity"],
                "revenue": str(row["revenue"] or 0),
            }
            for row in products
        ],
        "top_links": [
            {
                "source": row["serve__source"],
                "source_name": names.get(row["serve__source"], row["serve__source"]),
                "product": row["product"],
                "name": names.get(row["product"], row["product"]),
                "clicks": row["clicks"],
            }
            for row in links
        ],
        "bundles": {
            "orders": bundles["orders"] or 0,
            "discount": str(bundles["discount"] or 0),
        },
    }


def _with_rates(row: dict[str, Any]) -> dict[str, Any]:
    row["ctr"] = _rate(row["clicks"], row["impressions"])
    row["vctr"] = _rate(row["clicks"], row["views"])
    return row


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Decimal) else value for key, value in row.items()}


CSV_COLUMNS = ("day", *FIELDS, "ctr", "vctr")


def daily_csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in data["daily"]:
        writer.writerow([row.get(column, "") for column in CSV_COLUMNS])
    return out.getvalue()
