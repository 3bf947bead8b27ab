"""The host adapter for django-oscar: ``CROSSSELL = {"ADAPTER": "...OscarAdapter"}``.

Oscar keeps prices and stock in stock records behind a per-request *strategy*, sells
variants as child products of a parent that customers browse, and has its own basket and
order models. This adapter answers the app's questions in Oscar's terms:

* **prices** come from the strategy (``request.strategy`` when there is a request,
  otherwise a strategy from Oscar's ``Selector``), incl. tax when the strategy knows the tax.
  The stock records, product classes, public children and images are prefetched for all
  products at once, so a widget's cards cost the same few queries whatever their number;
* **availability** is Oscar's default ``StockRequired`` rule in SQL: a stock record with a
  price and ``num_in_stock > coalesce(num_allocated, 0)``, or a product class that does not
  track stock; a parent is available when one of its public children is;
* **variants**: order lines, baskets, exclusions and bundle matching count a child as its
  parent (``canonical_ids``), answered from the instance's ``parent_id`` without a query;
* **baskets**: Oscar's ``Basket`` (or its lines) is a cart for every cart tag and for
  ``bundles.evaluate``, at the unit prices Oscar charges;
* **settings**: :meth:`OscarAdapter.default_settings` supplies the order source, currency,
  price format and category field, so ``CROSSSELL`` needs only the adapter line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Exists, F, OuterRef, Prefetch, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from oscar.core.loading import get_class, get_model

from django_crosssell.adapter import CartLine, CrossSellAdapter
from django_crosssell.conf import app_settings

from . import orders


def currency_decimals(currency: str | None = None) -> int:
    """Digits after the decimal point of Oscar's currency (GBP 2, JPY 0), from Babel."""
    from babel.numbers import get_currency_precision

    code = currency or str(getattr(settings, "OSCAR_DEFAULT_CURRENCY", "GBP"))
    return int(get_currency_precision(code))


def strategy_for(request: HttpRequest | None = None) -> Any:
    """The request's strategy (set by Oscar's ``BasketMiddleware``), or the Selector's."""
    strategy = getattr(request, "strategy", None)
    if strategy is not None:
        return strategy
    selector = get_class("partner.strategy", "Selector")()
    user = getattr(request, "user", None)
    return selector.strategy(request=request, user=user)


def amount(price: Any) -> Decimal | None:
    """The amount a customer pays for an Oscar price: incl. tax when the tax is known."""
    if not getattr(price, "exists", False):
        return None
    return price.incl_tax if price.is_tax_known else price.excl_tax


class OscarAdapter(CrossSellAdapter):
    """django-crosssell's questions answered from django-oscar's catalogue, strategy and orders.

    Subclass it to change one answer: :meth:`cancelled_statuses` for a status pipeline with
    other names, :meth:`available` for a strategy whose availability policy is not Oscar's
    ``StockRequired``.
    """

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        """Oscar's order lines, currency and price format; the host's ``CROSSSELL`` wins."""
        return {
            "ORDER_LINE_MODEL": "order.Line",
            "ORDER_LINE_FIELDS": {
                "placed_at": "order__date_placed",
                "customer": "order__user_id",
                "unit_price": "unit_price_incl_tax",
            },
            # Oscar's lines through orders.order_source: variants as their parent and
            # cancelled orders left out, which ORDER_FILTER (a dict) cannot say.
            "ORDER_SOURCE": orders.ORDER_SOURCE,
            "CATEGORY_FIELD": "categories",
            # Content neighbours (cold start) compare Oscar's product titles.
            "SIMILAR_TEXT_FIELDS": ["title"],
            "PRICE_FIELD": None,
            "CURRENCY_DECIMALS": currency_decimals(),
            "PRICE_FORMATTER": "oscar.templatetags.currency_filters.currency",
        }

    # --- the catalogue ---------------------------------------------------------------------

    def products(self) -> models.QuerySet:
        """Products with their class (Oscar's strategy reads it) and images (cards show the
        primary one): one query for the images of all, none per card."""
        return (
            super()
            .products()
            .select_related("product_class", "parent__product_class")
            .prefetch_related("images")
        )

    def available(self, queryset: models.QuerySet, request: HttpRequest | None = None) -> Any:
        """Public products Oscar's ``StockRequired`` policy lets a customer buy, in SQL."""
        StockRecord = get_model("partner", "StockRecord")
        Product = get_model("catalogue", "Product")
        buyable = StockRecord.objects.filter(price__isnull=False).filter(
            Q(num_in_stock__gt=Coalesce(F("num_allocated"), 0))
            | Q(product__product_class__track_stock=False)
            | Q(product__parent__product_class__track_stock=False)
        )
        own = Exists(buyable.filter(product=OuterRef("pk")))
        child = Exists(
            Product.objects.filter(
                parent=OuterRef("pk"),
                is_public=True,
                pk__in=buyable.values("product_id"),
            )
        )
        return queryset.filter(own | child, is_public=True)

    def prices(
        self, products: Iterable[models.Model], request: HttpRequest | None = None
    ) -> dict[Any, Decimal]:
        """``{pk: price}`` from Oscar's strategy; a parent costs what the strategy says
        (by default its first child's price, Oscar's "from" price).

        Prefetches, in bulk and only where missing, what the strategy reads from these
        instances (:meth:`prefetch`), so no product costs a query of its own.
        """
        oscar_products: list[Any] = [product for product in products if product.pk is not None]
        if not oscar_products:
            return {}
        self.prefetch(oscar_products)
        strategy = strategy_for(request)
        found: dict[Any, Decimal] = {}
        for product in oscar_products:
            if product.is_parent:
                info = strategy.fetch_for_parent(product)
            else:
                info = strategy.fetch_for_product(product)
            value = amount(info.price)
            if value is not None:
                found[product.pk] = value
        return found

    def prefetch(self, products: list[Any]) -> None:
        """Load what Oscar's strategy reads, one query per relation for all products, and
        nothing for what is loaded already: product classes and stock records; public
        children (with their stock records) of parents only; a variant's parent's class.
        """
        Product = get_model("catalogue", "Product")
        models.prefetch_related_objects(products, "product_class", "stockrecords")
        parents = [product for product in products if product.is_parent]
        if parents:
            children = Product.objects.public().prefetch_related("stockrecords")
            models.prefetch_related_objects(
                parents,
                Prefetch("children", queryset=children, to_attr="_prefetched_public_children"),
            )
        variants = [product for product in products if product.parent_id]
        if variants:
            models.prefetch_related_objects(variants, "parent__product_class")

    def price_column(self) -> None:
        """Prices live in stock records behind the strategy, never in a product column."""
        return None

    def canonical(self, product: Any) -> Any:
        """A child product's parent (the product customers browse); itself otherwise."""
        return product.parent if product.parent_id else product

    def canonical_ids(self, products: Iterable[Any]) -> dict[Any, Any]:
        """``{key: parent key or key}``: instances from ``parent_id``, keys in one query."""
        Product = get_model("catalogue", "Product")
        result: dict[Any, Any] = {}
        keys: list[Any] = []
        for product in products:
            if isinstance(product, Product):
                result[product.pk] = product.parent_id or product.pk
            else:
                keys.append(product)
        if keys:
            parents = dict(
                Product._default_manager.filter(pk__in=keys, parent__isnull=False).values_list(
                    "pk", "parent_id"
                )
            )
            result.update({key: parents.get(key, key) for key in keys})
        return result

    def image_url(self, product: Any) -> str:
        """The URL of Oscar's primary image (a child without images shows its parent's).

        No query for products from :meth:`products` (images prefetched); one for others.
        """
        image = product.primary_image()
        if isinstance(image, dict):  # Oscar's placeholder for a product without images
            return ""
        try:
            return str(image.original.url)
        except ValueError:  # an image row without a file
            return ""

    def add_to_cart_url(self, product: Any) -> str:
        """Oscar's ``basket:add`` URL; "" for a parent, which needs a variant chosen first."""
        if product.is_parent:
            return ""
        try:
            return reverse("basket:add", kwargs={"pk": product.pk})
        except NoReverseMatch:  # Oscar's URLs are not included
            return ""

    # --- customers and carts -------------------------------------------------------------

    def cart_lines(self, cart: Any, request: HttpRequest | None = None) -> list[CartLine]:
        """Oscar's basket or basket lines at the unit prices Oscar charges; other carts as
        the default adapter reads them.

        A line's unit price is its purchase info's price incl. tax (excl. tax when the
        strategy does not know the tax), from the basket's strategy or, for a basket
        without one, the request's. Lines Oscar cannot price (no stock record any more)
        fall back to the price stored when they were added; without one they are left out.
        """
        lines = self.oscar_lines(cart, request)
        if lines is None:
            return super().cart_lines(cart, request)
        strategy = None
        found = []
        for line in lines:
            if line.basket.has_strategy:
                info = line.purchase_info
            else:
                strategy = strategy or strategy_for(request)
                info = strategy.fetch_for_line(line, line.stockrecord)
            unit_price = amount(info.price)
            if unit_price is None:
                unit_price = line.price_incl_tax or line.price_excl_tax
            if unit_price is None:
                continue
            found.append(CartLine(line.product, line.quantity, unit_price))
        return found

    def oscar_lines(self, cart: Any, request: HttpRequest | None = None) -> list[Any] | None:
        """Oscar's basket lines in ``cart`` (a basket, its lines, a list of lines), or None.

        A basket without a strategy (loaded outside a request) gets the request's, so its
        lines are priced the way the basket page prices them.
        """
        Basket = get_model("basket", "Basket")
        BasketLine = get_model("basket", "Line")
        if isinstance(cart, Basket):
            if not cart.has_strategy:
                cart.strategy = strategy_for(request)
            return list(cart.all_lines())
        if isinstance(cart, models.Manager | models.QuerySet) and cart.model is BasketLine:
            return list(cart.all().select_related("basket", "product", "stockrecord"))
        if (
            isinstance(cart, list | tuple)
            and cart
            and all(isinstance(line, BasketLine) for line in cart)
        ):
            return list(cart)
        return None

    def cart_product_ids(self, cart: Any) -> list[Any]:
        """Distinct canonical keys of a cart; Oscar's lines and product instances answer
        from their ``parent_id`` (no query, so a warm basket widget stays at zero)."""
        lines = self.oscar_lines(cart)
        Product = get_model("catalogue", "Product")
        if lines is not None:
            products: list[Any] = [line.product for line in lines]
        elif isinstance(cart, list | tuple) and all(isinstance(p, Product) for p in cart):
            products = list(cart)
        else:
            return super().cart_product_ids(cart)
        canonical = self.canonical_ids(products)
        return list(dict.fromkeys(canonical[product.pk] for product in products))

    def purchased_product_ids(self, customer: Any) -> models.QuerySet | None:
        """Canonical ids of what ``customer`` bought, cancelled orders left out."""
        if customer is None:
            return None
        return orders.purchased(customer, self.cancelled_statuses())

    # --- orders ----------------------------------------------------------------------------

    def cancelled_statuses(self) -> set[str]:
        """Order statuses whose lines never count; see :func:`.orders.cancelled_statuses`."""
        return orders.cancelled_statuses()

    def order_lines(
        self, *, since: datetime | None, with_placed_at: bool, chunk_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Chunks of Oscar's order lines (see :mod:`.orders`), unless ``ORDER_SOURCE`` names
        another source."""
        if app_settings.ORDER_SOURCE != orders.ORDER_SOURCE:
            return super().order_lines(
                since=since, with_placed_at=with_placed_at, chunk_size=chunk_size
            )
        return orders.chunks(
            orders.order_source(since=since, with_placed_at=with_placed_at, chunk_size=chunk_size),
            chunk_size,
        )

    def customer_order_lines(
        self, *, since: datetime | None, chunk_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Oscar's counted lines of registered customers for the customer snapshot
        (variants as their parent, cancelled orders left out)."""
        if app_settings.ORDER_SOURCE != orders.ORDER_SOURCE:
            return super().customer_order_lines(since=since, chunk_size=chunk_size)
        return orders.customer_lines(since=since, chunk_size=chunk_size)

    # --- configuration and caching -------------------------------------------------------

    def settings_used(self) -> tuple[str, ...]:
        """Prices and availability come from Oscar, images from Oscar's primary image."""
        return ("CATEGORY_FIELD",)

    def invalidation_models(self) -> list[type[models.Model]]:
        """Product images, categories and classes (track_stock decides availability).

        Stock records are watched by :mod:`.signals` instead, which invalidates only when a
        record's price or availability changes: Oscar saves a stock record on every sale.
        """
        return [
            get_model("catalogue", "ProductImage"),
            get_model("catalogue", "ProductCategory"),
            get_model("catalogue", "ProductClass"),
        ]

    def cache_key(self, request: HttpRequest | None) -> str:
        """The strategy's class: shops whose Selector prices by customer group get one
        cached widget per strategy class."""
        strategy = getattr(request, "strategy", None)
        if strategy is None:
            return ""
        return f"{type(strategy).__module__}.{type(strategy).__qualname__}"
