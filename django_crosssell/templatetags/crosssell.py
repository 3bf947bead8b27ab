"""``{% load crosssell %}``: storefront widgets. Tags hold no queries; they call services.

Every widget tag renders its inclusion template under ``django_crosssell/widgets/`` (a host
overrides any of them by shipping a template with the same name, or passes ``template=``).
A widget must never break the host's page: whatever goes wrong (bad arguments such as None,
a deleted product, a database or cache error, a broken ``get_absolute_url``) renders an
empty string and logs a warning with the cause, except with ``DEBUG=True`` where the error
is raised so that developers see it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django import template
from django.conf import settings
from django.db.models import QuerySet
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from django_crosssell import cache
from django_crosssell.conf import app_settings
from django_crosssell.recommend import (
    DOWNGRADE,
    UPGRADE,
    Recommendation,
    TierOffer,
    format_price,
    product_key,
    recommend_for_cart,
    recommend_for_product,
    tier_offers,
)
from django_crosssell.recommend.service import (
    recommend_for_cart_with_expiry,
    recommend_for_product_with_expiry,
    tier_offers_with_expiry,
    widget_key,
)

register = template.Library()
logger = logging.getLogger("django_crosssell")

WIDGET_TEMPLATE = "django_crosssell/widgets/{}.html"
EMPTY = mark_safe("")


def _user(context: template.Context) -> Any:
    """The customer, read only when the setting needs it (touching it may query the session)."""
    if not app_settings.EXCLUDE_PURCHASED:
        return None
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


def _image_url(product: Any) -> str:
    field = app_settings.IMAGE_FIELD
    if not field:
        return ""
    value = getattr(product, field, None)
    if not value:
        return ""
    if isinstance(value, str):
        return value
    try:
        return value.url
    except ValueError:  # a file field without a file
        return ""


def _url(product: Any) -> str:
    get_url = getattr(product, "get_absolute_url", None)
    return get_url() if callable(get_url) else ""


def card(product: Any, *, position: int, source: str, reason: str = "") -> dict[str, Any]:
    """What a product card shows, computed once in Python instead of in the template."""
    return {
        "product": product,
        "pk": product.pk,
        "name": str(product),
        "url": _url(product),
        "price": format_price(getattr(product, app_settings.PRICE_FIELD, None)),
        "image_url": _image_url(product),
        "position": position,
        "source": source,
        "reason": reason,
    }


def _cards(recommendations: list[Recommendation]) -> list[dict[str, Any]]:
    return [
        card(rec.product, position=rec.position, source=rec.source, reason=rec.reason)
        for rec in recommendations
    ]


def _failed(widget: str, argument: Any, exc: Exception) -> None:
    if settings.DEBUG:
        raise exc
    logger.warning(
        "django-crosssell: the %s widget rendered empty for %r: %s: %s",
        widget,
        argument,
        type(exc).__name__,
        exc,
        exc_info=True,
    )


Built = tuple[dict[str, Any] | None, float]


def _render(
    context: template.Context,
    widget: str,
    argument: Any,
    build: Callable[[], Built],
    name: str | None,
    **key_arguments: Any,
) -> SafeString:
    """Render ``widget`` from ``build() -> (context or None, expires_at)``, cached as HTML.

    The markup itself is cached (under the key of everything that shapes it, checked
    against the cache version), so a warm widget costs one cache round trip and no template
    rendering; it expires with the data
    it was made from. Empty on None or any error; errors are not cached.
    """
    try:
        key = widget_key(widget, argument, user=_user(context), template=name, **key_arguments)
        html, version = cache.get_versioned(key)
        if html is not cache.MISSING:
            return mark_safe(html)  # rendered with autoescaping before it was cached
        widget_context, expires_at = build()
        html = ""
        if widget_context:
            widget_context.setdefault("widget", widget)
            html = get_template(name or WIDGET_TEMPLATE.format(widget)).render(widget_context)
        cache.set_versioned(key, str(html), version, max(1, int(expires_at - time.time())))
        return mark_safe(html)
    except Exception as exc:  # a widget never breaks the page
        _failed(widget, argument, exc)
        return EMPTY


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
            product, kind=kind, limit=limit, user=_user(context)
        )
        if not recs:
            return None, expires_at
        return {
            "title": title or gettext("You may also like"),
            "source": _source_key(product),
            "cards": _cards(recs),
            "recommendations": recs,
        }, expires_at

    return _render(
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
            products, limit=limit, user=_user(context)
        )
        if not recs:
            return None, expires_at
        return {
            "title": title or gettext("Frequently bought together"),
            "source": "cart",
            "cards": _cards(recs),
            "recommendations": recs,
        }, expires_at

    return _render(context, "bought_together", products, build, template, limit=limit, title=title)


def _tier_context(product: Any, offer: TierOffer | None, title: str) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {
        "title": title,
        "source": _source_key(product),
        "offer": offer,
        "card": card(offer.product, position=1, source=offer.direction, reason=offer.reason),
        "difference": format_price(offer.price_difference),
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
        offers, expires_at = tier_offers_with_expiry(product)
        offer = offers[UPGRADE]
        label = offer.label if offer else ""
        default = gettext("Step up to %(label)s") % {"label": label}
        return _tier_context(product, offer, title or default), expires_at

    return _render(context, "upgrade_prompt", product, build, template, title=title)


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
        offers, expires_at = tier_offers_with_expiry(product)
        default = gettext("Looking for something more affordable?")
        return _tier_context(product, offers[DOWNGRADE], title or default), expires_at

    return _render(context, "downgrade_offer", product, build, template, title=title)


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
            offer = tier_offers(product)[kind]
            return [offer.as_recommendation()] if offer else []
        if isinstance(product, list | tuple | set | QuerySet):
            return recommend_for_cart(product, limit=limit, user=_user(context))
        return recommend_for_product(product, kind=kind, limit=limit, user=_user(context))
    except Exception as exc:  # a widget never breaks the page
        _failed("get_recommendations", product, exc)
        return []


# Bundle tags live in their own module (crosssell_bundles) and are re-exported here so a
# host needs one ``{% load crosssell %}`` for every widget.
from .crosssell_bundles import register as _bundle_register  # noqa: E402

register.tags.update(_bundle_register.tags)
register.filters.update(_bundle_register.filters)
