"""The measurement seam: follow-up mails as serves, tracked links, holdout, revenue.

The rest of the follow-up package calls only these four functions, which call
:mod:`django_crosssell.measure`:

* :func:`record_email_serve` - the mail's products as one serve, channel ``email``,
  placement ``followup:<flow slug>``; its id (stored on the message), "" with tracking off;
* :func:`tracked_url` - the product link with the signed serve id and position (the
  ``cs`` parameter the tracking middleware reads, so a click from a mail counts);
* :func:`in_holdout` - whether the recipient is in the global holdout (the message is then
  skipped with the reason ``holdout``);
* :func:`attributed_revenue` - ``{flow id: direct attributed revenue}`` for the admin.

Imports ``followup.models`` and the measurement package's public API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from .. import measure
from ..conf import app_settings
from .models import ScheduledMessage

logger = logging.getLogger("django_crosssell")

CHANNEL = "email"


def placement(message: ScheduledMessage) -> str:
    return f"followup:{message.flow.slug}"


def record_email_serve(message: ScheduledMessage, products: Sequence[Any]) -> str:
    """Record the mail's products as a serve (channel ``email``); its id, or ""."""
    serve = measure.record_serve(
        channel=CHANNEL,
        placement=placement(message),
        products=list(products),
        customer=message.customer or None,
        reference=str(message.uuid),
    )
    return serve.pk.hex if serve is not None else ""


def tracked_url(url: str, *, serve_id: str, product: Any, position: int) -> str:
    """``url`` carrying the signed serve id (unchanged when nothing was recorded)."""
    if not serve_id:
        return url
    return measure.tracked_url(url, serve_id=serve_id, product=product, position=position)


def in_holdout(message: ScheduledMessage) -> bool:
    """Whether this recipient must not get the mail (the global holdout)."""
    if not app_settings.HOLDOUT:
        return False
    return measure.in_holdout(
        channel=CHANNEL, placement=placement(message), customer=message.customer or None
    )


def attributed_revenue(flow_ids: Iterable[int]) -> dict[int, Decimal] | None:
    """``{flow id: attributed revenue}``; None when tracking is off (the admin shows "—")."""
    if app_settings.TRACKING == "off":
        return None
    flow_ids = list(flow_ids)
    slugs = dict(
        ScheduledMessage.objects.filter(flow_id__in=flow_ids)
        .values_list("flow_id", "flow__slug")
        .distinct()
    )
    by_placement = measure.revenue_by_placement(
        channel=CHANNEL, placements=[f"followup:{slug}" for slug in slugs.values()]
    )
    return {
        flow_id: Decimal(by_placement.get(f"followup:{slug}", 0)) for flow_id, slug in slugs.items()
    }
