"""Evaluating a cart: the assignment of bundles to its units, and "add 1 more" nudges.

The storefront, the REST API and the example shop's checkout all call :func:`evaluate`, so the
amount a customer sees on the cart page is the amount checkout charges.

1. The cart's lines become a :class:`~django_crosssell.bundles.solver.Cart` of slots
   (:func:`cart_from_lines`); every product goes through the adapter's ``canonical_ids()``,
   so a variant counts as its parent product for bundle matching.
2. The rules are read in one query (:func:`~django_crosssell.bundles.rules.fetch_rules`).
3. Non-combinable rules compete for units (each unit in at most one of their bundles) and
   are solved exactly by :mod:`~django_crosssell.bundles.solver`.
4. Combinable rules may additionally apply to units already in a bundle. Each is solved on
   the whole cart on its own, and its discount is capped by what the covered lines have left
   after the discounts before it, so the lines (and the total) never go below zero
   (:func:`assign`).
5. Nudges: for rules that are nearly met (at most :data:`NUDGE_MAX_MISSING` units short of
   one more application), the cheapest units to add are found and the rules they touch are
   re-solved with them (starting from the current assignment) to report the saving they would
   really unlock, competition included (:func:`nudges`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model

from ..adapter import get_adapter
from ..customers.audiences import Resolver, allowed
from ..models import BundleRule
from ..money import to_decimal
from ..products import product_key
from .rules import Products, Rule, currency, fetch_rules
from .solver import (
    FIXED_SET,
    MULTI_BUY,
    ZERO,
    Cart,
    Pattern,
    Problem,
    build,
    cap,
    patterns,
    solve,
)
from .types import AppliedBundle, BundleEvaluation, MissingItem, Nudge

#: A rule is "nearly met" when one more application needs at most this many more units.
NUDGE_MAX_MISSING = 2
#: Nudges returned per cart, best first.
MAX_NUDGES = 3


def cart_from_lines(lines: Iterable[Any]) -> Cart:
    """The cart of ``lines``: ``(product, quantity, unit_price)`` tuples or objects with them.

    The lines are read by the adapter's ``cart_lines()``, so whatever a cart tag accepts
    (the host's cart object or line objects, such as Oscar's basket) evaluates here too.
    Products are instances or keys (:func:`~django_crosssell.products.product_key`), mapped
    to their canonical product in one ``canonical_ids()`` call. Raises ``ValueError`` for a
    negative or fractional quantity, a negative price or a bad product key.
    """
    parsed: list[tuple[Any, Decimal, int]] = []
    # Instances go to canonical_ids() as instances: the adapter answers them from their own
    # fields (a variant's parent_id), where bare keys may cost it a query.
    given: dict[Any, Any] = {}
    for product, quantity, unit_price in get_adapter().cart_lines(lines):
        if isinstance(quantity, bool) or int(quantity) != quantity or quantity < 0:
            raise ValueError(f"quantity must be a non-negative integer, not {quantity!r}")
        price = to_decimal(unit_price)
        if not price.is_finite() or price < 0:
            raise ValueError(f"unit price must be a non-negative amount, not {unit_price!r}")
        if quantity == 0:
            continue
        key = product_key(product)
        given.setdefault(key, product)
        parsed.append((key, price, int(quantity)))
    canonical = get_adapter().canonical_ids(list(given.values())) if given else {}
    pooled: dict[tuple[Any, Decimal], int] = {}
    for key, price, quantity in parsed:
        slot = (canonical.get(key, key), price)
        pooled[slot] = pooled.get(slot, 0) + quantity
    return Cart.from_pooled(pooled)


def group(
    problem: Problem[Rule], cart: Cart, chosen: list[tuple[int, Pattern, Decimal]]
) -> list[AppliedBundle]:
    """The chosen bundles as one :class:`AppliedBundle` per rule, largest discount first."""
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


def assign(
    problem: Problem[Rule], cart: Cart, seed: Sequence[tuple[int, tuple]] = ()
) -> tuple[list[tuple[int, Pattern, Decimal]], bool]:
    """Non-combinable rules first, then each combinable rule within what the lines have left."""
    rules = problem.specs
    plain = [i for i, spec in enumerate(rules) if not spec.d.combinable]
    solution = solve(problem, list(cart.quantities), plain, seed)
    headroom = [p * q for p, q in zip(cart.prices, cart.quantities, strict=True)]
    chosen: list[tuple[int, Pattern, Decimal]] = []

    def charge(pattern: Pattern, discount: Decimal) -> Decimal:
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
        extra = solve(problem, list(cart.quantities), [index])
        exact = exact and extra.exact
        for _, pattern in extra.applications:
            granted = charge(pattern, pattern.discount)
            if granted > 0:
                chosen.append((index, pattern, granted))
    return chosen, exact


def nudge_candidates(
    problem: Problem[Rule], cart: Cart, chosen: list[tuple[int, Pattern, Decimal]]
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
        if times.get(index, 0) >= cap(spec):
            continue
        available = everything if rule.combinable else unbundled
        missing: dict[Any, int] = {}
        if rule.kind == FIXED_SET:
            for key, qty in spec.items:
                short = qty - available.get(key, 0)
                if short > 0:
                    missing[key] = short
            if len(missing) == len(spec.items):
                continue  # nothing of the set is left in the cart: not "nearly" met
        elif rule.kind == MULTI_BUY:
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


def rules_by_product(specs: list[Rule]) -> dict[Any, list[int]]:
    by_product: dict[Any, list[int]] = {}
    for index, spec in enumerate(specs):
        for key, _qty in spec.items:
            by_product.setdefault(key, []).append(index)
    return by_product


def closure(
    specs: list[Rule], by_product: dict[Any, list[int]], start: int, cart: Cart
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


def nudges(
    specs: list[Rule],
    cart: Cart,
    problem: Problem[Rule],
    chosen: list[tuple[int, Pattern, Decimal]],
) -> list[Nudge]:
    """Re-solve the part of the cart each candidate touches, with the missing units added."""
    candidates = []
    for index, missing in nudge_candidates(problem, cart, chosen):
        spec = specs[index]
        estimate = spec.one_bundle_saving(next(iter(missing)), problem.currency) or ZERO
        units = sum(missing.values())
        candidates.append((units, -estimate, spec.order_key, index, missing))
    candidates.sort(key=lambda c: c[:3])
    by_product = rules_by_product(specs) if candidates else {}
    found = []
    for _units, _estimate, _order, index, missing in candidates[: MAX_NUDGES * 3]:
        spec = specs[index]
        additions = {key: (qty, spec.price(key) or ZERO) for key, qty in missing.items()}
        bigger = cart.with_added(additions)
        members = closure(specs, by_product, index, bigger)
        sub_specs = [specs[i] for i in members]
        sub_patterns = [
            patterns(specs[i], bigger, problem.currency)[0]
            if any(key in additions for key, _qty in specs[i].items)
            else problem.patterns[i]
            for i in members
        ]
        sub_problem = Problem(
            sub_specs, sub_patterns, [cap(spec) for spec in sub_specs], problem.currency
        )
        # The cart's current assignment still fits the bigger cart: a strong first incumbent.
        position = {rule: i for i, rule in enumerate(members)}
        seed = [
            (position[i], pattern.units)
            for i, pattern, _ in chosen
            if i in position and not specs[i].d.combinable
        ]
        new_chosen, _ = assign(sub_problem, bigger, seed)
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
        found.append(Nudge(spec.rule, items, saving))
        if len(found) == MAX_NUDGES:
            break
    found.sort(key=lambda n: (n.units, -n.saving, -n.rule.priority, n.rule.slug))
    return found


def evaluate(
    lines: Iterable[Any], at: datetime | None = None, *, user: Any = None
) -> BundleEvaluation:
    """Bundle discounts a cart earns, and what would unlock more.

    ``lines`` are :class:`CartLine` or ``(product, quantity, unit_price)`` tuples (or objects
    with those three attributes), where the product is an instance or a primary key. Reads
    the rules with one query (none for an empty cart). Raises ``ValueError`` for a negative
    quantity or price.

    ``user`` is the customer (a user, or None for a visitor who is not logged in): rules
    restricted to an audience apply only to its members, and a visitor matches only
    audiences that include anonymous visitors.
    """
    cart = cart_from_lines(lines)
    specs = fetch_rules(cart.by_product, at) if cart.keys else []
    resolve = Resolver(user)  # asks who the customer is only when a rule is restricted
    specs = [spec for spec in specs if allowed(spec.audience_id, resolve)]
    return evaluate_cart(cart, specs)


def evaluate_rules(
    lines: Iterable[Any], rules: Iterable[tuple[BundleRule, Sequence[tuple[Model, int]]]]
) -> BundleEvaluation:
    """:func:`evaluate` against the given rules instead of the current ones; no query.

    ``rules`` are ``(rule, [(product instance, quantity), ...])`` pairs, saved or not, so the
    admin or a test can ask "what would this cart get under these rules?". Rules are used as
    given (active or not, whatever their campaign window).
    """
    cart = cart_from_lines(lines)
    products = Products("default", [])
    specs = []
    for rule, items in rules:
        keys = []
        for product, quantity in items:
            key = product_key(product)
            products[key] = product
            keys.append((key, int(quantity)))
        specs.append(Rule(rule, keys, products))
    specs.sort(key=lambda spec: spec.order_key)
    return evaluate_cart(cart, specs)


def evaluate_cart(cart: Cart, specs: list[Rule]) -> BundleEvaluation:
    """The evaluation of a parsed cart against ``specs`` (no query)."""
    subtotal = cart.subtotal
    if not cart.keys or not specs:
        return BundleEvaluation(subtotal=subtotal, total=subtotal)
    problem, complete = build(specs, cart, currency())
    chosen, exact = assign(problem, cart)
    applied = group(problem, cart, chosen)
    total_discount = min(sum((a.discount for a in applied), ZERO), subtotal)
    return BundleEvaluation(
        applied=applied,
        total_discount=total_discount,
        subtotal=subtotal,
        total=max(ZERO, subtotal - total_discount),
        nudges=nudges(specs, cart, problem, chosen),
        exact=exact and complete,
    )
