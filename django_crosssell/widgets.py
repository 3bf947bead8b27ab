"""Rendering storefront widgets: one render, failure and cache policy for every widget tag.

A widget must never break the host's page: whatever goes wrong (bad arguments such as None,
a deleted product, a database or cache error, a broken ``get_absolute_url``) renders an
empty string and logs a warning with the cause, except with ``DEBUG=True`` where the error
is raised so that developers see it.

The markup itself is cached under the key of everything that shapes it (the widget, its
subject, its arguments, the customer when purchases are excluded, what the adapter says a
widget varies by) and checked against the cache version, so a warm widget costs one cache
round trip, no query and no template rendering. It expires with the data it was made from.
A stale widget is computed by one request at a time and its previous markup served
meanwhile (:mod:`.stampede`); its queries run with bounded waits (:mod:`.timeouts`).

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
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from . import cache, stampede
from .adapter import get_adapter
from .customers import audiences
from .measure import experiments as measure_experiments
from .measure import tracking
from .money import format_money
from .recommend.caching import make_key
from .recommend.service import customer_for, subject_key
from .recommend.types import Recommendation
from .timeouts import bounded, is_timeout

logger = logging.getLogger("django_crosssell")

WIDGET_TEMPLATE = "django_crosssell/widgets/{}.html"
EMPTY = mark_safe("")

#: Stand-ins that cached markup carries where each request needs its own value: the CSRF
#: token of add-to-cart forms (a token cached with shared HTML would be another visitor's)
#: and the page to come back to. :func:`fill_request_values` replaces them on every render,
#: warm or cold. Neither contains a character HTML escaping changes.
CSRF_PLACEHOLDER = "__crosssell_csrf_token__"
NEXT_PLACEHOLDER = "__crosssell_next_url__"

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
            "url": tracking.placeholder_url(adapter.url(product), position),
            "price": format_money(prices.get(product.pk)),
            "amount": prices.get(product.pk),
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


def fill_request_values(html: str, request: Any) -> str:
    """Put this request's CSRF token and path into cached markup (see ``CSRF_PLACEHOLDER``).

    Without a request there is no token to give: the forms keep an empty one, and the
    host's CSRF check refuses them rather than accepting a stranger's.
    """
    if CSRF_PLACEHOLDER not in html and NEXT_PLACEHOLDER not in html:
        return html
    token, path = "", ""
    if request is not None:
        from django.middleware.csrf import get_token

        token = get_token(request)
        path = escape(request.get_full_path())
    return html.replace(CSRF_PLACEHOLDER, token).replace(NEXT_PLACEHOLDER, path)


def form_context() -> dict[str, str]:
    """What add-to-cart forms of a widget template need (placeholders, filled per request)."""
    return {"csrf_placeholder": CSRF_PLACEHOLDER, "next_placeholder": NEXT_PLACEHOLDER}


def failed(widget: str, argument: Any, exc: Exception) -> None:
    """Log why a widget rendered empty; raise instead with ``DEBUG=True`` (except for a
    query timeout, which is the database's state, not a bug in the page)."""
    if settings.DEBUG and not is_timeout(exc):
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
    start = html.find(marker)
    if start < 0:
        return ""
    start += len(marker)
    end = html.find('"', start)
    return html[start:end] if end >= 0 else html[start:]


def finish(
    request: Any,
    widget: str,
    html: str,
    assignment: measure_experiments.Assignment | None,
) -> str:
    """The cached markup for this response: a serve buffered (no query) or tokens removed.

    The serve records the cache version the markup belongs to (it changes with every
    recompute and curation edit); it is read only when this response is tracked.
    """
    if tracking.PLACEHOLDER not in html:
        return html
    state = tracking.state_of(request)
    if state is None or state.cheap_excluded():
        return tracking.strip(html)
    if state.cache_version is None:
        state.cache_version = cache.current_version()  # once per request
    return tracking.finish_widget(
        request,
        _attribute(html, "data-crosssell-placement") or widget,
        html,
        version=state.cache_version or 0,
        source=_attribute(html, "data-crosssell-source"),
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
        rendered: dict[str, str] = {}

        def compute() -> tuple[Any, float]:
            html, expires_at, used = _html(widget, build, template_name, request)
            if used is None:
                return html, expires_at
            # What this widget shows varies by audience: the shared entry holds a marker and
            # each combination of the visitor's audiences gets its own entry (kept shorter).
            expires_at = min(expires_at, time.time() + audiences.CUSTOMER_TIMEOUT)
            rendered["html"] = html
            if cache_key is not None:  # this visitor's entry, so their next page is warm
                stampede.fetch(audiences.keyed(cache_key, used), lambda: (html, expires_at))
            return (audiences.RESTRICTED,), expires_at

        def compute_own() -> tuple[Any, float]:
            html, expires_at, _used = _html(widget, build, template_name, request)
            return html, min(expires_at, time.time() + audiences.CUSTOMER_TIMEOUT)

        html: Any
        if cache_key is None:
            html = _html(widget, build, template_name, request)[0]
        else:
            html, _ = stampede.fetch(cache_key, compute, defer=True)
            if isinstance(html, tuple) and html[:1] == (audiences.RESTRICTED,):
                if "html" in rendered:  # computed just now, for this visitor
                    html = rendered["html"]
                else:
                    own_key = audiences.keyed(
                        cache_key, audiences.visible_audiences(user_of(context))
                    )
                    html, _ = stampede.fetch(own_key, compute_own, defer=True)
        # rendered with autoescaping before it was cached; per-visitor values filled now
        html = finish(request, widget, html, assignment)
        return mark_safe(fill_request_values(html, request))
    except Exception as exc:  # a widget never breaks the page
        failed(widget, argument, exc)
        return EMPTY


def _html(
    widget: str, build: Callable[[], Built], template_name: str | None, request: Any
) -> tuple[str, float, tuple[int, ...] | None]:
    """A widget's markup, its expiry and the audiences its data was filtered by (None: the
    same for every visitor); its queries bounded and isolated (``timeouts``)."""
    token = audiences.track()
    try:
        with bounded():
            widget_context, expires_at = build()
            html = ""
            if widget_context:
                widget_context.setdefault("widget", widget)
                widget_context.setdefault("crosssell_serve", tracking.PLACEHOLDER)
                for name, value in form_context().items():
                    widget_context.setdefault(name, value)
                names = [template_name] if template_name else []
                names += [
                    WIDGET_TEMPLATE.format(widget),
                    *widget_context.pop("fallback_templates", []),
                ]
                html = select_template(names).render(widget_context, request=request)
    finally:
        used = audiences.used(token)
    return str(html), expires_at, used
