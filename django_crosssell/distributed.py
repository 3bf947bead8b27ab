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
from collections.abc import Iterator
from datetime import datetime
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
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        shared = client.scatter(plan, broadcast=True)
        pending: deque[tuple[int, Any]] = deque()
        blocks = iter(plan.blocks)

        def submit() -> bool:
            bounds = next(blocks, None)
            if bounds is None:
                return False
            start, stop = bounds
            future = client.submit(affinity.compute_block, shared, start, stop, pure=False)
            pending.append((stop, future))
            return True

        for _ in range(workers * IN_FLIGHT_PER_WORKER):
            if not submit():
                break
        while pending:
            stop, future = pending.popleft()
            pairs = future.result()
            submit()
            if progress is not None:
                progress("pairs", stop, plan.n_products)
            yield affinity.block_result(empty, pairs)
    finally:
        if owned:
            client.close()


# --- Sharded read (DASK_READ = "sharded") ------------------------------------------------


@dataclasses.dataclass
class ShardCounts:
    """One shard's (or several added shards') counts over the window's product index.

    ``pairs`` holds the upper triangle (source < target) of the co-occurrence of orders
    within the basket cap: the order count in the real part and the first weighted sum
    (time decay, else the score's weight) in the imaginary part when there is one;
    ``second`` the score's weighted sums when both a decay and a size weighting apply.
    """

    n_orders: int
    n_lines: int
    lines_read: int
    lines_dropped: int
    item_counts: np.ndarray  # int64, orders holding each product
    cost: np.ndarray  # int64, the block plan's upper bound of each source row's non-zeros
    pairs: sparse.csr_matrix
    second: sparse.csr_matrix | None
    total_weight: float | None  # time decay: the orders' summed weights
    weighted_counts: np.ndarray | None
    score_total: float | None  # a size weighting: the orders' summed score weights
    score_counts: np.ndarray | None


def _add_optional(a: Any, b: Any) -> Any:
    return None if a is None else a + b


def add_counts(a: ShardCounts, b: ShardCounts) -> ShardCounts:
    """Two shards' counts added (a Dask task of the tree reduction)."""
    return ShardCounts(
        n_orders=a.n_orders + b.n_orders,
        n_lines=a.n_lines + b.n_lines,
        lines_read=a.lines_read + b.lines_read,
        lines_dropped=a.lines_dropped + b.lines_dropped,
        item_counts=a.item_counts + b.item_counts,
        cost=a.cost + b.cost,
        pairs=(a.pairs + b.pairs).tocsr(),
        second=_add_optional(a.second, b.second),
        total_weight=_add_optional(a.total_weight, b.total_weight),
        weighted_counts=_add_optional(a.weighted_counts, b.weighted_counts),
        score_total=_add_optional(a.score_total, b.score_total),
        score_counts=_add_optional(a.score_counts, b.score_counts),
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
    pairs = sparse.triu(
        xt @ sparse.csr_matrix((data, xm.indices, xm.indptr), shape=xm.shape), k=1, format="csr"
    )
    second = None
    if weights is not None and score is not None:
        scored = sparse.csr_matrix((score[multi][per_line], xm.indices, xm.indptr), shape=xm.shape)
        second = sparse.triu(xt @ scored, k=1, format="csr")
    return ShardCounts(
        n_orders=matrix.shape[0],
        n_lines=built.n_lines,
        lines_read=lines.lines_read,
        lines_dropped=lines.lines_dropped,
        item_counts=np.bincount(matrix.indices, minlength=n).astype(np.int64),
        cost=np.asarray(xt @ size[multi].astype(np.int64)).ravel().astype(np.int64),
        pairs=pairs,
        second=second,
        total_weight=float(weights.sum()) if weights is not None else None,
        weighted_counts=np.asarray(matrix.T @ weights).ravel() if weights is not None else None,
        score_total=float(score.sum()) if score is not None else None,
        score_counts=np.asarray(matrix.T @ score).ravel() if score is not None else None,
    )


@dataclasses.dataclass
class SummedCounts:
    """Every shard's counts added, with the window's products in ascending id order.

    What a local run ranks, without the order x product matrix: :meth:`plan` hands the
    summed co-occurrence to :func:`.affinity.compute_block` (its ``cooc``), as an
    incremental run does.
    """

    product_ids: np.ndarray
    counts: ShardCounts
    max_basket_size: int | None
    shards: int = 1

    @property
    def n_orders(self) -> int:
        return self.counts.n_orders

    @property
    def n_lines(self) -> int:
        return self.counts.n_lines

    @property
    def item_counts(self) -> np.ndarray:
        return self.counts.item_counts

    def empty(
        self, *, min_co_count: int, top_k: int | None, metric: str
    ) -> affinity.AffinityResult:
        """:func:`.affinity.empty_result` of the window (arguments checked the same way)."""
        n = len(self.product_ids)
        counts = self.counts
        baskets = affinity.BasketMatrix(
            matrix=sparse.csr_matrix((0, n), dtype=np.int32),
            product_ids=self.product_ids,
            weights=np.zeros(0) if counts.total_weight is not None else None,
            n_lines=counts.n_lines,
            score_weights=np.zeros(0) if counts.score_total is not None else None,
            max_basket_size=self.max_basket_size,
        )
        empty = affinity.empty_result(
            baskets, min_co_count=min_co_count, top_k=top_k, metric=metric
        )
        return dataclasses.replace(empty, item_counts=counts.item_counts, n_orders=counts.n_orders)

    def plan(
        self,
        *,
        min_co_count: int,
        top_k: int | None,
        metric: str,
        block_budget: int = affinity.DEFAULT_BLOCK_BUDGET,
        min_blocks: int = 1,
    ) -> affinity.BlockPlan | None:
        """The block plan :func:`.affinity.plan_blocks` makes of the whole window."""
        n = len(self.product_ids)
        counts = self.counts
        if counts.n_orders == 0 or n < 2:
            return None
        weighted = counts.total_weight is not None
        if counts.total_weight is not None and counts.weighted_counts is not None:
            total, weighted_counts = counts.total_weight, counts.weighted_counts
        else:
            total, weighted_counts = float(counts.n_orders), counts.item_counts.astype(np.float64)
        score_weighted = counts.score_total is not None
        if counts.score_total is not None and counts.score_counts is not None:
            score_total, score_counts = counts.score_total, counts.score_counts
        else:
            score_total, score_counts = total, weighted_counts
        # compute_block multiplies ``xt[start:stop] @ xs`` for the second weighted sum: with
        # the identity as ``xt`` that is the summed second co-occurrence's rows, unchanged.
        xt = sparse.csr_matrix((n, 0), dtype=np.float64)
        xs = None
        if counts.second is not None:
            xt = sparse.identity(n, dtype=np.float64, format="csr")
            xs = (counts.second + counts.second.T).tocsr()
        budget = block_budget
        if min_blocks > 1:
            budget = min(budget, max(int(counts.cost.sum()) // min_blocks, 1))
        return affinity.BlockPlan(
            xt=xt,
            xm=sparse.csr_matrix((0, n), dtype=np.float64),
            cooc=(counts.pairs + counts.pairs.T).tocsr(),
            xs=xs,
            decay_in_xm=weighted,
            weighted_counts=weighted_counts,
            total_weight=total,
            score_counts=score_counts,
            score_total=score_total,
            weighted=weighted,
            score_weighted=score_weighted,
            min_co_count=min_co_count,
            top_k=top_k,
            metric=metric,
            n_products=n,
            blocks=affinity._blocks(counts.cost, budget),
        )


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


def tree_sum(client: Any, futures: list[Any]) -> Any:
    """The futures' counts added pairwise on the workers; the future of the total."""
    level = list(futures)
    while len(level) > 1:
        pairs = [
            client.submit(add_counts, level[i], level[i + 1], pure=False)
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
) -> SummedCounts:
    """Read and count the window's order lines on the cluster, sharded by order key.

    ``bounds(shards, since=...)`` gives the shards' order-key ranges
    (:func:`.sources.shard_bounds`). Only per-product vectors and the summed pair counts
    come back to this process; the lines and each shard's basket matrix stay on the workers
    and are released once counted.
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
        total = tree_sum(client, counted).result()
        return SummedCounts(
            product_ids=product_ids,
            counts=total,
            max_basket_size=max_basket_size,
            shards=len(ranges),
        )
    finally:
        if owned:
            client.close()
