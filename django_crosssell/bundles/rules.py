"""Reading bundle rules: the one query, the rules' items and their products' prices.

:func:`fetch_rules` reads, in **one query**, every item of every rule in force that lists
one of the given products (found through the index on ``BundleItem.product``), joined with
its rule's and product's columns. Rules become :class:`Rule` (the search's
:class:`~django_crosssell.bundles.solver.RuleData` plus the items; the ``BundleRule``
instance is built only when shown) and products stay rows until a nudge or an offer needs an
instance (:class:`Products`).

Prices come from the host adapter. When its ``price_column()`` names a column, the price is
taken from the same row (no extra query); otherwise the products are built and
``adapter.prices()`` is asked once for all the products of the query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model

from ..adapter import get_adapter
from ..conf import get_product_model
from ..models import BundleItem, BundleRule
from ..money import quantum, rounding_mode, to_decimal
from .solver import FIXED_SET, ZERO, Currency, RuleData, discount


def currency() -> Currency:
    """The shop's currency as the search uses it (``CURRENCY_DECIMALS``, ``ROUNDING``)."""
    return Currency(quantum(), rounding_mode())


def application_discount(rule: BundleRule | Any, base: Decimal) -> Decimal:
    """Discount of one application of ``rule`` whose units cost ``base`` at regular prices.

    Rounded to the currency (``CURRENCY_DECIMALS`` with ``ROUNDING``), never negative and
    never more than ``base`` rounded down to the currency, so a cheap set with an odd price
    cannot be "discounted" past zero.
    """
    return discount(rule.discount_type, to_decimal(rule.value), to_decimal(base), currency())


def product_prices(products: Iterable[Model]) -> dict[Any, Decimal]:
    """``{pk: price}`` of the products that have one, through the adapter, in one call."""
    return get_adapter().prices(list(products))


def product_price(product: Model) -> Decimal | None:
    """The product's current price through the adapter, or None.

    For several products use :func:`product_prices` (one call for all).
    """
    return product_prices([product]).get(product.pk)


class Products(dict):
    """Product instances built on first use from the rows of the rule query, and prices.

    Building ~500 model instances per cart costs more than the query itself, and only the
    few products a nudge or an offer shows are ever needed as instances. Prices come from the
    rows when the adapter names a price column, otherwise from one ``adapter.prices()`` call
    for every product known here, made when the first price is needed.
    """

    def __init__(self, db: str, attnames: list[str], price_column: str | None = None) -> None:
        super().__init__()
        self.db, self.attnames = db, attnames
        self.rows: dict[Any, tuple] = {}
        self.prices: dict[Any, Decimal | None] = {}
        self.price_index = attnames.index(price_column) if price_column in attnames else None

    def add(self, key: Any, row: tuple) -> None:
        if key not in self.rows:
            self.rows[key] = row
            if self.price_index is not None:
                value = row[self.price_index]
                self.prices[key] = None if value is None else to_decimal(value)

    def __missing__(self, key: Any) -> Model:
        instance = get_product_model().from_db(self.db, self.attnames, self.rows[key])
        self[key] = instance
        return instance

    def price(self, key: Any) -> Decimal | None:
        if key not in self.prices:
            unpriced = [k for k in {**self.rows, **self} if k not in self.prices]
            if key not in unpriced:
                unpriced.append(key)
            found = product_prices(self[k] for k in unpriced)
            for k in unpriced:
                self.prices[k] = found.get(k)
        return self.prices[key]


class Rule:
    """A rule with its items; the ``BundleRule`` instance is built only when shown."""

    def __init__(
        self,
        rule: BundleRule | None,
        items: list[tuple[Any, int]],
        products: Products,
        *,
        data: RuleData | None = None,
        row: tuple | None = None,
        fields: list[str] | None = None,
        db: str = "default",
    ) -> None:
        self.items = items  # (product key, quantity), in pk order of the items
        self.products = products  # shared by every rule of one query
        self._rule, self._row, self._fields, self._db = rule, row, fields, db
        if data is None:
            assert rule is not None
            values = {name: getattr(rule, name) for name in RuleData._fields}
            data = RuleData(**{**values, "value": to_decimal(values["value"])})
        self.d = data

    @property
    def audience_id(self) -> Any:
        """The audience the rule is restricted to (None: everyone), read without a query."""
        if self._rule is not None:
            return self._rule.audience_id
        if self._fields is None or self._row is None:
            return None
        return self._row[self._fields.index("audience_id")]

    @property
    def rule(self) -> BundleRule:
        if self._rule is None:
            if self._fields is None or self._row is None:
                raise ValueError("a Rule without its BundleRule needs the row and fields read")
            self._rule = BundleRule.from_db(self._db, self._fields, self._row)
        return self._rule

    def price(self, key: Any) -> Decimal | None:
        return self.products.price(key)

    def lists(self, key: Any) -> bool:
        return any(item_key == key for item_key, _qty in self.items)

    @property
    def needed(self) -> int:
        """Units of one application: the set's total quantity, or N."""
        if self.d.kind == FIXED_SET:
            return sum(qty for _, qty in self.items)
        return int(self.d.min_quantity or 0)

    @property
    def order_key(self) -> tuple:
        return (-self.d.priority, self.d.slug, str(self.d.pk))

    def regular_total(self, key: Any) -> Decimal | None:
        """One bundle at current prices: the whole set, or N units of the given product."""
        if self.d.kind == FIXED_SET:
            prices = [self.price(item) for item, _ in self.items]
            known = [p for p in prices if p is not None]
            if len(known) != len(prices):
                return None
            return sum((p * qty for p, (_, qty) in zip(known, self.items, strict=True)), ZERO)
        price = self.price(key)
        return None if price is None else price * self.needed

    def one_bundle_saving(self, key: Any, currency: Currency) -> Decimal | None:
        """The discount of one bundle at current prices (see :meth:`regular_total`)."""
        regular = self.regular_total(key)
        if regular is None:
            return None
        return discount(self.d.discount_type, self.d.value, regular, currency)


def _attname(name: str) -> str:
    return BundleRule._meta.pk.attname if name == "pk" else name


def fetch_rules(
    product_keys: Iterable[Any], at: datetime | None = None, *, any_window: bool = False
) -> list[Rule]:
    """Current rules listing any of the products, with all their items: one query.

    The subquery finds the rules through the index on ``BundleItem.product``; the outer
    query returns every item of those rules with its rule's and product's columns, from
    which rule instances (one per rule) and product instances (on demand) are built.
    ``any_window`` reads active rules whatever their campaign window (for offers, which
    need the next start or end for their cache timeout).
    """
    keys = list(dict.fromkeys(product_keys))
    if not keys:
        return []
    rules_in_force = (
        BundleRule.objects.filter(is_active=True) if any_window else BundleRule.objects.current(at)
    )
    matching = rules_in_force.filter(items__product__in=keys).values("pk")
    # created_at/updated_at stay deferred: nothing here reads them, and converting two
    # datetimes per item row is a measurable share of a cart's evaluation.
    rule_fields = [
        f.attname
        for f in BundleRule._meta.concrete_fields
        if f.attname not in ("created_at", "updated_at")
    ]
    product_fields = [f.attname for f in get_product_model()._meta.concrete_fields]
    columns = [
        "quantity",
        *(f"rule__{name}" for name in rule_fields),
        *(f"product__{name}" for name in product_fields),
    ]
    queryset = (
        BundleItem.objects.filter(rule__in=matching).order_by("rule_id", "pk").values_list(*columns)
    )
    products = Products(queryset.db, product_fields, get_adapter().price_column())
    data_index = [rule_fields.index(_attname(name)) for name in RuleData._fields]
    value_index = RuleData._fields.index("value")
    rules: dict[Any, Rule] = {}
    n_rule = len(rule_fields)
    for row in queryset:
        rule_row, product_row = row[1 : 1 + n_rule], row[1 + n_rule :]
        rule_pk, product_pk = rule_row[0], product_row[0]
        spec = rules.get(rule_pk)
        if spec is None:
            values = [rule_row[i] for i in data_index]
            values[value_index] = to_decimal(values[value_index])
            spec = rules[rule_pk] = Rule(
                None,
                [],
                products,
                data=RuleData(*values),
                row=rule_row,
                fields=rule_fields,
                db=queryset.db,
            )
        spec.items.append((product_pk, row[0]))
        products.add(product_pk, product_row)
    return sorted(rules.values(), key=lambda spec: spec.order_key)
