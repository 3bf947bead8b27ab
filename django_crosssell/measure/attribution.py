"""Attribution against the host's real order lines, at the moment the order is placed.

A line is *direct* when its product (or its canonical product, ``adapter.canonical_ids``)
was the last recommendation the buyer clicked within ``ATTRIBUTION_WINDOW_DAYS`` before the
order; its revenue is the line's price net of its share of bundle discounts (the bundle
engine re-evaluated on the order's lines, each bundle's discount spread over the lines it
covers by their regular price). The other lines of an order that followed a click are
*assisted*, credited to the last click, and reported apart, never added to direct. Clicks
are matched on the hashed visitor, browser session or customer, so a guest who logs in at
checkout still matches. ``same_session`` flags a click from the same browser session.

The host calls :func:`attribute_order` in its checkout (or sends
:data:`~django_crosssell.measure.signals.order_placed`); :func:`reverse_order` takes back a
refunded or cancelled order or some of its lines. Idempotent per order key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..adapter import get_adapter
from ..conf import app_settings
from ..products import product_key
from . import subjects, tracking

logger = logging.getLogger("django_crosssell")
ZERO = Decimal(0)


def _lines(lines: Iterable[Any]) -> list[tuple[str, Any, int, Decimal]]:
    """``(line key, product key, quantity, unit price)`` from tuples or objects."""
    result = []
    for index, line in enumerate(lines):
        if isinstance(line, tuple | list):
            product, quantity, unit_price, *rest = line
            key = rest[0] if rest else index
        else:
            product = line.product
            quantity, unit_price = line.quantity, line.unit_price
            key = getattr(line, "pk", None) or getattr(line, "key", None) or index
        if product is None:
            continue  # a deleted product: nothing to attribute
        pk = product.pk if hasattr(product, "pk") else product_key(product)
        result.append((str(key), pk, int(quantity), Decimal(unit_price)))
    return result


def bundle_discounts(lines: list[tuple[str, Any, int, Decimal]]) -> dict[str, Decimal]:
    """``{line key: discount}``: the bundle engine's discounts spread over covered lines."""
    from ..bundles import evaluate

    evaluation = evaluate([(pk, quantity, price) for _k, pk, quantity, price in lines])
    if not evaluation.applied:
        return {}
    canonical = get_adapter().canonical_ids([pk for _k, pk, _q, _p in lines])
    by_product: dict[Any, list[tuple[str, int, Decimal]]] = {}
    for key, pk, quantity, price in lines:
        by_product.setdefault(canonical.get(pk, pk), []).append((key, quantity, price))
    shares: dict[str, Decimal] = {}
    for applied in evaluation.applied:
        covered = applied.covered_subtotal or ZERO
        if covered <= 0:
            continue
        for product, units in applied.units.items():
            remaining = units
            for key, quantity, price in by_product.get(product, []):
                take = min(remaining, quantity)
                if take <= 0:
                    continue
                remaining -= take
                share = applied.discount * price * take / covered
                shares[key] = shares.get(key, ZERO) + share
    return shares


def subjects_of(
    request: Any = None, order: Any = None, customer: Any = None
) -> tuple[str, str, str]:
    """``(visitor, session, customer)`` hashes for the buyer."""
    visitor = session = customer_hash = ""
    state = tracking.state_of(request) or (tracking.current() if request is None else None)
    if state is not None:
        visitor, session, customer_hash = state.visitor, state.session, state.customer()
    if not customer_hash:
        key = customer
        if key is None and order is not None:
            try:
                key = get_adapter().order_customer(order)
            except Exception:
                key = None
        customer_hash = subjects.hashed("customer", key) if key not in (None, "") else ""
    return visitor, session, customer_hash


def attribute_order(
    order: Any = None,
    *,
    lines: Iterable[Any] | None = None,
    request: Any = None,
    order_key: Any = None,
    customer: Any = None,
    placed_at: datetime | None = None,
    net_of_bundles: bool = False,
) -> Any:
    """Record ``order`` and attribute its lines; the ``OrderRecord`` or None (not tracked).

    ``lines`` are ``(product, quantity, unit price[, line key])`` tuples or objects with
    those attributes (the default: ``order.lines``); ``request`` gives the buyer's visitor
    and session (pass it from the checkout view; without it, the request the tracking
    middleware is handling). ``net_of_bundles``: the prices already have the bundle
    discounts taken off (Oscar books them on the lines), so none is taken off again.
    Never raises: a failure is logged, since the order itself has already succeeded.
    """
    try:
        return _attribute(order, lines, request, order_key, customer, placed_at, net_of_bundles)
    except Exception:
        logger.warning("django-crosssell: order %r was not attributed", order, exc_info=True)
        return None


def _attribute(
    order: Any,
    lines: Iterable[Any] | None,
    request: Any,
    order_key: Any,
    customer: Any,
    placed_at: datetime | None,
    net_of_bundles: bool = False,
) -> Any:
    from .models import Event, OrderAttribution, OrderRecord, Serve

    if tracking.mode() == "off":
        return None
    state = tracking.state_of(request) or (tracking.current() if request is None else None)
    if state is not None and not state.allowed():
        return None  # staff, bots, no consent: not counted
    if state is None and request is not None and tracking.excluded_without_queries(request):
        return None
    key = str(order_key if order_key is not None else get_adapter().order_key(order))
    if OrderRecord.objects.filter(order=key).exists():
        return OrderRecord.objects.get(order=key)
    if lines is None:
        lines = list(order.lines.all())
    rows = _lines(lines)
    placed_at = placed_at or timezone.now()
    visitor, session, customer_hash = subjects_of(request, order, customer)
    try:
        discounts = {} if net_of_bundles else bundle_discounts(rows)
    except Exception:
        logger.warning("django-crosssell: bundle discounts not allocated", exc_info=True)
        discounts = {}
    since = placed_at - timedelta(days=int(app_settings.ATTRIBUTION_WINDOW_DAYS))
    who = Q()
    if visitor:
        who |= Q(visitor=visitor)
    if session:
        who |= Q(session=session)
    if customer_hash:
        who |= Q(customer=customer_hash)
    clicks: list[dict[str, Any]] = []
    if who:
        clicks = [
            dict(row)
            for row in Event.objects.filter(who, type=Event.Type.CLICK, created_at__gte=since)
            .filter(created_at__lte=placed_at)
            .order_by("created_at", "pk")
            .values("serve_id", "product", "position", "created_at", "session")
        ]
    canonical = get_adapter().canonical_ids(
        {pk for _k, pk, _q, _p in rows} | {row["product"] for row in clicks}
    )

    def canon(pk: Any) -> str:
        return str(canonical.get(pk, canonical.get(str(pk), pk)))

    last_click: dict[str, dict[str, Any]] = {}
    for row in clicks:
        last_click[canon(_as_key(row["product"], canonical))] = row
    serves = {
        serve.pk: serve
        for serve in Serve.objects.filter(pk__in={row["serve_id"] for row in clicks})
    }
    latest: dict[str, Any] | None = clicks[-1] if clicks else None
    now = timezone.now()
    attributions = []
    revenue_total = ZERO
    for line_key, pk, quantity, price in rows:
        net = price * quantity - discounts.get(line_key, ZERO)
        revenue_total += net
        click = last_click.get(canon(pk))
        kind = OrderAttribution.Kind.DIRECT
        if click is None:
            click, kind = latest, OrderAttribution.Kind.ASSISTED
        if click is None:
            continue
        serve = serves.get(click["serve_id"])
        attributions.append(
            OrderAttribution(
                kind=kind,
                line=line_key[:64],
                product=str(pk)[:64],
                quantity=quantity,
                revenue=net,
                serve_id=click["serve_id"],
                placement=serve.placement if serve else "",
                channel=serve.channel if serve else "",
                position=click["position"] if kind == OrderAttribution.Kind.DIRECT else 0,
                variant_id=serve.variant_id if serve else None,
                clicked_at=click["created_at"],
                same_session=bool(session) and click["session"] == session,
                created_at=now,
            )
        )
    with transaction.atomic():
        record, created = OrderRecord.objects.get_or_create(
            order=key[:64],
            defaults={
                "placed_at": placed_at,
                "visitor": visitor,
                "customer": customer_hash,
                "session": session,
                "revenue": revenue_total,
                "bundle_discount": sum(discounts.values(), ZERO),
                "lines": len(rows),
                "attached": bool(discounts)
                or any(a.kind == OrderAttribution.Kind.DIRECT for a in attributions),
            },
        )
        if created:
            for attribution in attributions:
                attribution.record = record
            OrderAttribution.objects.bulk_create(attributions)
    if created:
        from .signals import order_attributed

        order_attributed.send(sender=OrderRecord, record=record, attributions=attributions)
    return record


def _as_key(product: str, canonical: dict[Any, Any]) -> Any:
    """An event's product key (a string) as the adapter's key type, when it knows it."""
    for known in canonical:
        if str(known) == product:
            return known
    return product


def reverse_order(
    order: Any = None,
    *,
    order_key: Any = None,
    lines: Iterable[Any] | None = None,
    at: datetime | None = None,
) -> int:
    """A refund or cancellation: the order's (or only these lines') attributions are
    reversed; the number of lines reversed. Call it from the host's refund code."""
    from .models import OrderAttribution, OrderRecord

    key = str(order_key if order_key is not None else get_adapter().order_key(order))
    at = at or timezone.now()
    attributions = OrderAttribution.objects.filter(record__order=key, reversed_at__isnull=True)
    if lines is not None:
        attributions = attributions.filter(line__in=[str(line) for line in lines])
    else:
        OrderRecord.objects.filter(order=key, cancelled_at__isnull=True).update(cancelled_at=at)
    return attributions.update(reversed_at=at)
