"""Property tests: the sparse engine against a brute-force pair count on random baskets."""

from __future__ import annotations

import math
from collections import Counter
from itertools import permutations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_crosssell import affinity

pytestmark = pytest.mark.slow  # generated baskets against a brute force

baskets_strategy = st.lists(
    st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=7),
    min_size=0,
    max_size=40,
)


def brute_force(baskets):
    """Every metric of every ordered pair, counted the slow obvious way."""
    item_counts: Counter = Counter()
    pair_counts: Counter = Counter()
    for basket in baskets:
        items = set(basket)
        item_counts.update(items)
        pair_counts.update(permutations(items, 2))
    n = len(baskets)
    metrics = {}
    for (a, b), co in pair_counts.items():
        na, nb = item_counts[a], item_counts[b]
        metrics[(a, b)] = {
            "co_count": co,
            "support": co / n,
            "confidence": co / na,
            "lift": (co / na) / (nb / n),
            "cosine": co / math.sqrt(na * nb),
            "jaccard": co / (na + nb - co),
        }
    return metrics


def result_pairs(result):
    return {
        (int(row.source), int(row.target)): row for row in result.to_frame().itertuples(index=False)
    }


@settings(max_examples=150, deadline=None)
@given(
    baskets=baskets_strategy,
    min_co_count=st.integers(min_value=1, max_value=3),
    metric=st.sampled_from(affinity.METRICS),
    block_budget=st.sampled_from([1, 7, affinity.DEFAULT_BLOCK_BUDGET]),
)
def test_every_pair_matches_brute_force(baskets, min_co_count, metric, block_budget):
    orders, products = affinity.baskets_to_lines(baskets)
    result = affinity.compute_affinity(
        orders.astype(np.int64),
        products.astype(np.int64),
        min_co_count=min_co_count,
        top_k=None,
        metric=metric,
        block_budget=block_budget,
    )
    expected = {
        pair: values
        for pair, values in brute_force(baskets).items()
        if values["co_count"] >= min_co_count
    }
    got = result_pairs(result)
    assert set(got) == set(expected)
    for pair, values in expected.items():
        row = got[pair]
        assert row.co_count == values["co_count"]
        for name in ("support", "confidence", "lift"):
            assert math.isclose(getattr(row, name), values[name], rel_tol=1e-12), name
        assert math.isclose(row.score, values[metric], rel_tol=1e-12)
    assert result.n_orders == len(baskets)


@settings(max_examples=100, deadline=None)
@given(baskets=baskets_strategy, top_k=st.integers(min_value=1, max_value=4))
def test_top_k_keeps_the_k_best_partners_of_each_product(baskets, top_k):
    orders, products = affinity.baskets_to_lines(baskets)
    everything = affinity.compute_affinity(orders, products, min_co_count=1, top_k=None)
    best = affinity.compute_affinity(orders, products, min_co_count=1, top_k=top_k)
    full = everything.to_frame()
    kept = best.to_frame()
    for source, group in full.groupby("source", sort=False):
        chosen = kept[kept.source == source]
        assert len(chosen) == min(top_k, len(group))
        # Sorted by score, and nothing left out scores higher than what was kept.
        assert list(chosen.score) == sorted(chosen.score, reverse=True)
        left_out = group[~group.target.isin(chosen.target)]
        if len(left_out):
            assert left_out.score.max() <= chosen.score.min()
