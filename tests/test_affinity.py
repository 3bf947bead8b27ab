"""The pure engine (no database): exact metrics, options, bad input, and Groceries vs mlxtend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from django_crosssell import affinity, evaluation
from django_crosssell.conf import DEFAULTS, METRIC_CHOICES
from tests.reference import GROCERIES, mlxtend_pair_rules, read_groceries


def lines(*baskets):
    return affinity.baskets_to_lines(baskets)


def pairs(result):
    frame = result.to_frame()
    return {(row.source, row.target): row for row in frame.itertuples(index=False)}


def test_metric_choices_match_the_engine():
    assert tuple(METRIC_CHOICES) == affinity.METRICS
    assert DEFAULTS["METRIC"] == affinity.DEFAULT_METRIC
    assert DEFAULTS["MIN_CO_COUNT"] == affinity.DEFAULT_MIN_CO_COUNT
    assert DEFAULTS["TOP_K"] == affinity.DEFAULT_TOP_K
    assert DEFAULTS["METRIC"] != "lift"


def test_hand_computed_metrics():
    # 5 orders: a in 4, b in 3, c in 2, d in 1; {a,b} in 3 orders, {a,c} in 2, {b,c} in 1.
    orders, products = lines("ab", "ab", "abc", "ac", "d")
    result = affinity.compute_affinity(
        orders, products, min_co_count=1, top_k=None, metric="confidence"
    )
    got = pairs(result)
    ab = got[("a", "b")]
    assert ab.co_count == 3
    assert ab.support == pytest.approx(3 / 5, abs=1e-15)
    assert ab.confidence == pytest.approx(3 / 4, abs=1e-15)
    assert ab.lift == pytest.approx((3 / 4) / (3 / 5), abs=1e-15)
    assert got[("b", "a")].confidence == pytest.approx(1.0)
    assert got[("c", "a")].co_count == 2
    assert ("a", "d") not in got and ("d", "a") not in got
    assert result.n_orders == 5
    assert result.n_products == 4
    assert dict(zip(result.product_ids, result.item_counts, strict=True)) == {
        "a": 4,
        "b": 3,
        "c": 2,
        "d": 1,
    }


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("co_count", 3.0),
        ("support", 3 / 5),
        ("confidence", 3 / 4),
        ("lift", (3 / 4) / (3 / 5)),
        ("cosine", 3 / np.sqrt(4 * 3)),
        ("jaccard", 3 / (4 + 3 - 3)),
    ],
)
def test_each_metric_is_the_score(metric, expected):
    orders, products = lines("ab", "ab", "abc", "ac", "d")
    got = pairs(affinity.compute_affinity(orders, products, min_co_count=1, metric=metric))
    assert got[("a", "b")].score == pytest.approx(expected, abs=1e-12)


def test_a_product_bought_several_times_in_one_order_counts_once():
    orders = [1, 1, 1, 2, 2]
    products = ["a", "a", "b", "a", "b"]
    result = affinity.compute_affinity(orders, products, min_co_count=1)
    got = pairs(result)
    assert got[("a", "b")].co_count == 2
    assert got[("a", "b")].confidence == 1.0
    assert list(result.item_counts) == [2, 2]


def test_min_co_count_and_top_k_keep_the_best_partners_in_order():
    baskets = ["ab"] * 5 + ["ac"] * 3 + ["ad"] * 1 + ["b", "c", "d"] * 2
    orders, products = lines(*baskets)
    result = affinity.compute_affinity(orders, products, min_co_count=2, top_k=1, metric="co_count")
    frame = result.to_frame()
    a_partners = frame[frame.source == "a"]
    assert list(a_partners.target) == ["b"]
    everything = affinity.compute_affinity(
        orders, products, min_co_count=2, top_k=None, metric="co_count"
    ).to_frame()
    assert list(everything[everything.source == "a"].target) == ["b", "c"]  # d has 1 order
    assert ("d" not in set(everything.source)) and ("d" not in set(everything.target))


def test_ties_are_broken_by_target_in_first_seen_order():
    orders, products = lines("abc", "acb")
    frame = affinity.compute_affinity(orders, products, min_co_count=1).to_frame()
    assert list(frame[frame.source == "a"].target) == ["b", "c"]


def test_raw_lift_prefers_rare_pairs_which_is_why_it_is_not_the_default():
    baskets = ["ab"] * 50 + ["a"] * 50 + ["b"] * 20 + ["xy"] * 2 + ["c"] * 30
    orders, products = lines(*baskets)
    lift = affinity.compute_affinity(orders, products, min_co_count=1, metric="lift")
    assert pairs(lift)[("x", "y")].lift > pairs(lift)[("a", "b")].lift
    default = affinity.compute_affinity(orders, products, min_co_count=2)
    assert pairs(default)[("a", "b")].score > 0
    assert ("x", "y") in pairs(default)  # two orders pass min_co_count=2 ...
    assert affinity.compute_affinity(orders, products, min_co_count=3).to_frame().shape[0] == 2


def test_missing_products_and_orders_are_dropped():
    orders = np.array([1, 1, 1, 2, 2, None, 3], dtype=object)
    products = np.array(["a", None, "b", "a", "b", "a", np.nan], dtype=object)
    result = affinity.compute_affinity(orders, products, min_co_count=1)
    assert result.n_orders == 2  # order 3 only had a deleted product
    assert result.n_lines == 4
    assert pairs(result)[("a", "b")].support == 1.0


@pytest.mark.parametrize(
    "baskets",
    [[], ["a", "b", "c", "a"], ["a"]],
    ids=["no orders", "one-item orders only", "a single order"],
)
def test_no_pairs_is_an_empty_result_not_an_error(baskets):
    orders, products = lines(*baskets)
    result = affinity.compute_affinity(orders, products, min_co_count=1)
    assert result.n_pairs == 0
    assert result.to_frame().empty
    assert result.n_orders == len(baskets)


def test_one_item_orders_count_in_the_totals():
    orders, products = lines("ab", "ab", "a", "c")
    ab = pairs(affinity.compute_affinity(orders, products, min_co_count=1))[("a", "b")]
    assert ab.support == 2 / 4
    assert ab.confidence == 2 / 3


def test_blocked_computation_equals_one_block():
    rng = np.random.default_rng(7)
    baskets = [rng.choice(60, size=rng.integers(1, 9), replace=False) for _ in range(800)]
    orders, products = lines(*baskets)
    whole = affinity.compute_affinity(orders, products, min_co_count=1, top_k=5)
    calls = []
    blocked = affinity.compute_affinity(
        orders,
        products,
        min_co_count=1,
        top_k=5,
        block_budget=50,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
    )
    pd.testing.assert_frame_equal(whole.to_frame(), blocked.to_frame())
    assert len(calls) > 10
    assert calls[-1] == ("pairs", 60, 60)


def test_pair_blocks_concatenate_to_the_whole_result():
    rng = np.random.default_rng(11)
    baskets = [rng.choice(40, size=rng.integers(1, 7), replace=False) for _ in range(500)]
    orders, products = lines(*baskets)
    matrix = affinity.build_basket_matrix(orders, products)
    whole = affinity.compute_pairs(matrix, min_co_count=1, top_k=4)
    blocks = list(affinity.iter_pair_blocks(matrix, min_co_count=1, top_k=4, min_blocks=6))
    assert len(blocks) >= 6
    sources = np.concatenate([block.source for block in blocks])
    assert (np.diff(sources) >= 0).all()  # blocks follow the product order
    for name in ("source", "target", "co_count", "support", "confidence", "lift", "score"):
        joined = np.concatenate([getattr(block, name) for block in blocks])
        np.testing.assert_array_equal(joined, getattr(whole, name))


def test_pair_blocks_check_arguments_before_computing():
    matrix = affinity.build_basket_matrix(*lines("ab"))
    with pytest.raises(affinity.AffinityInputError, match="min_co_count"):
        affinity.iter_pair_blocks(matrix, min_co_count=0)
    assert [block.n_pairs for block in affinity.iter_pair_blocks(matrix, min_co_count=5)] == [0]


def test_lookback_window_drops_old_orders():
    now = datetime(2026, 1, 31, tzinfo=UTC)
    orders = [1, 1, 2, 2, 3, 3]
    products = ["a", "b", "a", "b", "a", "c"]
    placed = [now - timedelta(days=d) for d in (1, 1, 5, 5, 100, 100)]
    result = affinity.compute_affinity(
        orders, products, placed, lookback_days=30, now=now, min_co_count=1
    )
    got = pairs(result)
    assert set(got) == {("a", "b"), ("b", "a")}
    assert result.n_orders == 2


def test_half_life_weighs_recent_orders_more_and_keeps_integer_counts():
    now = datetime(2026, 1, 31, tzinfo=UTC)
    # {a,b} bought long ago, {a,c} recently: equal counts, decay must prefer c.
    orders = [1, 1, 2, 2, 3, 3, 4, 4]
    products = ["a", "b", "a", "b", "a", "c", "a", "c"]
    placed = [now - timedelta(days=d) for d in (60, 60, 60, 60, 0, 0, 0, 0)]
    plain = pairs(affinity.compute_affinity(orders, products, placed, now=now, min_co_count=1))
    assert plain[("a", "b")].score == plain[("a", "c")].score
    decayed = affinity.compute_affinity(
        orders, products, placed, now=now, half_life_days=30, min_co_count=1, metric="confidence"
    )
    got = pairs(decayed)
    assert got[("a", "c")].score > got[("a", "b")].score
    assert got[("a", "b")].co_count == 2  # counts stay integers
    # Weights 0.25 (60 days = two half-lives) and 1: confidence of a->c is 2 / 2.5.
    assert got[("a", "c")].confidence == pytest.approx(2 / 2.5)
    assert list(decayed.to_frame()[decayed.to_frame().source == "a"].target) == ["c", "b"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "magic"}, "Unknown metric"),
        ({"min_co_count": 0}, "min_co_count"),
        ({"top_k": 0}, "top_k"),
        ({"lookback_days": 30}, "placed_at"),
        ({"half_life_days": -1}, "half_life_days"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, message):
    orders, products = lines("ab")
    with pytest.raises(affinity.AffinityInputError, match=message):
        affinity.compute_affinity(orders, products, **kwargs)


def test_mismatched_arrays_are_rejected():
    with pytest.raises(affinity.AffinityInputError, match="same length"):
        affinity.compute_affinity([1, 2], ["a"])


# --- Groceries (the published oracle) --------------------------------------------------


def groceries_baskets():
    baskets = read_groceries()
    if baskets is None:
        pytest.skip(f"{GROCERIES} is absent (it ships in the project's shared data only)")
    return baskets


@pytest.mark.slow
@pytest.mark.parametrize(
    ("min_support", "min_confidence", "expected"), [(0.006, 0.25, 150), (0.001, 0.5, 11)]
)
def test_groceries_pair_rules_equal_mlxtend(min_support, min_confidence, expected):
    baskets = groceries_baskets()
    orders, products = affinity.baskets_to_lines(baskets)
    result = affinity.compute_affinity(orders, products, min_co_count=1, top_k=None)
    assert result.n_orders == 9835
    assert result.n_products == 169
    assert int(result.item_counts.sum()) == 43367
    frame = result.to_frame()
    ours = frame[(frame.support >= min_support) & (frame.confidence >= min_confidence)]
    theirs = mlxtend_pair_rules(baskets, min_support, min_confidence)
    assert len(ours) == len(theirs) == expected
    merged = theirs.merge(ours, on=["source", "target"], suffixes=("_ml", ""), validate="1:1")
    assert len(merged) == expected
    assert (merged.co_count == (merged.support_ml * 9835).round().astype(int)).all()
    for column in ("support", "confidence", "lift"):
        assert np.abs(merged[column] - merged[f"{column}_ml"]).max() <= 1e-9, column


@pytest.mark.slow
def test_groceries_default_metric_beats_popularity_on_hit_rate_and_coverage():
    baskets = groceries_baskets()
    rows = evaluation.evaluate_leave_one_out(
        baskets,
        [
            ("popularity", None, 1, None),
            ("cosine", affinity.DEFAULT_METRIC, 1, None),
            ("lift", "lift", 1, None),
        ],
        seeds=(0, 1),
    )
    by_name = {row.name: row for row in rows}
    assert by_name["cosine"].hit_rate >= 0.39
    assert by_name["cosine"].hit_rate > by_name["popularity"].hit_rate
    assert by_name["cosine"].coverage > 2 * by_name["popularity"].coverage
    assert by_name["lift"].hit_rate < 0.1  # the reason raw lift is not the default
    assert by_name["popularity"].trials == by_name["cosine"].trials > 10_000


def test_evaluation_finds_planted_pairs():
    rng = np.random.default_rng(1)
    # Products 0..9 come in fixed pairs (0,1), (2,3)...; 10..49 are popular noise.
    baskets = []
    for _ in range(1500):
        pair = 2 * rng.integers(0, 5)
        noise = rng.choice(np.arange(10, 50), size=3, replace=False)
        baskets.append([int(pair), int(pair + 1), *map(int, noise)])
    rows = evaluation.evaluate_leave_one_out(
        baskets, [("popularity", None, 1, None), ("cosine", "cosine", 1, None)], seeds=(0,)
    )
    popularity, cosine = rows
    assert cosine.hit_rate > popularity.hit_rate + 0.1
    assert 0 < popularity.coverage <= cosine.coverage <= 1
