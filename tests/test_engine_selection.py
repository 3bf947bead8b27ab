"""The engine's top-K selection and weighting are exact: equal to sorting every pair."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from django_crosssell import affinity


def reference(baskets: affinity.BasketMatrix, top_k, metric, min_co_count=1):
    """Every pair scored, then sorted by (source, -score, target) and cut: no shortcuts."""
    x = baskets.matrix.astype(np.float64)
    n = x.shape[0]
    size = np.diff(baskets.matrix.indptr)
    multi = size >= 2
    if baskets.max_basket_size is not None:
        multi &= size <= baskets.max_basket_size
    xm = x[multi]
    counts = (xm.T @ xm).toarray()
    w = baskets.score_weights if baskets.score_weights is not None else np.ones(n)
    weighted = (xm.T @ sparse.diags(w[multi]) @ xm).toarray()
    item_w = np.asarray(x.T @ w).ravel()
    total = w.sum()
    rows, cols = np.nonzero((counts >= min_co_count) & ~np.eye(len(counts), dtype=bool))
    co = weighted[rows, cols]
    score = {
        "cosine": co / np.sqrt(item_w[rows] * item_w[cols]),
        "confidence": co / item_w[rows],
        "co_count": co,
        "lift": (co / item_w[rows]) / (item_w[cols] / total),
    }[metric]
    order = np.lexsort((cols, -score, rows))
    kept = []
    seen: dict[int, int] = {}
    for i in order:
        r = rows[i]
        if top_k is None or seen.get(r, 0) < top_k:
            seen[r] = seen.get(r, 0) + 1
            kept.append(i)
    kept = np.asarray(kept, dtype=np.int64)
    return rows[kept], cols[kept], counts[rows[kept], cols[kept]].astype(np.int64), score[kept]


def random_baskets(seed: int, n_orders: int, n_products: int, max_size: int):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, n_orders)
    orders = np.repeat(np.arange(n_orders), sizes)
    # Zipf-like popularity, so scores tie often and rows are dense.
    weights = 1 / np.arange(1, n_products + 1)
    products = rng.choice(n_products, size=len(orders), p=weights / weights.sum())
    return affinity.build_basket_matrix(orders, products)


@pytest.mark.parametrize("metric", ["cosine", "confidence", "co_count", "lift"])
@pytest.mark.parametrize("weighting", ["none", "inverse_size", "bm25"])
@pytest.mark.parametrize("top_k", [1, 3, 10, None])
def test_top_k_and_weighting_equal_the_full_sort(metric, weighting, top_k):
    baskets = affinity.weigh_orders(random_baskets(7, 400, 40, 12), weighting, 10)
    result = affinity.compute_pairs(baskets, min_co_count=1, top_k=top_k, metric=metric)
    rows, cols, counts, score = reference(baskets, top_k, metric)
    np.testing.assert_array_equal(result.source, rows)
    np.testing.assert_array_equal(result.target, cols)
    np.testing.assert_array_equal(result.co_count, counts)
    np.testing.assert_allclose(result.score, score, rtol=1e-12)


def test_many_ties_at_the_cut_keep_the_lowest_targets():
    # Every pair of 30 products co-occurs exactly once: all scores tie.
    baskets = affinity.build_basket_matrix(np.zeros(30, np.int64), np.arange(30))
    result = affinity.compute_pairs(baskets, min_co_count=1, top_k=5, metric="cosine")
    frame = result.to_frame()
    for source, group in frame.groupby("source"):
        expected = [t for t in range(30) if t != source][:5]
        assert group.target.tolist() == expected


@pytest.mark.parametrize("key_bits", [64, 12, 7, 1])
def test_blocks_and_selection_keys_do_not_change_the_result(monkeypatch, key_bits):
    # Short selection keys make many pairs of different scores tie in the key: the
    # candidates then hold more than top_k per source, and the exact order must still win.
    baskets = affinity.weigh_orders(random_baskets(3, 600, 80, 15), "inverse_size")
    whole = affinity.compute_pairs(baskets, min_co_count=1, top_k=7)
    monkeypatch.setattr(affinity, "SELECTION_KEY_BITS", key_bits)
    small = affinity.compute_pairs(baskets, min_co_count=1, top_k=7, block_budget=500)
    for name in affinity.PAIR_FIELDS:
        np.testing.assert_array_equal(getattr(whole, name), getattr(small, name), err_msg=name)


def test_the_basket_size_cap_leaves_big_orders_out_of_the_pairs_only():
    orders = np.array([0, 0, 1, 1, 1, 1])
    products = np.array([1, 2, 1, 2, 3, 4])
    baskets = affinity.weigh_orders(affinity.build_basket_matrix(orders, products), "none", 3)
    result = affinity.compute_pairs(baskets, min_co_count=1, top_k=None)
    frame = result.to_frame()
    assert set(zip(frame.source, frame.target, strict=True)) == {(1, 2), (2, 1)}
    assert result.item_counts.tolist() == [2, 2, 1, 1]  # the capped order still counts
    assert frame.co_count.tolist() == [1, 1]
    assert frame.support.tolist() == [0.5, 0.5]


def test_bad_weighting_and_cap_are_refused():
    baskets = random_baskets(1, 10, 5, 3)
    with pytest.raises(affinity.AffinityInputError):
        affinity.weigh_orders(baskets, "idf")
    with pytest.raises(affinity.AffinityInputError):
        affinity.weigh_orders(baskets, "none", 1)


def test_inverse_size_weighting_prefers_pairs_from_small_orders():
    # 1-2 together in three 2-item orders; 1-3 together in four 12-item orders.
    orders, products = [], []
    order = 0
    for _ in range(3):
        orders += [order, order]
        products += [1, 2]
        order += 1
    for i in range(4):
        filler = list(range(100 + 10 * i, 110 + 10 * i))
        orders += [order] * 12
        products += [1, 3, *filler]
        order += 1
    plain = affinity.compute_affinity(orders, products, min_co_count=1, top_k=1, metric="co_count")
    weighted = affinity.compute_affinity(
        orders, products, min_co_count=1, top_k=1, metric="co_count", order_weighting="inverse_size"
    )
    top = lambda r: dict(zip(r.to_frame().source, r.to_frame().target, strict=True))  # noqa: E731
    assert top(plain)[1] == 3  # four orders against three
    assert top(weighted)[1] == 2  # 3 x 1/2 against 4 x 1/12
    assert weighted.to_frame().set_index(["source", "target"]).score[(1, 2)] == pytest.approx(1.5)
    assert weighted.to_frame().set_index(["source", "target"]).co_count[(1, 2)] == 3


def greedy_blocks(cost, budget):
    """The block split as first written: one Python step per row."""
    blocks, start, total = [], 0, 0
    for row, value in enumerate(cost.tolist()):
        if total and total + value > budget:
            blocks.append((start, row))
            start, total = row, 0
        total += value
    if start < len(cost):
        blocks.append((start, len(cost)))
    return blocks


@pytest.mark.parametrize("seed", range(6))
def test_block_split_equals_the_row_by_row_split(seed):
    rng = np.random.default_rng(seed)
    # Zero costs, rows above the budget on their own, sums landing exactly on it.
    cost = rng.choice([0, 1, 3, 5, 40, 200], size=int(rng.integers(0, 300)))
    for budget in (1, 5, 40, 41, 199, 200, 1_000, 10**9):
        assert affinity.split_blocks(cost, budget) == greedy_blocks(cost, budget), budget


def decayed_baskets(seed: int, weighting: str, cap: int | None) -> affinity.BasketMatrix:
    rng = np.random.default_rng(seed)
    plain = random_baskets(seed, 900, 150, 18)
    orders = np.repeat(np.arange(plain.n_orders), np.diff(plain.matrix.indptr))
    placed = np.datetime64("2026-01-01") + rng.integers(0, 200, plain.n_orders)[orders]
    baskets = affinity.build_basket_matrix(
        orders,
        plain.product_ids[plain.matrix.indices],
        placed,
        now=np.datetime64("2026-08-01"),
        half_life_days=45,
    )
    return affinity.weigh_orders(baskets, weighting, cap)


@pytest.mark.parametrize("metric", ["cosine", "confidence", "lift", "jaccard"])
@pytest.mark.parametrize("weighting", ["none", "inverse_size", "bm25"])
@pytest.mark.parametrize("decay", [False, True])
def test_two_threads_give_bitwise_the_pairs_of_one(metric, weighting, decay):
    baskets = (
        decayed_baskets(3, weighting, 15)
        if decay
        else affinity.weigh_orders(random_baskets(3, 900, 150, 18), weighting, 15)
    )
    kwargs = {"metric": metric, "top_k": 7, "block_budget": 700}
    assert len(list(affinity.iter_pair_blocks(baskets, **kwargs))) >= 6
    alone = affinity.compute_pairs(baskets, **kwargs)
    assert alone.n_pairs > 0
    for threads in (2, 0):
        together = affinity.compute_pairs(baskets, **kwargs, threads=threads)
        for name in affinity.PAIR_FIELDS:
            np.testing.assert_array_equal(getattr(alone, name), getattr(together, name), name)


@pytest.mark.parametrize("threads", [2, 0])
def test_blocks_computed_in_threads_equal_one_after_another(threads):
    baskets = affinity.weigh_orders(random_baskets(5, 800, 120, 20), "bm25", 12)
    alone = affinity.compute_pairs(baskets, top_k=5, block_budget=300)
    together = affinity.compute_pairs(baskets, top_k=5, block_budget=300, threads=threads)
    assert len(list(affinity.iter_pair_blocks(baskets, block_budget=300))) > 4
    for name in affinity.PAIR_FIELDS:
        np.testing.assert_array_equal(getattr(alone, name), getattr(together, name), err_msg=name)
