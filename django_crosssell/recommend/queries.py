"""The recommendation queries: candidate rows in one ``UNION ALL``, products in one more.

Budget: a product or cart recommendation costs at most two SQL queries with a cold cache and
none with a warm one, whatever the cart size.

1. One ``UNION ALL`` query collects every candidate id with its ranking data: the curated
   links (with their campaign windows, so the cache can expire when one starts or ends), the
   current run's computed partners, and, when the cache does not already hold them, the
   bestsellers used as fallback.
2. One query fetches the candidate products through the adapter's availability rule (and
   the "already bought" exclusion), together with the source product to notice a deleted one.

Every branch has the same columns (:data:`COLUMNS`); ranking and deduplication happen in
the service, in Python, on a few dozen rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, models
from django.db.models import Count, F, Max, Q, Sum, Value
from django.db.models.functions import Cast
from django.utils import timezone

from ..adapter import get_adapter
from ..conf import app_settings, get_order_line_model, get_product_model
from ..models import ProductAffinity, ProductRelation, ProductSales, ProductSimilarity

#: At most this many curated links are read per source product.
MAX_CURATED = 100

TAG_CURATED, TAG_AFFINITY, TAG_SIMILAR, TAG_BEST = "c", "a", "s", "b"
COLUMNS = (
    "cs_tag",
    "cs_target",
    "cs_score",
    "cs_position",
    "cs_starts",
    "cs_ends",
    "cs_count",
    "cs_audience",
)
Row = tuple[Any, ...]

_NULLS = {
    "cs_position": models.IntegerField,
    "cs_starts": models.DateTimeField,
    "cs_ends": models.DateTimeField,
    "cs_count": models.IntegerField,
    "cs_audience": models.IntegerField,
}


def _top(
    build: Callable[[Q], models.QuerySet], order: tuple[str, ...], limit: int, key: tuple[str, str]
) -> models.QuerySet:
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


def _shape(queryset: models.QuerySet, tag: str, **columns: Any) -> models.QuerySet:
    """Give every branch of the union the same columns in the same order.

    ``columns`` maps column names to expressions; a name already annotated on ``queryset``
    (aggregates) is left alone, any other missing column becomes a typed NULL.
    """
    existing = set(queryset.query.annotations)
    annotations: dict[str, Any] = {"cs_tag": Value(tag)}
    for name in COLUMNS[1:]:
        if name in columns:
            annotations[name] = columns[name]
        elif name not in existing:
            annotations[name] = Value(None, output_field=_NULLS[name]())
    return queryset.annotate(**annotations).values_list(*COLUMNS)


def curated(sources: list[Any], kinds: tuple[str, ...], now: datetime) -> models.QuerySet:
    """Staff links from ``sources``, including ones that start later (they bound the cache)."""

    def build(extra: Q) -> models.QuerySet:
        rows = ProductRelation.objects.filter(
            extra,
            Q(ends_at__isnull=True) | Q(ends_at__gt=now),
            source__in=sources,
            kind__in=kinds,
            is_active=True,
        )
        return _shape(
            rows,
            TAG_CURATED,
            cs_target=F("target"),
            cs_score=Value(1.0, output_field=models.FloatField()),
            cs_position=F("position"),
            cs_starts=F("starts_at"),
            cs_ends=F("ends_at"),
            cs_audience=F("audience"),
        )

    return _top(build, ("position", "pk"), MAX_CURATED, ("pk", "pk"))


def partners(source: Any, limit: int) -> models.QuerySet:
    """The current run's computed partners of one product."""

    def build(extra: Q) -> models.QuerySet:
        rows = ProductAffinity.objects.filter(extra, run__is_current=True, source=source)
        return _shape(
            rows, TAG_AFFINITY, cs_target=F("target"), cs_score=F("score"), cs_count=F("co_count")
        )

    return _top(build, ("-score", "target_id"), limit, ("pk", "pk"))


def similar(source: Any, limit: int) -> models.QuerySet:
    """The current run's content neighbours of one product (products without partners)."""

    def build(extra: Q) -> models.QuerySet:
        rows = ProductSimilarity.objects.filter(extra, run__is_current=True, source=source)
        return _shape(rows, TAG_SIMILAR, cs_target=F("target"), cs_score=F("score"))

    return _top(build, ("-score", "target_id"), limit, ("pk", "pk"))


def cart_partners(sources: list[Any], limit: int) -> models.QuerySet:
    """The current run's partners of a cart, scores summed, the cart's own items left out."""

    def build(extra: Q) -> models.QuerySet:
        rows = (
            ProductAffinity.objects.filter(extra, run__is_current=True, source__in=sources)
            .exclude(target__in=sources)
            .values(cs_target=F("target"))
            .annotate(cs_score=Sum("score"), cs_count=Max("co_count"))
        )
        return _shape(rows, TAG_AFFINITY)

    return _top(build, ("-cs_score", "cs_target"), limit, ("cs_target", "target"))


def _category_members(category_ids: tuple[Any, ...] | None, source_pk: Any) -> Any:
    """Keys of the products sharing a category, or None when categories are not used.

    ``category_ids`` None means "the source product's categories", read in a subquery: a
    foreign key and a many-to-many field both list their category ids through ``values()``.
    """
    field = get_adapter().category_field()
    if field is None:
        return None
    products = get_adapter().products()
    if category_ids is None:
        ids: Any = products.filter(pk=source_pk).values(field.name)
    else:
        ids = list(category_ids)
    return products.filter(**{f"{field.name}__in": ids}).values("pk")


def bestsellers(
    category_ids: tuple[Any, ...] | None, source_pk: Any, *, shop_wide: bool = False
) -> models.QuerySet:
    """Top sellers (distinct orders), of the source's categories when categories are used
    (of the whole shop with ``shop_wide``: personal recommendations).

    ``BESTSELLERS_SOURCE = "run"`` (the default) reads each product's order count stored
    with the current affinity run: the top rows of one index, however many order lines the
    window holds. ``"order_lines"`` aggregates the order lines of the lookback window
    instead (the behaviour before the counts were stored; a custom ``ORDER_SOURCE`` then
    falls back to the run's summed co-purchase counts).
    """
    in_category = None if shop_wide else _category_members(category_ids, source_pk)
    limit = int(app_settings.MAX_LIMIT) * 3
    if app_settings.BESTSELLERS_SOURCE != "order_lines":
        return run_bestsellers(in_category, limit)
    line_model = get_order_line_model()
    if line_model is not None and not app_settings.ORDER_SOURCE:
        fields = app_settings.ORDER_LINE_FIELDS
        product_path = fields["product"]
        since = timezone.now() - timedelta(days=app_settings.LOOKBACK_DAYS or 0)

        def build(extra: Q) -> models.QuerySet:
            lines = line_model._default_manager.filter(**(app_settings.ORDER_FILTER or {}))
            lines = lines.filter(extra, **{f"{product_path}__isnull": False})
            if fields.get("placed_at") and app_settings.LOOKBACK_DAYS:
                lines = lines.filter(**{f"{fields['placed_at']}__gte": since})
            if in_category is not None:
                lines = lines.filter(**{f"{product_path}__in": in_category})
            rows = lines.values(cs_target=F(product_path)).annotate(
                cs_score=Cast(Count(fields["order"], distinct=True), models.FloatField())
            )
            return _shape(rows, TAG_BEST)

        return _top(build, ("-cs_score", "cs_target"), limit, ("cs_target", product_path))

    def build_from_run(extra: Q) -> models.QuerySet:
        rows = ProductAffinity.objects.filter(extra, run__is_current=True)
        if in_category is not None:
            rows = rows.filter(target__in=in_category)
        totals = rows.values(cs_target=F("target")).annotate(
            cs_score=Cast(Sum("co_count"), models.FloatField())
        )
        return _shape(totals, TAG_BEST)

    return _top(build_from_run, ("-cs_score", "cs_target"), limit, ("cs_target", "target"))


def run_bestsellers(in_category: Any, limit: int) -> models.QuerySet:
    """The current run's best sellers (``in_category``: product keys or a subquery, or None)."""

    def build(extra: Q) -> models.QuerySet:
        rows = ProductSales.objects.filter(extra, run__is_current=True)
        if in_category is not None:
            rows = rows.filter(product__in=in_category)
        return _shape(
            rows,
            TAG_BEST,
            cs_target=F("product"),
            cs_score=Cast(F("orders"), models.FloatField()),
            cs_count=F("orders"),
        )

    return _top(build, ("-orders", "product_id"), limit, ("pk", "pk"))


def bestseller_ids(
    category_ids: Iterable[Any] | None = None, limit: int | None = None
) -> list[Any]:
    """Keys of the current run's best sellers, best first, in one small query.

    ``category_ids`` restricts them to products of those categories (the adapter's
    category field; ignored when the shop has none); None means the whole shop. Products
    are not filtered by availability here: the caller fetches them through the adapter.
    """
    limit = int(app_settings.MAX_LIMIT) * 3 if limit is None else int(limit)
    in_category = None
    field = get_adapter().category_field()
    if category_ids is not None and field is not None:
        members = get_adapter().products().filter(**{f"{field.name}__in": list(category_ids)})
        in_category = members.values("pk")
    rows = ProductSales.objects.filter(run__is_current=True)
    if in_category is not None:
        rows = rows.filter(product__in=in_category)
    ids = rows.order_by("-orders", "product_id").values_list("product_id", flat=True)[:limit]
    to_python = get_product_model()._meta.pk.to_python
    return [to_python(pk) for pk in ids]


def union(querysets: list[models.QuerySet]) -> list[Row]:
    """Run the branches as one query; keys normalised to the product key's Python type."""
    first, *rest = querysets
    rows = list(first.union(*rest, all=True)) if rest else list(first)
    # Union results may carry keys as strings (UUIDs on SQLite).
    to_python = get_product_model()._meta.pk.to_python
    return [(row[0], to_python(row[1]), *row[2:]) for row in rows]


def split(
    rows: Iterable[Row], now: datetime, resolve: Callable[[], tuple[int, ...]] | None = None
) -> tuple[dict[str, list[Row]], int]:
    """Group union rows by branch, drop links outside their window, find the cache lifetime.

    A link restricted to an audience stays only when ``resolve()`` (the visitor's audiences,
    looked up only when such a link turns up) includes it; without ``resolve`` it goes.
    """
    groups: dict[str, list[Row]] = {
        TAG_CURATED: [],
        TAG_AFFINITY: [],
        TAG_SIMILAR: [],
        TAG_BEST: [],
    }
    timeout = int(app_settings.CACHE_TIMEOUT)
    for row in rows:
        tag, _target, _score, _position, starts, ends, _count, audience = row
        if tag == TAG_CURATED:
            for boundary in (starts, ends):
                if boundary is not None and boundary > now:
                    timeout = min(timeout, int((boundary - now).total_seconds()) + 1)
            if starts is not None and starts > now:
                continue
            if audience is not None and (resolve is None or audience not in resolve()):
                continue
        groups[tag].append(row)
    groups[TAG_CURATED].sort(key=lambda row: (row[3] or 0,))
    groups[TAG_AFFINITY].sort(key=lambda row: -(row[2] or 0.0))
    groups[TAG_SIMILAR].sort(key=lambda row: -(row[2] or 0.0))
    groups[TAG_BEST].sort(key=lambda row: -(row[2] or 0.0))
    return groups, max(timeout, 1)


def bought_again(adapter: Any) -> models.QuerySet:
    """Products customers buy again: those in a category (``CATEGORY_FIELD``) where some
    product has an active replenishment profile (coffee beans, filters), or, without
    categories, those with a profile themselves. A subquery, no query of its own.

    With ``EXCLUDE_PURCHASED = "auto"`` these stay recommendable after a purchase, while a
    coffee maker the customer owns is hidden: the per-category default the profiles, learned
    from the orders (``learn_replenishment``) or set by staff, make possible.
    """
    consumables = adapter.products().filter(crosssell_replenishment__is_active=True)
    field = adapter.category_field()
    if field is None or field.many_to_many:
        return consumables.values("pk")
    return (
        adapter.products()
        .filter(**{f"{field.name}__in": consumables.values(field.attname)})
        .values("pk")
    )


def fetch_products(ids: list[Any], *, customer: Any, include: Any = None) -> dict[Any, Any]:
    """Available candidates in one query, keyed by primary key.

    ``customer`` leaves out what they bought; ``include`` (the source product) is fetched
    whatever its availability, to tell a deleted source from an unavailable one.
    """
    adapter = get_adapter()
    wanted = adapter.available(adapter.products().filter(pk__in=ids))
    if customer is not None:
        purchased = adapter.purchased_product_ids(customer)
        if purchased is not None:
            hidden = Q(pk__in=purchased)
            if app_settings.EXCLUDE_PURCHASED == "auto":
                hidden &= ~Q(pk__in=bought_again(adapter))
            wanted = wanted.exclude(hidden)
    if include is not None:
        wanted = adapter.products().filter(Q(pk__in=wanted.values("pk")) | Q(pk=include))
    return {product.pk: product for product in wanted.order_by()}
