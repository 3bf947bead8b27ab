"""The measurement seam: follow-up mails as serves, tracked links, holdout, revenue.

The measurement package (``django_crosssell.measure``: serves with a channel, signed click
links, attribution, experiments and a global holdout) is built on another branch. Until it
is merged every function here answers "not measured": no serve id, links unchanged, nobody
held out, no revenue. When it is merged, wire these four functions to it (and only these:
the rest of the follow-up package calls nothing else):

* :func:`record_email_serve` - record the mail's products as one serve, channel ``email``,
  placement ``followup:<flow slug>``; return the serve's id (stored on the message);
* :func:`tracked_url` - the product link with the signed serve id the click view reads;
* :func:`in_holdout` - whether the recipient is in the global holdout or the flow's
  control group (the message is then skipped with the reason ``holdout``);
* :func:`attributed_revenue` - ``{flow id: revenue}`` for the admin's flow list.

Each looks for a function of the same purpose on ``django_crosssell.measure`` (names below)
and falls back to the no-op when the module or the function is missing, so this branch
works before and after the merge. Imports only ``followup.models``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from types import ModuleType
from typing import Any

from .models import ScheduledMessage

logger = logging.getLogger("django_crosssell")

CHANNEL = "email"
#: The measurement module and the functions this seam calls on it, when they exist.
MEASURE_MODULE = "django_crosssell.measure"


def _measure(function: str) -> Any:
    try:
        module: ModuleType = importlib.import_module(MEASURE_MODULE)
    except ImportError:
        return None
    return getattr(module, function, None)


def placement(message: ScheduledMessage) -> str:
    return f"followup:{message.flow.slug}"


def record_email_serve(message: ScheduledMessage, products: Sequence[Any]) -> str:
    """Record the mail's products as a serve (channel ``email``); its id, or ""."""
    record = _measure("record_serve")
    if record is None:
        return ""
    serve = record(
        channel=CHANNEL,
        placement=placement(message),
        products=list(products),
        customer=message.customer or None,
        reference=str(message.uuid),
    )
    return str(getattr(serve, "pk", serve) or "")


def tracked_url(url: str, *, serve_id: str, product: Any, position: int) -> str:
    """``url`` carrying the signed serve id (unchanged while nothing measures)."""
    track = _measure("tracked_url")
    if track is None or not serve_id:
        return url
    return str(track(url, serve_id=serve_id, product=product, position=position))


def in_holdout(message: ScheduledMessage) -> bool:
    """Whether this recipient must not get the mail (holdout or control group)."""
    held_out = _measure("in_holdout")
    if held_out is None:
        return False
    return bool(
        held_out(channel=CHANNEL, placement=placement(message), customer=message.customer or None)
    )


def attributed_revenue(flow_ids: Iterable[int]) -> dict[int, Decimal] | None:
    """``{flow id: attributed revenue}``; None while nothing measures (admin shows "—")."""
    revenue = _measure("revenue_by_placement")
    if revenue is None:
        return None
    flow_ids = list(flow_ids)
    slugs = dict(
        ScheduledMessage.objects.filter(flow_id__in=flow_ids)
        .values_list("flow_id", "flow__slug")
        .distinct()
    )
    by_placement = revenue(
        channel=CHANNEL, placements=[f"followup:{slug}" for slug in slugs.values()]
    )
    return {
        flow_id: Decimal(by_placement.get(f"followup:{slug}", 0)) for flow_id, slug in slugs.items()
    }
