"""Bundle widgets (``bundle_offers``, ``bundle_progress``); loaded through ``crosssell``.

The tags hold no queries: they call :mod:`django_crosssell.bundles` and render an inclusion
template. A widget must never break the host's page, so any failure renders nothing and logs
a warning; with ``DEBUG=True`` it raises, so a developer sees the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django import template
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from django_crosssell import bundles, money
from django_crosssell.adapter import get_adapter

register = template.Library()
logger = logging.getLogger("django_crosssell")

OFFERS_TEMPLATE = "django_crosssell/widgets/bundle_offers.html"
PROGRESS_TEMPLATE = "django_crosssell/widgets/bundle_progress.html"


def _safely(name: str, context: template.Context, build: Callable[[], dict[str, Any]], tpl: str):
    try:
        data = build()
        request = context.get("request")
        return mark_safe(render_to_string(tpl, data, request=request))
    except Exception:
        if settings.DEBUG:
            raise
        logger.warning(
            "django-crosssell: the %s widget failed; rendering nothing", name, exc_info=True
        )
        return SafeString("")


@register.simple_tag(takes_context=True)
def bundle_offers(
    context: template.Context, product: Any, at: Any = None, template: str = OFFERS_TEMPLATE
) -> SafeString:
    """``{% bundle_offers product %}``: current bundle rules that include the product."""

    def build() -> dict[str, Any]:
        offers = bundles.offers_for_product(product, at=at) if product else []
        return {"offers": offers, "product": product}

    return _safely("bundle_offers", context, build, template)


@register.simple_tag(takes_context=True)
def bundle_progress(
    context: template.Context, cart_lines: Any, at: Any = None, template: str = PROGRESS_TEMPLATE
) -> SafeString:
    """``{% bundle_progress cart_lines %}``: applied bundle discounts and "add one more" nudges.

    ``cart_lines`` is anything the adapter's ``cart_lines()`` reads (a list of lines, a
    queryset or related manager, an object with ``.all_lines()`` or ``.lines``), or a ready
    :class:`~django_crosssell.bundles.BundleEvaluation`, so a page that already evaluated the
    cart does not evaluate it twice. A missing cart (None, "") is an empty one.
    """

    def build() -> dict[str, Any]:
        if isinstance(cart_lines, bundles.BundleEvaluation):
            evaluation = cart_lines
        else:
            empty = cart_lines is None or (isinstance(cart_lines, str) and not cart_lines)
            lines = [] if empty else get_adapter().cart_lines(cart_lines, context.get("request"))
            evaluation = bundles.evaluate(lines, at=at)
        return {"evaluation": evaluation}

    return _safely("bundle_progress", context, build, template)


@register.filter
def crosssell_money(amount: Any) -> str:
    """Format an amount with ``CROSSSELL['PRICE_FORMATTER']``."""
    if amount in (None, ""):
        return ""
    return money.format_money(amount)
