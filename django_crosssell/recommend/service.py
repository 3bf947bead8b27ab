"""The recommendation service: the only module that queries for recommendations.

Budget: a product or cart recommendation costs at most two SQL queries with a cold cache and
none with a warm one, whatever the cart size.

1. One ``UNION ALL`` query collects every candidate id with its ranking data: the curated
   links (with their campaign windows, so the cache can expire when one starts or ends), the
   current run's computed partners, and, when the cache does not already hold them, the
   bestsellers used as fallback.
2. One query fetches the candidate products through the host's availability filter (and the
   "already bought" exclusion), together with the source product to notice a deleted one.

Ranking and deduplication then happen in Python on a few dozen rows. Results are cached under
versioned keys (:mod:`django_crosssell.cache`) that include everything that changes the
output: arguments, language, customer and the relevant settings.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connections, models
from django.db.models import Count, F, Max, Q, Sum, Value
from django.db.models.functions import Cast
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext, ngettext

from .. import cache
from ..conf import app_settings, get_order_line_model, get_product_model
from ..models import ProductAffinity, ProductRelation, TierLadder, TierStep
from .types import (
    BOUGHT_TOGETHER,
    CURATED,
    DOWNGRADE,
    FALLBACK,
    UPGRADE,
    Recommendation,
    TierOffer,
)

KINDS = (ProductRelation.Kind.CROSS_SELL.value, ProductRelation.Kind.RELATED.value)
#: Cached results that depend on one customer's orders live shorter: the version is not
#: bumped when somebody places an order.
PERSONAL_TIMEOUT = 300
#: At most this many curated links are read per source product.
MAX_CURATED = 100

_MISS = object()
_TAG_CURATED, _TAG_AFFINITY, _TAG_BEST = "c", "a", "b"
_COLUMNS = ("cs_tag", "cs_target", "cs_score", "cs_position", "cs_starts", "cs_ends", "cs_count")


# --- argument validation -------------------------------------------------------------------


def product_key(product: Any) -> Any:
    """Return the primary key of a product instance or key, or raise ``ValueError``."""
    model = get_product_model()
    if product is None:
        raise ValueError("A product is required, got None.")
    if isinstance(product, models.Model):
        if not isinstance(product, model):
            raise ValueError(
                f"Expected a {model._meta.label} or its primary key, "
                f"got a {type(product)._meta.label} instance."
            )
        if product.pk is None:
            raise ValueError("The product has not been saved (it has no primary key).")
        return product.pk
    if isinstance(product, bool) or not isinstance(product, int | str | uuid.UUID):
        raise ValueError(
            f"Expected a {model._meta.label} or its primary key, got {type(product).__name__}."
        )
    try:
        pk = model._meta.pk.to_python(product)
    except ValidationError as exc:
        raise ValueError(f"{product!r} is not a valid {model._meta.label} key.") from exc
    if pk in (None, ""):
        raise ValueError("A product is required, got an empty key.")
    return pk


def _product_keys(products: Any) -> list[Any]:
    if products is None:
        raise ValueError("Cart products are required, got None.")
    if isinstance(products, str | bytes | models.Model) or not isinstance(products, Iterable):
        raise ValueError(
            f"Expected an iterable of products or keys, got {type(products).__name__}."
        )
    keys = dict.fromkeys(product_key(product) for product in products)
    return list(keys)


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


def _customer(user: Any) -> Any:
    """The customer key to exclude purchases for, or None when the setting does not apply."""
    if not app_settings.EXCLUDE_PURCHASED or user is None:
        return None
    if not getattr(user, "is_authenticated", False):
        return None
    if not app_settings.ORDER_LINE_FIELDS.get("customer") or get_order_line_model() is None:
        return None
    return user.pk


# --- cache keys ------------------------------------------------------------------------------


def _fingerprint() -> str:
    """Everything besides the arguments that changes what a widget shows."""
    return repr(
        (
            get_product_model()._meta.label,
            app_settings.AVAILABLE_PRODUCTS_FILTER,
            app_settings.CATEGORY_FIELD,
            app_settings.FALLBACK,
            app_settings.PRICE_FIELD,
            app_settings.PRICE_FORMATTER,
            app_settings.IMAGE_FIELD,
            app_settings.DEFAULT_LIMIT,
            app_settings.MAX_LIMIT,
            app_settings.UPGRADE_MAX_PRICE_RATIO,
            app_settings.EXCLUDE_PURCHASED,
            app_settings.ORDER_LINE_MODEL,
            app_settings.ORDER_FILTER,
            app_settings.LOOKBACK_DAYS,
            translation.get_language(),
        )
    )


def _key(prefix: str, *parts: Any) -> str:
    """An unversioned key: entries carry their version (see ``cache.get_versioned``)."""
    # Hashed: product keys may hold characters memcached refuses, and carts may be long.
    digest = hashlib.blake2b(repr((parts, _fingerprint())).encode(), digest_size=16).hexdigest()
    return f"crosssell:e:{prefix}:{digest}"


# --- the host's catalogue and orders --------------------------------------------------------


def _products() -> models.QuerySet:
    return get_product_model()._default_manager.all()


def _available() -> Q:
    return Q(**app_settings.AVAILABLE_PRODUCTS_FILTER)


def _category_attname() -> str | None:
    """The attribute holding the category on an instance, when it is a plain field."""
    field_name = app_settings.CATEGORY_FIELD
    if not field_name or "__" in field_name:
        return None
    try:
        return get_product_model()._meta.get_field(field_name).attname
    except FieldDoesNotExist:
        return None


def _purchased(customer: Any) -> models.QuerySet:
    line_model = get_order_line_model()
    fields = app_settings.ORDER_LINE_FIELDS
    return (
        line_model._default_manager.filter(**app_settings.ORDER_FILTER)
        .filter(**{fields["customer"]: customer})
        .values(fields["product"])
    )


def _top(build: Any, order: tuple[str, ...], limit: int, key: tuple[str, str]) -> models.QuerySet:
    """``build(Q())`` ordered and cut to ``limit`` rows, in a form a ``UNION`` accepts.

    PostgreSQL takes ``(SELECT ... ORDER BY ... LIMIT n) UNION ALL (...)``; SQLite does not,
    so there the branch is rebuilt as "rows whose key is in the top n", which is the same
    set (ranking happens in Python afterwards anyway). ``key`` is (column to read, field to
    filter on) for that rewrite.
    """
    shaped = build(Q()).order_by(*order)
    if connections[shaped.db].features.supports_slicing_ordering_in_compound:
        return shaped[:limit]
    column, field = key
    top = shaped.values_list(column, flat=True)[:limit]
    return build(Q(**{f"{field}__in": top})).order_by()


def _bestseller_queryset(category: Any, *, known: bool, source_pk: Any) -> models.QuerySet:
    """Top sellers (distinct orders), of one category when the host names a category field.

    Read from the order lines when the host configured them (the truth, within the lookback
    window); otherwise from the current affinity run, where a product's total co-purchase
    count stands in for its sales.
    """
    category_field = app_settings.CATEGORY_FIELD
    in_category: models.QuerySet | None = None
    if category_field:
        if known:
            if category is not None:
                in_category = _products().filter(**{category_field: category}).values("pk")
        else:
            source_category = _products().filter(pk=source_pk).values(category_field)[:1]
            in_category = (
                _products()
                .filter(**{category_field: models.Subquery(source_category)})
                .values("pk")
            )
    line_model = get_order_line_model()
    limit = int(app_settings.MAX_LIMIT) * 3
    if line_model is not None and not app_settings.ORDER_SOURCE:
        fields = app_settings.ORDER_LINE_FIELDS
        product_path = fields["product"]

        since = timezone.now() - timedelta(days=app_settings.LOOKBACK_DAYS or 0)

        def build(extra: Q) -> models.QuerySet:
            lines = line_model._default_manager.filter(**app_settings.ORDER_FILTER).filter(
                extra, **{f"{product_path}__isnull": False}
            )
            if fields.get("placed_at") and app_settings.LOOKBACK_DAYS:
                lines = lines.filter(**{f"{fields['placed_at']}__gte": since})
            if in_category is not None:
                lines = lines.filter(**{f"{product_path}__in": in_category})
            rows = lines.values(cs_target=F(product_path)).annotate(
                cs_score=Cast(Count(fields["order"], distinct=True), models.FloatField())
            )
            return _shape(rows, _TAG_BEST)

        return _top(build, ("-cs_score", "cs_target"), limit, ("cs_target", product_path))

    def build_from_run(extra: Q) -> models.QuerySet:
        rows = ProductAffinity.objects.filter(extra, run__is_current=True)
        if in_category is not None:
            rows = rows.filter(target__in=in_category)
        rows = rows.values(cs_target=F("target")).annotate(
            cs_score=Cast(Sum("co_count"), models.FloatField())
        )
        return _shape(rows, _TAG_BEST)

    return _top(build_from_run, ("-cs_score", "cs_target"), limit, ("cs_target", "target"))


_NULLS = {
    "cs_position": models.IntegerField,
    "cs_starts": models.DateTimeField,
    "cs_ends": models.DateTimeField,
    "cs_count": models.IntegerField,
}


def _shape(queryset: models.QuerySet, tag: str, **columns: Any) -> models.QuerySet:
    """Give every branch of the union the same columns in the same order.

    ``columns`` maps column names to expressions; a name already annotated on ``queryset``
    (aggregates) is left alone, any other missing column becomes a typed NULL.
    """
    existing = set(queryset.query.annotations)
    annotations: dict[str, Any] = {"cs_tag": Value(tag)}
    for name in _COLUMNS[1:]:
        if name in columns:
            annotations[name] = columns[name]
        elif name not in existing:
            annotations[name] = Value(None, output_field=_NULLS[name]())
    return queryset.annotate(**annotations).values_list(*_COLUMNS)


def _curated_queryset(sources: list[Any], kinds: tuple[str, ...], now: datetime) -> models.QuerySet:
    def build(extra: Q) -> models.QuerySet:
        # Links that start later are read too: their start bounds the cache lifetime.
        rows = ProductRelation.objects.filter(
            extra,
            Q(ends_at__isnull=True) | Q(ends_at__gt=now),
            source__in=sources,
            kind__in=kinds,
            is_active=True,
        )
        return _shape(
            rows,
            _TAG_CURATED,
            cs_target=F("target"),
            cs_score=Value(1.0, output_field=models.FloatField()),
            cs_position=F("position"),
            cs_starts=F("starts_at"),
            cs_ends=F("ends_at"),
        )

    return _top(build, ("position", "pk"), MAX_CURATED, ("pk", "pk"))


def _affinity_queryset(source: Any, limit: int) -> models.QuerySet:
    def build(extra: Q) -> models.QuerySet:
        rows = ProductAffinity.objects.filter(extra, run__is_current=True, source=source)
        return _shape(
            rows,
            _TAG_AFFINITY,
            cs_target=F("target"),
            cs_score=F("score"),
            cs_count=F("co_count"),
        )

    return _top(build, ("-score", "target_id"), limit, ("pk", "pk"))


def _cart_affinity_queryset(sources: list[Any], limit: int) -> models.QuerySet:
    def build(extra: Q) -> models.QuerySet:
        rows = (
            ProductAffinity.objects.filter(extra, run__is_current=True, source__in=sources)
            .exclude(target__in=sources)
            .values(cs_target=F("target"))
            .annotate(cs_score=Sum("score"), cs_count=Max("co_count"))
        )
        return _shape(rows, _TAG_AFFINITY)

    return _top(build, ("-cs_score", "cs_target"), limit, ("cs_target", "target"))


def _union(querysets: list[models.QuerySet]) -> list[tuple]:
    first, *rest = querysets
    return list(first.union(*rest, all=True)) if rest else list(first)


def _split(rows: list[tuple], now: datetime) -> tuple[dict[str, list[tuple]], int]:
    """Group union rows by branch, drop links outside their window, find the cache lifetime."""
    groups: dict[str, list[tuple]] = {_TAG_CURATED: [], _TAG_AFFINITY: [], _TAG_BEST: []}
    timeout = int(app_settings.CACHE_TIMEOUT)
    for row in rows:
        tag, _target, _score, _position, starts, ends, _count = row
        if tag == _TAG_CURATED:
            for boundary in (starts, ends):
                if boundary is not None and boundary > now:
                    timeout = min(timeout, int((boundary - now).total_seconds()) + 1)
            if starts is not None and starts > now:
                continue
        groups[tag].append(row)
    groups[_TAG_CURATED].sort(key=lambda row: (row[3] or 0,))
    groups[_TAG_AFFINITY].sort(key=lambda row: -(row[2] or 0.0))
    groups[_TAG_BEST].sort(key=lambda row: -(row[2] or 0.0))
    return groups, max(timeout, 1)


def _fetch(ids: list[Any], *, customer: Any, include: Any = None) -> dict[Any, Any]:
    """Candidate products in one query, keyed by primary key (``include`` skips the filters)."""
    wanted = Q(pk__in=ids) & _available()
    if customer is not None:
        wanted &= ~Q(pk__in=_purchased(customer))
    if include is not None:
        wanted |= Q(pk=include)
    return {product.pk: product for product in _products().filter(wanted).order_by()}


# --- reasons ---------------------------------------------------------------------------------


def _reason(tag: str, count: int | None, *, by_category: bool) -> str:
    if tag == _TAG_CURATED:
        return gettext("Recommended by our staff")
    if tag == _TAG_AFFINITY:
        if count:
            return ngettext(
                "%(count)d person bought these together",
                "%(count)d people bought these together",
                count,
            ) % {"count": count}
        return gettext("Often bought together")
    if by_category:
        return gettext("Popular in this category")
    return gettext("Popular in our shop")


def _assemble(
    ordered: list[tuple[str, tuple]],
    products: dict[Any, Any],
    *,
    exclude: set[Any],
    limit: int,
    by_category: bool,
) -> list[Recommendation]:
    source_names = {_TAG_CURATED: CURATED, _TAG_AFFINITY: BOUGHT_TOGETHER, _TAG_BEST: FALLBACK}
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


def _normalise_ids(rows: Iterable[tuple]) -> list[tuple]:
    """Union results may carry keys as strings (UUIDs on SQLite): match the model's type."""
    to_python = get_product_model()._meta.pk.to_python
    return [(row[0], to_python(row[1]), *row[2:]) for row in rows]


# --- public API ------------------------------------------------------------------------------


def _cached(key: str, compute: Callable[[], tuple[Any, int]]) -> tuple[Any, float]:
    """``(value, expires_at)`` from the cache, or from ``compute() -> (value, timeout)``.

    The expiry travels with the value so a widget caching its rendered HTML never keeps it
    longer than the data it was made from (a campaign that starts in ten minutes).
    """
    hit, version = cache.get_versioned(key)
    if hit is not cache.MISSING:
        return hit
    value, timeout = compute()
    expires_at = time.time() + timeout
    cache.set_versioned(key, (value, expires_at), version, timeout)
    return value, expires_at


def widget_key(widget: str, subject: Any, **arguments: Any) -> str:
    """Cache key of a rendered widget; validates ``subject`` like the services do.

    ``subject`` is a product (or key), or an iterable of them for cart widgets; every other
    argument that changes the markup (limit, title, template, user) goes in ``arguments``.
    """
    if isinstance(subject, str | bytes | int | uuid.UUID | models.Model) or subject is None:
        subject_key: Any = product_key(subject)
    else:
        subject_key = sorted(map(str, _product_keys(subject)))
    user = arguments.pop("user", None)
    return _key("widget", widget, subject_key, _customer(user), sorted(arguments.items()))


def recommend_for_product(
    product: Any, *, kind: str | None = None, limit: int | None = None, user: Any = None
) -> list[Recommendation]:
    """Products to show next to ``product``: curated, then computed, then bestsellers.

    ``kind`` restricts the curated part to ``"cross_sell"`` or ``"related"`` links; ``None``
    takes both. Raises ``ValueError`` for bad arguments; the widgets turn that into an empty
    widget and a logged warning.
    """
    return recommend_for_product_with_expiry(product, kind=kind, limit=limit, user=user)[0]


def recommend_for_product_with_expiry(
    product: Any, *, kind: str | None = None, limit: int | None = None, user: Any = None
) -> tuple[list[Recommendation], float]:
    """:func:`recommend_for_product` and the ``time.time()`` until which it holds."""
    pk = product_key(product)
    kinds, limit, customer = _kinds(kind), _limit(limit), _customer(user)

    def compute() -> tuple[list[Recommendation], int]:
        results, timeout = _compute_for_product(product, pk, kinds, limit, customer)
        if customer is not None:
            timeout = min(timeout, PERSONAL_TIMEOUT)
        return results, timeout

    return _cached(_key("product", pk, kinds, limit, customer), compute)


def _compute_for_product(
    product: Any, pk: Any, kinds: tuple[str, ...], limit: int, customer: Any
) -> tuple[list[Recommendation], int]:
    now = timezone.now()
    category_field = app_settings.CATEGORY_FIELD
    attname = _category_attname()
    category_known = not category_field or (
        attname is not None and isinstance(product, models.Model)
    )
    category = getattr(product, attname) if category_field and category_known else None

    querysets = [
        _curated_queryset([pk], kinds, now),
        _affinity_queryset(pk, max(limit * 3, limit + 10)),
    ]
    bestsellers: list[tuple] | None = None
    best_version = 0
    if app_settings.FALLBACK == "bestsellers":
        if category_known:
            hit, best_version = cache.get_versioned(_key("bestsellers", category))
            bestsellers = None if hit is cache.MISSING else hit
        if bestsellers is None:
            querysets.append(_bestseller_queryset(category, known=category_known, source_pk=pk))

    rows = _normalise_ids(_union(querysets))
    groups, timeout = _split(rows, now)
    if bestsellers is not None:
        groups[_TAG_BEST] = bestsellers
    ids = [row[1] for group in groups.values() for row in group]
    products = _fetch(ids, customer=customer, include=pk)

    source = products.pop(pk, None)
    if source is None:
        # The product was deleted (or never existed): nothing sensible to recommend.
        return [], timeout
    if app_settings.FALLBACK == "bestsellers" and bestsellers is None:
        if not category_known and attname is not None:
            category_known, category = True, getattr(source, attname)
            best_version = cache.current_version()
        if category_known:
            cache.set_versioned(_key("bestsellers", category), groups[_TAG_BEST], best_version)

    ordered = [
        (tag, row) for tag in (_TAG_CURATED, _TAG_AFFINITY, _TAG_BEST) for row in groups[tag]
    ]
    by_category = bool(category_field) and (category is not None or not category_known)
    results = _assemble(ordered, products, exclude={pk}, limit=limit, by_category=by_category)
    return results, timeout


def recommend_for_cart(
    products: Iterable[Any], *, limit: int | None = None, user: Any = None
) -> list[Recommendation]:
    """Products bought together with the cart's contents, never one already in the cart.

    Staff ``cross_sell`` links of the cart's products come first, then the current run's
    partners with their scores summed over the cart. Two queries at most, whatever the cart
    size; no bestseller fallback (the widget promises "bought together").
    """
    return recommend_for_cart_with_expiry(products, limit=limit, user=user)[0]


def recommend_for_cart_with_expiry(
    products: Iterable[Any], *, limit: int | None = None, user: Any = None
) -> tuple[list[Recommendation], float]:
    """:func:`recommend_for_cart` and the ``time.time()`` until which it holds."""
    pks = _product_keys(products)
    limit, customer = _limit(limit), _customer(user)
    if not pks:
        return [], time.time() + int(app_settings.CACHE_TIMEOUT)

    def compute() -> tuple[list[Recommendation], int]:
        now = timezone.now()
        rows = _normalise_ids(
            _union(
                [
                    _curated_queryset(pks, (ProductRelation.Kind.CROSS_SELL.value,), now),
                    _cart_affinity_queryset(pks, max(limit * 3, limit + 10)),
                ]
            )
        )
        groups, timeout = _split(rows, now)
        in_cart = set(pks)
        ids = [row[1] for group in groups.values() for row in group if row[1] not in in_cart]
        found = _fetch(ids, customer=customer) if ids else {}
        ordered = [(tag, row) for tag in (_TAG_CURATED, _TAG_AFFINITY) for row in groups[tag]]
        results = _assemble(ordered, found, exclude=in_cart, limit=limit, by_category=False)
        if customer is not None:
            timeout = min(timeout, PERSONAL_TIMEOUT)
        return results, timeout

    return _cached(_key("cart", sorted(map(str, pks)), limit, customer), compute)


# --- tier ladders ----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _formatter(path: str) -> Any:
    return import_string(path)


def format_price(amount: Any) -> str:
    """Format a price with the host's ``PRICE_FORMATTER``."""
    return _formatter(app_settings.PRICE_FORMATTER)(amount)


def _price(product: Any) -> Decimal | None:
    value = getattr(product, app_settings.PRICE_FIELD, None)
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def tier_offers(product: Any) -> dict[str, TierOffer | None]:
    """``{"upgrade": ..., "downgrade": ...}`` for ``product`` from the active tier ladders.

    One query reads every step of the ladders holding the product (available products only,
    plus the product itself for its price). An upgrade is the next available tier up and is
    offered only when it costs at most ``UPGRADE_MAX_PRICE_RATIO`` times the current price; a
    downgrade is the next available cheaper tier down. Ladders are tried in name order.
    """
    return tier_offers_with_expiry(product)[0]


def tier_offers_with_expiry(product: Any) -> tuple[dict[str, TierOffer | None], float]:
    """:func:`tier_offers` and the ``time.time()`` until which they hold."""
    pk = product_key(product)
    return _cached(_key("tiers", pk), lambda: (_compute_tiers(pk), app_settings.CACHE_TIMEOUT))


def _compute_tiers(pk: Any) -> dict[str, TierOffer | None]:
    ladders = TierLadder.objects.filter(is_active=True, steps__product=pk).values("pk")
    steps = list(
        TierStep.objects.filter(ladder__in=ladders)
        .filter(Q(product=pk) | Q(product__in=_products().filter(_available()).values("pk")))
        .select_related("ladder", "product")
        .order_by("ladder__name", "ladder_id", "rank")
    )
    offers: dict[str, TierOffer | None] = {UPGRADE: None, DOWNGRADE: None}
    by_ladder: dict[Any, list[TierStep]] = {}
    for step in steps:
        by_ladder.setdefault(step.ladder_id, []).append(step)
    for ladder_steps in by_ladder.values():
        own = next((step for step in ladder_steps if step.product_id == pk), None)
        current = _price(own.product) if own is not None else None
        if own is None or current is None:
            continue
        if offers[UPGRADE] is None:
            offers[UPGRADE] = _upgrade(own, ladder_steps, current)
        if offers[DOWNGRADE] is None:
            offers[DOWNGRADE] = _downgrade(own, ladder_steps, current)
    return offers


def _offer(step: TierStep, current: Decimal, price: Decimal, direction: str) -> TierOffer:
    label = step.label or str(step.product)
    difference = price - current if direction == UPGRADE else current - price
    if direction == UPGRADE:
        reason = gettext("Upgrade to %(label)s for %(difference)s more") % {
            "label": label,
            "difference": format_price(difference),
        }
    else:
        reason = gettext("Save %(difference)s with %(label)s") % {
            "label": label,
            "difference": format_price(difference),
        }
    return TierOffer(
        product=step.product,
        label=label,
        pitch=step.pitch,
        rank=step.rank,
        ladder=step.ladder.name,
        ladder_slug=step.ladder.slug,
        price=price,
        current_price=current,
        price_difference=difference,
        direction=direction,
        reason=reason,
    )


def _upgrade(own: TierStep, steps: list[TierStep], current: Decimal) -> TierOffer | None:
    above = [step for step in steps if step.rank > own.rank]
    if not above or current <= 0:
        return None  # top tier, or no price to compare with
    step = above[0]
    price = _price(step.product)
    ratio = Decimal(str(app_settings.UPGRADE_MAX_PRICE_RATIO))
    if price is None or price <= current or price > current * ratio:
        return None
    return _offer(step, current, price, UPGRADE)


def _downgrade(own: TierStep, steps: list[TierStep], current: Decimal) -> TierOffer | None:
    for step in reversed([step for step in steps if step.rank < own.rank]):
        price = _price(step.product)
        if price is not None and price < current:
            return _offer(step, current, price, DOWNGRADE)
    return None


def upgrade_for(product: Any) -> TierOffer | None:
    """The next tier up for ``product``, or None (top tier, too expensive, no ladder)."""
    return tier_offers(product)[UPGRADE]


def downgrade_for(product: Any) -> TierOffer | None:
    """A cheaper tier below ``product`` for a hesitating customer, or None."""
    return tier_offers(product)[DOWNGRADE]
