"""The bundle search: which applications of which rules give a cart the largest discount.

Pure: plain Python and ``Decimal`` on a cart of slots and rules described by
:class:`RuleData`; no ORM, no settings (the currency comes in as a :class:`Currency`). SciPy
(HiGHS) is imported only inside the two functions that use it, the LP dual bound and the
integer-programme fallback, so importing the bundles (and the template tags) does not load
NumPy or SciPy.

Why this module is about 700 lines, over the package's ~600: the branch and bound
(:class:`Search`, about 340 of them) is one class whose bounds, transposition table, LP
restart and MILP fallback all read and update the same search state; splitting it would
only turn that state into arguments passed between modules. The rest (slots, patterns,
components) is what the search runs on and nothing else uses.

1. Cart lines are pooled into *slots*, one per (product, unit price), sorted canonically, so
   the result never depends on the order of the lines (:class:`Cart`).
2. Every rule is expanded into *patterns* (:func:`patterns`): the ways one application of the
   rule can take units from the slots, each with its exact discount (percent, amount off or
   fixed bundle price, rounded to the currency, never more than the units' price).
3. Rules that share no slot are independent, so the rules are split into connected
   components (:func:`components`) and each component is solved exactly by a depth-first
   branch and bound (:class:`Search`) that decides, pattern by pattern, how many times it is
   used (most first, so a cart with hundreds of units stays a shallow search). Rules with the
   largest single discount go first; a greedy solution (always take the largest discount
   that fits) is the first incumbent; a transposition table skips states reached before from
   a better start; a branch is cut when its discount plus an upper bound cannot beat the
   incumbent. The bound is the smallest of: every unit left at the best per-unit discount a
   pattern gives it, every rule at its best discount as often as its cap and the units
   allow, and for components that need more than :data:`LP_AFTER_NODES` nodes the LP
   relaxation's dual prices (one HiGHS solve through SciPy). A component still open after
   :data:`MAX_NODES` more nodes is handed to HiGHS as an integer programme, which proves the
   optimum (discounts are whole currency quanta, so a zero gap is exact).
   Ties: among equally good assignments the one with more bundles of the highest-priority
   rule (then of its best pattern, then of the next rule...) wins, compared explicitly
   (:func:`tie_key`), so the order of the search does not matter.

The result is exact unless a rule has more than :data:`MAX_PATTERNS` ways to fill one bundle
or HiGHS runs out of :data:`MILP_SECONDS`; then the best assignment found is used, which is
never worse than the greedy one.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

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

# The values of ``BundleRule.Kind`` and ``BundleRule.DiscountType`` (tests check they match).
FIXED_SET = "fixed_set"
MIX_AND_MATCH = "mix_and_match"
MULTI_BUY = "multi_buy"
PERCENT = "percent"
AMOUNT = "amount"
FIXED_PRICE = "fixed_price"

ZERO = Decimal(0)
#: Rules without a maximum number of applications.
UNCAPPED = 10**9


class Currency(NamedTuple):
    """How amounts are rounded: the currency's smallest unit and a ``decimal`` rounding mode.

    Read once per evaluation from :mod:`django_crosssell.money` (``quantum()``,
    ``rounding_mode()``), so the search never touches the settings.
    """

    step: Decimal
    rounding: str


class RuleData(NamedTuple):
    """The columns of a rule the search reads, without a model instance."""

    pk: Any
    slug: str
    kind: str
    priority: int
    discount_type: str
    value: Decimal
    min_quantity: int | None
    max_applications: int | None
    combinable: bool


class RuleLike(Protocol):
    """What the search needs of a rule: its data and its items as (product key, quantity)."""

    d: RuleData
    items: list[tuple[Any, int]]


#: The caller's own rule type, carried through :class:`Problem` so that the caller reads its
#: specs back with their full type (the evaluation's ``Rule`` has ``rule``, ``price()``...).
SpecT = TypeVar("SpecT", bound=RuleLike)


def discount(discount_type: str, value: Decimal, base: Decimal, currency: Currency) -> Decimal:
    """Discount of one application whose units cost ``base`` at regular prices.

    Rounded to the currency, never negative and never more than ``base`` (rounded down to the
    currency, so a cheap set with an odd price cannot be "discounted" past zero).
    """
    if base <= 0:
        return ZERO
    step, rounding = currency
    if discount_type == PERCENT:
        amount = (base * value / 100).quantize(step, rounding=rounding)
    elif discount_type == AMOUNT:
        amount = value.quantize(step, rounding=rounding)
    else:
        amount = (base - value).quantize(step, rounding=rounding)
    ceiling = base.quantize(step, rounding=decimal.ROUND_DOWN)
    return max(ZERO, min(amount, ceiling))


# --- the cart as slots, rules as patterns ------------------------------------------------------


@dataclass
class Cart:
    keys: list[Any]  # product key per slot
    prices: list[Decimal]  # unit price per slot
    quantities: list[int]
    by_product: dict[Any, list[int]]  # product key -> slot indices, most expensive first

    @classmethod
    def from_pooled(cls, pooled: dict[tuple[Any, Decimal], int]) -> Cart:
        """The cart of ``{(product key, unit price): units}``, slots in canonical order.

        Sorting the slots by what they are (not by line order) makes every result
        independent of the order of the cart's lines.
        """
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

    def with_added(self, additions: dict[Any, tuple[int, Decimal]]) -> Cart:
        """This cart plus some units, keeping every existing slot's index.

        Keeping the indices lets a nudge reuse the patterns of every rule that does not list
        an added product instead of rebuilding them.
        """
        cart = Cart(
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
class Pattern:
    units: tuple[tuple[int, int], ...]  # (slot, count)
    base: Decimal
    discount: Decimal
    rate: float  # discount per unit, for the bound
    amount: float  # the discount as a float, for the bound


def fillings(slots: Sequence[int], caps: Sequence[int], n: int, limit: int) -> list[list]:
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


def patterns(spec: RuleLike, cart: Cart, currency: Currency) -> tuple[list[Pattern], bool]:
    """Every way one application of the rule can be filled from the cart, best first.

    The second value is False when the rule has more fillings than :data:`MAX_PATTERNS`.
    """
    rule = spec.d
    fills: list[list[tuple[int, int]]] = []
    complete = True
    if rule.kind == FIXED_SET:
        if len(spec.items) < 1:
            return [], True
        per_item = []
        for key, qty in spec.items:
            slots = cart.by_product.get(key, [])
            options = fillings(slots, [cart.quantities[s] for s in slots], qty, MAX_PATTERNS)
            if not options:
                return [], True
            per_item.append(options)
        for combo in itertools.islice(itertools.product(*per_item), MAX_PATTERNS + 1):
            fills.append([unit for part in combo for unit in part])
    else:
        n = int(rule.min_quantity or 0)
        if n < 1:
            return [], True
        if rule.kind == MULTI_BUY:
            groups = [cart.by_product.get(key, []) for key, _ in spec.items]
        else:
            listed = [s for key, _ in spec.items for s in cart.by_product.get(key, [])]
            groups = [sorted(listed, key=lambda s: (-cart.prices[s], cart.canon(s)))]
        for slots in groups:
            fills += fillings(slots, [cart.quantities[s] for s in slots], n, MAX_PATTERNS + 1)
    if len(fills) > MAX_PATTERNS:
        complete = False
        fills = fills[:MAX_PATTERNS]
    found = []
    for fill in fills:
        units = tuple(sorted(fill))
        base = sum((cart.prices[s] * c for s, c in units), ZERO)
        amount = discount(rule.discount_type, rule.value, base, currency)
        if amount > 0:
            size = sum(c for _, c in units)
            found.append(Pattern(units, base, amount, float(amount) / size, float(amount)))
    found.sort(key=lambda p: (-p.discount, sorted((cart.canon(s), c) for s, c in p.units)))
    return found, complete


# --- the search --------------------------------------------------------------------------------


@dataclass
class Problem(Generic[SpecT]):
    specs: Sequence[SpecT]
    patterns: list[list[Pattern]]
    caps: list[int]
    currency: Currency


def cap(spec: RuleLike) -> int:
    return int(spec.d.max_applications) if spec.d.max_applications else UNCAPPED


def components(problem: Problem, allowed: set[int] | None = None) -> list[list[int]]:
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


def tie_key(applications: list[tuple[int, int]]) -> tuple:
    """Order of equally good assignments; smaller wins.

    ``applications`` are (rule index, pattern index) with rules in priority order and patterns
    best first. Sorted, with a sentinel, lexicographic comparison means: the assignment with
    more applications of the highest-priority rule (then of its best pattern, ...) wins. The
    order is kept when the same applications are added to both sides, which makes the
    transposition pruning in `Search._dfs` safe.
    """
    return (*sorted(applications), (_SENTINEL,))


_SENTINEL = float("inf")


class Search:
    """Exact branch and bound for one component; see the module docstring."""

    def __init__(self, problem: Problem, members: list[int], quantities: list[int]) -> None:
        # Search order: largest single discount first (finds good assignments early, which
        # cuts far more branches than priority order); ties are settled by `_tie`, not order.
        members = sorted(members, key=lambda i: (-problem.patterns[i][0].discount, i))
        self.members = members
        self.patterns = [problem.patterns[i] for i in members]
        self.caps = [problem.caps[i] for i in members]
        self.step = problem.currency.step
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
        self.seen: dict[tuple, tuple[Decimal, tuple[tuple[int, int, int], ...]]] = {}
        self.best_value = ZERO
        self.best_float = 0.0
        self.best_key: tuple = tie_key([])
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
        path: list[tuple[int, int, int]] = []  # (rule, pattern, times) runs, as in `_dfs`
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
        return tie_key(self._expand(path))

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
        capped = [r for r in range(len(self.patterns)) if self.caps[r] < UNCAPPED]
        matrix = np.zeros((n_slots + len(capped), len(columns)))
        row_of = {r: n_slots + n for n, r in enumerate(capped)}
        step = self.step
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
        # Strict: a branch that can only tie may still win the tie (see `tie_key`).
        if i == len(self.patterns):
            return value < self.best_float
        return value + self.bound(i, j, used, self.best_float - value) < self.best_float

    def _dfs(
        self, i: int, j: int, used: int, value: Decimal, path: list[tuple[int, int, int]]
    ) -> None:
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
class Solution:
    applications: list[tuple[int, Pattern]]  # (rule index in problem, pattern)
    exact: bool


def solve(
    problem: Problem,
    quantities: list[int],
    only: Iterable[int] | None = None,
    seed: Sequence[tuple[int, tuple]] = (),
) -> Solution:
    """Best assignment of non-combinable rules; ``only`` restricts it to some rules."""
    allowed = None if only is None else set(only)
    applications: list[tuple[int, Pattern]] = []
    exact = True
    for members in components(problem, allowed):
        search = Search(problem, members, quantities)
        for rule_index, k in search.run(seed):
            applications.append((rule_index, problem.patterns[rule_index][k]))
        exact = exact and not search.exhausted
    return Solution(applications, exact)


def build(specs: Sequence[SpecT], cart: Cart, currency: Currency) -> tuple[Problem[SpecT], bool]:
    """The search problem of ``specs`` on ``cart``; False if a rule's fillings were cut."""
    per_rule, complete = [], True
    for spec in specs:
        found, ok = patterns(spec, cart, currency)
        per_rule.append(found)
        complete = complete and ok
    return Problem(specs, per_rule, [cap(spec) for spec in specs], currency), complete
