"""Bundle widgets (``bundle_offers``, ``bundle_progress``); loaded through ``crosssell``.

The tags hold no queries: they call :mod:`django_crosssell.bundles` and render through the
one render, failure and cache policy of :mod:`django_crosssell.widgets`.
"""

from __future__ import annotations

import time
from typing import Any

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString

from django_crosssell import bundles, money
from django_crosssell.adapter import get_adapter
from django_crosssell.bundles.offers import for_visitor, offers_at
from django_crosssell.customers.audiences import Resolver
from django_crosssell.products import product_key
from django_crosssell.recommend.caching import make_key
from django_crosssell.widgets import Built, render, request_of, user_of

register = template.Library()

OFFERS_TEMPLATE = "django_crosssell/widgets/bundle_offers.html"
PROGRESS_TEMPLATE = "django_crosssell/widgets/bundle_progress.html"


@register.simple_tag(takes_context=True)
def bundle_offers(
    context: template.Context, product: Any, at: Any = None, template: str = OFFERS_TEMPLATE
) -> SafeString:
    """``{% bundle_offers product %}``: current bundle rules that include the product.

    Cached as HTML until the next campaign start or end among the product's rules.
    """
    user = user_of(context)

    def build() -> Built:
        key = product_key(product)
        key = get_adapter().canonical_ids([product]).get(key, key)  # a variant: its parent's
        offers, valid_for = offers_at(key, at or timezone.now())
        offers = for_visitor(offers, Resolver(user))
        if not offers:
            return None, time.time() + valid_for
        adapter = get_adapter()
        entries = [{"offer": offer, "url": adapter.bundle_url(offer.rule)} for offer in offers]
        return {
            "offers": offers,
            "entries": entries,
            "product": product,
            "add_many_url": adapter.add_many_to_cart_url(),
        }, time.time() + valid_for

    return render(context, "bundle_offers", product, build, template, at=at)


def _lines(context: template.Context, cart: Any) -> list[bundles.CartLine]:
    if cart is None or (isinstance(cart, str) and not cart):
        return []  # a missing cart is an empty one
    return get_adapter().cart_lines(cart, request_of(context))


@register.simple_tag(takes_context=True)
def bundle_progress(
    context: template.Context, cart_lines: Any, at: Any = None, template: str = PROGRESS_TEMPLATE
) -> SafeString:
    """``{% bundle_progress cart_lines %}``: applied bundle discounts and "add one more" nudges.

    ``cart_lines`` is anything the adapter's ``cart_lines()`` reads (a list of lines, a
    queryset or related manager, an object with ``.all_lines()`` or ``.lines``), or a ready
    :class:`~django_crosssell.bundles.BundleEvaluation`, so a page that already evaluated the
    cart does not evaluate it twice. A missing cart (None, "") is an empty one. Cached as
    HTML per cart content (products, quantities and unit prices).
    """
    lines: list[bundles.CartLine] | None = None

    def key() -> str | None:
        nonlocal lines
        if isinstance(cart_lines, bundles.BundleEvaluation):
            return None
        lines = _lines(context, cart_lines)
        content = sorted(
            (str(product_key(line.product)), int(line.quantity), str(line.unit_price))
            for line in lines
        )
        return make_key("widget", "bundle_progress", content, str(at), template)

    def build() -> Built:
        if isinstance(cart_lines, bundles.BundleEvaluation):
            evaluation = cart_lines
        else:
            evaluation = bundles.evaluate(
                lines if lines is not None else [], at=at, user=user_of(context)
            )
        return {"evaluation": evaluation}, time.time() + 300

    return render(context, "bundle_progress", cart_lines, build, template, key=key)


@register.filter
def crosssell_money(amount: Any) -> str:
    """Format an amount with ``CROSSSELL['PRICE_FORMATTER']``."""
    if amount in (None, ""):
        return ""
    return money.format_money(amount)
