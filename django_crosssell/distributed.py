"""The engine's blocks as Dask tasks (``CROSSSELL["ENGINE"] = "dask"``).

Each block of source products is a pure function of the shared :class:`~.affinity.BlockPlan`
and its bounds (:func:`~.affinity.compute_block`), so the plan is sent to the cluster once
(``scatter``, broadcast to every worker) and each block becomes one task. Results come back
in source order, a bounded number in flight, and go into the same binary COPY as a local
run's: the same arithmetic on the same inputs, so the rows are bitwise equal (the tests
check it on an in-process ``LocalCluster``).

The recompute only ever connects to an existing scheduler (``DASK_SCHEDULER``): starting a
cluster inside a Celery worker or a web process would fight them for memory and cores.

With ``DASK_READ = "sharded"`` the order lines are not read by the recompute's process
either (:func:`read_sharded`): each worker reads a range of order keys with the query of a
local read (:func:`.reader.read_order_lines` with ``order_range``), builds its shard's
basket matrix and its integer counts (:class:`ShardCounts`: pair counts, item counts, order
count, and the per-order weights' sums), and the shards' counts are added pairwise on the
workers (a tree reduction) into the inputs a local run ranks (:class:`SummedCounts`).
Every order's lines fall into one shard, so each shard knows each of its orders' size and
weight exactly. Counts are integers, and the ``inverse_size`` and ``bm25`` weights are
multiples of 2^-24 (:data:`.affinity.WEIGHT_QUANTUM`) whose sums are exact in any order: the
rows equal a local run's bit for bit. Time decay weights (``HALF_LIFE_DAYS``) are not
quantised, so their sums depend on the order of addition: the weighted figures then agree
with a local run to about 1e-15 relative, not bit for bit.

Imports ``dask.distributed`` only when called: it is the optional ``[dask]`` extra. A
sharded read runs Django on the workers: they need the host project importable, its
settings (``DJANGO_SETTINGS_MODULE``) and access to its database.
"""

from __future__ import annotations

import dataclasses
import os
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from . import affinity

if TYPE_CHECKING:
    from .reader import OrderLines

#: Blocks submitted ahead of the one being written, per worker.
IN_FLIGHT_PER_WORKER = 2


def connect(address: Any) -> Any:
    """A ``distributed.Client`` for ``address`` (a scheduler address, or a client as is)."""
    from dask.distributed import Client

    if isinstance(address, Client):
        return address
    return Client(address, set_as_default=False)


def in_order(
    client: Any,
    tasks: Iterator[tuple[int, Callable[[], Any]]],
    empty: affinity.AffinityResult,
    progress: affinity.ProgressCallback | None,
    n_products: int,
) -> Iterator[affinity.AffinityResult]:
    """Each block's pairs in source order, a bounded number of blocks submitted ahead.

    The COPY needs the blocks in order, and a block submitted too early only holds its
    pairs in a worker's memory, so a few per worker keep every core busy and memory flat.
    """
    pending: deque[tuple[int, Any]] = deque()

    def submit() -> bool:
        task = next(tasks, None)
        if task is None:
            return False
        stop, start_task = task
        pending.append((stop, start_task()))
        return True

    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    for _ in range(workers * IN_FLIGHT_PER_WORKER):
        if not submit():
            break
    while pending:
        stop, future = pending.popleft()
        pairs = future.result()
        submit()
        if progress is not None:
            progress("pairs", stop, n_products)
        yield affinity.block_result(empty, pairs)


def plan_results(
    plan: affinity.BlockPlan | None,
    empty: affinity.AffinityResult,
    progress: affinity.ProgressCallback | None = None,
    *,
    scheduler: Any,
) -> Iterator[affinity.AffinityResult]:
    """:func:`.affinity.plan_results`, each block computed by a Dask task."""
    if plan is None or not plan.blocks:
        yield empty
        return
    client = connect(scheduler)
    owned = client is not scheduler
    try:
        shared = client.scatter(plan, broadcast=True)
        tasks = (
            (stop, partial(client.submit, affinity.compute_block, shared, start, stop, pure=False))
            for start, stop in plan.blocks
        )
        yield from in_order(client, tasks, empty, progress, plan.n_products)
    finally:
        if owned:
            client.close()


# --- Sharded read (DASK_READ = "sharded") ------------------------------------------------


@dataclasses.dataclass
class Totals:
    """The per-product vectors and totals of one shard, or of several added: small."""

    n_orders: int
    n_lines: int
    lines_read: int
    lines_dropped: int
    item_counts: np.ndarray  # int64, orders holding each product
    cost: np.ndarray  # int64, the block plan's upper bound of each source row's non-zeros
    total_weight: float | None  # time decay: the orders' summed weights
    weighted_counts: np.ndarray | None
    score_total: float | None  # a size weighting: the orders' summed score weights
    score_counts: np.ndarray | None
    two_weights: bool  # both a decay and a size weighting: ``second`` matrices exist


@dataclasses.dataclass
class ShardCounts:
    """One shard's counts over the window's product index.

    ``pairs`` is the co-occurrence (both triangles, no diagonal) of the shard's orders
    within the basket cap: the order count in the real part and the first weighted sum
    (time decay, else the score's weight) in the imaginary part when there is one;
    ``second`` the score's weighted sums when both a decay and a size weighting apply.
    """

    totals: Totals
    pairs: sparse.csr_matrix
    second: sparse.csr_matrix | None


def _add_optional(a: Any, b: Any) -> Any:
    return None if a is None or b is None else a + b


def add_totals(a: Totals, b: Totals) -> Totals:
    """Two shards' totals added (a task of a tree reduction)."""
    return Totals(
        n_orders=a.n_orders + b.n_orders,
        n_lines=a.n_lines + b.n_lines,
        lines_read=a.lines_read + b.lines_read,
        lines_dropped=a.lines_dropped + b.lines_dropped,
        item_counts=a.item_counts + b.item_counts,
        cost=a.cost + b.cost,
        total_weight=_add_optional(a.total_weight, b.total_weight),
        weighted_counts=_add_optional(a.weighted_counts, b.weighted_counts),
        score_total=_add_optional(a.score_total, b.score_total),
        score_counts=_add_optional(a.score_counts, b.score_counts),
        two_weights=a.two_weights,
    )


def count_shard(
    lines: OrderLines,
    product_ids: np.ndarray,
    *,
    half_life_days: float | None,
    now: datetime,
    order_weighting: str,
    max_basket_size: int | None,
) -> ShardCounts:
    """A shard's counts, its products placed in the window's product index ``product_ids``.

    The basket matrix and the order weights are built exactly as a local run builds them
    (:func:`.affinity.build_basket_matrix`, :func:`.affinity.weigh_orders`), with the
    window's product count, which ``bm25`` needs, from ``product_ids``.
    """
    decay = half_life_days is not None
    built = affinity.build_basket_matrix(
        lines.orders,
        lines.products,
        lines.placed_at if decay else None,
        half_life_days=half_life_days,
        now=now,
    )
    n = len(product_ids)
    columns = pd.Index(product_ids).get_indexer(built.product_ids)
    x = built.matrix
    matrix = sparse.csr_matrix((x.data, columns[x.indices], x.indptr), shape=(x.shape[0], n))
    matrix.sort_indices()
    baskets = affinity.weigh_orders(
        dataclasses.replace(built, matrix=matrix, product_ids=product_ids),
        order_weighting,
        max_basket_size,
    )
    size = np.diff(matrix.indptr)
    multi = size >= 2
    if max_basket_size is not None:
        multi &= size <= max_basket_size
    xm = matrix[multi]
    xt = xm.T.tocsr()
    weights, score = baskets.weights, baskets.score_weights
    first = weights if weights is not None else score
    per_line = np.repeat(np.arange(xm.shape[0]), np.diff(xm.indptr))
    data: np.ndarray = np.ones(xm.nnz)
    if first is not None:
        data = 1.0 + 1j * first[multi][per_line]

    def cooc(values: np.ndarray) -> sparse.csr_matrix:
        product = (xt @ sparse.csr_matrix((values, xm.indices, xm.indptr), shape=xm.shape)).tocoo()
        off = product.row != product.col
        return sparse.csr_matrix(
            (product.data[off], (product.row[off], product.col[off])), shape=(n, n)
        )

    second = None
    if weights is not None and score is not None:
        second = cooc(score[multi][per_line])
    totals = Totals(
        n_orders=matrix.shape[0],
        n_lines=built.n_lines,
        lines_read=lines.lines_read,
        lines_dropped=lines.lines_dropped,
        item_counts=np.bincount(matrix.indices, minlength=n).astype(np.int64),
        cost=np.asarray(xt @ size[multi].astype(np.int64)).ravel().astype(np.int64),
        total_weight=float(weights.sum()) if weights is not None else None,
        weighted_counts=np.asarray(matrix.T @ weights).ravel() if weights is not None else None,
        score_total=float(score.sum()) if score is not None else None,
        score_counts=np.asarray(matrix.T @ score).ravel() if score is not None else None,
        two_weights=second is not None,
    )
    return ShardCounts(totals=totals, pairs=cooc(data), second=second)


def shard_totals(counts: ShardCounts) -> Totals:
    """A shard's totals without its pairs (a task)."""
    return counts.totals


BlockRows = tuple[sparse.csr_matrix, sparse.csr_matrix | None]


def shard_rows(counts: ShardCounts, start: int, stop: int) -> BlockRows:
    """A shard's co-occurrence rows ``start:stop`` (a task, run where the shard is)."""
    second = counts.second[start:stop] if counts.second is not None else None
    return counts.pairs[start:stop], second


def add_rows(a: BlockRows, b: BlockRows) -> BlockRows:
    """Two shards' rows of one block added (a task of a tree reduction)."""
    return (a[0] + b[0]).tocsr(), _add_optional(a[1], b[1])


def _padded(rows: sparse.csr_matrix, start: int, n: int) -> sparse.csr_matrix:
    """``rows`` as rows ``start:start + len(rows)`` of an n x n matrix, the others empty."""
    indptr = np.concatenate(
        [np.zeros(start, np.int64), rows.indptr, np.full(n - start - rows.shape[0], rows.nnz)]
    )
    return sparse.csr_matrix((rows.data, rows.indices, indptr), shape=(n, n))


def window_plan(
    totals: Totals,
    n_products: int,
    *,
    min_co_count: int,
    top_k: int | None,
    metric: str,
    blocks: list[tuple[int, int]],
    cooc: sparse.csr_matrix | None = None,
    second: sparse.csr_matrix | None = None,
) -> affinity.BlockPlan:
    """The :class:`.affinity.BlockPlan` a local run makes of the whole window, with the
    summed co-occurrence as its ``cooc`` (as an incremental run ranks)."""
    n = n_products
    weighted = totals.total_weight is not None
    if totals.total_weight is not None and totals.weighted_counts is not None:
        total, weighted_counts = totals.total_weight, totals.weighted_counts
    else:
        total, weighted_counts = float(totals.n_orders), totals.item_counts.astype(np.float64)
    if totals.score_total is not None and totals.score_counts is not None:
        score_total, score_counts = totals.score_total, totals.score_counts
    else:
        score_total, score_counts = total, weighted_counts
    # compute_block multiplies ``xt[start:stop] @ xs`` for the second weighted sum: with the
    # identity as ``xt`` those are the summed second co-occurrence's rows, unchanged.
    xt = sparse.csr_matrix((n, 0), dtype=np.float64)
    if second is not None:
        xt = sparse.identity(n, dtype=np.float64, format="csr")
    return affinity.BlockPlan(
        xt=xt,
        xm=sparse.csr_matrix((0, n), dtype=np.float64),
        cooc=cooc if cooc is not None else sparse.csr_matrix((n, n), dtype=np.float64),
        xs=second,
        decay_in_xm=weighted,
        weighted_counts=weighted_counts,
        total_weight=total,
        score_counts=score_counts,
        score_total=score_total,
        weighted=weighted,
        score_weighted=totals.score_total is not None,
        min_co_count=min_co_count,
        top_k=top_k,
        metric=metric,
        n_products=n,
        blocks=blocks,
    )


def rank_block(
    totals: Totals,
    rows: BlockRows,
    n_products: int,
    start: int,
    stop: int,
    options: dict[str, Any],
) -> dict[str, np.ndarray]:
    """One block's pairs from its summed rows (a task): :func:`.affinity.compute_block`."""
    first, second = rows
    plan = window_plan(
        totals,
        n_products,
        **options,
        blocks=[(start, stop)],
        cooc=_padded(first, start, n_products),
        second=_padded(second, start, n_products) if second is not None else None,
    )
    return affinity.compute_block(plan, start, stop)


def _django_ready(settings_module: str | None) -> None:
    """Set Django up in a worker process that has not (a worker of another program)."""
    from django.apps import apps

    if apps.ready:
        return
    if settings_module:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()


def read_shard(
    settings_module: str | None,
    order_range: tuple[Any, Any],
    *,
    lookback_days: float | None,
    with_placed_at: bool,
    now: datetime,
) -> OrderLines:
    """One shard's order lines, read on a worker through the host's own models (a task)."""
    _django_ready(settings_module)
    from django.db import connections

    from .reader import read_order_lines

    try:
        return read_order_lines(
            lookback_days=lookback_days,
            with_placed_at=with_placed_at,
            now=now,
            order_range=order_range,
        )
    finally:
        # A worker thread's connection would otherwise stay open between recomputes.
        connections.close_all()


def shard_products(lines: OrderLines) -> np.ndarray:
    """The distinct products of a shard (a task)."""
    return np.asarray(pd.unique(lines.products))


def union_ids(parts: list[np.ndarray]) -> np.ndarray:
    """The window's product ids in ascending order, as a local run orders them."""
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if joined.dtype.kind in "iu":
        return np.unique(joined.astype(np.int64))
    ids = np.unique(joined)
    if len(ids) and all(isinstance(value, int) for value in ids[:100].tolist()):
        return ids.astype(np.int64)
    return ids


def tree_sum(client: Any, futures: list[Any], add: Any) -> Any:
    """``add`` applied pairwise on the workers until one future is left (a tree reduction:
    its order is fixed by the list's, so a float sum comes out the same every run)."""
    level = list(futures)
    while len(level) > 1:
        pairs = [
            client.submit(add, level[i], level[i + 1], pure=False)
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]


def default_shards(client: Any) -> int:
    """Two shards per worker thread: one being read while another is counted."""
    workers = client.scheduler_info().get("workers", {})
    threads = sum(int(worker.get("nthreads", 1)) for worker in workers.values())
    return max(2 * threads, 1)


@dataclasses.dataclass
class ShardedWindow:
    """A window read and counted on the cluster: the totals here, the pairs on the workers.

    What a local run ranks, without the order x product matrix or the pair counts in this
    process: each block's co-occurrence rows are cut from every shard where it lives, added
    on the workers, and ranked there by :func:`.affinity.compute_block`; the blocks come back
    in source order (:meth:`blocks`). :meth:`close` releases the shards' counts.
    """

    client: Any
    owned: bool
    product_ids: np.ndarray
    totals: Totals
    counted: list[Any]  # futures of the shards' ShardCounts
    max_basket_size: int | None
    shards: int

    @property
    def n_orders(self) -> int:
        return self.totals.n_orders

    @property
    def n_lines(self) -> int:
        return self.totals.n_lines

    @property
    def item_counts(self) -> np.ndarray:
        return self.totals.item_counts

    def empty(
        self, *, min_co_count: int, top_k: int | None, metric: str
    ) -> affinity.AffinityResult:
        """:func:`.affinity.empty_result` of the window (arguments checked the same way)."""
        n = len(self.product_ids)
        totals = self.totals
        baskets = affinity.BasketMatrix(
            matrix=sparse.csr_matrix((0, n), dtype=np.int32),
            product_ids=self.product_ids,
            weights=np.zeros(0) if totals.total_weight is not None else None,
            n_lines=totals.n_lines,
            score_weights=np.zeros(0) if totals.score_total is not None else None,
            max_basket_size=self.max_basket_size,
        )
        empty = affinity.empty_result(
            baskets, min_co_count=min_co_count, top_k=top_k, metric=metric
        )
        return dataclasses.replace(empty, item_counts=totals.item_counts, n_orders=totals.n_orders)

    def block_bounds(
        self, *, block_budget: int = affinity.DEFAULT_BLOCK_BUDGET, min_blocks: int = 1
    ) -> list[tuple[int, int]]:
        """The blocks :func:`.affinity.plan_blocks` cuts the window into."""
        cost = self.totals.cost
        if min_blocks > 1:
            block_budget = min(block_budget, max(int(cost.sum()) // min_blocks, 1))
        return affinity.split_blocks(cost, block_budget)

    def blocks(
        self,
        *,
        min_co_count: int,
        top_k: int | None,
        metric: str,
        min_blocks: int = 1,
        progress: affinity.ProgressCallback | None = None,
    ) -> Iterator[affinity.AffinityResult]:
        """Every product's top partners, a block of source products at a time, in order."""
        empty = self.empty(min_co_count=min_co_count, top_k=top_k, metric=metric)
        n = len(self.product_ids)
        if self.totals.n_orders == 0 or n < 2:
            yield empty
            return
        client = self.client
        options = {"min_co_count": min_co_count, "top_k": top_k, "metric": metric}
        totals = client.scatter(self.totals, broadcast=True)

        def submit(start: int, stop: int) -> Any:
            rows = [
                client.submit(shard_rows, shard, start, stop, pure=False) for shard in self.counted
            ]
            summed = tree_sum(client, rows, add_rows)
            return client.submit(rank_block, totals, summed, n, start, stop, options, pure=False)

        tasks = (
            (stop, partial(submit, start, stop))
            for start, stop in self.block_bounds(min_blocks=min_blocks)
        )
        yield from in_order(client, tasks, empty, progress, n)

    def close(self) -> None:
        """Release the shards' counts on the workers (and the client this window opened)."""
        self.counted = []
        if self.owned:
            self.client.close()


def read_sharded(
    *,
    scheduler: Any,
    shards: int | None,
    bounds: Any,
    lookback_days: float | None,
    since: datetime | None,
    half_life_days: float | None,
    now: datetime,
    order_weighting: str,
    max_basket_size: int | None,
) -> ShardedWindow:
    """Read and count the window's order lines on the cluster, sharded by order key.

    ``bounds(shards, since=...)`` gives the shards' order-key ranges
    (:func:`.sources.shard_bounds`). Only the per-product vectors come back to this
    process; the lines stay on the workers until counted, the counts until
    :meth:`ShardedWindow.close`.
    """
    client = connect(scheduler)
    owned = client is not scheduler
    try:
        ranges = bounds(shards or default_shards(client), since=since)
        settings_module = os.environ.get("DJANGO_SETTINGS_MODULE")
        reads = [
            client.submit(
                read_shard,
                settings_module,
                order_range,
                lookback_days=lookback_days,
                with_placed_at=half_life_days is not None,
                now=now,
                pure=False,
            )
            for order_range in ranges
        ]
        product_ids = union_ids(client.gather([client.submit(shard_products, r) for r in reads]))
        shared_ids = client.scatter(product_ids, broadcast=True)
        counted = [
            client.submit(
                count_shard,
                read,
                shared_ids,
                half_life_days=half_life_days,
                now=now,
                order_weighting=order_weighting,
                max_basket_size=max_basket_size,
                pure=False,
            )
            for read in reads
        ]
        del reads  # the lines are dropped from the workers as soon as they are counted
        parts = [client.submit(shard_totals, shard, pure=False) for shard in counted]
        totals = tree_sum(client, parts, add_totals).result()
    except BaseException:
        if owned:
            client.close()
        raise
    return ShardedWindow(
        client=client,
        owned=owned,
        product_ids=product_ids,
        totals=totals,
        counted=counted,
        max_basket_size=max_basket_size,
        shards=len(ranges),
    )
