"""Product page offers: the current bundle rules that include a product, and admin previews.

An offer is one application at the items' current prices: the whole set, or N units of the
product for mix-and-match and multi-buy. A set is offered only when every partner item can
be bought now (the adapter's ``available()``), checked for all partners of all offers with
one more query. The result is cached (versioned keys, so any rule, item or product edit
invalidates it) until the next campaign start or end among the product's rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone

from .. import cache
from ..adapter import get_adapter
from ..conf import app_settings
from ..customers.audiences import Resolve, Resolver, allowed
from ..models import BundleRule
from ..products import product_key
from .rules import Products, Rule, application_discount, fetch_rules, product_prices
from .solver import FIXED_SET
from .types import BundleOffer


def make_offer(spec: Rule, key: Any) -> BundleOffer | None:
    """One application of ``spec`` for the product ``key``; None without a saving or price."""
    regular = spec.regular_total(key)
    if regular is None or spec.price(key) is None:
        return None
    saving = application_discount(spec.rule, regular)
    if saving <= 0:
        return None
    partners = []
    items: list[tuple[Any, int]] = []
    if spec.d.kind == FIXED_SET:
        partners = [spec.products[item] for item, _ in spec.items if item != key]
        items = [(item, int(quantity)) for item, quantity in spec.items]
    return BundleOffer(
        spec.rule, spec.products[key], partners, spec.needed, regular, saving, items=items
    )


def available_keys(keys: Iterable[Any]) -> set[Any]:
    """Which of the product ``keys`` customers can buy now: one query (none for no keys)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return set()
    adapter = get_adapter()
    buyable = adapter.available(adapter.products().filter(pk__in=keys))
    return set(buyable.values_list("pk", flat=True))


def offers_for_product(
    product: Any, at: datetime | None = None, *, user: Any = None
) -> list[BundleOffer]:
    """Current rules that include the product, each with the saving at current prices.

    The saving is one application: the whole set, or N units of this product for
    mix-and-match and multi-buy. Sets with a partner that is not available are left out.
    A variant gets its parent's offers (``adapter.canonical_ids``), as in carts.
    At most two queries (the rules, then the partners' availability when there are sets);
    none while cached, until the next campaign start or end among the product's rules, so a
    sale appears and disappears on time.
    """
    key = product_key(product)
    key = get_adapter().canonical_ids([product]).get(key, key)  # a variant: its parent's
    if at is not None:
        return for_visitor(offers_at(key, at)[0], Resolver(user))
    cache_key = cache.make_key("bundle_offers", key)
    offers = cache.get(cache_key)
    if offers is None:
        offers, valid_for = offers_at(key, timezone.now())
        cache.set(cache_key, offers, timeout=valid_for)
    return for_visitor(offers, Resolver(user))


def for_visitor(offers: list[BundleOffer], resolve: Resolve) -> list[BundleOffer]:
    """``offers`` without those restricted to an audience the visitor is not in (the
    visitor's audiences are looked up only when an offer is restricted)."""
    return [offer for offer in offers if allowed(offer.rule.audience_id, resolve)]


def offers_at(key: Any, at: datetime) -> tuple[list[BundleOffer], int]:
    """The offers for the product ``key`` at ``at``, uncached, and for how many seconds they
    stay right (the cache timeout). Offers restricted to an audience are included: filter
    them with :func:`for_visitor`."""
    valid_for = int(app_settings.CACHE_TIMEOUT)
    offers = []
    for spec in fetch_rules([key], at, any_window=True):
        rule = spec.rule
        for boundary in (rule.starts_at, rule.ends_at):
            if boundary is not None and boundary > at:
                valid_for = min(valid_for, math.ceil((boundary - at).total_seconds()))
        if rule.is_current(at) and spec.lists(key):
            offer = make_offer(spec, key)
            if offer is not None:
                offers.append(offer)
    partners = {partner.pk for offer in offers for partner in offer.partners}
    if partners:
        buyable = available_keys(partners)
        offers = [o for o in offers if all(p.pk in buyable for p in o.partners)]
    offers.sort(key=lambda o: (-o.rule.priority, -o.saving, o.rule.slug))
    return offers, max(1, valid_for)


def preview(rule: BundleRule) -> BundleOffer | None:
    """One application of ``rule`` at its items' current prices (for the admin).

    Shown whether or not the items are available, so staff see the rule's saving.
    """
    items = list(rule.items.select_related("product").order_by("pk"))
    if not items:
        return None
    products = Products(rule._state.db or "default", [])
    prices = product_prices(item.product for item in items)  # one call for all items
    for item in items:
        products[item.product_id] = item.product
        products.prices[item.product_id] = prices.get(item.product_id)
    spec = Rule(rule, [(item.product_id, item.quantity) for item in items], products)
    if rule.kind == FIXED_SET:
        return make_offer(spec, items[0].product_id)
    # Mix-and-match and multi-buy: the cheapest listed product, the least a customer saves.
    priced = [item for item in items if prices.get(item.product_id) is not None]
    if not priced:
        return None
    cheapest = min(priced, key=lambda i: (prices[i.product_id], str(i.product_id)))
    return make_offer(spec, cheapest.product_id)


def qualifying_products(rule: BundleRule) -> list[Any]:
    """The products a customer can buy now that count towards ``rule``, in item order.

    What a mix-and-match offer links to ("which teas count?"): one query, the rule's items
    joined to the adapter's ``available()`` products.
    """
    adapter = get_adapter()
    keys = list(rule.items.order_by("pk").values_list("product_id", flat=True))
    if not keys:
        return []
    found = {p.pk: p for p in adapter.available(adapter.products().filter(pk__in=keys))}
    return [found[key] for key in dict.fromkeys(keys) if key in found]
