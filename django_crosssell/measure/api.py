"""The measurement API the rest of the app and the host call (re-exported by the package).

Serves outside a web page (an e-mail, an API response) are written at once; widgets go
through :mod:`~django_crosssell.measure.tracking` instead (buffered, one write per
response). Imports no model at module level, so ``django_crosssell.measure`` stays cheap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from ..conf import app_settings
from ..products import product_key
from . import experiments, subjects, tracking


def record_serve(
    *,
    channel: str,
    placement: str,
    products: Sequence[Any],
    customer: Any = None,
    visitor: str = "",
    reference: str = "",
    strategy: str = "",
    source: str = "",
) -> Any:
    """Write one serve now (e-mail, API); None when ``TRACKING`` is "off"."""
    if tracking.mode() == "off":
        return None
    from .models import Serve

    return Serve.objects.create(
        id=uuid.uuid4(),
        created_at=timezone.now(),
        channel=channel,
        placement=placement[:100],
        strategy=strategy or channel,
        source=source[:255],
        items=[[str(product_key(p)), position] for position, p in enumerate(products, start=1)],
        customer=subjects.hashed("customer", customer) if customer not in (None, "") else "",
        visitor=subjects.hashed("visitor", visitor) if visitor else "",
        reference=reference[:64],
    )


def record_response_serve(
    request: Any,
    *,
    placement: str,
    products: Sequence[Any],
    positions: Sequence[int] | None = None,
    strategy: str = "",
    source: str = "",
) -> tuple[str, str] | None:
    """Buffer a serve for an API response: ``(serve id, click token)`` to hand the client,
    or None when this request is not counted.

    Same rules as a page: ``TrackingMiddleware`` must be installed (it writes the serve in
    the response's one INSERT, after the response has been sent, so the endpoint runs no
    extra query), and ``TRACKING`` off, no consent, staff, known crawlers, prefetches and
    HEAD requests record nothing. The id is what the client posts events for; the click
    token, followed by ``.<position>``, is the ``cs`` parameter of a link it renders.
    """
    state = tracking.state_of(getattr(request, "_request", request))  # DRF wraps the request
    if state is None or not state.allowed():
        return None
    shown = list(positions) if positions is not None else range(1, len(products) + 1)
    serve = state.add_serve(
        channel="api",
        placement=placement[:100],
        strategy=(strategy or placement)[:64],
        source=source[:255],
        items=[[str(product_key(p)), int(at)] for p, at in zip(products, shown, strict=True)],
    )
    return serve, tracking.signed_serve(serve)


def tracked_url(url: str, *, serve_id: Any, product: Any = None, position: int) -> str:
    """``url`` with the signed serve id and position (a click counts without JavaScript)."""
    if not serve_id or tracking.mode() == "off":
        return url
    serve = serve_id.hex if isinstance(serve_id, uuid.UUID) else uuid.UUID(str(serve_id)).hex
    return tracking.with_click_token(url, serve, position)


def in_holdout(*, channel: str = "web", placement: str = "", customer: Any = None) -> bool:
    """Whether the global holdout keeps recommendations from this customer (e-mail too)."""
    if customer in (None, ""):
        return False
    return experiments.in_holdout(subjects.hashed("customer", customer))


def revenue_by_placement(
    *, channel: str | None = None, placements: Iterable[str] | None = None, days: int | None = None
) -> dict[str, Decimal]:
    """Direct attributed revenue (refunds taken out) per placement."""
    from .models import OrderAttribution

    rows = OrderAttribution.objects.filter(kind="direct", reversed_at__isnull=True)
    if channel:
        rows = rows.filter(channel=channel)
    if placements is not None:
        rows = rows.filter(placement__in=list(placements))
    if days:
        rows = rows.filter(created_at__gte=timezone.now() - timedelta(days=days))
    return {
        row["placement"]: row["total"] or Decimal(0)
        for row in rows.values("placement").annotate(total=Sum("revenue"))
    }


def track_add_to_cart(request: Any, product: Any) -> bool:
    """The host's add-to-cart view calls this: an add after a recommendation click counts
    for that click's serve. True when an event was recorded."""
    state = tracking.state_of(request)
    if state is None or not state.allowed():
        return False
    from .middleware import write_events
    from .models import Event

    key = str(product_key(product))
    since = timezone.now() - timedelta(days=int(app_settings.ATTRIBUTION_WINDOW_DAYS))
    click = (
        Event.objects.filter(
            type="click", product=key, visitor=state.visitor, created_at__gte=since
        )
        .order_by("-created_at")
        .values("serve_id", "position")
        .first()
    )
    if click is None:
        return False
    event = {
        "type": "add_to_cart",
        "serve_id": click["serve_id"],
        "product": key,
        "position": click["position"],
        "created_at": timezone.now(),
    }
    return bool(
        write_events(
            [event], visitor=state.visitor, session=state.session, customer=state.customer()
        )
    )
