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
from .conf import app_settings
from .measure import experiments as measure_experiments
from .measure import tracking
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
    """The customer, read only when the setting needs it (touching it may query the session)."""
    if not app_settings.EXCLUDE_PURCHASED:
        return None
    request = request_of(context)
    return getattr(request, "user", None) or context.get("user")


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
            "url": tracking.placeholder_url(adapter.url(product), position),
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


def overrides(context: django_template.Context, widget: str) -> dict[str, Any]:
    """What the visitor's experiment variant changes for ``widget`` (``limit``, ``kind``...).

    Tags apply ``limit`` and ``kind`` before they build; :func:`render` applies the on/off
    switches. Empty without the tracking middleware or an experiment; never raises.
    """
    try:
        config, _assignment = measure_experiments.config_for(request_of(context), widget)
    except Exception as exc:
        failed(widget, "experiment", exc)
        return {}
    return config


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


def _attribute(html: str, name: str) -> str:
    """The first value of a data attribute in the widget's markup ("" when absent)."""
    marker = f'{name}="'
    return html.split(marker, 1)[1].split('"', 1)[0] if marker in html else ""


def finish(
    request: Any,
    widget: str,
    html: str,
    version: int,
    assignment: measure_experiments.Assignment | None,
) -> str:
    """The cached markup for this response: a serve buffered (no query) or tokens removed."""
    source = _attribute(html, "data-crosssell-source")
    return tracking.finish_widget(
        request,
        _attribute(html, "data-crosssell-placement") or widget,
        html,
        version=version,
        source=source,
        experiment=(assignment.experiment_id, assignment.variant_id) if assignment else None,
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
        config, assignment = measure_experiments.config_for(request, widget)
        if config.get("held_out"):
            tracking.record_holdout(request, widget)
            return EMPTY
        if not measure_experiments.shows(widget, config):
            return EMPTY
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
        version = 0
        if cache_key is not None:
            html, version = cache.get_versioned(cache_key)
            if html is not cache.MISSING:
                # rendered with autoescaping before it was cached
                return mark_safe(finish(request, widget, html, version, assignment))
        widget_context, expires_at = build()
        html = ""
        if widget_context:
            widget_context.setdefault("widget", widget)
            widget_context.setdefault("crosssell_serve", tracking.PLACEHOLDER)
            names = [template_name] if template_name else []
            names += [WIDGET_TEMPLATE.format(widget), *widget_context.pop("fallback_templates", [])]
            html = select_template(names).render(widget_context, request=request)
        if cache_key is not None:
            ttl = max(1, int(expires_at - time.time()))
            cache.set_versioned(cache_key, str(html), version, ttl)
        return mark_safe(finish(request, widget, str(html), version, assignment))
    except Exception as exc:  # a widget never breaks the page
        failed(widget, argument, exc)
        return EMPTY
