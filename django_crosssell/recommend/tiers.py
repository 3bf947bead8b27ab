"""Upsell and downsell: the next tier up or down on the staff's tier ladders."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext

from ..adapter import get_adapter
from ..conf import app_settings
from ..customers.audiences import Resolve, audience_cached
from ..models import TierLadder, TierStep
from ..money import format_money
from ..products import product_key
from .caching import make_key
from .types import DOWNGRADE, UPGRADE, TierOffer


def tier_offers(product: Any, *, user: Any = None) -> dict[str, TierOffer | None]:
    """``{"upgrade": ..., "downgrade": ...}`` for ``product`` from the active tier ladders.

    One query reads every step of the ladders holding the product (available products only,
    plus the product itself for its price), and the adapter prices them in bulk. An upgrade
    is the next available tier up and is offered only when it costs at most
    ``UPGRADE_MAX_PRICE_RATIO`` times the current price; a downgrade is the next available
    cheaper tier down. Ladders are tried in name order; a ladder restricted to an audience
    counts only for a ``user`` in it ("upgrade prompt only for Champions").
    """
    return tier_offers_with_expiry(product, user=user)[0]


def tier_offers_with_expiry(
    product: Any, *, user: Any = None
) -> tuple[dict[str, TierOffer | None], float]:
    """:func:`tier_offers` and the ``time.time()`` until which they hold."""
    pk = product_key(product)
    return audience_cached(
        make_key("tiers", pk),
        user,
        lambda resolve: (_compute(pk, resolve), app_settings.CACHE_TIMEOUT),
    )


def _compute(pk: Any, resolve: Resolve | None = None) -> dict[str, TierOffer | None]:
    adapter = get_adapter()
    ladders = TierLadder.objects.filter(is_active=True, steps__product=pk).values("pk")
    available = adapter.available(adapter.products()).values("pk")
    steps = list(
        TierStep.objects.filter(ladder__in=ladders)
        .filter(Q(product=pk) | Q(product__in=available))
        .select_related("ladder", "product")
        .order_by("ladder__name", "ladder_id", "rank")
    )
    offers: dict[str, TierOffer | None] = {UPGRADE: None, DOWNGRADE: None}
    if not steps:
        return offers
    prices = adapter.prices({step.product_id: step.product for step in steps}.values())
    by_ladder: dict[Any, list[TierStep]] = {}
    for step in steps:
        by_ladder.setdefault(step.ladder_id, []).append(step)
    for ladder_steps in by_ladder.values():
        audience = ladder_steps[0].ladder.audience_id
        if audience is not None and (resolve is None or audience not in resolve()):
            continue
        own = next((step for step in ladder_steps if step.product_id == pk), None)
        current = prices.get(pk) if own is not None else None
        if own is None or current is None:
            continue
        if offers[UPGRADE] is None:
            offers[UPGRADE] = _upgrade(own, ladder_steps, current, prices)
        if offers[DOWNGRADE] is None:
            offers[DOWNGRADE] = _downgrade(own, ladder_steps, current, prices)
    return offers


def _offer(step: TierStep, current: Decimal, price: Decimal, direction: str) -> TierOffer:
    label = step.label or str(step.product)
    difference = price - current if direction == UPGRADE else current - price
    # Plain price differences: what the step up costs more, what the step down costs less.
    # Never "only" or "save" (a cheaper model is not a discount); the label names the step.
    if direction == UPGRADE:
        reason = gettext("%(label)s: %(difference)s more") % {
            "label": label,
            "difference": format_money(difference),
        }
    else:
        reason = gettext("%(label)s: %(difference)s less") % {
            "label": label,
            "difference": format_money(difference),
        }
    return TierOffer(
        product=step.product,
        label=label,
        pitch=step.pitch,
        rank=step.rank,
        ladder=step.ladder.name,
        ladder_slug=step.ladder.slug,
        price=price,
        current_price=current,
        price_difference=difference,
        direction=direction,
        reason=reason,
    )


def _upgrade(
    own: TierStep, steps: list[TierStep], current: Decimal, prices: dict[Any, Decimal]
) -> TierOffer | None:
    above = [step for step in steps if step.rank > own.rank]
    if not above or current <= 0:
        return None  # top tier, or no price to compare with
    step = above[0]
    price = prices.get(step.product_id)
    ratio = Decimal(str(app_settings.UPGRADE_MAX_PRICE_RATIO))
    if price is None or price <= current or price > current * ratio:
        return None
    return _offer(step, current, price, UPGRADE)


def _downgrade(
    own: TierStep, steps: list[TierStep], current: Decimal, prices: dict[Any, Decimal]
) -> TierOffer | None:
    for step in reversed([step for step in steps if step.rank < own.rank]):
        price = prices.get(step.product_id)
        if price is not None and price < current:
            return _offer(step, current, price, DOWNGRADE)
    return None


def upgrade_for(product: Any, *, user: Any = None) -> TierOffer | None:
    """The next tier up for ``product``, or None (top tier, too expensive, no ladder)."""
    return tier_offers(product, user=user)[UPGRADE]


def downgrade_for(product: Any, *, user: Any = None) -> TierOffer | None:
    """A cheaper tier below ``product`` for a hesitating customer, or None."""
    return tier_offers(product, user=user)[DOWNGRADE]


def blocked_steps(steps: list[TierStep]) -> list[tuple[TierStep, TierStep, Decimal]]:
    """``(step, next step up, price ratio)`` for each upgrade that will never be offered.

    The storefront offers the next tier up only when it costs at most
    ``UPGRADE_MAX_PRICE_RATIO`` times the current one (:func:`_upgrade`); a ladder staff saved
    with a larger step shows nothing there, silently. The admin lists these. ``steps`` are one
    ladder's, any order, with their products loaded; one bulk price call.
    """
    ordered = sorted(steps, key=lambda step: step.rank)
    prices = get_adapter().prices([step.product for step in ordered])
    ratio_cap = Decimal(str(app_settings.UPGRADE_MAX_PRICE_RATIO))
    blocked = []
    for lower, upper in pairwise(ordered):
        low, high = prices.get(lower.product_id), prices.get(upper.product_id)
        if low is None or high is None or low <= 0:
            continue
        ratio = high / low
        if ratio > ratio_cap or ratio <= 1:  # too dear, or not dearer at all
            blocked.append((lower, upper, ratio))
    return blocked
