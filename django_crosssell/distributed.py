"""The engine's blocks as Dask tasks (``CROSSSELL["ENGINE"] = "dask"``).

Each block of source products is a pure function of the shared :class:`~.affinity.BlockPlan`
and its bounds (:func:`~.affinity.compute_block`), so the plan is sent to the cluster once
(``scatter``, broadcast to every worker) and each block becomes one task. Results come back
in source order, a bounded number in flight, and go into the same binary COPY as a local
run's: the same arithmetic on the same inputs, so the rows are bitwise equal (the tests
check it on an in-process ``LocalCluster``).

The recompute only ever connects to an existing scheduler (``DASK_SCHEDULER``): starting a
cluster inside a Celery worker or a web process would fight them for memory and cores.
Reading the order lines still happens in the recompute's process.

Imports ``dask.distributed`` only when called: it is the optional ``[dask]`` extra.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from . import affinity

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
