"""``{% load crosssell %}``: storefront widgets. Tags hold no queries; they call services.

Every widget tag renders ``django_crosssell/widgets/<widget>.html`` (a host overrides any
of them by shipping a template with the same name, or passes ``template=``) through the one
render, failure and cache policy of :mod:`django_crosssell.widgets`: a widget never breaks
the host's page.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import QuerySet
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from django_crosssell.money import format_money
from django_crosssell.products import product_key
from django_crosssell.recommend import (
    DOWNGRADE,
    UPGRADE,
    Recommendation,
    TierOffer,
    recommend_for_cart,
    recommend_for_product,
    tier_offers,
)
from django_crosssell.recommend.service import (
    recommend_for_cart_with_expiry,
    recommend_for_product_with_expiry,
)
from django_crosssell.recommend.tiers import tier_offers_with_expiry
from django_crosssell.widgets import (
    Built,
    cards,
    failed,
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
) -> SafeString:
    """``{% bought_together cart.products %}``: partners of the cart, never its own items."""

    def build() -> Built:
        recs, expires_at = recommend_for_cart_with_expiry(
            products, limit=limit, user=user_of(context)
        )
        if not recs:
            return None, expires_at
        return {
            "title": title or gettext("Frequently bought together"),
            "source": "cart",
            "cards": recommendation_cards(recs, request_of(context)),
            "fallback_templates": [LIST_TEMPLATE],
            "recommendations": recs,
        }, expires_at

    return render(context, "bought_together", products, build, template, limit=limit, title=title)


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
        offer = offers[UPGRADE]
        label = offer.label if offer else ""
        default = gettext("Step up to %(label)s") % {"label": label}
        return _tier_context(context, product, offer, title or default), expires_at

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
        default = gettext("Looking for something more affordable?")
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

# The personal tags (for_you, buy_again) likewise.
from .crosssell_customers import register as _customers_register  # noqa: E402

register.tags.update(_customers_register.tags)
