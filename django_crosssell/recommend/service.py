"""What to show next to a product or a cart: curated, then computed, then bestsellers.

The public functions validate their arguments (``ValueError`` for bad ones; the widgets turn
that into an empty widget and a logged warning), read through the cache
(:mod:`.caching`), and otherwise run the two queries of :mod:`.queries`. Ranking and
deduplication happen here, in Python, on a few dozen rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from .. import cache
from ..adapter import get_adapter
from ..conf import app_settings, get_product_model
from ..customers.audiences import Resolve, audience_cached
from ..models import ProductRelation
from ..products import product_key
from . import queries
from .caching import make_key
from .queries import TAG_AFFINITY, TAG_BEST, TAG_CURATED, TAG_SIMILAR, Row
from .types import BOUGHT_TOGETHER, CURATED, FALLBACK, SIMILAR, Recommendation

KINDS = (ProductRelation.Kind.CROSS_SELL.value, ProductRelation.Kind.RELATED.value)
#: Cached results that depend on one customer's orders live shorter: the version is not
#: bumped when somebody places an order.
PERSONAL_TIMEOUT = 300


# --- arguments -------------------------------------------------------------------------------


def _kinds(kind: str | None) -> tuple[str, ...]:
    if kind is None:
        return KINDS
    if kind in KINDS:
        return (str(kind),)
    raise ValueError(f"kind must be None, 'cross_sell' or 'related', not {kind!r}.")


def _limit(limit: Any) -> int:
    if limit is None or limit == "":
        return int(app_settings.DEFAULT_LIMIT)
    if isinstance(limit, str) and limit.strip().isdigit():
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValueError(f"limit must be a whole number, not {limit!r}.")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}.")
    return min(limit, int(app_settings.MAX_LIMIT))


def customer_for(user: Any) -> Any:
    """The customer key to exclude purchases for, or None when the setting does not apply."""
    if not app_settings.EXCLUDE_PURCHASED or user is None:
        return None
    return get_adapter().customer_key(user)


def subject_key(subject: Any) -> Any:
    """A product's key, or the sorted keys of a cart's products, for cache keys.

    A product's key is not made canonical: a variant's widget is cached on its own, so a
    warm widget given a bare key never needs the adapter's (possibly querying) variant
    lookup. A cart's products are instances or lines, which the adapter reads for free.
    """
    if is_cart(subject):
        return sorted(map(str, get_adapter().cart_product_ids(subject)))
    return product_key(subject)


def is_cart(value: Any) -> bool:
    """Whether ``value`` is a cart (an iterable of products or lines, or an object with lines)."""
    if isinstance(value, str | bytes):
        return False
    if isinstance(value, models.Model):
        if isinstance(value, get_product_model()):
            return False
        return hasattr(value, "all_lines") or hasattr(value, "lines")
    return isinstance(value, Iterable) or hasattr(value, "all_lines") or hasattr(value, "lines")


def canonical_key(product: Any) -> Any:
    """The key of the product customers browse for ``product`` (a variant's parent)."""
    pk = product_key(product)
    return get_adapter().canonical_ids([product]).get(pk, pk)


# --- reasons and ranking ---------------------------------------------------------------------


def _reason(tag: str, count: int | None, *, by_category: bool) -> str:
    if tag == TAG_CURATED:
        return gettext("Recommended by our staff")
    if tag == TAG_AFFINITY:
        if count:
            return ngettext(
                "%(count)d person bought these together",
                "%(count)d people bought these together",
                count,
            ) % {"count": count}
        return gettext("Often bought together")
    if tag == TAG_SIMILAR:
        return gettext("Similar products")
    if by_category:
        return gettext("Popular in this category")
    return gettext("Popular in our shop")


def _assemble(
    ordered: list[tuple[str, Row]],
    products: dict[Any, Any],
    *,
    exclude: set[Any],
    limit: int,
    by_category: bool,
) -> list[Recommendation]:
    source_names = {
        TAG_CURATED: CURATED,
        TAG_AFFINITY: BOUGHT_TOGETHER,
        TAG_SIMILAR: SIMILAR,
        TAG_BEST: FALLBACK,
    }
    results: list[Recommendation] = []
    seen = set(exclude)
    for tag, row in ordered:
        target = row[1]
        if target in seen or target not in products:
            continue
        seen.add(target)
        results.append(
            Recommendation(
                product=products[target],
                score=float(row[2] or 0.0),
                source=source_names[tag],
                reason=_reason(tag, row[6], by_category=by_category),
                position=len(results) + 1,
            )
        )
        if len(results) >= limit:
            break
    return results


# --- products --------------------------------------------------------------------------------


def _within_price_band(
    ordered: list[tuple[str, Row]], source: Any, products: dict[Any, Any]
) -> list[tuple[str, Row]]:
    """Drop computed partners and bestsellers dearer than ``PARTNER_MAX_PRICE_RATIO`` times
    the source; staff links stay whatever they cost.

    Prices come from the adapter's bulk call on the instances already fetched (no query with
    the default adapter). Products without a price, or a source without one, are not capped.
    """
    ratio = app_settings.PARTNER_MAX_PRICE_RATIO
    if not ratio:
        return ordered
    capped = {row[1] for tag, row in ordered if tag != TAG_CURATED and row[1] in products}
    if not capped:
        return ordered
    prices = get_adapter().prices([source, *(products[pk] for pk in capped)])
    own = prices.get(source.pk)
    if own is None or own <= 0:
        return ordered
    limit = own * Decimal(str(ratio))
    too_dear = {pk for pk in capped if (price := prices.get(pk)) is not None and price > limit}
    return [(tag, row) for tag, row in ordered if tag == TAG_CURATED or row[1] not in too_dear]


def recommend_for_product(
    product: Any, *, kind: str | None = None, limit: int | None = None, user: Any = None
) -> list[Recommendation]:
    """Products to show next to ``product``: curated, then computed, then bestsellers.

    ``kind`` restricts the curated part to ``"cross_sell"`` or ``"related"`` links; ``None``
    takes both. A variant is recommended for as its canonical product (the adapter's parent).
    """
    return recommend_for_product_with_expiry(product, kind=kind, limit=limit, user=user)[0]


def recommend_for_product_with_expiry(
    product: Any, *, kind: str | None = None, limit: int | None = None, user: Any = None
) -> tuple[list[Recommendation], float]:
    """:func:`recommend_for_product` and the ``time.time()`` until which it holds."""
    pk = canonical_key(product)
    if isinstance(product, models.Model) and product.pk != pk:
        product = pk  # a variant: its parent's categories apply, read in the query
    kinds, limit, customer = _kinds(kind), _limit(limit), customer_for(user)

    def compute(resolve: Resolve) -> tuple[list[Recommendation], int]:
        results, timeout = _compute_for_product(product, pk, kinds, limit, customer, resolve)
        if customer is not None:
            timeout = min(timeout, PERSONAL_TIMEOUT)
        return results, timeout

    return audience_cached(make_key("product", pk, kinds, limit, customer), user, compute)


def _compute_for_product(
    product: Any,
    pk: Any,
    kinds: tuple[str, ...],
    limit: int,
    customer: Any,
    resolve: Resolve | None = None,
) -> tuple[list[Recommendation], int]:
    now = timezone.now()
    adapter = get_adapter()
    field = adapter.category_field()
    # The source's categories, when they can be read without a query (or with the one a
    # many-to-many field costs); otherwise the bestseller query reads them in a subquery.
    categories: tuple[Any, ...] | None = None
    if field is not None and isinstance(product, models.Model):
        categories = adapter.category_ids([product])[pk]
    category_known = field is None or categories is not None

    querysets = [
        queries.curated([pk], kinds, now),
        queries.partners(pk, max(limit * 3, limit + 10)),
        queries.similar(pk, max(limit * 3, limit + 10)),
    ]
    bestsellers: list[Row] | None = None
    best_version = 0
    if app_settings.FALLBACK == "bestsellers":
        if category_known:
            hit, best_version = cache.get_versioned(make_key("bestsellers", categories))
            bestsellers = None if hit is cache.MISSING else hit
        if bestsellers is None:
            querysets.append(queries.bestsellers(categories, pk))

    groups, timeout = queries.split(queries.union(querysets), now, resolve)
    if bestsellers is not None:
        groups[TAG_BEST] = bestsellers
    ids = [row[1] for group in groups.values() for row in group]
    products = queries.fetch_products(ids, customer=customer, include=pk)

    source = products.pop(pk, None)
    if source is None:
        # The product was deleted (or never existed): nothing sensible to recommend.
        return [], timeout
    if app_settings.FALLBACK == "bestsellers" and bestsellers is None:
        if not category_known and field is not None and not field.many_to_many:
            categories, category_known = adapter.category_ids([source])[pk], True
            best_version = cache.current_version()
        if category_known:
            cache.set_versioned(make_key("bestsellers", categories), groups[TAG_BEST], best_version)

    ordered = [
        (tag, row)
        for tag in (TAG_CURATED, TAG_AFFINITY, TAG_SIMILAR, TAG_BEST)
        for row in groups[tag]
    ]
    ordered = _within_price_band(ordered, source, products)
    by_category = field is not None and (categories is None or bool(categories))
    results = _assemble(ordered, products, exclude={pk}, limit=limit, by_category=by_category)
    return results, timeout


# --- carts -----------------------------------------------------------------------------------


def recommend_for_cart(
    products: Iterable[Any], *, limit: int | None = None, user: Any = None
) -> list[Recommendation]:
    """Products bought together with the cart's contents, never one already in the cart.

    ``products`` is the host's cart in any form the adapter reads (products, keys, lines, a
    cart object). Staff ``cross_sell`` links of the cart's products come first, then the
    current run's partners with their scores summed over the cart. Two queries at most,
    whatever the cart size; no bestseller fallback (the widget promises "bought together").
    """
    return recommend_for_cart_with_expiry(products, limit=limit, user=user)[0]


def recommend_for_cart_with_expiry(
    products: Iterable[Any], *, limit: int | None = None, user: Any = None
) -> tuple[list[Recommendation], float]:
    """:func:`recommend_for_cart` and the ``time.time()`` until which it holds."""
    if not is_cart(products):  # a product, a string: not a cart (a cart object is one)
        raise ValueError(
            f"Expected an iterable of products or keys, got {type(products).__name__}."
        )
    pks = get_adapter().cart_product_ids(products)
    limit, customer = _limit(limit), customer_for(user)
    if not pks:
        return [], time.time() + int(app_settings.CACHE_TIMEOUT)

    def compute(resolve: Resolve) -> tuple[list[Recommendation], int]:
        now = timezone.now()
        cross_sell = (ProductRelation.Kind.CROSS_SELL.value,)
        rows = queries.union(
            [
                queries.curated(pks, cross_sell, now),
                queries.cart_partners(pks, max(limit * 3, limit + 10)),
            ]
        )
        groups, timeout = queries.split(rows, now, resolve)
        in_cart = set(pks)
        ids = [row[1] for group in groups.values() for row in group if row[1] not in in_cart]
        found = queries.fetch_products(ids, customer=customer) if ids else {}
        ordered = [(tag, row) for tag in (TAG_CURATED, TAG_AFFINITY) for row in groups[tag]]
        results = _assemble(ordered, found, exclude=in_cart, limit=limit, by_category=False)
        if customer is not None:
            timeout = min(timeout, PERSONAL_TIMEOUT)
        return results, timeout

    key = make_key("cart", sorted(map(str, pks)), limit, customer)
    return audience_cached(key, user, compute)
