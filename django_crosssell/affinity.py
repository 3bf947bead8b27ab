"""The co-purchase affinity engine: pure numpy/scipy/pandas, no Django.

Over 600 lines on purpose: the basket matrix, the order weights, the block plan, the one
block computation (:func:`compute_block`, run here or as a Dask task by
:mod:`.distributed`), the metrics and the top-K selection share one set of array types and
are read together. The offline evaluation lives in :mod:`.evaluation`, the window counts
of incremental runs in :mod:`.incremental`.

Input is one array entry per order line (order id, product id and optionally the time the
order was placed); output is, for every product, its top-K partners with the metrics an
analyst expects from association rules:

``co_count``
    orders containing both products (an integer; a product bought several times in one
    order counts once),
``support``
    ``co_count / orders``,
``confidence``
    ``co_count / orders containing the source``,
``lift``
    ``confidence / support of the target``,
``score``
    the value of the ranking metric the partners are ordered by.

These are exactly the pair rules of ``mlxtend``'s ``fpgrowth`` + ``association_rules`` (and
R's ``arules``): the test suite checks it on the Groceries data set.

Why a sparse matrix product and not a rule miner: a pair rule only needs the co-occurrence
matrix ``C = Xᵀ X`` of the binary order x product matrix ``X``, which scipy computes in C
without enumerating itemsets. ``C`` is computed a block of source products at a time (the
block sized by an upper bound of its non-zeros), and each block is reduced to its top-K
partners before the next one starts, so memory is bounded by ``X`` plus one block, not by
the number of pairs (10 million order lines stay well under 2 GB).

Why ``cosine`` is the default ranking metric (measured with
:func:`.evaluation.evaluate_leave_one_out`
on Groceries, 80/20 split, five seeds, the protocol of ``shared/data/README.md``; the table
is in the README's "Affinity engine" section): raw ``lift`` ranks pairs of rare products
first and completes baskets far worse than recommending bestsellers (hit rate@10 0.023
against 0.372); ``co_count`` and ``confidence`` beat bestsellers (0.391, 0.394) but keep
recommending what is popular anyway (catalogue coverage 0.33, 0.37); ``cosine`` has the best
hit rate (0.395) and, because it also divides by the partner's popularity, covers 0.98 of
the catalogue. With the shipped ``min_co_count=2, top_k=50`` it scores 0.394 / 0.90.
Weighting orders by 1 / size (:func:`order_weights`) was chosen over three data sets (the
README's "Choosing the defaults"): it matters on shops with large orders.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

try:  # the product kernel behind ``csr_matrix @`` (see _block_product)
    from scipy.sparse import _sparsetools
except ImportError:  # pragma: no cover - a scipy that moved it takes the public product
    _sparsetools = None

#: Ranking metrics the engine accepts (``CROSSSELL["METRIC"]``; ``conf.METRIC_CHOICES``
#: repeats them so system checks need not import numpy).
METRICS: tuple[str, ...] = ("cosine", "confidence", "co_count", "support", "lift", "jaccard")
DEFAULT_METRIC = "cosine"
#: The defaults of ``CROSSSELL["MIN_CO_COUNT"]`` and ``["TOP_K"]`` (see conf.py for why).
DEFAULT_MIN_CO_COUNT = 2
DEFAULT_TOP_K = 50
#: Per-order weighting schemes of the ranking score (``CROSSSELL["ORDER_WEIGHTING"]``;
#: ``conf.WEIGHTING_CHOICES`` repeats them). See :func:`order_weights`.
WEIGHTINGS: tuple[str, ...] = ("none", "inverse_size", "bm25")
DEFAULT_WEIGHTING = "none"

#: Upper bound of the non-zeros of one block of the co-occurrence matrix. Each non-zero
#: costs about 60 bytes while a block is reduced, so a block stays near 30 MB at worst:
#: small enough that its arrays stay in the processor's cache between the steps of
#: :func:`compute_block` (measured on the online-retail file, ``benchmarks/engine.py``
#: (d): blocks twelve times larger took 10-25% longer), large enough that the per-block
#: Python overhead stays below a few percent.
DEFAULT_BLOCK_BUDGET = 500_000
#: The default budget when blocks are computed in several threads (``threads`` other than
#: 1). Every numpy call of a block takes the GIL back when it returns, and with two threads
#: it may have to wait for the other thread's: a fixed cost per block that the cache gain
#: of smaller blocks does not repay there (measured on the online-retail file, the blocks
#: alone on two threads: 0.053 s with this budget against 0.059 s with the default; on one
#: thread the two budgets take the same time). Each thread reduces one block at a time, so
#: two threads hold up to four times the memory of one thread with the default budget.
THREADED_BLOCK_BUDGET = 2 * DEFAULT_BLOCK_BUDGET

NANOSECONDS_PER_DAY = 86_400 * 10**9

#: ``progress(stage, done, total)``: stage is "matrix" or "pairs".
ProgressCallback = Callable[[str, int, int], None]


class AffinityInputError(ValueError):
    """The arrays given to the engine are inconsistent or an option is out of range."""


#: The per-pair arrays of an :class:`AffinityResult` (one entry per stored pair) and their
#: dtypes: the engine builds, joins and frames them, and the writer stores them, all
#: from this one list. ``source`` and ``target`` are indices into ``product_ids``.
PAIR_DTYPES: dict[str, type[np.generic]] = {
    "source": np.int64,
    "target": np.int64,
    "co_count": np.int64,
    "support": np.float64,
    "confidence": np.float64,
    "lift": np.float64,
    "score": np.float64,
}
PAIR_FIELDS: tuple[str, ...] = tuple(PAIR_DTYPES)


@dataclass
class AffinityResult:
    """Top-K partners per product, as parallel arrays (one entry per stored pair).

    ``source`` and ``target`` are indices into ``product_ids`` (the caller's ids, in order
    of first appearance), so writers can encode ids once per product, not once per pair.
    """

    product_ids: np.ndarray
    item_counts: np.ndarray
    source: np.ndarray
    target: np.ndarray
    co_count: np.ndarray
    support: np.ndarray
    confidence: np.ndarray
    lift: np.ndarray
    score: np.ndarray
    n_orders: int
    n_lines: int
    metric: str
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def n_products(self) -> int:
        return len(self.product_ids)

    @property
    def n_pairs(self) -> int:
        return len(self.source)

    @classmethod
    def concat(cls, blocks: Sequence[AffinityResult]) -> AffinityResult:
        """Blocks of consecutive source products joined back into one result."""
        first = blocks[0]
        if len(blocks) == 1:
            return first
        joined: dict[str, Any] = {
            name: np.concatenate([getattr(b, name) for b in blocks]) for name in PAIR_FIELDS
        }
        return dataclasses.replace(first, **joined)

    def to_frame(self) -> pd.DataFrame:
        """The pairs with the caller's product ids, for analysis and tests."""
        columns = {name: getattr(self, name) for name in PAIR_FIELDS}
        columns["source"] = self.product_ids[self.source]
        columns["target"] = self.product_ids[self.target]
        return pd.DataFrame(columns)


@dataclass
class BasketMatrix:
    """The binary order x product matrix and what the metrics need from it."""

    matrix: sparse.csr_matrix  # orders x products, int32 ones
    product_ids: np.ndarray
    weights: np.ndarray | None  # per order, for time decay
    n_lines: int
    #: Per order, for the ranking score only (time decay times the basket-size weighting);
    #: None: the score uses ``weights``, like the other metrics.
    score_weights: np.ndarray | None = None
    #: Orders with more distinct products are left out of the pairs (not of the totals).
    max_basket_size: int | None = None

    @property
    def n_orders(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_products(self) -> int:
        return self.matrix.shape[1]


def order_products_by_id(baskets: BasketMatrix) -> BasketMatrix:
    """The basket matrix with its products (columns) in ascending id order.

    The engine emits sources in column order; in id order the pairs reach a database writer
    in the order of an index on ``(source, -score)`` (PostgreSQL compares integer and UUID
    keys as Python does), so they can be streamed block by block without a global re-sort,
    and every new index entry lands right of the previous one. Partners tied on score are
    then ranked by ascending id. Ids that do not sort are left as they are.
    """
    ids = baskets.product_ids
    if len(ids) < 2:
        return baskets
    try:
        order = np.argsort(ids, kind="stable")
    except TypeError:
        return baskets
    if (order[1:] > order[:-1]).all():
        return baskets
    column_of = np.empty(len(order), dtype=np.int64)
    column_of[order] = np.arange(len(order))
    matrix = baskets.matrix
    remapped = matrix.__class__(
        (matrix.data, column_of[matrix.indices].astype(matrix.indices.dtype), matrix.indptr),
        shape=matrix.shape,
    )
    return dataclasses.replace(baskets, matrix=remapped, product_ids=ids[order])


def _as_datetime_ns(values: Any) -> np.ndarray:
    """UTC nanoseconds since the epoch; accepts aware/naive datetimes and datetime64."""
    converted = pd.to_datetime(pd.Series(values), utc=True)
    return converted.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def build_basket_matrix(
    orders: Sequence[Any] | np.ndarray,
    products: Sequence[Any] | np.ndarray,
    placed_at: Sequence[Any] | np.ndarray | None = None,
    *,
    now: Any = None,
    lookback_days: float | None = None,
    half_life_days: float | None = None,
) -> BasketMatrix:
    """Build the binary order x product matrix from order lines.

    Lines with a missing order or product (a product deleted from the catalogue shows up as
    ``None``/NaN) are dropped. Orders outside the lookback window are dropped when
    ``placed_at`` is given. With ``half_life_days`` every order gets the weight
    ``0.5 ** (age / half_life)``.
    """
    orders = np.asarray(orders)
    products = np.asarray(products)
    if orders.shape != products.shape or orders.ndim != 1:
        raise AffinityInputError("orders and products must be 1-D arrays of the same length.")
    if lookback_days is not None and lookback_days <= 0:
        raise AffinityInputError("lookback_days must be positive.")
    if half_life_days is not None and half_life_days <= 0:
        raise AffinityInputError("half_life_days must be positive.")
    needs_time = lookback_days is not None or half_life_days is not None
    age_days = None
    if needs_time:
        if placed_at is None:
            raise AffinityInputError("lookback_days and half_life_days need placed_at.")
        placed_ns = _as_datetime_ns(placed_at)
        if placed_ns.shape != orders.shape:
            raise AffinityInputError("placed_at must have one entry per order line.")
        now_ns = (
            pd.Timestamp.now(tz="UTC").value
            if now is None
            else pd.Timestamp(now).tz_localize("UTC").value
            if pd.Timestamp(now).tzinfo is None
            else pd.Timestamp(now).value
        )
        age_days = (now_ns - placed_ns) / NANOSECONDS_PER_DAY
        if lookback_days is not None:
            keep = age_days <= lookback_days
            orders, products, age_days = orders[keep], products[keep], age_days[keep]

    product_codes, product_ids = pd.factorize(products, use_na_sentinel=True)
    order_codes = _order_codes(np.asarray(orders))
    valid = (product_codes >= 0) & (order_codes >= 0)
    if not valid.all():
        product_codes, order_codes = product_codes[valid], order_codes[valid]
        if age_days is not None:
            age_days = age_days[valid]
        # Orders or products that only had dropped lines must not count.
        order_codes = _compact(order_codes)
        used = np.unique(product_codes)
        product_ids = np.asarray(product_ids)[used]
        product_codes = np.searchsorted(used, product_codes)
    product_ids = np.asarray(product_ids)
    n_orders = int(order_codes.max()) + 1 if len(order_codes) else 0
    n_products = len(product_ids)
    matrix = _binary_matrix(order_codes, product_codes, n_orders, n_products)

    weights = None
    if half_life_days is not None and n_orders:
        order_age = np.full(n_orders, np.inf)
        assert age_days is not None  # read whenever a half-life is set
        np.minimum.at(order_age, order_codes, np.maximum(age_days, 0.0))
        weights = np.power(0.5, order_age / half_life_days)
    return BasketMatrix(
        matrix=matrix, product_ids=product_ids, weights=weights, n_lines=len(order_codes)
    )


def _binary_matrix(
    order_codes: np.ndarray, product_codes: np.ndarray, n_orders: int, n_products: int
) -> sparse.csr_matrix:
    """The orders x products matrix of ones, in canonical form (sorted, no duplicates).

    Several lines of one product in one order count once. One sort of ``order x products
    + product`` keys does what scipy's COO conversion and duplicate summing do in three
    passes; int32 keys when they fit sort in half the time of int64 ones.
    """
    small = n_orders * n_products <= np.iinfo(np.int32).max
    keys: np.ndarray = order_codes.astype(np.int32 if small else np.int64)
    keys *= n_products
    keys += product_codes
    keys.sort()
    if len(keys) > 1:
        fresh = np.empty(len(keys), dtype=bool)
        fresh[0] = True
        np.not_equal(keys[1:], keys[:-1], out=fresh[1:])
        if not fresh.all():
            keys = keys[fresh]
        del fresh
    row = keys // max(n_products, 1)
    indptr = np.zeros(n_orders + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n_orders), out=indptr[1:])
    row *= n_products
    keys -= row  # now the product of each entry
    del row
    index = np.int32 if max(len(keys), n_products, n_orders) < np.iinfo(np.int32).max else np.int64
    matrix = sparse.csr_matrix(
        (np.ones(len(keys), dtype=np.int32), keys.astype(index), indptr.astype(index)),
        shape=(n_orders, n_products),
    )
    matrix.has_canonical_format = True
    return matrix


def _order_codes(orders: np.ndarray) -> np.ndarray:
    """Dense codes of the order ids; -1 for missing ones.

    Lines usually arrive grouped by order, so a sorted integer array is coded by counting
    changes (no hashing); anything else goes through ``pandas.factorize``.
    """
    if orders.dtype.kind in "iu" and len(orders):
        steps = np.diff(orders)
        if (steps >= 0).all():
            codes = np.empty(len(orders), dtype=np.int64)
            codes[0] = 0
            np.cumsum(steps != 0, out=codes[1:])
            return codes
    codes, _ = pd.factorize(orders, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False)


def _compact(codes: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(codes, return_inverse=True)
    return inverse.astype(np.int64, copy=False)


def order_weights(matrix: sparse.csr_matrix, scheme: str) -> np.ndarray | None:
    """Per-order weights of the ranking score by basket size; None for ``"none"``.

    Why: in a shop with large orders (UCI Online Retail, median 15 products) a 40-product
    order adds 780 pairs and a 2-product order one, so plain counts rank what big orders
    happen to hold together. ``"inverse_size"`` gives each order the weight
    ``1 / size``; ``"bm25"`` gives it the square of the BM25 inverse document frequency
    ``log(products) - log(1 + size)`` that ``implicit``'s BM25 item-item model uses (an
    item-item similarity is a dot product, so each order's weight enters it squared),
    floored at zero. The choice between them was measured (README, "Choosing the
    defaults").
    """
    if scheme == "none":
        return None
    size = np.diff(matrix.indptr).astype(np.float64)
    if scheme == "inverse_size":
        return _quantise(1.0 / np.maximum(size, 1.0))
    if scheme == "bm25":
        idf = np.log(float(max(matrix.shape[1], 1))) - np.log1p(size)
        return _quantise(np.square(np.maximum(idf, 0.0)))
    raise AffinityInputError(
        f"Unknown order weighting {scheme!r}; choose one of {', '.join(WEIGHTINGS)}."
    )


#: Order weights are rounded to multiples of this (2^-24, a relative error under 1e-5):
#: then every sum of them below 2^29 is exact in float64, so weighted co-occurrence does
#: not depend on the order of summation. That is what lets an incremental run (add new
#: orders, subtract old ones) reproduce a full recompute bit for bit.
WEIGHT_QUANTUM = 2.0**-24


def _quantise(weights: np.ndarray) -> np.ndarray:
    return np.round(weights / WEIGHT_QUANTUM) * WEIGHT_QUANTUM


def weigh_orders(
    baskets: BasketMatrix, scheme: str = DEFAULT_WEIGHTING, max_basket_size: int | None = None
) -> BasketMatrix:
    """``baskets`` with a basket-size weighting of the score and a basket-size cap.

    The weighting multiplies with time decay and changes only the ranking score: support,
    confidence, lift and the integer ``co_count`` stay the association-rule figures an
    analyst can check against ``mlxtend``.
    """
    if max_basket_size is not None and max_basket_size < 2:
        raise AffinityInputError("max_basket_size must be at least 2 (or None).")
    size_weights = order_weights(baskets.matrix, scheme)
    score_weights = None
    if size_weights is not None:
        score_weights = size_weights if baskets.weights is None else size_weights * baskets.weights
    return dataclasses.replace(
        baskets, score_weights=score_weights, max_basket_size=max_basket_size
    )


def _metric_values(
    metric: str,
    co: np.ndarray,
    n_source: np.ndarray,
    n_target: np.ndarray,
    n_orders: float,
    support: Callable[[], np.ndarray],
    confidence: Callable[[], np.ndarray],
    lift: Callable[[], np.ndarray],
) -> np.ndarray:
    """The ranking metric; support, confidence and lift are computed only when ranked by."""
    if metric == "confidence":
        return confidence()
    if metric == "lift":
        return lift()
    if metric == "support":
        return support()
    if metric == "co_count":
        return co.astype(np.float64)
    if metric == "cosine":
        return co / np.sqrt(n_source * n_target)
    if metric == "jaccard":
        return co / (n_source + n_target - co)
    raise AffinityInputError(f"Unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")


def _block_scores(
    metric: str, co: np.ndarray, source: np.ndarray, target: np.ndarray, total: float
) -> np.ndarray:
    """:func:`_metric_values` of a block; ``source`` and ``target`` are scratch (overwritten).

    The default metric reuses their memory instead of allocating three arrays as large
    as the block (the same operations in the same order: bitwise the same scores).
    """
    if metric == "cosine":
        np.multiply(source, target, out=source)
        np.sqrt(source, out=source)
        return np.divide(co, source, out=source)
    return _metric_values(
        metric,
        co,
        source,
        target,
        total,
        lambda: co / total,
        lambda: co / source,
        lambda: (co / source) / (target / total),
    )


def split_blocks(cost: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Split rows into consecutive blocks whose summed cost stays under the budget.

    A block takes its rows up to the first one that costs anything whatever that costs,
    then every next row while the sum stays within the budget. Two binary searches of the
    running sum per block, not a Python step per row: on 3,400 products the loop took as
    long as a block. ``cost`` is not negative.
    """
    n_rows = len(cost)
    ends = np.cumsum(cost, dtype=np.int64)
    blocks: list[tuple[int, int]] = []
    start, before = 0, 0
    while start < n_rows:
        first_costly = int(np.searchsorted(ends, before, side="right"))
        within = int(np.searchsorted(ends, before + budget, side="right"))
        stop = max(within, min(first_costly + 1, n_rows))
        blocks.append((start, stop))
        start, before = stop, int(ends[stop - 1])
    return blocks


def compute_pairs(
    baskets: BasketMatrix,
    *,
    min_co_count: int = DEFAULT_MIN_CO_COUNT,
    top_k: int | None = DEFAULT_TOP_K,
    metric: str = DEFAULT_METRIC,
    block_budget: int | None = None,
    progress: ProgressCallback | None = None,
    threads: int = 1,
) -> AffinityResult:
    """Top-K partners of every product of ``baskets`` (see the module docstring).

    ``threads``: blocks computed at once (see :func:`plan_results`). ``block_budget``:
    None for :data:`DEFAULT_BLOCK_BUDGET` on one thread, :data:`THREADED_BLOCK_BUDGET`
    on several.
    """
    blocks = list(
        iter_pair_blocks(
            baskets,
            min_co_count=min_co_count,
            top_k=top_k,
            metric=metric,
            block_budget=block_budget,
            progress=progress,
            threads=threads,
        )
    )
    return AffinityResult.concat(blocks)


def iter_pair_blocks(
    baskets: BasketMatrix,
    *,
    min_co_count: int = DEFAULT_MIN_CO_COUNT,
    top_k: int | None = DEFAULT_TOP_K,
    metric: str = DEFAULT_METRIC,
    block_budget: int | None = None,
    min_blocks: int = 1,
    progress: ProgressCallback | None = None,
    threads: int = 1,
) -> Iterator[AffinityResult]:
    """:func:`compute_pairs` a block of source products at a time.

    Each yielded result holds the pairs of consecutive source products (in product index
    order, each source's partners best first); concatenated they are exactly the result of
    :func:`compute_pairs`. A writer can store one block while the next is computed, and
    ``min_blocks`` cuts the work into at least that many blocks (when there are that many
    products) so there is something to overlap. At least one block is always yielded.
    Arguments are checked before the first block is computed.
    """
    empty = empty_result(baskets, min_co_count=min_co_count, top_k=top_k, metric=metric)
    return _pair_blocks(
        baskets, empty, min_co_count, top_k, metric, block_budget, min_blocks, progress, threads
    )


def empty_result(
    baskets: BasketMatrix, *, min_co_count: int, top_k: int | None, metric: str
) -> AffinityResult:
    """The result's totals with no pairs yet (arguments checked): what blocks share."""
    if metric not in METRICS:
        raise AffinityInputError(f"Unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")
    if min_co_count < 1:
        raise AffinityInputError("min_co_count must be at least 1.")
    if top_k is not None and top_k < 1:
        raise AffinityInputError("top_k must be at least 1 (or None for every partner).")
    x = baskets.matrix
    n_orders = x.shape[0]
    item_counts = np.asarray(x.sum(axis=0)).ravel().astype(np.int64)
    parameters = {
        "min_co_count": min_co_count,
        "top_k": top_k,
        "metric": metric,
        "weighted": baskets.weights is not None,
        "score_weighted": baskets.score_weights is not None,
        "max_basket_size": baskets.max_basket_size,
    }
    return AffinityResult(
        product_ids=baskets.product_ids,
        item_counts=item_counts,
        **{name: np.zeros(0, dtype) for name, dtype in PAIR_DTYPES.items()},
        n_orders=n_orders,
        n_lines=baskets.n_lines,
        metric=metric,
        parameters=parameters,
    )


@dataclass
class BlockPlan:
    """Everything one block of source products needs, shared by every block.

    :func:`compute_block` turns ``(plan, start, stop)`` into that block's pairs with no other
    input, so the blocks can run in this process one after another or as Dask tasks on
    other machines (:mod:`.distributed`) with bitwise-equal results.
    """

    xt: sparse.csr_matrix  # products x multi-product orders (ones)
    xm: sparse.csr_matrix  # multi-product orders x products; packed or complex (see below)
    #: A precomputed products x products co-occurrence (no diagonal; complex when
    #: weighted) to slice instead of multiplying ``xt @ xm`` (incremental runs).
    cooc: sparse.csr_matrix | None
    #: Per-order weights of the (first) weighted quantity live in ``xm``'s imaginary part;
    #: a second one (time decay *and* a size weighting) in this matrix.
    xs: sparse.csr_matrix | None
    decay_in_xm: bool  # the imaginary part of xm is the decay weight (else the score's)
    weighted_counts: np.ndarray
    total_weight: float
    score_counts: np.ndarray
    score_total: float
    weighted: bool  # time decay: support/confidence/lift from weighted counts
    score_weighted: bool
    min_co_count: int
    top_k: int | None
    metric: str
    n_products: int
    blocks: list[tuple[int, int]]
    #: When set, ``xm`` holds int64 ``(1 << packed_shift) + w`` per line, ``w`` the order's
    #: score weight in units of :data:`WEIGHT_QUANTUM`: one integer product then gives each
    #: pair's count (above the shift) and its exact weight sum (below); 0 when there is no
    #: weight (int32 ones, counts only). None: the complex layout above.
    packed_shift: int | None = None
    #: Upper bound of each source row's non-zeros (see :func:`_block_product`).
    row_bound: np.ndarray | None = None


def plan_blocks(
    baskets: BasketMatrix,
    *,
    min_co_count: int = DEFAULT_MIN_CO_COUNT,
    top_k: int | None = DEFAULT_TOP_K,
    metric: str = DEFAULT_METRIC,
    block_budget: int = DEFAULT_BLOCK_BUDGET,
    min_blocks: int = 1,
) -> BlockPlan | None:
    """The shared inputs and the block boundaries; None when there can be no pair."""
    x = baskets.matrix
    n_orders, n_products = x.shape
    if n_orders == 0 or n_products < 2:
        return None
    item_counts = np.bincount(x.indices, minlength=n_products).astype(np.int64)

    # Orders with a single product cannot contribute a pair; dropping them from the
    # product (not from the totals) saves work on shops with many one-item orders.
    basket_size = np.diff(x.indptr)
    multi = basket_size >= 2
    if baskets.max_basket_size is not None:
        multi &= basket_size <= baskets.max_basket_size
    xm = x[multi] if not multi.all() else x
    weights = baskets.weights
    if weights is not None:
        total_weight = float(weights.sum())
        weighted_counts = np.asarray(x.T @ weights).ravel()
    else:
        total_weight = float(n_orders)
        weighted_counts = item_counts.astype(np.float64)
    score_weights = baskets.score_weights
    if score_weights is not None:
        # The score's own totals: every order, weighted, as the pairs are.
        score_total = float(score_weights.sum())
        score_counts = np.asarray(x.T @ score_weights).ravel()
    else:
        score_total, score_counts = total_weight, weighted_counts
    xt = xm.T.tocsr()  # products x orders
    # Upper bound of each source row's non-zeros: the lines of the orders it appears in.
    cost = np.asarray(xt @ basket_size[multi].astype(np.int64)).ravel()
    if min_blocks > 1:
        block_budget = min(block_budget, max(int(cost.sum()) // min_blocks, 1))
    # One sparse product gives the integer counts and one weighted sum at once. Without
    # time decay the order weights are multiples of WEIGHT_QUANTUM, so count and weight
    # sum pack into one int64 per line (exact, and a third faster than complex numbers).
    # Otherwise the matrix holds 1 + w·i per line: the real part counts orders exactly and
    # the imaginary part sums their weights in the same order a real product would.
    first = weights if weights is not None else score_weights
    xs = None
    packed = None
    if weights is None:
        packed = _packed_lines(xm, xt, None if score_weights is None else score_weights[multi])
    if packed is not None:
        xm = sparse.csr_matrix((packed[1], xm.indices, xm.indptr), shape=xm.shape)
        xt = sparse.csr_matrix(
            (np.ones(xt.nnz, dtype=packed[1].dtype), xt.indices, xt.indptr), shape=xt.shape
        )
    elif first is not None:
        data = 1.0 + 1j * first[multi][np.repeat(np.arange(xm.shape[0]), np.diff(xm.indptr))]
        xm = sparse.csr_matrix((data, xm.indices, xm.indptr), shape=xm.shape)
        if weights is not None and score_weights is not None:
            xs = sparse.diags(score_weights[multi]) @ x[multi]
    return BlockPlan(
        xt=xt,
        xm=xm,
        cooc=None,
        xs=xs,
        decay_in_xm=weights is not None,
        weighted_counts=weighted_counts,
        total_weight=total_weight,
        score_counts=score_counts,
        score_total=score_total,
        weighted=weights is not None,
        score_weighted=score_weights is not None,
        min_co_count=min_co_count,
        top_k=top_k,
        metric=metric,
        n_products=n_products,
        blocks=split_blocks(cost, block_budget),
        packed_shift=None if packed is None else packed[0],
        row_bound=cost,
    )


def _packed_lines(
    xm: sparse.csr_matrix, xt: sparse.csr_matrix, weights: np.ndarray | None
) -> tuple[int, np.ndarray] | None:
    """``(shift, value per line)`` of the int64 layout of :attr:`BlockPlan.packed_shift`.

    None when it would not be exact: weights that are not multiples of the quantum (time
    decay), or a product whose counts and weight sums together need more than 62 bits, or
    weight sums past 2^53 quanta (where a float sum would round).
    """
    max_count = int(np.diff(xt.indptr).max(initial=0))
    units = None
    shift = 0
    if weights is not None:
        scaled = np.round(weights / WEIGHT_QUANTUM)
        if (scaled < 0).any() or not np.array_equal(scaled * WEIGHT_QUANTUM, weights):
            return None
        units = scaled.astype(np.int64)
        largest = int(np.asarray(xt @ units).max(initial=0))
        shift = max(largest.bit_length(), 1)
        if shift > 53:
            return None
    if shift + max_count.bit_length() > 62:
        return None
    sizes = np.diff(xm.indptr)
    if units is None:  # counts only: int32 halves the matrices (and fits any count)
        return shift, np.ones(xm.nnz, dtype=np.int32 if max_count < 2**31 else np.int64)
    return shift, np.repeat((np.int64(1) << np.int64(shift)) + units, sizes)


#: Bits of the sort key that :func:`_top_k_candidates` builds per pair (the source's row in
#: the block, then the score's leading bits); fewer bits only make more pairs tie in it.
SELECTION_KEY_BITS = 64
#: The largest bit pattern of a float64 that is a number (``+inf``); NaN patterns are above.
_INF_BITS = 0x7FF0000000000000


def _top_k_candidates(
    score: np.ndarray, per_row: np.ndarray, top_k: int, score_range: tuple[int, int]
) -> np.ndarray | None:
    """Indices of a superset of each source's ``top_k`` best pairs, or None for all.

    ``score`` is grouped by source (``per_row`` pairs each, in source order) and holds no
    negative number or NaN; ``score_range`` is the least and greatest of its bit patterns.
    Why not sort every pair by (source, -score, target): on a shop with large orders that
    sort cost more than the sparse product. A non-negative float's bit pattern orders like
    its value, so one unsigned integer per pair, the source's row above the score's leading
    bits (inverted: best first), sorts every source's pairs best first in one pass of
    numpy's vectorised sort, and a source's ``top_k``-th key bounds its best pairs. Pairs
    whose scores differ only in the dropped bits tie in the key, so the bound keeps them
    all; the exact order is settled on the few that pass.
    """
    long_rows = per_row > top_k
    if not long_rows.any():
        return None
    n_rows = len(per_row)
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    key_bits = 32 if row_bits <= 12 else 64
    key_type: Any = np.uint32 if key_bits == 32 else np.uint64
    score_bits = max(min(key_bits, SELECTION_KEY_BITS) - row_bits, 0)
    low, high = score_range
    drop = max((high - low).bit_length() - score_bits, 0)
    worst_first = np.subtract(np.int64(high), score.view(np.int64))
    worst_first >>= np.int64(drop)
    key: np.ndarray = worst_first.astype(key_type)
    del worst_first
    row_keys: np.ndarray = np.arange(n_rows, dtype=key_type)
    row_keys <<= key_type(score_bits)
    key |= np.repeat(row_keys, per_row)
    ends = np.cumsum(per_row)
    bound = np.full(n_rows, np.iinfo(key_type).max, dtype=key_type)
    bound[long_rows] = np.sort(key)[(ends - per_row)[long_rows] + top_k - 1]
    return np.flatnonzero(key <= np.repeat(bound, per_row))


def _exact_order(
    local: np.ndarray, cols: np.ndarray, score: np.ndarray, n_rows: int, n_products: int
) -> np.ndarray:
    """The permutation sorting pairs by (source, -score, target), ties and all.

    ``np.lexsort`` on three keys was the slowest step of a block; instead each distinct
    score gets its rank and the three fields are packed into one integer sorted at once,
    when they fit in 63 bits.
    """
    distinct, inverse = np.unique(score, return_inverse=True)
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    rank_bits = max(int(len(distinct) - 1).bit_length(), 1)
    col_bits = max(int(n_products - 1).bit_length(), 1)
    if row_bits + rank_bits + col_bits > 63:
        return np.lexsort((cols, -score, local))
    key = local << np.int64(rank_bits + col_bits)
    key |= (len(distinct) - 1 - inverse.reshape(-1).astype(np.int64)) << np.int64(col_bits)
    key |= cols
    return np.argsort(key)


def _top_k_order(
    per_row: np.ndarray, cols: np.ndarray, score: np.ndarray, top_k: int | None, n_products: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(order, local rows)``: the kept pairs ordered by (source, best score first, target).

    Exactly the first ``top_k`` of each source in that order. The pairs are grouped by
    source in ascending order (as a CSR block's are), ``per_row`` pairs each; the local
    rows (0 for the block's first source) come back with ``order`` already applied.
    """
    n_rows = len(per_row)
    if not len(score):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bits = score.view(np.int64)
    score_range = int(bits.min()), int(bits.max())
    if score_range[0] < 0 or score_range[1] > _INF_BITS:
        # A negative score or NaN (0/0 when every order of a product weighs 0) has no
        # ordered bit pattern: sort every pair as they are.
        local = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
        order = np.lexsort((cols, -score, local))
        if top_k is not None:
            ranked = local[order]
            order = order[np.arange(len(order)) - np.searchsorted(ranked, ranked) < top_k]
        return order, local[order]
    candidates = None
    if top_k is not None:
        candidates = _top_k_candidates(score, per_row, top_k, score_range)
    if candidates is None:
        local = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
    else:
        local = np.searchsorted(np.cumsum(per_row), candidates, side="right")
        cols, score = cols[candidates], score[candidates]
        per_row = np.bincount(local, minlength=n_rows)
    order = _exact_order(local, cols, score, n_rows, n_products)
    if top_k is not None:
        ends = np.cumsum(per_row)
        rank = np.arange(len(order)) - np.repeat(ends - per_row, per_row)
        order = order[rank < top_k]
    local = local[order]
    return (order if candidates is None else candidates[order]), local


def _block_product(plan: BlockPlan, start: int, stop: int) -> tuple[np.ndarray, ...]:
    """``indptr, indices, data`` of rows ``start:stop`` of ``plan.xt @ plan.xm``.

    scipy's product first counts the result's non-zeros in a pass as costly as the
    product itself (a third of a block's time). The plan already holds an upper bound of
    each row's non-zeros (:attr:`BlockPlan.row_bound`), so the buffers are allocated from
    it and scipy's kernel runs once; the result is the same, entry for entry. A scipy
    without that kernel takes the public product.
    """
    b = plan.xm
    kernel = getattr(_sparsetools, "csr_matmat", None)
    if plan.row_bound is not None and kernel is not None:
        xt = plan.xt
        first, last = int(xt.indptr[start]), int(xt.indptr[stop])
        bound = int(np.minimum(plan.row_bound[start:stop], b.shape[1]).sum())
        limit = max(bound, xt.nnz, b.nnz, b.shape[1], stop - start + 1)
        index = np.int32 if limit < np.iinfo(np.int32).max else np.int64
        indptr = np.empty(stop - start + 1, dtype=index)
        indices = np.empty(bound, dtype=index)
        data = np.empty(bound, dtype=np.result_type(xt.data, b.data))
        try:
            kernel(
                stop - start,
                b.shape[1],
                (xt.indptr[start : stop + 1] - first).astype(index, copy=False),
                xt.indices[first:last].astype(index, copy=False),
                xt.data[first:last].astype(data.dtype, copy=False),
                b.indptr.astype(index, copy=False),
                b.indices.astype(index, copy=False),
                b.data.astype(data.dtype, copy=False),
                indptr,
                indices,
                data,
            )
        except (TypeError, ValueError):  # pragma: no cover - a scipy with another kernel
            pass
        else:
            nnz = int(indptr[-1])
            return indptr, indices[:nnz], data[:nnz]
    block = plan.xt[start:stop] @ b
    return block.indptr, block.indices, block.data


def compute_block(plan: BlockPlan, start: int, stop: int) -> dict[str, np.ndarray]:
    """The pairs of source products ``start:stop`` as :data:`PAIR_FIELDS` arrays.

    A pure function of its arguments (see :class:`BlockPlan`).
    """
    packed_shift = plan.packed_shift if plan.cooc is None else None
    second_weighted = None
    if plan.cooc is None and plan.xs is None:
        indptr, cols, data = _block_product(plan, start, stop)
    else:
        block = plan.cooc[start:stop] if plan.cooc is not None else plan.xt[start:stop] @ plan.xm
        if plan.xs is not None:
            # Both the decay and a size weighting: the second weighted sum comes from ``xs``
            # (on a precomputed ``cooc``, ``xt`` is the identity and ``xs`` the summed rows).
            block.sort_indices()
            second = plan.xt[start:stop] @ plan.xs
            second.sort_indices()
            if not np.array_equal(second.indices, block.indices):  # pragma: no cover
                raise RuntimeError("weighted and unweighted co-occurrence differ in structure")
            second_weighted = second.data
        indptr, cols, data = block.indptr, block.indices, block.data
    sizes = np.diff(indptr)
    if packed_shift is not None:
        # count >= min_co_count, read on the packed value without unpacking every pair
        keep = data >= min(plan.min_co_count << packed_shift, np.iinfo(np.int64).max)
    elif np.iscomplexobj(data):
        keep = data.real.astype(np.int64) >= plan.min_co_count
    else:
        keep = data.astype(np.int64, copy=False) >= plan.min_co_count
    keep &= cols != np.repeat(np.arange(start, stop, dtype=cols.dtype), sizes)
    kept = np.flatnonzero(keep)
    del keep
    per_row = np.diff(np.searchsorted(kept, indptr))
    cols = cols[kept]
    values = data[kept]
    if second_weighted is not None:
        second_weighted = second_weighted[kept]
    del data, kept
    first_weighted = None
    if packed_shift is not None:
        counts = values >> np.int64(packed_shift) if packed_shift else values.astype(np.int64)
        if packed_shift:
            values &= np.int64((1 << packed_shift) - 1)
            first_weighted = np.multiply(values, WEIGHT_QUANTUM)  # exact: below 2^53
    elif np.iscomplexobj(values):
        counts = values.real.astype(np.int64)
        first_weighted = values.imag
    else:
        counts = values.astype(np.int64, copy=False)
    if plan.weighted:
        assert first_weighted is not None  # the decay weights ride in the imaginary part
        co: np.ndarray | None = first_weighted
        score_co = second_weighted
    else:
        co = None  # the counts, as floats, once the pairs are cut to the top K
        score_co = first_weighted
    total = plan.total_weight
    if score_co is None:
        score = _block_scores(
            plan.metric,
            counts if co is None else co,
            np.repeat(plan.weighted_counts[start:stop], per_row),
            np.take(plan.weighted_counts, cols),
            total,
        )
    else:
        score = _block_scores(
            plan.metric,
            score_co,
            np.repeat(plan.score_counts[start:stop], per_row),
            np.take(plan.score_counts, cols),
            plan.score_total,
        )
    order, local = _top_k_order(per_row, cols, score, plan.top_k, plan.n_products)
    rows = local + start
    counts, score = counts[order], score[order]
    co = counts.astype(np.float64) if co is None else co[order]
    cols = cols[order].astype(np.int64)
    n_source, n_target = plan.weighted_counts[rows], plan.weighted_counts[cols]
    confidence = co / n_source
    return {
        "source": rows,
        "target": cols,
        "co_count": counts,
        "support": co / total,
        "confidence": confidence,
        "lift": confidence / (n_target / total),
        "score": score,
    }


def block_result(empty: AffinityResult, pairs: dict[str, np.ndarray]) -> AffinityResult:
    """A block's pair arrays as an :class:`AffinityResult` sharing ``empty``'s totals."""
    arrays: dict[str, Any] = {
        name: pairs[name].astype(dtype, copy=False) for name, dtype in PAIR_DTYPES.items()
    }
    return dataclasses.replace(empty, **arrays, parameters=dict(empty.parameters))


def _pair_blocks(
    baskets: BasketMatrix,
    empty: AffinityResult,
    min_co_count: int,
    top_k: int | None,
    metric: str,
    block_budget: int | None,
    min_blocks: int,
    progress: ProgressCallback | None,
    threads: int = 1,
) -> Iterator[AffinityResult]:
    if block_budget is None:
        block_budget = DEFAULT_BLOCK_BUDGET if _workers(threads) <= 1 else THREADED_BLOCK_BUDGET
    plan = plan_blocks(
        baskets,
        min_co_count=min_co_count,
        top_k=top_k,
        metric=metric,
        block_budget=block_budget,
        min_blocks=min_blocks,
    )
    yield from plan_results(plan, empty, progress, threads=threads)


#: ``runner(plan, empty, progress)``: computes a plan's blocks (here, or on a cluster).
PlanRunner = Callable[
    ["BlockPlan | None", AffinityResult, "ProgressCallback | None"], Iterator[AffinityResult]
]


def plan_results(
    plan: BlockPlan | None,
    empty: AffinityResult,
    progress: ProgressCallback | None = None,
    *,
    threads: int = 1,
) -> Iterator[AffinityResult]:
    """The blocks of ``plan`` computed in this process, yielded in source order.

    ``threads`` > 1 (0: one per core) computes that many blocks at once: scipy's product
    and numpy's array operations release the GIL, and each block is a pure function of
    the plan, so the results are the same, bit for bit. At most two blocks per thread are
    held ahead of the consumer. The default is one: a recompute already runs the engine
    next to its database writer, and a Celery worker should not take every core.
    """
    if plan is None or not plan.blocks:
        yield empty
        return
    workers = _workers(threads)
    if workers <= 1 or len(plan.blocks) < 2:
        for start, stop in plan.blocks:
            pairs = compute_block(plan, start, stop)
            if progress is not None:
                progress("pairs", stop, plan.n_products)
            yield block_result(empty, pairs)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        _start_threads(pool, workers)
        bounds = iter(plan.blocks)
        pending: deque[tuple[int, Future[dict[str, np.ndarray]]]] = deque()
        for start, stop in islice(bounds, 2 * workers):
            pending.append((stop, pool.submit(compute_block, plan, start, stop)))
        while pending:
            stop, future = pending.popleft()
            pairs = future.result()
            for start, end in islice(bounds, 1):
                pending.append((end, pool.submit(compute_block, plan, start, end)))
            if progress is not None:
                progress("pairs", stop, plan.n_products)
            yield block_result(empty, pairs)


def _workers(threads: int) -> int:
    return (os.cpu_count() or 1) if threads <= 0 else threads


def _start_threads(pool: ThreadPoolExecutor, workers: int) -> None:
    """Start every thread of ``pool`` before the first block is submitted.

    The pool starts a thread per submitted task, and starting one waits until it holds the
    GIL; once a first thread computes a block, the GIL goes back and forth between its
    numpy calls and the new thread gets it only when the interpreter forces a switch
    (5 ms), during which one core idles. Each task here waits for the others, so no
    thread is idle (to be reused) before the last one has started.
    """
    barrier = threading.Barrier(workers)
    for future in [pool.submit(barrier.wait) for _ in range(workers)]:
        future.result()


def compute_affinity(
    orders: Sequence[Any] | np.ndarray,
    products: Sequence[Any] | np.ndarray,
    placed_at: Sequence[Any] | np.ndarray | None = None,
    *,
    min_co_count: int = DEFAULT_MIN_CO_COUNT,
    top_k: int | None = DEFAULT_TOP_K,
    lookback_days: float | None = None,
    half_life_days: float | None = None,
    metric: str = DEFAULT_METRIC,
    order_weighting: str = DEFAULT_WEIGHTING,
    max_basket_size: int | None = None,
    now: Any = None,
    block_budget: int | None = None,
    progress: ProgressCallback | None = None,
    threads: int = 1,
) -> AffinityResult:
    """Order lines in, top-K partners per product out (the one-call form).

    ``threads``: blocks computed at once (:func:`plan_results`; 0 for one per core);
    ``block_budget`` as in :func:`compute_pairs`.
    """
    baskets = build_basket_matrix(
        orders,
        products,
        placed_at,
        now=now,
        lookback_days=lookback_days,
        half_life_days=half_life_days,
    )
    baskets = weigh_orders(baskets, order_weighting, max_basket_size)
    result = compute_pairs(
        baskets,
        min_co_count=min_co_count,
        top_k=top_k,
        metric=metric,
        block_budget=block_budget,
        progress=progress,
        threads=threads,
    )
    result.parameters.update(
        lookback_days=lookback_days,
        half_life_days=half_life_days,
        order_weighting=order_weighting,
    )
    return result


# --- Offline evaluation ----------------------------------------------------------------


def baskets_to_lines(baskets: Iterable[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(order index, item) arrays from a list of baskets, as the engine takes them."""
    if not isinstance(baskets, list | tuple):
        baskets = list(baskets)
    sizes = np.fromiter(map(len, baskets), dtype=np.int64, count=len(baskets))
    items = np.empty(int(sizes.sum()), dtype=object)
    items[:] = list(chain.from_iterable(baskets))
    return np.repeat(np.arange(len(baskets), dtype=np.int64), sizes), items
