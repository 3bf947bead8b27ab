"""Personal widgets (``for_you``, ``buy_again``); loaded through ``crosssell``.

The tags hold no queries: they call :mod:`django_crosssell.recommend.personal` and render
through the one render, failure and cache policy of :mod:`django_crosssell.widgets`, cached
as HTML per customer (the key holds the customer, never shared between customers).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from django_crosssell.adapter import get_adapter
from django_crosssell.recommend.caching import make_key
from django_crosssell.recommend.personal import (
    buy_again_with_expiry,
    recommend_for_customer_with_expiry,
)
from django_crosssell.widgets import Built, recommendation_cards, render, request_of

register = template.Library()

LIST_TEMPLATE = "django_crosssell/widgets/recommendations.html"


def _customer(context: template.Context) -> tuple[Any, Any]:
    """The visitor (the request's user, or ``user`` in the context) and their customer key."""
    request = request_of(context)
    user = getattr(request, "user", None)
    if user is None:
        user = context.get("user")
    customer = get_adapter().customer_key(user) if user is not None else None
    return user, customer


def _personal(
    context: template.Context,
    widget: str,
    compute: Any,
    limit: int | None,
    title: str | None,
    default_title: str,
    template_name: str | None,
) -> SafeString:
    user, customer = _customer(context)

    def key() -> str:
        customer_key = None if customer is None else str(customer)
        adapter_key = get_adapter().cache_key(request_of(context))
        return make_key("widget", widget, customer_key, limit, title, template_name, adapter_key)

    def build() -> Built:
        recs, expires_at = compute(user, limit)
        if not recs:
            return None, expires_at
        return {
            "title": title or default_title,
            "source": "",
            "cards": recommendation_cards(recs, request_of(context)),
            "fallback_templates": [LIST_TEMPLATE],
            "recommendations": recs,
        }, expires_at

    return render(context, widget, customer, build, template_name, key=key)


@register.simple_tag(takes_context=True)
def for_you(
    context: template.Context,
    *,
    limit: int | None = None,
    title: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% for_you limit=4 %}``: what this customer is likely to buy next (home, account
    page); bestsellers for visitors who are not logged in."""
    return _personal(
        context,
        "for_you",
        recommend_for_customer_with_expiry,
        limit,
        title,
        gettext("Picked for you"),
        template,
    )


@register.simple_tag(takes_context=True)
def buy_again(
    context: template.Context,
    *,
    limit: int | None = None,
    title: str | None = None,
    template: str | None = None,
) -> SafeString:
    """``{% buy_again %}``: products this customer buys repeatedly that are due again at
    their own pace ("Last bought 28 days ago"); nothing for visitors."""
    return _personal(
        context,
        "buy_again",
        buy_again_with_expiry,
        limit,
        title,
        gettext("Time to buy again?"),
        template,
    )
