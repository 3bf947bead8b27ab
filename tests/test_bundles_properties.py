"""Property tests of bundle evaluation (hypothesis).

The engine is checked against an independent, deliberately naive model written here: its own
enumeration of the ways to fill a bundle, its own discount arithmetic, a greedy assignment
and, for small carts, a brute force over every assignment. ``evaluate_rules`` runs the real
engine on in-memory rules, so thousands of carts cost no database round trips; the one-query
database path is covered by tests/test_bundles.py.
"""

from __future__ import annotations

import itertools
import random
from decimal import ROUND_HALF_UP, Decimal
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_crosssell.bundles import CartLine, evaluate_rules, solver
from django_crosssell.models import BundleRule
from tests.testapp.models import Product

KINDS = list(BundleRule.Kind.values)
TYPES = list(BundleRule.DiscountType.values)
PRICES = [1, 5, 99, 100, 333, 980, 1005, 1500, 2999]

pytestmark = pytest.mark.slow  # thousands of generated carts: about 15 s

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenarios(draw, combinable=True, max_products=5, max_quantity=4):
    n_products = draw(st.integers(2, max_products))
    products = [
        Product(name=f"P{i}", sku=f"P{i}", price=Decimal(draw(st.sampled_from(PRICES))))
        for i in range(n_products)
    ]
    rules = []
    for r in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(KINDS))
        discount_type = draw(st.sampled_from(TYPES))
        if discount_type == "percent":
            value = Decimal(draw(st.sampled_from(["0.5", "5", "10", "12.5", "15", "33", "100"])))
        elif discount_type == "amount":
            value = Decimal(draw(st.integers(0, 3000)))
        else:
            value = Decimal(draw(st.integers(0, 6000)))
        if kind == "fixed_set":
            listed = draw(st.lists(st.sampled_from(products), min_size=2, max_size=3, unique=True))
            items = [(p, draw(st.integers(1, 2))) for p in listed]
            n = None
        else:
            listed = draw(st.lists(st.sampled_from(products), min_size=1, max_size=3, unique=True))
            items = [(p, 1) for p in listed]
            n = draw(st.integers(2, 3))
        rule = BundleRule(
            name=f"Rule {r}",
            slug=f"rule-{r}",
            kind=kind,
            discount_type=discount_type,
            value=value,
            min_quantity=n,
            max_applications=draw(st.sampled_from([None, 1, 2])),
            combinable=draw(st.booleans()) if combinable else False,
            priority=draw(st.integers(0, 2)),
        )
        rules.append((rule, items))
    quantities = [draw(st.integers(0, max_quantity)) for _ in products]
    lines = [CartLine(p, q, p.price) for p, q in zip(products, quantities, strict=True) if q]
    return products, rules, lines


# --- the naive model ---------------------------------------------------------------------------


def naive_discount(rule: BundleRule, base: Decimal) -> Decimal:
    """Yen, half up (the test settings' defaults), never below 0 nor above the units' price."""
    if rule.discount_type == "percent":
        d = (base * rule.value / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    elif rule.discount_type == "amount":
        d = rule.value
    else:
        d = base - rule.value
    return max(Decimal(0), min(d, base))


def naive_fillings(rule: BundleRule, items):
    """Every way to fill one bundle, as {product pk: units}."""
    if rule.kind == "fixed_set":
        return [{p.pk: q for p, q in items}]
    listed = [p for p, _ in items]
    if rule.kind == "multi_buy":
        return [{p.pk: rule.min_quantity} for p in listed]
    fills = []
    for combo in itertools.combinations_with_replacement(listed, rule.min_quantity):
        fill: dict = {}
        for p in combo:
            fill[p.pk] = fill.get(p.pk, 0) + 1
        fills.append(fill)
    return fills


def naive_options(rules, cart_prices):
    prices = {p.pk: p.price for _, items in rules for p, _ in items} | cart_prices
    options = []
    for index, (rule, items) in enumerate(rules):
        for fill in naive_fillings(rule, items):
            base = sum((prices[pk] * n for pk, n in fill.items()), Decimal(0))
            d = naive_discount(rule, base)
            if d > 0:
                options.append((index, fill, d))
    return options


def fits(fill, stock):
    return all(stock.get(pk, 0) >= n for pk, n in fill.items())


def naive_greedy(rules, lines) -> Decimal:
    prices = {line.product.pk: line.unit_price for line in lines}
    stock = {line.product.pk: line.quantity for line in lines}
    options = naive_options(rules, prices)
    used = [0] * len(rules)
    total = Decimal(0)
    while True:
        feasible = [
            (d, -i, fill)
            for i, fill, d in options
            if fits(fill, stock) and used[i] < (rules[i][0].max_applications or 10**9)
        ]
        if not feasible:
            return total
        d, neg_i, fill = max(feasible, key=lambda t: (t[0], t[1]))
        used[-neg_i] += 1
        total += d
        for pk, n in fill.items():
            stock[pk] -= n


def brute_force(rules, lines) -> Decimal:
    prices = {line.product.pk: line.unit_price for line in lines}
    options = naive_options(rules, prices)

    def best(k: int, stock: dict, used: tuple) -> Decimal:
        if k == len(options):
            return Decimal(0)
        index, fill, d = options[k]
        result = best(k + 1, stock, used)  # this option no (more) times
        cap = rules[index][0].max_applications or 10**9
        if used[index] < cap and fits(fill, stock):
            stock2 = {pk: stock[pk] - fill.get(pk, 0) for pk in stock}
            used2 = (*used[:index], used[index] + 1, *used[index + 1 :])
            result = max(result, d + best(k, stock2, used2))  # once more, maybe again
        return result

    stock = {line.product.pk: line.quantity for line in lines}
    for fill_products in (f for _, f, _ in options):
        for pk in fill_products:
            stock.setdefault(pk, 0)
    return best(0, stock, (0,) * len(rules))


def signature(result):
    return (
        result.total_discount,
        sorted((a.rule.slug, a.times, sorted(a.units.items()), a.discount) for a in result.applied),
        [
            (n.rule.slug, [(m.product.pk, m.quantity) for m in n.missing], n.saving)
            for n in result.nudges
        ],
    )


# --- properties ----------------------------------------------------------------------------------


@SETTINGS
@given(scenarios())
def test_discount_never_exceeds_what_it_covers_and_totals_never_go_negative(scenario):
    _products, rules, lines = scenario
    result = evaluate_rules(lines, rules)
    assert result.total >= 0
    assert result.total == result.subtotal - result.total_discount
    assert result.total_discount <= result.subtotal
    assert result.total_discount == sum((a.discount for a in result.applied), Decimal(0))
    stock = {line.product.pk: line.quantity for line in lines}
    plain_units: dict = {}
    for applied in result.applied:
        assert 0 < applied.discount <= applied.covered_subtotal
        assert applied.discount == applied.discount.quantize(Decimal(1))
        cap = applied.rule.max_applications
        assert cap is None or applied.times <= cap
        for pk, n in applied.units.items():
            assert n <= stock[pk]
            if not applied.rule.combinable:
                plain_units[pk] = plain_units.get(pk, 0) + n
    # each unit in at most one non-combinable bundle
    assert all(n <= stock[pk] for pk, n in plain_units.items())


@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_line_order_or_line_splits(scenario, rnd: random.Random):
    _products, rules, lines = scenario
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    split = []
    for line in shuffled:  # the same product on two lines must count as one
        if line.quantity > 1 and rnd.random() < 0.5:
            split += [line._replace(quantity=1), line._replace(quantity=line.quantity - 1)]
        else:
            split.append(line)
    reordered_rules = list(rules)
    rnd.shuffle(reordered_rules)
    assert signature(evaluate_rules(split, reordered_rules)) == signature(
        evaluate_rules(lines, rules)
    )


@SETTINGS
@given(scenarios(combinable=False))
def test_at_least_the_greedy_assignment(scenario):
    _products, rules, lines = scenario
    result = evaluate_rules(lines, rules)
    assert result.total_discount >= naive_greedy(rules, lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(combinable=False, max_products=4, max_quantity=3))
def test_optimal_against_brute_force(scenario):
    _products, rules, lines = scenario
    result = evaluate_rules(lines, rules)
    assert result.exact
    assert result.total_discount == brute_force(rules, lines)


@SETTINGS
@given(scenarios())
def test_nudges_are_honest(scenario):
    """Adding what a nudge names really earns at least the promised saving more."""
    _products, rules, lines = scenario
    result = evaluate_rules(lines, rules)
    for nudge in result.nudges:
        assert nudge.saving > 0
        assert 0 < nudge.units <= 2
        added = lines + [CartLine(m.product, m.quantity, m.product.price) for m in nudge.missing]
        assert evaluate_rules(added, rules).total_discount >= result.total_discount + nudge.saving


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(combinable=False, max_products=4, max_quantity=3))
def test_optimal_with_the_lp_dual_bound(scenario):
    """The same exactness when every component goes straight to the LP dual bound."""
    _products, rules, lines = scenario
    with mock.patch.object(solver, "LP_AFTER_NODES", 0):
        result = evaluate_rules(lines, rules)
    assert result.exact
    assert result.total_discount == brute_force(rules, lines)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(combinable=False, max_products=4, max_quantity=3))
def test_optimal_through_the_integer_programme_fallback(scenario):
    """Exact too when the search gives up at once and HiGHS solves the component."""
    _products, rules, lines = scenario
    with (
        mock.patch.object(solver, "LP_AFTER_NODES", 0),
        mock.patch.object(solver, "MAX_NODES", 0),
    ):
        result = evaluate_rules(lines, rules)
    assert result.exact
    assert result.total_discount == brute_force(rules, lines)
