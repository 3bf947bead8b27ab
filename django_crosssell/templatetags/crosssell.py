"""``{% load crosssell %}``: storefront widgets. Tags hold no queries; they call services.

Every widget tag renders ``django_crosssell/widgets/<widget>.html`` (a host overrides any
of them by shipping a template with the same name, or passes ``template=``) through the one
render, failure and cache policy of :mod:`django_crosssell.widgets`: a widget never breaks
the host's page.
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.db.models import Model, QuerySet
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from django_crosssell.adapter import get_adapter
from django_crosssell.money import format_money
from django_crosssell.products import product_key
from django_crosssell.recommend import (
    DOWNGRADE,
    FALLBACK,
    UPGRADE,
    Recommendation,
    TierOffer,
    recommend_for_cart,
    recommend_for_product,
    tier_offers,
)
from django_crosssell.recommend.service import _limit as clean_limit
from django_crosssell.recommend.service import (
    recommend_for_cart_with_expiry,
    recommend_for_product_with_expiry,
)
from django_crosssell.recommend.tiers import tier_offers_with_expiry
from django_crosssell.widgets import (
    Built,
    cards,
    failed,
    overrides,
    recommendation_cards,
    render,
    request_of,
    user_of,
)

register = template.Library()

#: Both product-list widgets share this template unless the host overrides one by name.
LIST_TEMPLATE = "django_crosssell/widgets/recommendations.html"


def _source_key(product: Any) -> str:
    return str(product_key(product))


# --- widgets ---------------------------------------------------------------------------------


@register.simple_tag(takes_context=True)
def also_recommended(
    context: template.Context,
    product: Any,
    *,
    limit: int | None = None,
    title: str | None = None,
    kind: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% also_recommended product limit=4 title="..." %}``: "You may also like" cards."""
    variant = overrides(context, "also_recommended")
    limit, kind = variant.get("limit", limit), variant.get("kind", kind)

    def build() -> Built:
        recs, expires_at = recommend_for_product_with_expiry(
            product, kind=kind, limit=limit, user=user_of(context)
        )
        if not recs:
            return None, expires_at
        return {
            "title": title or gettext("You may also like"),
            "source": _source_key(product),
            "cards": recommendation_cards(recs, request_of(context)),
            "fallback_templates": [LIST_TEMPLATE],
            "recommendations": recs,
        }, expires_at

    return render(
        context, "also_recommended", product, build, template, kind=kind, limit=limit, title=title
    )


@register.simple_tag(takes_context=True)
def bought_together(
    context: template.Context,
    products: Any,
    *,
    limit: int | None = None,
    title: str | None = None,
    template: str | None = None,
    downsell_of: Any = None,
) -> SafeString:
    """``{% bought_together cart.products %}``: partners of the cart, never its own items.

    ``downsell_of=product``: leave out that product's cheaper tier, which the page shows in
    its own ``downgrade_offer`` (the cart page after a removal) so it is not offered twice.
    """
    limit = overrides(context, "bought_together").get("limit", limit)

    def build() -> Built:
        wanted = clean_limit(limit)  # "6" from a template, None for the default
        extra = 1 if downsell_of not in (None, "") else 0
        recs, expires_at = recommend_for_cart_with_expiry(
            products, limit=wanted + extra, user=user_of(context)
        )
        if extra:
            downsell = tier_offers(downsell_of)[DOWNGRADE]
            if downsell is not None:
                key = product_key(downsell.product)
                recs = [rec for rec in recs if product_key(rec.product) != key]
        recs = recs[:wanted]
        if not recs:
            return None, expires_at
        return {
            "title": title or gettext("Frequently bought together"),
            "source": "cart",
            "cards": recommendation_cards(recs, request_of(context)),
            "fallback_templates": [LIST_TEMPLATE],
            "recommendations": recs,
        }, expires_at

    return render(
        context,
        "bought_together",
        products,
        build,
        template,
        limit=limit,
        title=title,
        downsell_of=None if downsell_of in (None, "") else str(product_key(downsell_of)),
    )


#: Partners "frequently bought together" shows next to the product (Amazon shows two).
TOGETHER_PARTNERS = 2


def _excluded_tiers(product: Any) -> set[Any]:
    """The product's downsell (and upsell): shown in their own widgets, never repeated."""
    offers = tier_offers(product)
    return {product_key(offer.product) for offer in offers.values() if offer is not None}


def _subset_totals(card_list: list[dict[str, Any]], prices: list[Any]) -> dict[str, str]:
    """The formatted total of every choice of ticked boxes ("101" = first and third).

    At most 2**3 sums, computed here with the shop's own money formatting, so the page's
    script only looks the total up and never formats money itself.
    """
    totals: dict[str, str] = {}
    count = len(card_list)
    for mask in range(1, 2**count):
        bits = "".join("1" if mask >> (count - 1 - i) & 1 else "0" for i in range(count))
        chosen = [price for bit, price in zip(bits, prices, strict=True) if bit == "1"]
        if any(price is None for price in chosen):
            continue
        totals[bits] = format_money(sum(chosen))
    return totals


@register.simple_tag(takes_context=True)
def frequently_bought_together(
    context: template.Context,
    product: Any,
    *,
    title: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% frequently_bought_together product %}``: the product and up to two partners with
    checkboxes, their total and one "add all to cart" button (``adapter.add_many_to_cart_url``).

    Partners are staff cross-sell links and computed partners, never bestsellers (the title
    promises "bought together") and never the product's downsell or upsell, which have their
    own widgets. Without JavaScript every box starts ticked and the total is theirs; the
    form posts the ticked ones.
    """

    def build() -> Built:
        recs, expires_at = recommend_for_product_with_expiry(
            product, kind="cross_sell", limit=TOGETHER_PARTNERS + 2, user=user_of(context)
        )
        skip = _excluded_tiers(product)
        partners = [
            rec for rec in recs if rec.source != FALLBACK and product_key(rec.product) not in skip
        ][:TOGETHER_PARTNERS]
        if not partners:
            return None, expires_at
        if not isinstance(product, Model):
            raise ValueError("frequently_bought_together needs the product instance.")
        card_list = cards(
            [product, *(rec.product for rec in partners)],
            positions=range(len(partners) + 1),  # the partners are items 1..n of the serve
            sources=["", *(rec.source for rec in partners)],
            reasons=["", *(rec.reason for rec in partners)],
            request=request_of(context),
        )
        # the product itself is not a recommendation: its link carries no click token
        card_list[0]["url"] = get_adapter().url(product)
        totals = _subset_totals(card_list, [card["amount"] for card in card_list])
        everything = "1" * len(card_list)
        return {
            "title": title or gettext("Frequently bought together"),
            "source": _source_key(product),
            "cards": card_list,
            "total": totals.get(everything, ""),
            "totals_json": json.dumps(totals),
            "add_many_url": get_adapter().add_many_to_cart_url(),
        }, expires_at

    return render(context, "frequently_bought_together", product, build, template, title=title)


def _tier_context(
    context: template.Context, product: Any, offer: TierOffer | None, title: str
) -> dict[str, Any] | None:
    if offer is None:
        return None
    (card,) = cards(
        [offer.product],
        sources=[offer.direction],
        reasons=[offer.reason],
        request=request_of(context),
    )
    return {
        "title": title,
        "source": _source_key(product),
        "offer": offer,
        "card": card,
        "difference": format_money(offer.price_difference),
    }


@register.simple_tag(takes_context=True)
def upgrade_prompt(
    context: template.Context,
    product: Any,
    *,
    title: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% upgrade_prompt product %}``: the next tier up, when it is not much dearer."""

    def build() -> Built:
        offers, expires_at = tier_offers_with_expiry(product, user=user_of(context))
        # The card names the product and its tier label: the title does not repeat them.
        default = gettext("The next model up")
        return _tier_context(context, product, offers[UPGRADE], title or default), expires_at

    return render(context, "upgrade_prompt", product, build, template, title=title)


@register.simple_tag(takes_context=True)
def downgrade_offer(
    context: template.Context,
    product: Any,
    *,
    title: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% downgrade_offer product %}``: a cheaper tier for a customer who hesitated."""

    def build() -> Built:
        offers, expires_at = tier_offers_with_expiry(product, user=user_of(context))
        default = gettext("A lower-priced model")
        return _tier_context(context, product, offers[DOWNGRADE], title or default), expires_at

    return render(context, "downgrade_offer", product, build, template, title=title)


@register.simple_tag(takes_context=True)
def get_recommendations(
    context: template.Context, product: Any, kind: str | None = None, limit: int | None = None
) -> list[Recommendation]:
    """``{% get_recommendations product kind="related" limit=6 as recs %}`` for own markup.

    ``product`` may be a list or queryset of products (a cart); ``kind`` may also be
    ``"upgrade"`` or ``"downgrade"`` for the tier offer as a one-item list. Failures give an
    empty list, like the widgets.
    """
    try:
        if kind in (UPGRADE, DOWNGRADE):
            offer = tier_offers(product, user=user_of(context))[kind]
            return [offer.as_recommendation()] if offer else []
        if isinstance(product, list | tuple | set | QuerySet):
            return recommend_for_cart(product, limit=limit, user=user_of(context))
        return recommend_for_product(product, kind=kind, limit=limit, user=user_of(context))
    except Exception as exc:  # a widget never breaks the page
        failed("get_recommendations", product, exc)
        return []


# Bundle tags live in their own module (crosssell_bundles) and are re-exported here so a
# host needs one ``{% load crosssell %}`` for every widget.
from .crosssell_bundles import register as _bundle_register  # noqa: E402

register.tags.update(_bundle_register.tags)
register.filters.update(_bundle_register.filters)

# The after-purchase tags (thank-you page, subscription suggestion) likewise.
from .crosssell_followup import register as _followup_register  # noqa: E402

register.tags.update(_followup_register.tags)

# The tracking script tag (measurement) likewise.
from .crosssell_measure import register as _measure_register  # noqa: E402

register.tags.update(_measure_register.tags)

# The personal tags (for_you, buy_again) likewise.
from .crosssell_customers import register as _customers_register  # noqa: E402

register.tags.update(_customers_register.tags)
