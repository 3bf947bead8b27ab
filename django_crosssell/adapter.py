"""The host adapter: the only place where the app asks the shop anything.

The app never owns products, prices or orders. Whatever it needs to know about them (a
price, whether a product can be bought, its image, its parent, what a cart holds, which
orders count) it asks one object, the adapter, in the spirit of django-allauth's adapters.
A shop whose prices live in stock records, price lists or a pricing service subclasses
:class:`CrossSellAdapter`, overrides the methods that differ, and names the class in
``CROSSSELL["ADAPTER"]``.

The default adapter reads today's settings (``PRICE_FIELD``, ``AVAILABLE_PRODUCTS_FILTER``,
``CATEGORY_FIELD``, ``IMAGE_FIELD``, ``ORDER_LINE_*``, ``ORDER_SOURCE``), so a plain Django
shop needs nothing but settings.

Every method that takes several products works in bulk: a widget asks once for all its
cards, never once per card. Methods that take a ``request`` may vary by customer (a price
list per customer group); what they return for ``request=None`` is what cached, shared
widgets show, and :meth:`CrossSellAdapter.cache_key` names what else a cached widget must
vary by.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.module_loading import import_string

from .conf import app_settings, get_order_line_model, get_product_model
from .money import to_decimal
from .products import product_key, product_queryset

DEFAULT_ADAPTER = "django_crosssell.adapter.CrossSellAdapter"


class CartLine(NamedTuple):
    """One line of the host's cart; ``product`` is a product instance or its primary key."""

    product: Any
    quantity: int
    unit_price: Decimal


class CrossSellAdapter:
    """Default adapter: a product model with a price field and an order-line model.

    Subclass it and override what differs; keep methods bulk (one query for many products)
    and side-effect free. Each method says what calls it.
    """

    @classmethod
    def default_settings(cls) -> dict[str, Any]:
        """``CROSSSELL`` values this adapter implies when the host's dict leaves them out.

        An adapter for a shop framework knows where its orders live, its currency and how
        it formats prices, so its hosts need only the ``ADAPTER`` line. The host's own
        ``CROSSSELL`` keys always win; ``ORDER_LINE_FIELDS`` merges key by key. Called when
        a setting is first read (and again after ``setting_changed``), never per request.
        """
        return {}

    # --- the catalogue ---------------------------------------------------------------------

    def products(self) -> models.QuerySet:
        """Every product, the base of each product query the app makes."""
        return product_queryset()

    def available(self, queryset: models.QuerySet, request: HttpRequest | None = None) -> Any:
        """``queryset`` narrowed to products a customer can buy now.

        Return anything the ORM can say: a filtered queryset with ``Q`` objects, OR-ed
        conditions, subqueries or annotations (``Coalesce``). The default applies
        ``AVAILABLE_PRODUCTS_FILTER``.
        """
        return queryset.filter(Q(**(app_settings.AVAILABLE_PRODUCTS_FILTER or {})))

    def prices(
        self, products: Iterable[models.Model], request: HttpRequest | None = None
    ) -> dict[Any, Decimal]:
        """``{pk: price}`` for products that have a price; one query at most for all.

        The default reads ``PRICE_FIELD`` from the instances (no query). Products without a
        price are left out.
        """
        field = app_settings.PRICE_FIELD
        prices: dict[Any, Decimal] = {}
        for product in products:
            value = getattr(product, field, None) if field else None
            if value is None:
                continue
            try:
                prices[product.pk] = to_decimal(value)
            except (InvalidOperation, TypeError, ValueError):
                continue
        return prices

    def price_column(self) -> str | None:
        """The product model's concrete column holding the price, if prices are a column.

        Lets queries that read product rows without building instances (bundle rules) take
        the price from the same row. Return None when prices live elsewhere; the app then
        calls :meth:`prices`.
        """
        field = app_settings.PRICE_FIELD
        if not field:
            return None
        try:
            found = get_product_model()._meta.get_field(field)
        except FieldDoesNotExist:
            return None
        if not isinstance(found, models.Field):
            return None  # a reverse relation has no column: prices come from prices()
        return found.attname

    def canonical(self, product: models.Model) -> models.Model:
        """The product customers browse for ``product`` (a variant's parent); itself here."""
        return product

    def canonical_ids(self, products: Iterable[Any]) -> dict[Any, Any]:
        """``{key: canonical key}`` for products or keys (order lines, carts, exclusions,
        bundles).

        Instances should be answered from their own fields (a ``parent_id``) without a
        query, so a widget given a product instance stays within its query budget; bare
        keys may cost one query for all. The default maps every product to itself.
        """
        keys = [
            product.pk if isinstance(product, models.Model) else product for product in products
        ]
        return {key: key for key in keys}

    def image_url(self, product: models.Model) -> str:
        """The URL of the product's image for cards, or "" (``IMAGE_FIELD``)."""
        field = app_settings.IMAGE_FIELD
        if not field:
            return ""
        value = getattr(product, field, None)
        if not value:
            return ""
        if isinstance(value, str):
            return value
        try:
            return str(value.url)
        except ValueError:  # a file field without a file
            return ""

    def url(self, product: models.Model) -> str:
        """The product page's URL (``get_absolute_url``), or ""."""
        get_url = getattr(product, "get_absolute_url", None)
        return str(get_url()) if callable(get_url) else ""

    def add_to_cart_url(self, product: models.Model) -> str:
        """Where a card's add-to-cart form posts, or "" for no button."""
        return ""

    def add_many_to_cart_url(self) -> str:
        """Where "add all of these" forms post (bought together, a bundle's set), or "".

        The form posts one ``product`` field per unit (a product's key repeated for two
        units), plus ``csrfmiddlewaretoken`` and ``next`` (the page it came from). The host
        adds every unit or, when one cannot be had, none; "" hides those buttons.
        """
        return ""

    def bundle_url(self, rule: Any) -> str:
        """A page listing the products that count towards a mix-and-match or multi-buy
        ``rule`` (see ``bundles.qualifying_products``), or "" for no link."""
        return ""

    def category_field(self) -> models.Field | None:
        """The product field ``CATEGORY_FIELD`` names (a foreign key, many-to-many or value)."""
        name = app_settings.CATEGORY_FIELD
        if not name:
            return None
        model = get_product_model()
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        if not isinstance(field, models.Field):
            raise ImproperlyConfigured(
                f"CROSSSELL['CATEGORY_FIELD'] = {name!r} is a reverse relation of "
                f"{model._meta.label}; name a field declared on the product model."
            )
        return field

    def category_ids(self, products: Iterable[models.Model]) -> dict[Any, tuple[Any, ...]]:
        """``{pk: (category id, ...)}`` for same-category fallbacks.

        A foreign key or plain field is read from the instances (no query); a many-to-many
        field costs one query for all products. Products without a category map to ().
        """
        products = list(products)
        field = self.category_field()
        if field is None:
            return {product.pk: () for product in products}
        if isinstance(field, models.ManyToManyField):
            through = field.remote_field.through
            if through is None:  # resolved (or auto-created) once the models are loaded
                raise RuntimeError(f"{field} has no through model yet: are the apps ready?")
            source = field.m2m_field_name()
            target = field.m2m_reverse_field_name()
            result: dict[Any, list[Any]] = {product.pk: [] for product in products}
            rows = (
                through._default_manager.filter(**{f"{source}__in": list(result)})
                .order_by(target)
                .values_list(source, target)
            )
            for pk, category in rows:
                result[pk].append(category)
            return {pk: tuple(ids) for pk, ids in result.items()}
        attname = field.attname
        return {
            product.pk: (() if getattr(product, attname) is None else (getattr(product, attname),))
            for product in products
        }

    def content_texts(self) -> Iterable[tuple[Any, str, Any]]:
        """``(pk, text, category)`` of every product, for content neighbours (cold start).

        The text joins the ``SIMILAR_TEXT_FIELDS`` of the product (its name by default; add
        a description field, or override this, to compare more); the category is the
        ``CATEGORY_FIELD`` value (the first one of a many-to-many field), or None. Read in
        one query, a chunk at a time.
        """
        names = list(app_settings.SIMILAR_TEXT_FIELDS)
        field = self.category_field()
        columns = ["pk", *names]
        if field is not None:
            columns.append(field.name)
        seen: set[Any] = set()
        products = self.products().select_related(None).prefetch_related(None)
        rows = products.order_by("pk").values_list(*columns)
        for row in rows.iterator(chunk_size=5_000):
            pk = row[0]
            if pk in seen:  # a many-to-many category repeats the product
                continue
            seen.add(pk)
            text = " ".join(str(value) for value in row[1 : 1 + len(names)] if value)
            yield pk, text, row[1 + len(names)] if field is not None else None

    def in_categories(self, queryset: models.QuerySet, category_ids: Iterable[Any]) -> Any:
        """``queryset`` narrowed to products in any of ``category_ids``."""
        field = self.category_field()
        ids = list(category_ids)
        if field is None:
            return queryset
        condition = Q(pk__in=self.products().filter(**{f"{field.name}__in": ids}).values("pk"))
        return queryset.filter(condition)

    # --- customers and carts -------------------------------------------------------------

    def customer_key(self, user: Any) -> Any:
        """The key order lines store for ``user`` (``ORDER_LINE_FIELDS['customer']``), or None."""
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return user.pk

    def cart_lines(self, cart: Any, request: HttpRequest | None = None) -> list[CartLine]:
        """The host's cart as :class:`CartLine` s with the host's unit prices.

        Accepts a list or queryset of lines, a related manager, or an object with lines
        (``.all_lines()``, ``.lines``); a line is a ``CartLine``, a 3-tuple, or an object
        with ``product``, ``quantity`` and ``unit_price`` (or ``price``) attributes.
        """
        lines: list[CartLine] = []
        for line in _iter_lines(cart):
            if isinstance(line, tuple):
                product, quantity, unit_price = line
            else:
                product = line.product
                quantity = line.quantity
                unit_price = getattr(line, "unit_price", None)
                if unit_price is None:
                    unit_price = getattr(line, "price", None)
            lines.append(CartLine(product, quantity, unit_price))
        return lines

    def cart_product_ids(self, cart: Any) -> list[Any]:
        """Distinct canonical keys of what a cart holds (products, keys or lines)."""
        model = get_product_model()
        keys = []
        for item in _iter_lines(cart):
            if isinstance(item, tuple):
                item = item[0]
            elif not isinstance(item, model | int | str | uuid.UUID) and hasattr(item, "product"):
                item = item.product  # the host's cart line
            keys.append(product_key(item))
        canonical = self.canonical_ids(keys)
        return list(dict.fromkeys(canonical.get(key, key) for key in keys))

    def purchased_product_ids(self, customer: Any) -> models.QuerySet | None:
        """A one-column queryset of the product ids ``customer`` bought, or None."""
        line_model = get_order_line_model()
        fields = app_settings.ORDER_LINE_FIELDS
        if line_model is None or not fields.get("customer") or app_settings.ORDER_SOURCE:
            return None
        return (
            line_model._default_manager.filter(**(app_settings.ORDER_FILTER or {}))
            .filter(**{fields["customer"]: customer})
            .values(fields["product"])
        )

    # --- orders ----------------------------------------------------------------------------

    def order_lines(
        self, *, since: datetime | None, with_placed_at: bool, chunk_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Chunks of ``(order, product[, placed_at])`` tuples for the affinity engine.

        The default reads ``ORDER_SOURCE`` when set, otherwise ``ORDER_LINE_MODEL``
        through ``ORDER_LINE_FIELDS`` and ``ORDER_FILTER``.
        """
        from .sources import iter_line_chunks

        return iter_line_chunks(since=since, with_placed_at=with_placed_at, chunk_size=chunk_size)

    # --- after the purchase (django_crosssell.followup; defaults in followup/host.py) -------

    def order_items(self, order: Any) -> list[Any]:
        """``[OrderItem(line key, product key, quantity)]`` of one order (thank-you widget,
        follow-up flows); reads ``order.lines`` when present, else ``ORDER_LINE_MODEL``.

        ``order`` is an instance, or (at send time) the key :meth:`order_key` gave.
        """
        from .followup import host

        return host.order_items(order)

    def order_key(self, order: Any) -> Any:
        """The key order lines store for ``order`` (``ORDER_LINE_FIELDS['order']``)."""
        from .followup import host

        return host.order_key(order)

    def order_customer(self, order: Any) -> Any:
        """The customer key of ``order`` (as :meth:`customer_key` gives it), or None."""
        from .followup import host

        return host.order_customer(order)

    def order_email(self, order: Any) -> str:
        """Where mail about ``order`` goes: ``order.email``, else the customer's address."""
        from .followup import host

        return host.order_email(order)

    def customer_email(self, customer: Any) -> str:
        """The e-mail address of a customer key, or "" (the user model's e-mail field)."""
        from .followup import host

        return host.customer_email(customer)

    def order_paid_at(self, order: Any) -> datetime | None:
        """When ``order`` was paid, or None when unknown (the default: its ``placed_at``)."""
        from .followup import host

        return host.order_placed_at(order)

    def order_delivered_at(self, order: Any) -> datetime | None:
        """When ``order`` was delivered, or None (the default: ``order.delivered_at``)."""
        value = getattr(order, "delivered_at", None)
        return value if isinstance(value, datetime) else None

    def order_cancelled(self, order: Any) -> bool:
        """Whether an order (instance or key) was cancelled or refunded since it was paid.

        Asked at send time. The default: its lines are gone, or none matches
        ``ORDER_FILTER`` any more. Override when refunds live elsewhere.
        """
        from .followup import host

        return host.order_cancelled(order)

    def purchase_history(
        self,
        *,
        customers: Iterable[Any] | None = None,
        products: Iterable[Any] | None = None,
        since: datetime | None = None,
    ) -> Iterator[Any]:
        """``Purchase(customer, product, order, placed_at, quantity)`` rows ordered by
        customer, product and time: replenishment intervals, "already bought again",
        subscription suggestions. Empty when order lines carry no customer."""
        from .followup import host

        return host.purchase_history(customers=customers, products=products, since=since)

    def subscription_offer(self, customer: Any, product: models.Model, interval_days: float) -> Any:
        """The subscription ("定期購入") hook: a URL (or None) where ``customer`` can
        subscribe to ``product`` every ``interval_days`` days.

        Asked only where the customer's repeat purchases of the product are regular. The app
        does not run subscriptions; the default offers none.
        """
        return None

    # --- customer analysis (django_crosssell.customers; defaults in customers/host.py) ------

    def customer_order_lines(
        self, *, since: datetime | None, chunk_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Chunks of ``(customer, order, product, placed_at, quantity, unit_price)`` rows of
        counted orders with a customer: the one read of the customer metrics snapshot.

        ``unit_price`` may be None (revenue then counts units). Empty when order lines carry
        no customer or come from ``ORDER_SOURCE`` (override this to feed the snapshot).
        """
        from .customers import host

        return host.customer_order_lines(since=since, chunk_size=chunk_size)

    def customers_who_bought(
        self, *, products: Iterable[Any] | None = None, categories: Iterable[Any] | None = None
    ) -> set[str] | None:
        """Keys (as strings) of customers who bought any of ``products`` or anything in
        ``categories`` (audiences' purchase rules), or None when orders carry no customer."""
        from .customers import host

        query = None
        if categories is not None:
            query = self.in_categories(self.products(), list(categories)).values("pk")
        return host.customers_who_bought(products=products, product_query=query)

    def product_categories(self, products: Iterable[Any] | None = None) -> dict[Any, tuple]:
        """``{product key: (category id, ...)}`` for product keys (every product when None),
        in one query without instances; {} without ``CATEGORY_FIELD``."""
        from .customers import host

        queryset = self.products()
        if products is not None:
            queryset = queryset.filter(pk__in=list(products))
        return host.product_categories(self.category_field(), queryset)

    # --- configuration ---------------------------------------------------------------------

    def settings_used(self) -> tuple[str, ...]:
        """The ``CROSSSELL`` keys this adapter reads, which the system checks validate.

        A subclass that takes prices or availability from elsewhere drops those keys, so
        ``check`` does not report a ``PRICE_FIELD`` its shop does not have.
        """
        return ("PRICE_FIELD", "CATEGORY_FIELD", "IMAGE_FIELD", "AVAILABLE_PRODUCTS_FILTER")

    # --- caching -------------------------------------------------------------------------

    def invalidation_models(self) -> list[type[models.Model]]:
        """Host models besides the product model whose saves and deletes change widgets."""
        return []

    def cache_key(self, request: HttpRequest | None) -> str:
        """What a cached widget varies by beyond its arguments (a price list's name); ""."""
        return ""


def _iter_lines(cart: Any) -> Iterable[Any]:
    if cart is None:
        raise ValueError("A cart is required, got None.")
    for attribute in ("all_lines", "lines"):
        lines = getattr(cart, attribute, None)
        if lines is not None and not isinstance(cart, list | tuple | set | models.QuerySet):
            # A related manager (``order.lines``) is callable too; ``.all()`` below reads it.
            cart = lines() if callable(lines) and not hasattr(lines, "all") else lines
            break
    if hasattr(cart, "all") and callable(cart.all) and not isinstance(cart, list | tuple | set):
        cart = cart.all()
    if isinstance(cart, str | bytes | dict) or not isinstance(cart, Iterable):
        raise ValueError(f"Expected a cart or an iterable of lines, got {type(cart).__name__}.")
    return cart


@lru_cache(maxsize=4)
def _load(path: str) -> CrossSellAdapter:
    try:
        cls = import_string(path)
    except ImportError as exc:
        msg = f"CROSSSELL['ADAPTER'] {path!r} cannot be imported: {exc}"
        raise ImproperlyConfigured(msg) from exc
    if not (isinstance(cls, type) and issubclass(cls, CrossSellAdapter)):
        raise ImproperlyConfigured(
            f"CROSSSELL['ADAPTER'] {path!r} must be a subclass of "
            "django_crosssell.adapter.CrossSellAdapter."
        )
    return cls()


def get_adapter() -> CrossSellAdapter:
    """The configured adapter (one shared instance per class path)."""
    return _load(app_settings.ADAPTER or DEFAULT_ADAPTER)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "CROSSSELL":
        _load.cache_clear()
