"""The integer counts of a run's window, and sliding them to a new window.

Pure numpy/scipy, no Django (like :mod:`.affinity`). A full recompute can keep, with its
run, everything the next run needs to avoid reading and multiplying the whole window
again (:class:`WindowCounts`): the window's orders (id, products, and the time where
the order source needs it), every pair count
of the window (count-1 pairs included) with its weighted sum, and so the item counts and
the order count. An incremental run then

1. adds the orders placed since (read from the shop: a few percent of the window),
2. subtracts, as they were counted, the orders that left the lookback window: those the
   stored times place before the new window, or (for the order-line model, whose runs
   store no times) those a range query on the order time finds,
3. re-ranks every product's partners from the updated counts.

Counts are integers and order weights are multiples of 2^-24 (:data:`.affinity.WEIGHT_QUANTUM`),
so additions and subtractions are exact and the result equals a full recompute of the
same window bit for bit (the tests check it). What a slide cannot see (an order edited or
cancelled after it was counted, a product deleted, changed settings) is corrected by the
periodic full run. Time decay (``HALF_LIFE_DAYS``) and the ``bm25`` weighting change every
order's weight as time passes or the catalogue grows, so they always run in full.

Why every source is re-ranked, not only those whose pairs changed: with the cosine score
(and confidence, lift) a source's scores move when any partner's order count moves, and in
a shop with popular products every source has one as a partner. On the 1M-line benchmark
shop a 1% slide left no source's rows unchanged (benchmarks/RESULTS.md, Engine (e)), so
copying "unchanged" rows from the previous run would copy nothing.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from . import affinity

#: Weightings an incremental run can reproduce exactly (see the module docstring).
INCREMENTAL_WEIGHTINGS = ("none", "inverse_size")
#: 2: compact arrays, uncompressed (:func:`dump`); 1 (deflated, wide arrays) is no longer
#: read: a run whose counts cannot be loaded falls back to a full run.
FORMAT_VERSION = 2


class CountsFormatError(ValueError):
    """Stored counts of another format version (the next run is a full one)."""


@dataclass
class WindowCounts:
    """A window's orders and pair counts, products in ascending id order.

    ``upper`` holds every pair of the window once (source < target) as ``count + weight·i``
    (the weight is the sum of the orders' score weights, 0 when unweighted). A full run
    fills it from the engine's own blocks (:func:`counting_runner`); it is None until then
    and computed from ``matrix`` when asked for first (:meth:`pairs`).
    """

    product_ids: np.ndarray
    order_ids: np.ndarray  # one per matrix row
    #: int64 nanoseconds (UTC), one per matrix row; None when the orders that leave the
    #: window are looked up by time instead (``slide(leaving=...)``).
    placed_at: np.ndarray | None
    matrix: sparse.csr_matrix  # orders x products, int32 ones
    order_weighting: str
    max_basket_size: int | None
    n_lines: int
    upper: sparse.csr_matrix | None = None

    @property
    def n_orders(self) -> int:
        return self.matrix.shape[0]

    def baskets(self) -> affinity.BasketMatrix:
        """The window as the engine's basket matrix, weighed as a full run would weigh it."""
        baskets = affinity.BasketMatrix(
            matrix=self.matrix, product_ids=self.product_ids, weights=None, n_lines=self.n_lines
        )
        return affinity.weigh_orders(baskets, self.order_weighting, self.max_basket_size)

    def pairs(self) -> sparse.csr_matrix:
        """``upper``, computed from the orders if no run filled it."""
        if self.upper is None:
            self.upper = _pair_matrix(self.baskets())
        return self.upper

    # Flat views of the pairs (tests, analysis).
    @property
    def pair_count(self) -> np.ndarray:
        return self.pairs().data.real.astype(np.int64)

    @property
    def pair_weight(self) -> np.ndarray:
        return self.pairs().data.imag.copy()


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
    upper = sparse.triu(xm.T.tocsr() @ xc, k=1, format="csr")
    upper.sort_indices()
    return upper


def _upper_part(block: sparse.csr_matrix, start: int) -> sparse.csr_matrix:
    """The entries of a block of co-occurrence rows right of the diagonal, as complex."""
    rows = np.repeat(np.arange(start, start + block.shape[0]), np.diff(block.indptr))
    keep = block.indices > rows
    data = block.data[keep]
    if not np.iscomplexobj(data):
        data = data.astype(np.complex128)
    indptr = np.zeros(block.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows[keep] - start, minlength=block.shape[0]), out=indptr[1:])
    part = sparse.csr_matrix((data, block.indices[keep], indptr), shape=block.shape)
    part.sort_indices()
    return part


def _complex_counts(block: sparse.csr_matrix, packed_shift: int | None) -> sparse.csr_matrix:
    """Co-occurrence rows as the counts keep them (count + weight·i), whatever the plan's
    layout: a packed plan's integers hold the count above ``packed_shift`` and the weight,
    in units of :data:`.affinity.WEIGHT_QUANTUM`, below it (exact either way)."""
    if not packed_shift:
        return block  # counts only: no weight to carry
    data = block.data.astype(np.int64, copy=False)
    counts = data >> np.int64(packed_shift)
    weights = (data & np.int64((1 << packed_shift) - 1)) * affinity.WEIGHT_QUANTUM
    values = counts.astype(np.float64) + 1j * weights
    return sparse.csr_matrix((values, block.indices, block.indptr), shape=block.shape)


def counting_runner(state: WindowCounts) -> affinity.PlanRunner:
    """A local :data:`~.affinity.PlanRunner` that also keeps the pair counts in ``state``.

    A full run that keeps counts multiplies the basket matrix once: each block's
    co-occurrence rows are ranked (by :func:`.affinity.compute_block`, handed the rows
    already computed) and their upper triangle kept, instead of computing the whole
    co-occurrence a second time for the counts. ``state.upper`` is set once the last block
    is done.
    """

    def run(
        plan: affinity.BlockPlan | None,
        empty: affinity.AffinityResult,
        progress: affinity.ProgressCallback | None = None,
    ) -> Iterator[affinity.AffinityResult]:
        n = len(state.product_ids)
        if plan is None or not plan.blocks:
            if plan is None and state.upper is None:
                state.upper = _pair_matrix(state.baskets())  # no pair, or a lone product
            yield from affinity.plan_results(plan, empty, progress)
            return
        parts = []
        for start, stop in plan.blocks:
            block = _complex_counts((plan.xt[start:stop] @ plan.xm).tocsr(), plan.packed_shift)
            parts.append(_upper_part(block, start))
            # The rows as a products x products matrix that is empty outside start:stop.
            indptr = np.concatenate(
                [
                    np.zeros(start, dtype=block.indptr.dtype),
                    block.indptr,
                    np.full(n - stop, block.indptr[-1], dtype=block.indptr.dtype),
                ]
            )
            rows = sparse.csr_matrix((block.data, block.indices, indptr), shape=(n, n))
            pairs = affinity.compute_block(
                dataclasses.replace(plan, cooc=rows, packed_shift=None), start, stop
            )
            del block, rows
            if progress is not None:
                progress("pairs", stop, plan.n_products)
            yield affinity.block_result(empty, pairs)
        if plan.blocks[-1][1] < n:  # pragma: no cover - the plan covers every product
            parts.append(sparse.csr_matrix((n - plan.blocks[-1][1], n), dtype=np.complex128))
        state.upper = sparse.vstack(parts, format="csr")

    return run


def window_counts(
    baskets: affinity.BasketMatrix, order_ids: np.ndarray, placed_at: np.ndarray | None
) -> WindowCounts:
    """The counts of a window a full run computed (``baskets`` weighed by the run).

    ``placed_at`` is None when the orders that leave are looked up by time. The pairs are
    left to the run's blocks (:func:`counting_runner`) or to
    :meth:`WindowCounts.pairs`.
    """
    weighting = _weighting_of(baskets)
    return WindowCounts(
        product_ids=baskets.product_ids,
        order_ids=np.asarray(order_ids),
        placed_at=None if placed_at is None else np.asarray(placed_at, dtype=np.int64),
        matrix=baskets.matrix.astype(np.int32),
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
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """(order ids, placed_at ns per order or None, row of each line, products) from lines.

    ``placed_at`` holds one time per line (datetimes, or integer microseconds since the
    epoch); the lines of an order share it, so any line's time is its order's and only one
    time per order is converted.
    """
    codes, order_ids = pd.factorize(pd.Series(orders), sort=False)
    codes = codes.astype(np.int64)
    if placed_at is None:
        return np.asarray(order_ids), None, codes, np.asarray(products)
    line_of_order = np.zeros(len(order_ids), dtype=np.int64)
    line_of_order[codes] = np.arange(len(codes))  # any line of the order will do
    return (
        np.asarray(order_ids),
        _nanoseconds(np.asarray(placed_at), line_of_order),
        codes,
        np.asarray(products),
    )


def _nanoseconds(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``values[where]`` as UTC nanoseconds: integer microseconds or datetimes."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)[where] * 1_000
    if not len(where):
        return np.zeros(0, np.int64)
    return affinity._as_datetime_ns(values[where])


def _product_index(
    old: np.ndarray, products: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids of old and new products ascending, old index -> new, new lines' codes)."""
    if old.dtype.kind in "iu" and products.dtype.kind in "iu":
        ids = np.union1d(old, products)
        return ids, np.searchsorted(ids, old), np.searchsorted(ids, products)
    all_ids = np.concatenate([np.asarray(old, dtype=object), products.astype(object)])
    ids, inverse = np.unique(all_ids, return_inverse=True)
    return ids, inverse[: len(old)], inverse[len(old) :]


def slide(
    state: WindowCounts,
    orders: np.ndarray,
    products: np.ndarray,
    placed_at: np.ndarray | None,
    *,
    since: Any = None,
    leaving: Any = None,
) -> tuple[WindowCounts, dict[str, int]]:
    """``state`` with the given order lines added and the orders that left the window
    removed. Lines of orders already in the window are ignored (a read that overlaps the
    previous one). Returns the new counts and what changed (orders added and removed).

    With stored times the orders placed before ``since`` leave, and ``placed_at`` (per
    line, see :func:`orders_from_lines`) keeps new orders before ``since`` out. Without
    (``state.placed_at`` is None) the ids in ``leaving`` leave, and the lines must all be
    inside the new window.
    """
    order_ids, placed, rows, products = orders_from_lines(orders, products, placed_at)
    known = pd.Index(_keys(state.order_ids))
    new_order = ~pd.Index(_keys(order_ids)).isin(known)
    if state.placed_at is not None:
        since_ns = int(affinity._as_datetime_ns([since])[0])
        if placed is None:
            raise affinity.AffinityInputError("counts with times need the new lines' times")
        new_order &= placed >= since_ns
        leaves = state.placed_at < since_ns
    else:
        if leaving is None:
            raise affinity.AffinityInputError("counts without times need the leaving orders")
        leaves = known.isin(pd.Index(_keys(np.asarray(leaving))))
    line_new = new_order[rows]
    renumber = np.cumsum(new_order) - 1
    rows, products = renumber[rows[line_new]], products[line_new]
    order_ids = order_ids[new_order]

    # One product index for old and new: ascending ids, as a full run orders them.
    n_old = len(state.product_ids)
    ids, old_to_new, line_codes = _product_index(np.asarray(state.product_ids), products)
    n = len(ids)
    upper = state.pairs()
    old = state.matrix
    if n != n_old:  # new products: old indices move up (in order: rows stay sorted)

        def remap(matrix: sparse.csr_matrix, shape: tuple[int, int]) -> sparse.csr_matrix:
            return sparse.csr_matrix(
                (matrix.data, old_to_new[matrix.indices], matrix.indptr), shape=shape
            )

        old = remap(old, (old.shape[0], n))
        upper = remap(upper, (n_old, n))
        row_of = np.zeros(n + 1, dtype=np.int64)  # nnz before each new row
        row_of[old_to_new + 1] = np.diff(upper.indptr)
        upper = sparse.csr_matrix((upper.data, upper.indices, np.cumsum(row_of)), shape=(n, n))
    added = sparse.csr_matrix(
        (np.ones(len(rows), np.int32), (rows, line_codes)), shape=(len(order_ids), n)
    )
    added.sum_duplicates()
    added.data[:] = 1
    removed, kept = old[leaves], old[~leaves]

    def weighed(matrix: sparse.csr_matrix) -> affinity.BasketMatrix:
        baskets = affinity.BasketMatrix(matrix=matrix, product_ids=ids, weights=None, n_lines=0)
        return affinity.weigh_orders(baskets, state.order_weighting, state.max_basket_size)

    # Exact: integer counts and sums of multiples of 2^-24, whatever the order of the sums.
    upper = upper + _pair_matrix(weighed(added)) - _pair_matrix(weighed(removed))
    upper.eliminate_zeros()  # a pair whose last order left (its weight is exactly 0 too)
    upper.sort_indices()
    matrix = sparse.vstack([kept, added], format="csr").astype(np.int32)
    # Products no order of the window holds any more leave the index, as in a full run.
    used = np.bincount(matrix.indices, minlength=n) > 0
    if not used.all():
        compact = np.cumsum(used) - 1
        matrix = sparse.csr_matrix(
            (matrix.data, compact[matrix.indices], matrix.indptr),
            shape=(matrix.shape[0], int(used.sum())),
        )
        upper = upper[used][:, used].tocsr()
        upper.sort_indices()
        ids = ids[used]
    new = dataclasses.replace(
        state,
        product_ids=_typed(ids, state.product_ids),
        order_ids=np.concatenate([np.asarray(state.order_ids)[~leaves], order_ids]),
        placed_at=None
        if state.placed_at is None or placed is None
        else np.concatenate([state.placed_at[~leaves], placed[new_order]]),
        matrix=matrix,
        upper=upper,
        n_lines=int(matrix.nnz),
    )
    return new, {"orders_added": len(order_ids), "orders_removed": int(leaves.sum())}


def _keys(ids: np.ndarray) -> np.ndarray:
    """Order ids comparable with stored ones: integers, or text (as :func:`dump` keeps them)."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu" or not len(ids):
        return ids
    return np.asarray([str(v) for v in ids.tolist()], dtype=object)


def _typed(ids: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Ids back in the integer dtype a full run uses for integer keys."""
    if ids.dtype.kind in "iu":
        return ids
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
    """Every product's top partners from the counts, in blocks, as a full run yields them.

    The block plan is built from the counts (no transposed basket matrix, no cost bound:
    each source's cost is its number of pairs).
    """
    baskets = state.baskets()
    empty = affinity.empty_result(baskets, min_co_count=min_co_count, top_k=top_k, metric=metric)
    x = baskets.matrix
    n_orders, n = x.shape
    if n_orders == 0 or n < 2:
        return runner(None, empty, progress)
    upper = state.pairs()
    score_weights = baskets.score_weights
    # An unweighted full run multiplies real counts; a weighted one count + weight·i.
    half = upper if score_weights is not None else upper.real.tocsr()
    cooc = (half + half.T).tocsr()
    item_counts = empty.item_counts.astype(np.float64)
    if score_weights is not None:
        score_total = float(score_weights.sum())
        score_counts = np.asarray(x.T @ score_weights).ravel()
    else:
        score_total, score_counts = float(n_orders), item_counts
    cost = np.diff(cooc.indptr)
    if min_blocks > 1:
        block_budget = min(block_budget, max(int(cost.sum()) // min_blocks, 1))
    empty_x = sparse.csr_matrix((0, n), dtype=np.int32)
    plan = affinity.BlockPlan(
        xt=empty_x.T.tocsr(),
        xm=empty_x,
        cooc=cooc,
        xs=None,
        decay_in_xm=False,
        weighted_counts=item_counts,
        total_weight=float(n_orders),
        score_counts=score_counts,
        score_total=score_total,
        weighted=False,
        score_weighted=score_weights is not None,
        min_co_count=min_co_count,
        top_k=top_k,
        metric=metric,
        n_products=n,
        blocks=affinity.split_blocks(cost, block_budget),
    )
    return runner(plan, empty, progress)


# --- Storage ---------------------------------------------------------------------------
#
# Most of the stored bytes are the pairs (a million on the 1M-line shop, three in four of
# them count-1 pairs). Each array is kept in the narrowest type that holds most of its
# values (counts in one byte, weights in float32, product indices in two bytes when the
# catalogue is small enough), with the values that do not fit listed beside it exactly.
# That is about 14 bytes a pair less than int64/float64 columns, written uncompressed:
# deflating cost more time than writing the bytes it saved.


def _narrow(name: str, values: np.ndarray, dtype: Any) -> dict[str, np.ndarray]:
    narrow = values.astype(dtype)
    wrong = np.flatnonzero(narrow.astype(values.dtype) != values)
    return {name: narrow, f"{name}.at": wrong.astype(np.int64), f"{name}.is": values[wrong]}


def _widen(archive: Any, name: str, dtype: Any) -> np.ndarray:
    values = archive[name].astype(dtype)
    values[archive[f"{name}.at"]] = archive[f"{name}.is"]
    return values


def _index_dtype(n: int) -> Any:
    return np.uint16 if n <= np.iinfo(np.uint16).max + 1 else np.int32


def dump(state: WindowCounts) -> bytes:
    """The counts as one uncompressed ``.npz`` of compact arrays (see above)."""
    upper = state.pairs()
    n = len(state.product_ids)
    matrix = state.matrix
    arrays: dict[str, Any] = dict(
        version=np.asarray(FORMAT_VERSION),
        product_ids=_ids_array(state.product_ids),
        order_ids=_ids_array(state.order_ids),
        placed_at=np.zeros(0, np.int64) if state.placed_at is None else state.placed_at,
        timed=np.asarray(state.placed_at is not None),
        n_products=np.asarray(n),
        line_products=matrix.indices.astype(_index_dtype(n)),
        pair_targets=upper.indices.astype(_index_dtype(n)),
        pairs_per_product=np.diff(upper.indptr).astype(np.int64),
        **_narrow("basket_sizes", np.diff(matrix.indptr), np.uint8),
        **_narrow("pair_counts", upper.data.real.astype(np.int64), np.uint8),
        **_narrow("pair_weights", upper.data.imag, np.float32),
        order_weighting=np.asarray(state.order_weighting),
        max_basket_size=np.asarray(state.max_basket_size or 0),
        n_lines=np.asarray(state.n_lines),
    )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _ids_array(ids: np.ndarray) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    return np.asarray([str(v) for v in ids.tolist()], dtype=str)


def load(data: bytes, to_python: Any = None) -> WindowCounts:
    """Counts from :func:`dump`; ``to_python`` turns stored text ids back into keys.

    Raises :class:`CountsFormatError` for counts another version stored.
    """
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
        version = int(archive["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise CountsFormatError("the stored counts are not readable") from exc
    with archive:
        if version != FORMAT_VERSION:
            raise CountsFormatError("stored counts of another format version")

        def ids(name: str, convert: Any = None) -> np.ndarray:
            values = archive[name]
            if values.dtype.kind in "iu":
                return values
            converted = np.empty(len(values), dtype=object)
            converted[:] = [convert(v) for v in values.tolist()] if convert else values.tolist()
            return converted

        n = int(archive["n_products"])
        sizes = _widen(archive, "basket_sizes", np.int64)
        indptr = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        line_products = archive["line_products"].astype(np.int32)
        matrix = sparse.csr_matrix(
            (np.ones(len(line_products), np.int32), line_products, indptr),
            shape=(len(sizes), n),
        )
        per_product = archive["pairs_per_product"]
        pair_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_product, out=pair_indptr[1:])
        pair_data = np.empty(int(pair_indptr[-1]), dtype=np.complex128)
        pair_data.real = _widen(archive, "pair_counts", np.float64)
        pair_data.imag = _widen(archive, "pair_weights", np.float64)
        upper = sparse.csr_matrix(
            (pair_data, archive["pair_targets"].astype(np.int32), pair_indptr), shape=(n, n)
        )
        upper.has_sorted_indices = True  # dumped from a matrix with sorted indices
        return WindowCounts(
            product_ids=ids("product_ids", to_python),
            order_ids=ids("order_ids"),
            placed_at=archive["placed_at"] if bool(archive["timed"]) else None,
            matrix=matrix,
            order_weighting=str(archive["order_weighting"]),
            max_basket_size=int(archive["max_basket_size"]) or None,
            n_lines=int(archive["n_lines"]),
            upper=upper,
        )


def build_window(
    orders: np.ndarray,
    products: np.ndarray,
    placed_at: np.ndarray | None,
    *,
    order_weighting: str,
    max_basket_size: int | None,
) -> tuple[affinity.BasketMatrix, WindowCounts]:
    """A full run's basket matrix (weighed, products in id order) and its counts.

    Without ``placed_at`` the counts keep no times (see :func:`slide`).
    The counts' pairs are left to the run's blocks (:func:`counting_runner`).
    """
    order_ids, placed, rows, products = orders_from_lines(orders, products, placed_at)
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
