"""The integer counts of a run's window, and sliding them to a new window.

Pure numpy/scipy, no Django (like :mod:`.affinity`). A full recompute can keep, with its
run, everything the next run needs to avoid reading and multiplying the whole window
again (:class:`WindowCounts`): the window's orders (id, time, products), every pair count
of the window (count-1 pairs included) with its weighted sum, and so the item counts and
the order count. An incremental run then

1. adds the orders placed since (read from the shop: a few percent of the window),
2. subtracts the orders that left the lookback window (known from the stored orders, no
   read),
3. re-ranks every product's partners from the updated counts.

Counts are integers and order weights are multiples of 2^-24 (:data:`.affinity.WEIGHT_QUANTUM`),
so additions and subtractions are exact and the result equals a full recompute of the
same window bit for bit (the tests check it). What a slide cannot see (an order edited or
cancelled after it was counted, a product deleted, changed settings) is corrected by the
periodic full run. Time decay (``HALF_LIFE_DAYS``) and the ``bm25`` weighting change every
order's weight as time passes or the catalogue grows, so they always run in full.
"""

from __future__ import annotations

import dataclasses
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from . import affinity

#: Weightings an incremental run can reproduce exactly (see the module docstring).
INCREMENTAL_WEIGHTINGS = ("none", "inverse_size")
FORMAT_VERSION = 1


@dataclass
class WindowCounts:
    """A window's orders and pair counts, products in ascending id order."""

    product_ids: np.ndarray
    order_ids: np.ndarray  # one per matrix row
    placed_at: np.ndarray  # int64 nanoseconds (UTC), one per matrix row
    matrix: sparse.csr_matrix  # orders x products, int32 ones
    pair_source: np.ndarray  # int64, source < target
    pair_target: np.ndarray
    pair_count: np.ndarray  # int64
    pair_weight: np.ndarray  # float64, sum of the orders' score weights (0 when unweighted)
    order_weighting: str
    max_basket_size: int | None
    n_lines: int

    @property
    def n_orders(self) -> int:
        return self.matrix.shape[0]

    def baskets(self) -> affinity.BasketMatrix:
        """The window as the engine's basket matrix, weighted as a full run would weigh it."""
        baskets = affinity.BasketMatrix(
            matrix=self.matrix, product_ids=self.product_ids, weights=None, n_lines=self.n_lines
        )
        return affinity.weigh_orders(baskets, self.order_weighting, self.max_basket_size)


def _pair_matrix(baskets: affinity.BasketMatrix) -> sparse.csr_matrix:
    """Upper triangle (source < target) of the co-occurrence, complex: count + weight·i."""
    x = baskets.matrix
    size = np.diff(x.indptr)
    multi = size >= 2
    if baskets.max_basket_size is not None:
        multi &= size <= baskets.max_basket_size
    xm = x[multi]
    weights = baskets.score_weights
    w = weights[multi] if weights is not None else np.zeros(xm.shape[0])
    data = 1.0 + 1j * w[np.repeat(np.arange(xm.shape[0]), np.diff(xm.indptr))]
    xc = sparse.csr_matrix((data, xm.indices, xm.indptr), shape=xm.shape)
    return sparse.triu(xm.T.tocsr() @ xc, k=1, format="csr")


def _pairs(baskets: affinity.BasketMatrix) -> tuple[np.ndarray, ...]:
    upper = _pair_matrix(baskets).tocoo()
    return (
        upper.row.astype(np.int64),
        upper.col.astype(np.int64),
        upper.data.real.astype(np.int64),
        upper.data.imag.copy(),
    )


def window_counts(
    baskets: affinity.BasketMatrix, order_ids: np.ndarray, placed_at: np.ndarray
) -> WindowCounts:
    """The counts of a window a full run computed (``baskets`` weighed by the run)."""
    weighting = _weighting_of(baskets)
    source, target, count, weight = _pairs(baskets)
    return WindowCounts(
        product_ids=baskets.product_ids,
        order_ids=np.asarray(order_ids),
        placed_at=np.asarray(placed_at, dtype=np.int64),
        matrix=baskets.matrix.astype(np.int32),
        pair_source=source,
        pair_target=target,
        pair_count=count,
        pair_weight=weight,
        order_weighting=weighting,
        max_basket_size=baskets.max_basket_size,
        n_lines=baskets.n_lines,
    )


def _weighting_of(baskets: affinity.BasketMatrix) -> str:
    if baskets.weights is not None:
        raise affinity.AffinityInputError("time decay cannot be counted incrementally")
    if baskets.score_weights is None:
        return "none"
    expected = affinity.order_weights(baskets.matrix, "inverse_size")
    if expected is not None and np.array_equal(expected, baskets.score_weights):
        return "inverse_size"
    raise affinity.AffinityInputError("only 'none' and 'inverse_size' can be counted incrementally")


def orders_from_lines(
    orders: np.ndarray,
    products: np.ndarray,
    placed_at: np.ndarray | None,
    order_times: tuple[Any, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(order ids, placed_at ns per order, row of each line, products) from order lines.

    An order's time is its first line's (the lines of an order share it): only one time
    per order is converted, which is most of the cost of reading times. ``order_times``
    (order ids, times as datetimes or integer microseconds since the epoch) replaces
    ``placed_at`` when the source could read one time per order.
    """
    codes, order_ids = pd.factorize(pd.Series(orders), sort=False)
    if order_times is not None:
        known_ids, times = order_times
        where = pd.Index(known_ids).get_indexer(order_ids)
        if (where < 0).any():
            raise affinity.AffinityInputError("an order read has no time")
        values = np.asarray(times)
        if values.dtype.kind in "iu":
            per_order = values.astype(np.int64)[where] * 1_000
        else:
            per_order = affinity._as_datetime_ns(values[where]) if len(where) else where
        return np.asarray(order_ids), per_order, codes.astype(np.int64), np.asarray(products)
    if placed_at is None:
        raise affinity.AffinityInputError("the window needs placed_at or order_times")
    first_line = np.full(len(order_ids), len(codes), dtype=np.int64)
    np.minimum.at(first_line, codes, np.arange(len(codes)))
    if not len(codes):
        return np.asarray(order_ids), np.zeros(0, np.int64), codes.astype(np.int64), products
    first = affinity._as_datetime_ns(np.asarray(placed_at)[first_line])
    return np.asarray(order_ids), first, codes.astype(np.int64), np.asarray(products)


def slide(
    state: WindowCounts,
    orders: np.ndarray,
    products: np.ndarray,
    placed_at: np.ndarray,
    *,
    since: Any,
) -> tuple[WindowCounts, dict[str, int]]:
    """``state`` with the given order lines added and the orders placed before ``since``
    removed. Lines of orders already in the window are ignored (a read that overlaps the
    previous one). Returns the new counts and what changed (orders added and removed).
    """
    since_ns = int(affinity._as_datetime_ns([since])[0])
    order_ids, placed, rows, products = orders_from_lines(orders, products, placed_at)
    known = pd.Index(state.order_ids)
    new_order = ~pd.Index(order_ids).isin(known) & (placed >= since_ns)
    line_new = new_order[rows]
    renumber = np.cumsum(new_order) - 1
    rows, products = renumber[rows[line_new]], products[line_new]
    order_ids, placed = order_ids[new_order], placed[new_order]

    # One product index for old and new: ascending ids, as a full run orders them.
    n_old = len(state.product_ids)
    all_ids = np.concatenate([np.asarray(state.product_ids, dtype=object), products.astype(object)])
    ids, inverse = np.unique(all_ids, return_inverse=True)
    old_to_new, line_codes = inverse[:n_old], inverse[n_old:]
    n = len(ids)

    def remap(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
        out = sparse.csr_matrix(
            (matrix.data, old_to_new[matrix.indices], matrix.indptr), shape=(matrix.shape[0], n)
        )
        out.sort_indices()
        return out

    added = sparse.csr_matrix(
        (np.ones(len(rows), np.int32), (rows, line_codes)), shape=(len(order_ids), n)
    )
    added.sum_duplicates()
    added.data[:] = 1
    leaving = state.placed_at < since_ns
    old = remap(state.matrix)
    removed, kept = old[leaving], old[~leaving]

    def weighed(matrix: sparse.csr_matrix) -> affinity.BasketMatrix:
        baskets = affinity.BasketMatrix(matrix=matrix, product_ids=ids, weights=None, n_lines=0)
        return affinity.weigh_orders(baskets, state.order_weighting, state.max_basket_size)

    parts = [
        (
            old_to_new[state.pair_source],
            old_to_new[state.pair_target],
            state.pair_count,
            state.pair_weight,
        ),
        _pairs(weighed(added)),
    ]
    minus = _pairs(weighed(removed))
    parts.append((minus[0], minus[1], -minus[2], -minus[3]))
    source = np.concatenate([p[0] for p in parts])
    target = np.concatenate([p[1] for p in parts])
    low, high = np.minimum(source, target), np.maximum(source, target)
    keys, which = np.unique(low * n + high, return_inverse=True)
    count = np.bincount(which, weights=np.concatenate([p[2] for p in parts]).astype(np.float64))
    weight = np.bincount(which, weights=np.concatenate([p[3] for p in parts]))
    alive = count > 0
    keys, count, weight = keys[alive], count[alive].astype(np.int64), weight[alive]

    matrix = sparse.vstack([kept, added], format="csr").astype(np.int32)
    # Products no order of the window holds any more leave the index, as in a full run.
    used = np.bincount(matrix.indices, minlength=n) > 0
    compact = np.cumsum(used) - 1
    matrix = sparse.csr_matrix(
        (matrix.data, compact[matrix.indices], matrix.indptr),
        shape=(matrix.shape[0], int(used.sum())),
    )
    pair_source, pair_target = compact[keys // n], compact[keys % n]
    new = dataclasses.replace(
        state,
        product_ids=_typed(ids[used], state.product_ids),
        order_ids=np.concatenate([np.asarray(state.order_ids)[~leaving], order_ids]),
        placed_at=np.concatenate([state.placed_at[~leaving], placed]),
        matrix=matrix,
        pair_source=pair_source,
        pair_target=pair_target,
        pair_count=count,
        pair_weight=weight,
        n_lines=int(matrix.nnz),
    )
    return new, {"orders_added": len(order_ids), "orders_removed": int(leaving.sum())}


def _typed(ids: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Ids back in the integer dtype a full run uses for integer keys."""
    if like.dtype.kind in "iu" or (len(ids) and all(isinstance(v, int) for v in ids[:100])):
        try:
            return ids.astype(np.int64)
        except (TypeError, ValueError):
            return ids
    return ids


def rank(
    state: WindowCounts,
    *,
    min_co_count: int,
    top_k: int | None,
    metric: str,
    min_blocks: int = 1,
    block_budget: int = affinity.DEFAULT_BLOCK_BUDGET,
    progress: affinity.ProgressCallback | None = None,
    runner: affinity.PlanRunner = affinity.plan_results,
) -> Iterator[affinity.AffinityResult]:
    """Every product's top partners from the counts, in blocks, as a full run yields them."""
    baskets = state.baskets()
    empty = affinity.empty_result(baskets, min_co_count=min_co_count, top_k=top_k, metric=metric)
    plan = affinity.plan_blocks(
        baskets,
        min_co_count=min_co_count,
        top_k=top_k,
        metric=metric,
        block_budget=block_budget,
        min_blocks=min_blocks,
    )
    if plan is not None:
        n = len(state.product_ids)
        data: np.ndarray = state.pair_count.astype(np.float64)
        if baskets.score_weights is not None:  # an unweighted full run has no weights
            data = data + 1j * state.pair_weight
        upper = sparse.csr_matrix((data, (state.pair_source, state.pair_target)), shape=(n, n))
        plan = dataclasses.replace(plan, cooc=(upper + upper.T).tocsr())
    return runner(plan, empty, progress)


# --- Storage ---------------------------------------------------------------------------


def dump(state: WindowCounts) -> bytes:
    """The counts as one ``.npz`` (product and order ids as text or integers), deflated.

    zlib at level 1: 0.6 s for the 1M-line shop's 32 MB, which shrink to 8 MB; writing the
    32 MB into PostgreSQL took 2.6 s, the 8 MB far less (migration 0007 also stores the
    column uncompressed, so the server does not compress it again).
    """
    buffer = io.BytesIO()
    np.savez(
        buffer,
        version=np.asarray(FORMAT_VERSION),
        product_ids=_ids_array(state.product_ids),
        order_ids=_ids_array(state.order_ids),
        placed_at=state.placed_at,
        indptr=state.matrix.indptr.astype(np.int64),
        indices=state.matrix.indices.astype(np.int32),
        shape=np.asarray(state.matrix.shape, dtype=np.int64),
        pair_source=state.pair_source.astype(np.int32),
        pair_target=state.pair_target.astype(np.int32),
        pair_count=state.pair_count,
        pair_weight=state.pair_weight,
        order_weighting=np.asarray(state.order_weighting),
        max_basket_size=np.asarray(state.max_basket_size or 0),
        n_lines=np.asarray(state.n_lines),
    )
    return zlib.compress(buffer.getvalue(), 1)


def _ids_array(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    return np.asarray([str(v) for v in ids.tolist()], dtype=str)


def load(data: bytes, to_python: Any = None) -> WindowCounts:
    """Counts from :func:`dump`; ``to_python`` turns stored text ids back into keys."""
    with np.load(io.BytesIO(zlib.decompress(bytes(data))), allow_pickle=False) as archive:
        if int(archive["version"]) != FORMAT_VERSION:
            raise ValueError("stored counts of another format version")

        def ids(name: str) -> np.ndarray:
            values = archive[name]
            if values.dtype.kind in "iu" or to_python is None:
                return values
            converted = np.empty(len(values), dtype=object)
            converted[:] = [to_python(v) for v in values.tolist()]
            return converted

        shape = tuple(int(v) for v in archive["shape"])
        matrix = sparse.csr_matrix(
            (np.ones(len(archive["indices"]), np.int32), archive["indices"], archive["indptr"]),
            shape=shape,
        )
        order_ids = archive["order_ids"]
        return WindowCounts(
            product_ids=ids("product_ids"),
            order_ids=order_ids if order_ids.dtype.kind in "iu" else order_ids.astype(object),
            placed_at=archive["placed_at"],
            matrix=matrix,
            pair_source=archive["pair_source"].astype(np.int64),
            pair_target=archive["pair_target"].astype(np.int64),
            pair_count=archive["pair_count"],
            pair_weight=archive["pair_weight"],
            order_weighting=str(archive["order_weighting"]),
            max_basket_size=int(archive["max_basket_size"]) or None,
            n_lines=int(archive["n_lines"]),
        )


def build_window(
    orders: np.ndarray,
    products: np.ndarray,
    placed_at: np.ndarray | None,
    *,
    order_weighting: str,
    max_basket_size: int | None,
    order_times: tuple[Any, Any] | None = None,
) -> tuple[affinity.BasketMatrix, WindowCounts]:
    """A full run's basket matrix (weighed, products in id order) and its counts."""
    order_ids, placed, rows, products = orders_from_lines(orders, products, placed_at, order_times)
    codes, ids = pd.factorize(pd.Series(products), sort=True)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), np.int32), (rows, codes)), shape=(len(order_ids), len(ids))
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    baskets = affinity.BasketMatrix(
        matrix=matrix,
        product_ids=_typed(np.asarray(ids, dtype=object), np.asarray(products)),
        weights=None,
        n_lines=len(rows),
    )
    baskets = affinity.weigh_orders(baskets, order_weighting, max_basket_size)
    return baskets, window_counts(baskets, order_ids, placed)
