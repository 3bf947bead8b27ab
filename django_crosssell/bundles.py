"""Bundle evaluation: which bundle discounts a cart earns, and what one more item would unlock.

The storefront, the REST API and the example shop's checkout all call :func:`evaluate`, so the
amount a customer sees on the cart page is the amount checkout charges.

How a cart is evaluated
-----------------------
1. The rules are read in **one query**: the items of every current rule that lists at least
   one product of the cart (found through the index on ``BundleItem.product``), joined with
   their rule and product (the product's price is needed for nudges).
2. Cart lines are pooled into *slots*, one per (product, unit price), sorted canonically, so
   the result never depends on the order of the lines.
3. Every rule is expanded into *patterns*: the ways one application of the rule can take units
   from the slots, each with its exact discount (percent, amount off or fixed bundle price,
   rounded to the currency's exponent, never more than the units' price).
4. Non-combinable rules compete for units (each unit in at most one of their bundles). Rules
   that share no product are independent, so the rules are split into connected components and
   each component is solved exactly by a depth-first branch and bound that decides, pattern by
   pattern, how many times it is used (most first, so a cart with hundreds of units stays a
   shallow search). Rules with the largest single discount go first; a greedy solution (always
   take the largest discount that fits) is the first incumbent; a transposition table skips
   states reached before from a better start; a branch is cut when its discount plus an upper
   bound cannot beat the incumbent. The bound is the smallest of: every unit left at the best
   per-unit discount a pattern gives it, every rule at its best discount as often as its cap
   and the units allow, and for components that need more than :data:`LP_AFTER_NODES` nodes
   the LP relaxation's dual prices (one HiGHS solve through SciPy). A component still open
   after :data:`MAX_NODES` more nodes is handed to HiGHS as an integer programme, which proves
   the optimum (discounts are whole currency quanta, so a zero gap is exact).
   Ties: among equally good assignments the one with more bundles of the highest-priority rule
   (then of its best pattern, then of the next rule...) wins, compared explicitly
   (:func:`_tie_key`), so the order of the search does not matter.
5. Combinable rules may additionally apply to units already in a bundle. Each is solved on the
   whole cart on its own, and its discount is capped by what the covered lines have left after
   the discounts before it, so the lines (and the total) never go below zero.
6. Nudges: for rules that are nearly met (at most :data:`NUDGE_MAX_MISSING` units short of one
   more application), the cheapest units to add are found and the rules they touch are
   re-solved with them (starting from the current assignment) to report the saving they would
   really unlock, competition included.

The result is exact unless a rule has more than :data:`MAX_PATTERNS` ways to fill one bundle or
HiGHS runs out of :data:`MILP_SECONDS` (neither happens with realistic carts); then the best
assignment found is used, which is never worse than the greedy one, and
:attr:`BundleEvaluation.exact` is ``False``.
"""

from __future__ import annotations

import decimal
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Model
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from . import cache
from .conf import app_settings, get_product_model
from .models import BundleItem, BundleRule

logger = logging.getLogger("django_crosssell")

#: A rule whose one application can be filled in more ways than this is searched over its
#: first (most expensive) fillings only.
MAX_PATTERNS = 256
#: Search nodes per component (after the LP restart) before the integer-programme fallback.
MAX_NODES = 1_000
#: Time limit of that fallback (HiGHS through SciPy); past it the best assignment found so far
#: is used and the evaluation is marked inexact.
MILP_SECONDS = 0.5
#: Pattern decisions on one search path before a component settles for the best found so far
#: (keeps the recursion well inside Python's limit).
MAX_DEPTH = 600
#: Search nodes after which a component is restarted with the (tighter) LP dual bound.
LP_AFTER_NODES = 300
#: A rule is "nearly met" when one more application needs at most this many more units.
NUDGE_MAX_MISSING = 2
#: Nudges returned per cart, best first.
MAX_NUDGES = 3

Kind = BundleRule.Kind
DiscountType = BundleRule.DiscountType
ZERO = Decimal(0)


# --- public data types -------------------------------------------------------------------------


class CartLine(NamedTuple):
    """One line of the host's cart; ``product`` is a product instance or its primary key."""

    product: Any
    quantity: int
    unit_price: Decimal


@dataclass
class AppliedBundle:
    """A rule applied ``times`` times, the units it covers per product and its discount."""

    rule: BundleRule
    times: int
    units: dict[Any, int]
    discount: Decimal
    #: Regular price of the covered units.
    covered_subtotal: Decimal

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass
class MissingItem:
    product: Model
    quantity: int


@dataclass
class Nudge:
    """Units that would unlock (one more application of) a rule, and what that would save."""

    rule: BundleRule
    missing: list[MissingItem]
    saving: Decimal

    @property
    def units(self) -> int:
        return sum(item.quantity for item in self.missing)

    @property
    def message(self) -> str:
        """For example "Add 1 more to get 10% off" (あと1点で10%オフ), translated when read."""
        return nudge_message(self)


@dataclass
class BundleEvaluation:
    applied: list[AppliedBundle] = field(default_factory=list)
    total_discount: Decimal = ZERO
    subtotal: Decimal = ZERO
    total: Decimal = ZERO
    nudges: list[Nudge] = field(default_factory=list)
    #: False when a search limit was hit (see the module docstring).
    exact: bool = True


@dataclass
class BundleOffer:
    """A current rule that includes a product, priced at the items' current prices."""

    rule: BundleRule
    product: Model
    #: The other products of a set (empty for mix-and-match and multi-buy).
    partners: list[Model]
    #: Units of the rule needed for one application (N, or the set's total quantity).
    units: int
    regular_total: Decimal
    saving: Decimal

    @property
    def bundle_total(self) -> Decimal:
        return self.regular_total - self.saving

    @property
    def message(self) -> str:
        return offer_message(self)


# --- money -------------------------------------------------------------------------------------


def quantum() -> Decimal:
    return Decimal(1).scaleb(-int(app_settings.CURRENCY_DECIMALS))


def rounding_mode() -> str:
    mode = app_settings.ROUNDING
    if not isinstance(mode, str) or not mode.startswith("ROUND_") or not hasattr(decimal, mode):
        raise ImproperlyConfigured(
            f"CROSSSELL['ROUNDING'] must name a rounding mode of the decimal module, not {mode!r}."
        )
    return getattr(decimal, mode)


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(quantum(), rounding=rounding_mode())


def format_money(amount: Any) -> str:
    """An amount in the shop's currency through ``CROSSSELL['PRICE_FORMATTER']``.

    Rounded to the currency first, so a yen price stored with two decimals shows as 6,500.
    """
    return str(import_string(app_settings.PRICE_FORMATTER)(round_money(_to_decimal(amount))))


def format_percent(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def application_discount(rule: BundleRule | Any, base: Decimal) -> Decimal:
    """Discount of one application whose units cost ``base`` at regular prices.

    Rounded to the currency, never negative and never more than ``base`` (rounded down to the
    currency, so a cheap set with an odd price cannot be "discounted" past zero).
    """
    if base <= 0:
        return ZERO
    value = Decimal(rule.value)
    if rule.discount_type == DiscountType.PERCENT:
        discount = round_money(base * value / 100)
    elif rule.discount_type == DiscountType.AMOUNT:
        discount = round_money(value)
    else:
        discount = round_money(base - value)
    ceiling = base.quantize(quantum(), rounding=decimal.ROUND_DOWN)
    return max(ZERO, min(discount, ceiling))


# --- reading rules (the one query) -------------------------------------------------------------


class _RuleData(NamedTuple):
    """The columns the search reads, without building a model instance per rule."""

    pk: Any
    slug: str
    kind: str
    priority: int
    discount_type: str
    value: Decimal
    min_quantity: int | None
    max_applications: int | None
    combinable: bool


class _Rule:
    """A rule with its items; the ``BundleRule`` instance is built only when shown."""

    def __init__(
        self,
        rule: BundleRule | None,
        items: list[tuple[Any, int]],
        products: _Products,
        *,
        row: tuple | None = None,
        fields: list[str] | None = None,
        db: str = "default",
    ) -> None:
        self.items = items  # (product key, quantity), in pk order of the items
        self.products = products  # shared by every rule of one query
        self._rule, self._row, self._fields, self._db = rule, row, fields, db
        if rule is not None:
            self.d = _RuleData(*(getattr(rule, name) for name in _RuleData._fields))
        else:
            assert row is not None and fields is not None
            self.d = _RuleData(*(row[fields.index(_attname(n))] for n in _RuleData._fields))

    @property
    def rule(self) -> BundleRule:
        if self._rule is None:
            self._rule = BundleRule.from_db(self._db, self._fields, self._row)
        return self._rule

    def price(self, key: Any) -> Decimal | None:
        return self.products.price(key)

    def lists(self, key: Any) -> bool:
        return any(item_key == key for item_key, _qty in self.items)

    @property
    def needed(self) -> int:
        if self.d.kind == Kind.FIXED_SET:
            return sum(qty for _, qty in self.items)
        return int(self.d.min_quantity or 0)

    @property
    def order_key(self) -> tuple:
        return (-self.d.priority, self.d.slug, str(self.d.pk))


def _attname(name: str) -> str:
    return BundleRule._meta.pk.attname if name == "pk" else name


def _product_key(product: Any) -> Any:
    """The primary key of a product instance or key, in its Python type (UUIDs for UUID keys)."""
    pk_field = get_product_model()._meta.pk
    value = product.pk if isinstance(product, Model) else product
    try:
        return pk_field.to_python(value)
    except ValidationError as exc:
        raise ValueError(f"{value!r} is not a valid product key") from exc


def product_price(product: Model) -> Decimal | None:
    """The product's current price (``CROSSSELL['PRICE_FIELD']``) as a Decimal."""
    value = getattr(product, app_settings.PRICE_FIELD, None)
    return None if value is None else _to_decimal(value)


class _Products(dict):
    """Product instances built on first use from the rows of the rule query.

    Building ~500 model instances per cart costs more than the query itself, and only the
    few products a nudge or an offer shows are ever needed as instances.
    """

    def __init__(self, db: str, attnames: list[str]) -> None:
        super().__init__()
        self.db, self.attnames, self.rows = db, attnames, {}
        self.prices: dict[Any, Decimal | None] = {}
        field = app_settings.PRICE_FIELD
        self.price_index = attnames.index(field) if field in attnames else None

    def add(self, key: Any, row: tuple) -> None:
        if key not in self.rows:
            self.rows[key] = row
            if self.price_index is not None:
                value = row[self.price_index]
                self.prices[key] = None if value is None else _to_decimal(value)

    def __missing__(self, key: Any) -> Model:
        instance = get_product_model().from_db(self.db, self.attnames, self.rows[key])
        self[key] = instance
        return instance

    def price(self, key: Any) -> Decimal | None:
        if key not in self.prices:
            self.prices[key] = product_price(self[key])
        return self.prices[key]


def fetch_rules(
    product_keys: Iterable[Any], at: datetime | None = None, *, any_window: bool = False
) -> list[_Rule]:
    """Current rules listing any of the products, with all their items: one query.

    The subquery finds the rules through the index on ``BundleItem.product``; the outer
    query returns every item of those rules with its rule's and product's columns, from
    which rule instances (one per rule) and product instances (on demand) are built.
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
    products = _Products(queryset.db, product_fields)
    rules: dict[Any, _Rule] = {}
    n_rule = len(rule_fields)
    for row in queryset:
        rule_row, product_row = row[1 : 1 + n_rule], row[1 + n_rule :]
        rule_pk, product_pk = rule_row[0], product_row[0]
        spec = rules.get(rule_pk)
        if spec is None:
            spec = rules[rule_pk] = _Rule(
                None, [], products, row=rule_row, fields=rule_fields, db=queryset.db
            )
        spec.items.append((product_pk, row[0]))
        products.add(product_pk, product_row)
    return sorted(rules.values(), key=lambda spec: spec.order_key)


# --- the cart as slots, rules as patterns ------------------------------------------------------


@dataclass
class _Cart:
    keys: list[Any]  # product key per slot
    prices: list[Decimal]  # unit price per slot
    quantities: list[int]
    by_product: dict[Any, list[int]]  # product key -> slot indices, most expensive first

    @classmethod
    def from_lines(cls, lines: Iterable[Any]) -> _Cart:
        pooled: dict[tuple[Any, Decimal], int] = {}
        for line in lines:
            if isinstance(line, tuple):
                product, quantity, unit_price = line
            else:  # the host's own line objects
                product, quantity, unit_price = line.product, line.quantity, line.unit_price
            if isinstance(quantity, bool) or int(quantity) != quantity or quantity < 0:
                raise ValueError(f"quantity must be a non-negative integer, not {quantity!r}")
            price = _to_decimal(unit_price)
            if not price.is_finite() or price < 0:
                raise ValueError(f"unit price must be a non-negative amount, not {unit_price!r}")
            if quantity == 0:
                continue
            slot = (_product_key(product), price)
            pooled[slot] = pooled.get(slot, 0) + int(quantity)
        ordered = sorted(pooled.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
        cart = cls(keys=[], prices=[], quantities=[], by_product={})
        for (key, price), quantity in ordered:
            cart.by_product.setdefault(key, []).append(len(cart.keys))
            cart.keys.append(key)
            cart.prices.append(price)
            cart.quantities.append(quantity)
        for slots in cart.by_product.values():
            slots.sort(key=lambda s: -cart.prices[s])
        return cart

    def canon(self, slot: int) -> tuple[str, Decimal]:
        """What a slot is, independent of its index, for every tie-break that touches slots."""
        return (str(self.keys[slot]), self.prices[slot])

    @property
    def subtotal(self) -> Decimal:
        return sum((p * q for p, q in zip(self.prices, self.quantities, strict=True)), ZERO)

    def with_added(self, additions: dict[Any, tuple[int, Decimal]]) -> _Cart:
        """This cart plus some units, keeping every existing slot's index.

        Keeping the indices lets a nudge reuse the patterns of every rule that does not list
        an added product instead of rebuilding them.
        """
        cart = _Cart(
            list(self.keys),
            list(self.prices),
            list(self.quantities),
            {key: list(slots) for key, slots in self.by_product.items()},
        )
        for key in sorted(additions, key=str):
            qty, price = additions[key]
            slot = next((s for s in cart.by_product.get(key, ()) if cart.prices[s] == price), None)
            if slot is None:
                slot = len(cart.keys)
                cart.keys.append(key)
                cart.prices.append(price)
                cart.quantities.append(0)
                slots = cart.by_product.setdefault(key, [])
                slots.append(slot)
                slots.sort(key=lambda s: -cart.prices[s])
            cart.quantities[slot] += qty
        return cart


@dataclass
class _Pattern:
    units: tuple[tuple[int, int], ...]  # (slot, count)
    base: Decimal
    discount: Decimal
    rate: float  # discount per unit, for the bound
    amount: float  # the discount as a float, for the bound


def _fillings(slots: Sequence[int], caps: Sequence[int], n: int, limit: int) -> list[list]:
    """Ways to take ``n`` units from ``slots`` (at most ``caps`` each), earlier slots first."""
    if len(slots) == 1:  # the usual case: one price per product
        return [[(slots[0], n)]] if caps[0] >= n else []
    result: list[list] = []
    acc: list[tuple[int, int]] = []
    suffix = [*list(itertools.accumulate(reversed(caps)))[::-1], 0]

    def rec(i: int, left: int) -> None:
        if len(result) >= limit:
            return
        if left == 0:
            result.append(list(acc))
            return
        if i == len(slots) or suffix[i] < left:
            return
        for take in range(min(left, caps[i]), -1, -1):
            if take:
                acc.append((slots[i], take))
            rec(i + 1, left - take)
            if take:
                acc.pop()

    rec(0, n)
    return result


def _patterns(spec: _Rule, cart: _Cart) -> tuple[list[_Pattern], bool]:
    """Every way one application of the rule can be filled from the cart, best first."""
    rule = spec.d
    fills: list[list[tuple[int, int]]] = []
    complete = True
    if rule.kind == Kind.FIXED_SET:
        if len(spec.items) < 1:
            return [], True
        per_item = []
        for key, qty in spec.items:
            slots = cart.by_product.get(key, [])
            options = _fillings(slots, [cart.quantities[s] for s in slots], qty, MAX_PATTERNS)
            if not options:
                return [], True
            per_item.append(options)
        for combo in itertools.islice(itertools.product(*per_item), MAX_PATTERNS + 1):
            fills.append([unit for part in combo for unit in part])
    else:
        n = int(rule.min_quantity or 0)
        if n < 1:
            return [], True
        if rule.kind == Kind.MULTI_BUY:
            groups = [cart.by_product.get(key, []) for key, _ in spec.items]
        else:
            listed = [s for key, _ in spec.items for s in cart.by_product.get(key, [])]
            groups = [sorted(listed, key=lambda s: (-cart.prices[s], cart.canon(s)))]
        for slots in groups:
            fills += _fillings(slots, [cart.quantities[s] for s in slots], n, MAX_PATTERNS + 1)
    if len(fills) > MAX_PATTERNS:
        complete = False
        fills = fills[:MAX_PATTERNS]
    patterns = []
    for fill in fills:
        units = tuple(sorted(fill))
        base = sum((cart.prices[s] * c for s, c in units), ZERO)
        discount = application_discount(rule, base)
        if discount > 0:
            size = sum(c for _, c in units)
            patterns.append(
                _Pattern(units, base, discount, float(discount) / size, float(discount))
            )
    patterns.sort(key=lambda p: (-p.discount, sorted((cart.canon(s), c) for s, c in p.units)))
    return patterns, complete


# --- the search --------------------------------------------------------------------------------


@dataclass
class _Problem:
    specs: list[_Rule]
    patterns: list[list[_Pattern]]
    caps: list[int]


def _cap(spec: _Rule) -> int:
    return int(spec.d.max_applications) if spec.d.max_applications else 10**9


def _components(problem: _Problem, allowed: set[int] | None = None) -> list[list[int]]:
    """Groups of rules that share slots (rules in different groups never compete)."""
    parent = list(range(len(problem.specs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for i, patterns in enumerate(problem.patterns):
        if allowed is not None and i not in allowed:
            continue
        for pattern in patterns:
            for slot, _ in pattern.units:
                if slot in owner:
                    parent[find(i)] = find(owner[slot])
                else:
                    owner[slot] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(problem.specs)):
        if problem.patterns[i] and (allowed is None or i in allowed):
            groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _tie_key(applications: list[tuple[int, int]]) -> tuple:
    """Order of equally good assignments; smaller wins.

    ``applications`` are (rule index, pattern index) with rules in priority order and patterns
    best first. Sorted, with a sentinel, lexicographic comparison means: the assignment with
    more applications of the highest-priority rule (then of its best pattern, ...) wins. The
    order is kept when the same applications are added to both sides, which makes the
    transposition pruning in `_Search._dfs` safe.
    """
    return (*sorted(applications), (_SENTINEL,))


_SENTINEL = float("inf")


class _Search:
    """Exact branch and bound for one component; see the module docstring."""

    def __init__(self, problem: _Problem, members: list[int], quantities: list[int]) -> None:
        # Search order: largest single discount first (finds good assignments early, which
        # cuts far more branches than priority order); ties are settled by `_tie`, not order.
        members = sorted(members, key=lambda i: (-problem.patterns[i][0].discount, i))
        self.members = members
        self.patterns = [problem.patterns[i] for i in members]
        self.caps = [problem.caps[i] for i in members]
        slots = sorted({s for ps in self.patterns for p in ps for s, _c in p.units})
        self.slots = slots
        self.state = [quantities[s] for s in slots]
        local = {s: i for i, s in enumerate(slots)}
        self.units = [
            [tuple((local[s], c) for s, c in p.units) for p in ps] for ps in self.patterns
        ]
        # Per rule: the slots it can use and the fewest units one application takes.
        self.touched = [sorted({pos for u in us for pos, _c in u}) for us in self.units]
        self.size = [min(sum(c for _p, c in u) for u in us) for us in self.units]
        # rate[i][pos]: best discount per unit any pattern of rules i.. gives that slot.
        self.rate = [[0.0] * len(slots) for _ in range(len(members) + 1)]
        for i in range(len(members) - 1, -1, -1):
            row = list(self.rate[i + 1])
            for pattern, units in zip(self.patterns[i], self.units[i], strict=True):
                for pos, _c in units:
                    row[pos] = max(row[pos], pattern.rate)
            self.rate[i] = row
        self.top = [max(p.amount for p in ps) for ps in self.patterns]
        # rate_from[i][j]: the same, counting only patterns j.. of rule i (the ones the search
        # may still use there) plus every pattern of the rules after it.
        self.rate_from: list[list[list[float]]] = []
        for i in range(len(members)):
            rows = [self.rate[i + 1]]
            for pattern, units in zip(
                reversed(self.patterns[i]), reversed(self.units[i]), strict=True
            ):
                row = list(rows[-1])
                for pos, _c in units:
                    row[pos] = max(row[pos], pattern.rate)
                rows.append(row)
            self.rate_from.append(rows[::-1])
        # Slots rules i.. can still use: the only part of the state their outcome depends on.
        self.frontier = [
            sorted({pos for r in self.touched[i:] for pos in r}) for i in range(len(members))
        ]
        # Recursion depth at (rule i, pattern 0): one level per pattern decision.
        self.depth = [0, *itertools.accumulate(len(ps) + 1 for ps in self.patterns)]
        self.slot_prices: list[float] | None = None
        self.rule_prices: list[float] | None = None
        self.nodes = 0
        self.exhausted = False
        self.seen: dict[tuple, tuple[Decimal, tuple[tuple[int, int], ...]]] = {}
        self.best_value = ZERO
        self.best_float = 0.0
        self.best_key: tuple = _tie_key([])
        self.best_path: list[tuple[int, int]] = []

    def bound(self, i: int, j: int, used: int, need: float | None = None) -> float:
        """Upper bound on what rules i.. can still add.

        The smallest of up to three valid bounds: every unit left at the best per-unit
        discount any pattern of these rules gives it; every rule applied as often as its cap
        and the units left allow, each time at its best discount; and, for hard components,
        the LP dual prices of the root (see :meth:`use_lp_duals`), which stay dual feasible
        for every subproblem because only the right-hand side changes.
        """
        state = self.state
        rate = self.rate_from[i][j]
        per_unit = 0.0
        dual = 0.0
        prices = self.slot_prices
        for pos, q in enumerate(state):
            if q:
                per_unit += q * rate[pos]
                if prices is not None:
                    dual += q * prices[pos]
        if need is not None and per_unit * (1 + 1e-9) + 1e-6 < need:
            return per_unit * (1 + 1e-9) + 1e-6  # already enough to cut: skip the rest
        per_rule = 0.0
        rule_prices = self.rule_prices
        for r in range(i, len(self.patterns)):
            if r == i:
                if j >= len(self.patterns[i]):
                    continue  # rule i is settled
                left, top = self.caps[r] - used, self.patterns[i][j].amount  # best first
            else:
                left, top = self.caps[r], self.top[r]
            if left > 0:
                available = sum(state[pos] for pos in self.touched[r]) // self.size[r]
                apps = min(left, available)
                per_rule += apps * top
                if rule_prices is not None:
                    dual += apps * rule_prices[r]
        best = min(per_unit, per_rule) if prices is None else min(per_unit, per_rule, dual)
        return best * (1 + 1e-9) + 1e-6

    def use_lp_duals(self) -> None:
        """Dual prices of the LP relaxation at the root, repaired to be exactly dual feasible.

        One HiGHS solve (a few milliseconds) that makes the bound as tight as the LP at the
        root; only worth it when the cheap bounds leave the search with many nodes.
        """
        import numpy as np
        from scipy.optimize import linprog

        columns = [(r, k) for r, ps in enumerate(self.patterns) for k in range(len(ps))]
        n_slots, n_rules = len(self.slots), len(self.patterns)
        matrix = np.zeros((n_slots + n_rules, len(columns)))
        gains = np.zeros(len(columns))
        for col, (r, k) in enumerate(columns):
            for pos, c in self.units[r][k]:
                matrix[pos, col] = c
            matrix[n_slots + r, col] = 1
            gains[col] = self.patterns[r][k].amount
        limits = [
            min(self.caps[r], sum(self.state[pos] for pos in self.touched[r]) // self.size[r])
            for r in range(n_rules)
        ]
        rhs = np.array([*self.state, *limits], dtype=float)
        result = linprog(-gains, A_ub=matrix, b_ub=rhs, bounds=(0, None), method="highs")
        if result.status != 0:
            return
        duals = [max(0.0, -float(v)) for v in result.ineqlin.marginals]
        slot_prices, rule_prices = duals[:n_slots], duals[n_slots:]
        for col, (r, k) in enumerate(columns):  # repair rounding so every pattern is covered
            covered = rule_prices[r] + sum(slot_prices[pos] * c for pos, c in self.units[r][k])
            if gains[col] > covered:
                rule_prices[r] += gains[col] - covered
        self.slot_prices, self.rule_prices = slot_prices, rule_prices

    def fits(self, units: tuple[tuple[int, int], ...]) -> bool:
        state = self.state
        return all(state[pos] >= c for pos, c in units)

    def take(self, units: tuple[tuple[int, int], ...], sign: int) -> None:
        for pos, c in units:
            self.state[pos] -= sign * c

    def greedy(self) -> None:
        """The first incumbent: repeatedly take the largest single discount that fits."""
        used = [0] * len(self.members)
        path: list[tuple[int, int]] = []
        value = ZERO
        while True:
            choice = None
            for i, patterns in enumerate(self.patterns):
                if used[i] >= self.caps[i]:
                    continue
                for k, pattern in enumerate(patterns):
                    if self.fits(self.units[i][k]):
                        if choice is None or pattern.discount > choice[2]:
                            choice = (i, k, pattern.discount)
                        break  # patterns are sorted best first
            if choice is None:
                break
            i, k, discount = choice
            self.take(self.units[i][k], 1)
            used[i] += 1
            path.append((i, k, 1))
            value += discount
        for i, k, _times in path:
            self.take(self.units[i][k], -1)
        self._offer_solution(value, path)

    def _expand(self, path: Iterable[tuple[int, int, int]]) -> list[tuple[int, int]]:
        """(rule, pattern, times) runs as one (rule index, pattern index) pair per bundle."""
        return [(self.members[i], k) for i, k, times in path for _ in range(times)]

    def _tie(self, path: Iterable[tuple[int, int, int]]) -> tuple:
        return _tie_key(self._expand(path))

    def _offer_solution(self, value: Decimal, path: list[tuple[int, int, int]]) -> None:
        key = self._tie(path)
        if value > self.best_value or (value == self.best_value and key < self.best_key):
            self.best_value, self.best_float, self.best_key = value, float(value), key
            self.best_path = self._expand(path)

    def run(self, seed: Sequence[tuple[int, tuple]] = ()) -> list[tuple[int, int]]:
        """Best assignment as (rule index, pattern index) pairs.

        ``seed``: a known feasible assignment as (rule index, pattern units), such as the
        cart's assignment before a nudge adds units; it starts as the incumbent if it beats
        the greedy one, so the search cuts more from the start.
        """
        self.greedy()
        self._offer_seed(seed)
        self.limit = LP_AFTER_NODES
        self._dfs(0, 0, 0, ZERO, [])
        if self.exhausted:  # a hard component: restart with the LP dual bound
            self.use_lp_duals()
            self.nodes, self.exhausted, self.seen, self.limit = 0, False, {}, MAX_NODES
            self.greedy()
            self._dfs(0, 0, 0, ZERO, [])
        if self.exhausted:  # still open (large quantities, many symmetric fillings)
            self.exhausted = not self.solve_milp()
        return self.best_path

    def solve_milp(self) -> bool:
        """Solve the component as an integer programme with HiGHS; True if proven optimal.

        Discounts are whole multiples of the currency quantum, so the objective is an integer
        and a zero MIP gap proves optimality. A second solve keeps that total and prefers
        bundles of higher-priority rules, the same preference as the search's tie key.
        The solution is checked in exact arithmetic before it is used.
        """
        import numpy as np
        from scipy.optimize import Bounds, LinearConstraint, milp

        columns = [(r, k) for r, ps in enumerate(self.patterns) for k in range(len(ps))]
        n_slots = len(self.slots)
        capped = [r for r in range(len(self.patterns)) if self.caps[r] < 10**9]
        matrix = np.zeros((n_slots + len(capped), len(columns)))
        row_of = {r: n_slots + n for n, r in enumerate(capped)}
        step = quantum()
        gains = np.zeros(len(columns))
        upper = np.zeros(len(columns))
        for col, (r, k) in enumerate(columns):
            for pos, c in self.units[r][k]:
                matrix[pos, col] = c
            if r in row_of:
                matrix[row_of[r], col] = 1
            gains[col] = int(self.patterns[r][k].discount / step)
            upper[col] = min(self.caps[r], *(self.state[pos] // c for pos, c in self.units[r][k]))
        limits = np.array([*self.state, *(self.caps[r] for r in capped)], dtype=float)
        options = {"mip_rel_gap": 0, "time_limit": MILP_SECONDS, "presolve": True}
        shared = {
            "integrality": np.ones(len(columns)),
            "bounds": Bounds(np.zeros(len(columns)), upper),
            "options": options,
        }
        first = milp(-gains, constraints=LinearConstraint(matrix, -np.inf, limits), **shared)
        if first.status != 0 or first.x is None:
            return False
        best_total = round(-first.fun)
        # Ties: among assignments with this total, favour rules earlier in priority order.
        rank = {rule: n for n, rule in enumerate(sorted(self.members))}
        preference = np.array([len(rank) - rank[self.members[r]] for r, _k in columns], float)
        keep = LinearConstraint(
            np.vstack([matrix, gains]),
            [*([-np.inf] * len(limits)), best_total],
            [*limits, np.inf],
        )
        second = milp(-preference, constraints=keep, **shared)
        solution = second if second.status == 0 and second.x is not None else first
        counts = [round(x) for x in solution.x]
        used = [0] * len(self.patterns)
        state = list(self.state)
        path, value = [], ZERO
        for (r, k), times in zip(columns, counts, strict=True):
            if times <= 0:
                continue
            for pos, c in self.units[r][k]:
                state[pos] -= c * times
            used[r] += times
            path.append((r, k, times))
            value += self.patterns[r][k].discount * times
        if any(q < 0 for q in state) or any(
            u > cap for u, cap in zip(used, self.caps, strict=True)
        ):
            return False  # rounding produced an infeasible point: keep the search's result
        self._offer_solution(value, path)
        return value == self.best_value

    def _offer_seed(self, seed: Sequence[tuple[int, tuple]]) -> None:
        local = {rule: i for i, rule in enumerate(self.members)}
        path, value, used = [], ZERO, [0] * len(self.members)
        for rule, units in seed:
            i = local.get(rule)
            if i is None:
                continue
            k = next((k for k, p in enumerate(self.patterns[i]) if p.units == units), None)
            if k is None or used[i] >= self.caps[i] or not self.fits(self.units[i][k]):
                break  # not a feasible assignment here: ignore the rest
            self.take(self.units[i][k], 1)
            used[i] += 1
            path.append((i, k, 1))
            value += self.patterns[i][k].discount
        for i, k, _times in path:
            self.take(self.units[i][k], -1)
        if len(path) == sum(1 for rule, _ in seed if rule in local):
            self._offer_solution(value, path)

    def _cut(self, value: float, i: int, j: int, used: int) -> bool:
        # Strict: a branch that can only tie may still win the tie (see `_tie_key`).
        if i == len(self.patterns):
            return value < self.best_float
        return value + self.bound(i, j, used, self.best_float - value) < self.best_float

    def _dfs(self, i: int, j: int, used: int, value: Decimal, path: list) -> None:
        """Decide how many times pattern ``j`` of rule ``i`` is used, most first.

        ``path`` holds (rule, pattern, times) runs, so the recursion is as deep as the number
        of patterns, not of bundles: a cart with hundreds of units of one product stays flat.
        """
        self.nodes += 1
        if self.nodes > self.limit or self.depth[i] + j > MAX_DEPTH:
            self.exhausted = True
            return
        if i == len(self.members):
            self._offer_solution(value, path)
            return
        patterns, units = self.patterns[i], self.units[i]
        while j < len(patterns) and not self.fits(units[j]):
            j += 1  # a pattern that does not fit can only be used zero times: no branch
        if j == len(patterns) or used >= self.caps[i]:
            if not self._cut(float(value), i + 1, 0, 0):
                self._dfs(i + 1, 0, 0, value, path)
            return
        # The same rule position and units left, reached before with at least this much (or
        # as much with a tie key at least as good): every completion from here was already
        # tried from a start that beats this one, because the tie order survives adding the
        # same completion to both.
        state = self.state
        key = (i, j, used, tuple([state[pos] for pos in self.frontier[i]]))
        previous = self.seen.get(key)
        if previous is not None and (
            previous[0] > value
            or (previous[0] == value and self._tie(previous[1]) <= self._tie(path))
        ):
            return
        self.seen[key] = (value, tuple(path))
        pattern, taken = patterns[j], units[j]
        fit = min(self.caps[i] - used, *(state[pos] // c for pos, c in taken))
        for times in range(fit, -1, -1):
            new_value = value + pattern.discount * times
            for pos, c in taken:
                state[pos] -= c * times
            if not self._cut(float(new_value), i, j + 1, used + times):
                if times:
                    path.append((i, j, times))
                self._dfs(i, j + 1, used + times, new_value, path)
                if times:
                    path.pop()
            for pos, c in taken:
                state[pos] += c * times
            if self.exhausted:
                return


@dataclass
class _Solution:
    applications: list[tuple[int, _Pattern]]  # (rule index in problem, pattern)
    exact: bool


def _solve(
    problem: _Problem,
    quantities: list[int],
    only: Iterable[int] | None = None,
    seed: Sequence[tuple[int, tuple]] = (),
) -> _Solution:
    """Best assignment of non-combinable rules; ``only`` restricts it to some rules."""
    allowed = None if only is None else set(only)
    applications: list[tuple[int, _Pattern]] = []
    exact = True
    for members in _components(problem, allowed):
        search = _Search(problem, members, quantities)
        for rule_index, k in search.run(seed):
            applications.append((rule_index, problem.patterns[rule_index][k]))
        exact = exact and not search.exhausted
    return _Solution(applications, exact)


def _build(specs: list[_Rule], cart: _Cart) -> tuple[_Problem, bool]:
    patterns, complete = [], True
    for spec in specs:
        found, ok = _patterns(spec, cart)
        patterns.append(found)
        complete = complete and ok
    return _Problem(specs, patterns, [_cap(spec) for spec in specs]), complete


# --- evaluation ----------------------------------------------------------------------------------


def _group(
    problem: _Problem, cart: _Cart, chosen: list[tuple[int, _Pattern, Decimal]]
) -> list[AppliedBundle]:
    by_rule: dict[int, AppliedBundle] = {}
    for index, pattern, discount in chosen:
        spec = problem.specs[index]
        applied = by_rule.get(index)
        if applied is None:
            applied = by_rule[index] = AppliedBundle(spec.rule, 0, {}, ZERO, ZERO)
        applied.times += 1
        applied.discount += discount
        applied.covered_subtotal += pattern.base
        for slot, count in pattern.units:
            key = cart.keys[slot]
            applied.units[key] = applied.units.get(key, 0) + count
    return sorted(
        by_rule.values(),
        key=lambda a: (-a.discount, -a.rule.priority, a.rule.slug),
    )


def _assign(
    problem: _Problem, cart: _Cart, seed: Sequence[tuple[int, tuple]] = ()
) -> tuple[list[tuple[int, _Pattern, Decimal]], bool]:
    """Non-combinable rules first, then each combinable rule within what the lines have left."""
    rules = problem.specs
    plain = [i for i, spec in enumerate(rules) if not spec.d.combinable]
    solution = _solve(problem, list(cart.quantities), plain, seed)
    headroom = [p * q for p, q in zip(cart.prices, cart.quantities, strict=True)]
    chosen: list[tuple[int, _Pattern, Decimal]] = []

    def charge(pattern: _Pattern, discount: Decimal) -> Decimal:
        # Attribute the discount to the covered slots, most valuable first, within headroom.
        room = {s: min(headroom[s], cart.prices[s] * c) for s, c in pattern.units}
        granted = min(discount, sum(room.values(), ZERO))
        left = granted
        for slot in sorted(room, key=lambda s: (-room[s], cart.canon(s))):
            share = min(left, room[slot])
            headroom[slot] -= share
            left -= share
        return granted

    for index, pattern in sorted(solution.applications, key=lambda a: a[0]):
        chosen.append((index, pattern, charge(pattern, pattern.discount)))
    exact = solution.exact
    for index, spec in enumerate(rules):
        if not spec.d.combinable or not problem.patterns[index]:
            continue
        extra = _solve(problem, list(cart.quantities), [index])
        exact = exact and extra.exact
        for _, pattern in extra.applications:
            granted = charge(pattern, pattern.discount)
            if granted > 0:
                chosen.append((index, pattern, granted))
    return chosen, exact


def _nudge_candidates(
    problem: _Problem, cart: _Cart, chosen: list[tuple[int, _Pattern, Decimal]]
) -> list[tuple[int, dict[Any, int]]]:
    """Rules one or two units short of one more application, with the units to add."""
    used_plain = [0] * len(cart.keys)
    times: dict[int, int] = {}
    for index, pattern, _ in chosen:
        times[index] = times.get(index, 0) + 1
        if not problem.specs[index].d.combinable:
            for slot, count in pattern.units:
                used_plain[slot] += count
    everything: dict[Any, int] = {}
    unbundled: dict[Any, int] = {}
    for slot, key in enumerate(cart.keys):
        everything[key] = everything.get(key, 0) + cart.quantities[slot]
        unbundled[key] = unbundled.get(key, 0) + cart.quantities[slot] - used_plain[slot]
    found = []
    for index, spec in enumerate(problem.specs):
        rule = spec.d
        if times.get(index, 0) >= _cap(spec):
            continue
        available = everything if rule.combinable else unbundled
        missing: dict[Any, int] = {}
        if rule.kind == Kind.FIXED_SET:
            for key, qty in spec.items:
                short = qty - available.get(key, 0)
                if short > 0:
                    missing[key] = short
            if len(missing) == len(spec.items):
                continue  # nothing of the set is left in the cart: not "nearly" met
        elif rule.kind == Kind.MULTI_BUY:
            n = spec.needed
            best = None
            for key, _ in spec.items:
                have = available.get(key, 0)
                if have <= 0:
                    continue
                short = n - have % n if have % n else n
                price = spec.price(key) or ZERO
                candidate = (short, -price, str(key), key)
                if best is None or candidate < best:
                    best = candidate
            if best is None:
                continue
            missing[best[3]] = best[0]
        else:
            n = spec.needed
            have = sum(available.get(key, 0) for key, _ in spec.items)
            if have <= 0:
                continue
            short = n - have % n if have % n else n
            priced = [
                (spec.price(key), str(key), key)
                for key, _ in spec.items
                if spec.price(key) is not None
            ]
            if not priced:
                continue
            missing[min(priced)[2]] = short  # the cheapest way in: the cheapest listed product
        if missing and sum(missing.values()) <= NUDGE_MAX_MISSING:
            if any(spec.price(key) is None for key in missing):
                continue
            found.append((index, missing))
    return found


def _rules_by_product(specs: list[_Rule]) -> dict[Any, list[int]]:
    by_product: dict[Any, list[int]] = {}
    for index, spec in enumerate(specs):
        for key, _qty in spec.items:
            by_product.setdefault(key, []).append(index)
    return by_product


def _closure(
    specs: list[_Rule], by_product: dict[Any, list[int]], start: int, cart: _Cart
) -> list[int]:
    """Rules linked to ``start`` through products in the cart: the only ones it competes with."""
    seen, todo = {start}, [start]
    while todo:
        for key, _qty in specs[todo.pop()].items:
            if key not in cart.by_product:
                continue
            for other in by_product.get(key, ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
    return sorted(seen)


def _nudges(
    specs: list[_Rule],
    cart: _Cart,
    problem: _Problem,
    chosen: list[tuple[int, _Pattern, Decimal]],
) -> list[Nudge]:
    """Re-solve the part of the cart each candidate touches, with the missing units added."""
    candidates = []
    for index, missing in _nudge_candidates(problem, cart, chosen):
        spec = specs[index]
        estimate = _one_bundle_saving(spec, next(iter(missing))) or ZERO
        units = sum(missing.values())
        candidates.append((units, -estimate, spec.order_key, index, missing))
    candidates.sort(key=lambda c: c[:3])
    by_product = _rules_by_product(specs) if candidates else {}
    nudges = []
    for _units, _estimate, _order, index, missing in candidates[: MAX_NUDGES * 3]:
        spec = specs[index]
        additions = {key: (qty, spec.price(key) or ZERO) for key, qty in missing.items()}
        bigger = cart.with_added(additions)
        members = _closure(specs, by_product, index, bigger)
        sub_specs = [specs[i] for i in members]
        sub_patterns = [
            _patterns(specs[i], bigger)[0]
            if any(key in additions for key, _qty in specs[i].items)
            else problem.patterns[i]
            for i in members
        ]
        sub_problem = _Problem(sub_specs, sub_patterns, [_cap(spec) for spec in sub_specs])
        # The cart's current assignment still fits the bigger cart: a strong first incumbent.
        position = {rule: i for i, rule in enumerate(members)}
        seed = [
            (position[i], pattern.units)
            for i, pattern, _ in chosen
            if i in position and not specs[i].d.combinable
        ]
        new_chosen, _ = _assign(sub_problem, bigger, seed)
        before = sum(1 for i, _, _ in chosen if i == index)
        if sum(1 for i, _, _ in new_chosen if i == position[index]) <= before:
            continue  # the added units would go to a better bundle instead
        old = sum((d for i, _, d in chosen if i in position), ZERO)
        saving = sum((d for _, _, d in new_chosen), ZERO) - old
        if saving <= 0:
            continue
        items = [
            MissingItem(spec.products[key], qty) for key, qty in sorted(missing.items(), key=str)
        ]
        nudges.append(Nudge(spec.rule, items, saving))
        if len(nudges) == MAX_NUDGES:
            break
    nudges.sort(key=lambda n: (n.units, -n.saving, -n.rule.priority, n.rule.slug))
    return nudges


def evaluate(lines: Iterable[Any], at: datetime | None = None) -> BundleEvaluation:
    """Bundle discounts a cart earns, and what would unlock more.

    ``lines`` are :class:`CartLine` or ``(product, quantity, unit_price)`` tuples (or objects
    with those three attributes), where the product is an instance or a primary key. Reads
    the rules with one query (none for an empty cart). Raises ``ValueError`` for a negative
    quantity or price.
    """
    cart = _Cart.from_lines(lines)
    specs = fetch_rules(cart.by_product, at) if cart.keys else []
    return _evaluate(cart, specs)


def evaluate_rules(
    lines: Iterable[Any], rules: Iterable[tuple[BundleRule, Sequence[tuple[Model, int]]]]
) -> BundleEvaluation:
    """:func:`evaluate` against the given rules instead of the current ones; no query.

    ``rules`` are ``(rule, [(product instance, quantity), ...])`` pairs, saved or not, so the
    admin or a test can ask "what would this cart get under these rules?". Rules are used as
    given (active or not, whatever their campaign window).
    """
    cart = _Cart.from_lines(lines)
    products = _Products("default", [])
    specs = []
    for rule, items in rules:
        keys = []
        for product, quantity in items:
            key = _product_key(product)
            products[key] = product
            keys.append((key, int(quantity)))
        specs.append(_Rule(rule, keys, products))
    specs.sort(key=lambda spec: spec.order_key)
    return _evaluate(cart, specs)


def _evaluate(cart: _Cart, specs: list[_Rule]) -> BundleEvaluation:
    subtotal = cart.subtotal
    if not cart.keys or not specs:
        return BundleEvaluation(subtotal=subtotal, total=subtotal)
    problem, complete = _build(specs, cart)
    chosen, exact = _assign(problem, cart)
    applied = _group(problem, cart, chosen)
    total_discount = min(sum((a.discount for a in applied), ZERO), subtotal)
    return BundleEvaluation(
        applied=applied,
        total_discount=total_discount,
        subtotal=subtotal,
        total=max(ZERO, subtotal - total_discount),
        nudges=_nudges(specs, cart, problem, chosen),
        exact=exact and complete,
    )


# --- product page offers -------------------------------------------------------------------------


def _regular_total(spec: _Rule, product_key: Any) -> Decimal | None:
    """One bundle at current prices: the whole set, or N units of the given product."""
    if spec.d.kind == Kind.FIXED_SET:
        prices = [spec.price(key) for key, _ in spec.items]
        if any(p is None for p in prices):
            return None
        return sum((p * qty for p, (_, qty) in zip(prices, spec.items, strict=True)), ZERO)
    price = spec.price(product_key)
    return None if price is None else price * spec.needed


def _one_bundle_saving(spec: _Rule, product_key: Any) -> Decimal | None:
    regular = _regular_total(spec, product_key)
    return None if regular is None else application_discount(spec.d, regular)


def _offer(spec: _Rule, product_key: Any) -> BundleOffer | None:
    regular = _regular_total(spec, product_key)
    if regular is None or spec.price(product_key) is None:
        return None
    saving = application_discount(spec.rule, regular)
    if saving <= 0:
        return None
    partners = []
    if spec.rule.kind == Kind.FIXED_SET:
        partners = [spec.products[key] for key, _ in spec.items if key != product_key]
    product = spec.products[product_key]
    return BundleOffer(spec.rule, product, partners, spec.needed, regular, saving)


def offers_for_product(product: Any, at: datetime | None = None) -> list[BundleOffer]:
    """Current rules that include the product, each with the saving at current prices.

    The saving is one application: the whole set, or N units of this product for
    mix-and-match and multi-buy. At most one query: the result is cached (versioned keys, so
    any rule, item or product edit invalidates it) until the next campaign start or end
    among the product's rules, so a sale appears and disappears on time.
    """
    key = _product_key(product)
    if at is not None:
        return _offers(key, at)[0]
    cache_key = cache.make_key("bundle_offers", key)
    offers = cache.get(cache_key)
    if offers is None:
        offers, valid_for = _offers(key, timezone.now())
        cache.set(cache_key, offers, timeout=valid_for)
    return offers


def _offers(key: Any, at: datetime) -> tuple[list[BundleOffer], int]:
    """The offers at ``at`` and for how many seconds they stay right (the cache timeout)."""
    valid_for = int(app_settings.CACHE_TIMEOUT)
    offers = []
    for spec in fetch_rules([key], at, any_window=True):
        rule = spec.rule
        for boundary in (rule.starts_at, rule.ends_at):
            if boundary is not None and boundary > at:
                valid_for = min(valid_for, math.ceil((boundary - at).total_seconds()))
        if rule.is_current(at) and spec.lists(key):
            offer = _offer(spec, key)
            if offer is not None:
                offers.append(offer)
    offers.sort(key=lambda o: (-o.rule.priority, -o.saving, o.rule.slug))
    return offers, max(1, valid_for)


def preview(rule: BundleRule) -> BundleOffer | None:
    """One application of ``rule`` at its items' current prices (for the admin)."""
    items = list(rule.items.select_related("product").order_by("pk"))
    if not items:
        return None
    products = _Products(rule._state.db or "default", [])
    for item in items:
        products[item.product_id] = item.product
    spec = _Rule(rule, [(item.product_id, item.quantity) for item in items], products)
    if rule.kind == Kind.FIXED_SET:
        return _offer(spec, items[0].product_id)
    # Mix-and-match and multi-buy: the cheapest listed product, the least a customer saves.
    priced = [i for i in items if product_price(i.product) is not None]
    if not priced:
        return None
    cheapest = min(priced, key=lambda i: (product_price(i.product), str(i.product_id)))
    return _offer(spec, cheapest.product_id)


# --- messages ------------------------------------------------------------------------------------


def _names(products: Iterable[Model]) -> str:
    return gettext(", ").join(str(p) for p in products)


def _what(rule: BundleRule) -> dict[str, str]:
    value = Decimal(rule.value)
    return {
        "percent": format_percent(value),
        "amount": format_money(round_money(value)),
        "price": format_money(round_money(value)),
    }


def nudge_message(nudge: Nudge) -> str:
    rule = nudge.rule
    params = {**_what(rule), "count": nudge.units, "saving": format_money(nudge.saving)}
    if rule.kind == Kind.FIXED_SET:
        params["products"] = _names(item.product for item in nudge.missing)
        templates = {
            DiscountType.PERCENT: gettext("Add %(products)s to get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Add %(products)s to save %(amount)s"),
            DiscountType.FIXED_PRICE: gettext("Add %(products)s to get the set price %(price)s"),
        }
    else:
        templates = {
            DiscountType.PERCENT: gettext("Add %(count)d more to get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Add %(count)d more to save %(amount)s"),
            DiscountType.FIXED_PRICE: gettext(
                "Add %(count)d more to get the bundle price %(price)s"
            ),
        }
    return str(templates[rule.discount_type]) % params


def offer_message(offer: BundleOffer) -> str:
    rule = offer.rule
    params = {**_what(rule), "count": offer.units, "products": _names(offer.partners)}
    if rule.kind == Kind.FIXED_SET:
        templates = {
            DiscountType.PERCENT: gettext("Buy with %(products)s and get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Buy with %(products)s and save %(amount)s"),
            DiscountType.FIXED_PRICE: gettext("Buy with %(products)s for %(price)s in total"),
        }
    elif rule.kind == Kind.MULTI_BUY:
        templates = {
            DiscountType.PERCENT: gettext("Buy %(count)d and get %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Buy %(count)d and save %(amount)s"),
            DiscountType.FIXED_PRICE: gettext("%(count)d for %(price)s"),
        }
    else:
        templates = {
            DiscountType.PERCENT: gettext("Any %(count)d eligible items: %(percent)s%% off"),
            DiscountType.AMOUNT: gettext("Any %(count)d eligible items: save %(amount)s"),
            DiscountType.FIXED_PRICE: gettext("Any %(count)d eligible items for %(price)s"),
        }
    return str(templates[rule.discount_type]) % params


__all__ = [
    "AppliedBundle",
    "BundleEvaluation",
    "BundleOffer",
    "CartLine",
    "MissingItem",
    "Nudge",
    "application_discount",
    "evaluate",
    "evaluate_rules",
    "offers_for_product",
    "preview",
    "round_money",
]
