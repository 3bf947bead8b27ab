"""After-purchase widgets (``after_purchase``, ``subscription_suggestion``); loaded through
``crosssell``.

The tags hold no queries: they call the recommendation service and
:mod:`django_crosssell.followup.subscription`, and render through the one render, failure
and cache policy of :mod:`django_crosssell.widgets`.
"""

from __future__ import annotations

import time
from typing import Any

from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from django_crosssell.adapter import get_adapter
from django_crosssell.followup.subscription import suggestion
from django_crosssell.products import product_key
from django_crosssell.recommend.caching import make_key
from django_crosssell.recommend.service import recommend_for_cart_with_expiry
from django_crosssell.widgets import (
    Built,
    recommendation_cards,
    render,
    request_of,
    user_of,
    widget_key,
)

register = template.Library()

#: The thank-you page's placement name (measurement reads it from the markup).
THANK_YOU = "thank_you"
#: A customer's rhythm changes with their orders; cached suggestions live this long.
PERSONAL_SECONDS = 300


@register.simple_tag(takes_context=True)
def after_purchase(
    context: template.Context,
    order: Any,
    *,
    limit: int | None = None,
    title: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% after_purchase order %}``: what goes with what was just bought, on the thank-you
    page; never a product of the order itself (placement ``thank_you``)."""
    bought: list[Any] = []

    def products() -> list[Any]:
        if not bought:
            if order is None or isinstance(order, str):
                raise ValueError(f"Expected an order, got {order!r}.")
            bought.extend(item.product for item in get_adapter().order_items(order))
        return bought

    def key() -> str:
        return widget_key(
            "after_purchase",
            products(),
            user=user_of(context),
            request=request_of(context),
            template=template,
            limit=limit,
            title=title,
        )

    def build() -> Built:
        recs, expires_at = recommend_for_cart_with_expiry(
            products(), limit=limit, user=user_of(context)
        )
        if not recs:
            return None, expires_at
        return {
            "title": title or gettext("Goes well with your order"),
            "source": "order",
            "placement": THANK_YOU,
            "cards": recommendation_cards(recs, request_of(context)),
            "recommendations": recs,
        }, expires_at

    return render(context, "after_purchase", order, build, template, key=key)


@register.simple_tag(takes_context=True)
def subscription_suggestion(
    context: template.Context, product: Any, *, template: str | None = None
) -> SafeString:
    """``{% subscription_suggestion product %}``: for a customer whose repeat purchases of
    the product are regular, the host's subscription ("定期購入") offer; else nothing."""
    request = request_of(context)
    found: dict[str, Any] = {}

    def customer() -> Any:
        # Inside the render's error handling: a broken adapter renders nothing.
        if "customer" not in found:
            user = getattr(request, "user", None) or context.get("user")
            found["customer"] = get_adapter().customer_key(user)
        return found["customer"]

    def key() -> str | None:
        if customer() is None:
            return None
        return make_key(
            "widget",
            "subscription_suggestion",
            str(product_key(product)),
            str(customer()),
            get_adapter().cache_key(request),
            template,
        )

    def build() -> Built:
        expires_at = time.time() + PERSONAL_SECONDS
        if customer() is None:
            return None, expires_at
        offer = suggestion(customer(), product)
        if offer is None:
            return None, expires_at
        return {"suggestion": offer, "product": product}, expires_at

    return render(context, "subscription_suggestion", product, build, template, key=key)
