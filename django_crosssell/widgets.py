"""Rendering storefront widgets: one render, failure and cache policy for every widget tag.

A widget must never break the host's page: whatever goes wrong (bad arguments such as None,
a deleted product, a database or cache error, a broken ``get_absolute_url``) renders an
empty string and logs a warning with the cause, except with ``DEBUG=True`` where the error
is raised so that developers see it.

The markup itself is cached under the key of everything that shapes it (the widget, its
subject, its arguments, the customer when purchases are excluded, what the adapter says a
widget varies by) and checked against the cache version, so a warm widget costs one cache
round trip, no query and no template rendering. It expires with the data it was made from.

Templates get the request in their context, so a host's own tags that need it (Oscar's
``render_product``) work inside an overridden card template.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django import template as django_template
from django.conf import settings
from django.template.loader import select_template
from django.utils.safestring import SafeString, mark_safe

from . import cache
from .adapter import get_adapter
from .customers import audiences
from .money import format_money
from .recommend.caching import make_key
from .recommend.service import customer_for, subject_key
from .recommend.types import Recommendation

logger = logging.getLogger("django_crosssell")

WIDGET_TEMPLATE = "django_crosssell/widgets/{}.html"
EMPTY = mark_safe("")

#: ``build() -> (template context or None, expires_at)``; None renders nothing.
Built = tuple[dict[str, Any] | None, float]


def request_of(context: django_template.Context) -> Any:
    return context.get("request")


def user_of(context: django_template.Context) -> Any:
    """The customer, as the request holds it (Django's lazy user: touching it may query the
    session, so the services look at it only when ``EXCLUDE_PURCHASED`` is on or an offer
    restricted to an audience turns up)."""
    request = request_of(context)
    user = getattr(request, "user", None)
    return context.get("user") if user is None else user


def cards(
    products: Iterable[Any],
    *,
    positions: Iterable[int] | None = None,
    sources: Iterable[str] | None = None,
    reasons: Iterable[str] | None = None,
    request: Any = None,
) -> list[dict[str, Any]]:
    """What each product card shows, computed in Python with one bulk price call."""
    products = list(products)
    adapter = get_adapter()
    prices = adapter.prices(products, request) if products else {}
    positions = list(positions) if positions is not None else list(range(1, len(products) + 1))
    sources = list(sources) if sources is not None else [""] * len(products)
    reasons = list(reasons) if reasons is not None else [""] * len(products)
    return [
        {
            "product": product,
            "pk": product.pk,
            "name": str(product),
            "url": adapter.url(product),
            "price": format_money(prices.get(product.pk)),
            "image_url": adapter.image_url(product),
            "add_to_cart_url": adapter.add_to_cart_url(product),
            "position": position,
            "source": source,
            "reason": reason,
        }
        for product, position, source, reason in zip(
            products, positions, sources, reasons, strict=True
        )
    ]


def recommendation_cards(recs: list[Recommendation], request: Any = None) -> list[dict[str, Any]]:
    return cards(
        [rec.product for rec in recs],
        positions=[rec.position for rec in recs],
        sources=[rec.source for rec in recs],
        reasons=[rec.reason for rec in recs],
        request=request,
    )


def failed(widget: str, argument: Any, exc: Exception) -> None:
    """Log why a widget rendered empty; raise instead with ``DEBUG=True``."""
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


def widget_key(
    widget: str, subject: Any, *, user: Any = None, request: Any = None, **arguments: Any
) -> str:
    """Cache key of a rendered widget; validates ``subject`` like the services do.

    ``subject`` is a product (or key), or a cart for cart widgets; every other argument
    that changes the markup (limit, title, template) goes in ``arguments``.
    """
    return make_key(
        "widget",
        widget,
        subject_key(subject),
        customer_for(user),
        get_adapter().cache_key(request),
        sorted(arguments.items()),
    )


def render(
    context: django_template.Context,
    widget: str,
    argument: Any,
    build: Callable[[], Built],
    template_name: str | None = None,
    *,
    key: Callable[[], str | None] | None = None,
    **key_arguments: Any,
) -> SafeString:
    """Render ``widget`` from ``build()``, cached as HTML; empty on None or any error.

    ``key`` overrides the cache key (None from it: not cached); by default the key comes
    from :func:`widget_key`. Errors are never cached.
    """
    request = request_of(context)
    try:
        if key is not None:
            cache_key = key()
        else:
            cache_key = widget_key(
                widget,
                argument,
                user=user_of(context),
                request=request,
                template=template_name,
                **key_arguments,
            )
        version, own_key = 0, None
        if cache_key is not None:
            html, version = cache.get_versioned(cache_key)
            if isinstance(html, tuple) and html[:1] == (audiences.RESTRICTED,):
                # What this widget shows varies by audience: the visitor's own entry.
                own_key = audiences.keyed(cache_key, audiences.visible_audiences(user_of(context)))
                html, version = cache.get_versioned(own_key)
            if html is not cache.MISSING:
                return mark_safe(html)  # rendered with autoescaping before it was cached
        token = audiences.track()
        try:
            widget_context, expires_at = build()
            html = ""
            if widget_context:
                widget_context.setdefault("widget", widget)
                names = [template_name] if template_name else []
                names += [
                    WIDGET_TEMPLATE.format(widget),
                    *widget_context.pop("fallback_templates", []),
                ]
                html = select_template(names).render(widget_context, request=request)
        finally:
            used = audiences.used(token)
        if cache_key is not None:
            ttl = max(1, int(expires_at - time.time()))
            if own_key is None and used is not None:
                ttl = min(ttl, audiences.CUSTOMER_TIMEOUT)
                cache.set_versioned(cache_key, (audiences.RESTRICTED,), version, ttl)
                own_key = audiences.keyed(cache_key, used)
            cache.set_versioned(own_key or cache_key, str(html), version, ttl)
        return mark_safe(html)
    except Exception as exc:  # a widget never breaks the page
        failed(widget, argument, exc)
        return EMPTY
