"""Daily rollups (what the dashboard reads) and the purge of raw serves and events.

``rollup(day)`` recounts one day per placement from the raw rows and upserts
:class:`~django_crosssell.measure.models.DailyRollup` (idempotent: run it again after late
events or a refund). ``purge()`` deletes serves (and their events) older than
``EVENT_RETENTION_DAYS``, after rolling up the days it is about to lose; the rollups and the
attributed order lines stay. Days are the current time zone's. No numpy.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from ..conf import app_settings
from .models import DailyLinkRollup, DailyRollup, Event, OrderAttribution, Serve

FIELDS = ("impressions", "views", "clicks", "add_to_cart", "orders", "revenue", "assisted_revenue")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def count_day(day: date) -> dict[str, dict[str, Any]]:
    """``{placement: {field: value}}`` of one day, from the raw rows (four queries)."""
    start, end = day_bounds(day)
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: (
            {name: 0 for name in FIELDS} | {"revenue": Decimal(0), "assisted_revenue": Decimal(0)}
        )
    )
    serves = (
        Serve.objects.filter(created_at__gte=start, created_at__lt=end, held_out=False)
        .values("placement")
        .annotate(n=Count("pk"))
    )
    for row in serves:
        rows[row["placement"]]["impressions"] = row["n"]
    events = (
        Event.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("serve__placement", "type")
        .annotate(n=Count("pk"))
    )
    names = {"view": "views", "click": "clicks", "add_to_cart": "add_to_cart"}
    for row in events:
        if row["type"] in names:
            rows[row["serve__placement"]][names[row["type"]]] = row["n"]
    live = OrderAttribution.objects.filter(
        created_at__gte=start, created_at__lt=end, reversed_at__isnull=True
    )
    direct = (
        live.filter(kind="direct")
        .values("placement")
        .annotate(orders=Count("record", distinct=True), revenue=Sum("revenue"))
    )
    for row in direct:
        rows[row["placement"]]["orders"] = row["orders"]
        rows[row["placement"]]["revenue"] = row["revenue"] or Decimal(0)
    for row in live.filter(kind="assisted").values("placement").annotate(revenue=Sum("revenue")):
        rows[row["placement"]]["assisted_revenue"] = row["revenue"] or Decimal(0)
    return dict(rows)


def link_clicks(start: datetime, end: datetime | None = None) -> Any:
    """Clicks grouped by placement, source and product (one query)."""
    rows = Event.objects.filter(created_at__gte=start, type="click")
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    return rows.values("serve__placement", "serve__source", "product").annotate(clicks=Count("pk"))


def rollup(day: date | None = None) -> int:
    """Upsert the rollups of ``day`` (default: yesterday); the placements written."""
    day = day or (timezone.localdate() - timedelta(days=1))
    counted = count_day(day)
    links = list(link_clicks(*day_bounds(day)))
    with transaction.atomic():
        DailyRollup.objects.filter(day=day).exclude(placement__in=counted).delete()
        for placement, values in counted.items():
            DailyRollup.objects.update_or_create(day=day, placement=placement, defaults=values)
        DailyLinkRollup.objects.filter(day=day).delete()
        DailyLinkRollup.objects.bulk_create(
            DailyLinkRollup(
                day=day,
                placement=row["serve__placement"],
                source=row["serve__source"][:255],
                product=row["product"],
                clicks=row["clicks"],
            )
            for row in links
        )
    return len(counted)


def purge(now: datetime | None = None) -> int:
    """Delete raw serves/events past the retention (rolled up first); the serves deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=int(app_settings.EVENT_RETENTION_DAYS))
    oldest = Serve.objects.filter(created_at__lt=cutoff).order_by("created_at").first()
    if oldest is None:
        return 0
    day = timezone.localdate(oldest.created_at)
    while day <= timezone.localdate(cutoff):
        if not DailyRollup.objects.filter(day=day).exists():
            rollup(day)
        day += timedelta(days=1)
    Event.objects.filter(Q(created_at__lt=cutoff) | Q(serve__created_at__lt=cutoff)).delete()
    deleted, _ = Serve.objects.filter(created_at__lt=cutoff).delete()
    return deleted
