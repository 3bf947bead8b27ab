"""ENGINE = "dask": the blocks as Dask tasks give the local result bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import override_settings

from django_crosssell import affinity, incremental
from django_crosssell.models import ProductAffinity
from django_crosssell.recompute import run_recompute
from tests.factories import ProductFactory, make_order
from tests.settings import CROSSSELL

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
from django_crosssell import distributed as on_dask  # noqa: E402


def baskets(seed=2, n_orders=800, n_products=70):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, n_orders)
    orders = np.repeat(np.arange(n_orders), sizes)
    weights = 1 / np.arange(1, n_products + 1)
    products = rng.choice(n_products, len(orders), p=weights / weights.sum())
    built = affinity.build_basket_matrix(orders, products)
    return affinity.weigh_orders(built, "inverse_size", 9)


def test_dask_blocks_equal_local_blocks(dask_client):
    data = baskets()
    kwargs = {"min_co_count": 1, "top_k": 6, "metric": "cosine"}
    plan = affinity.plan_blocks(data, **kwargs, block_budget=400)
    assert plan is not None and len(plan.blocks) > 4
    empty = affinity.empty_result(data, **kwargs)
    local = list(affinity.plan_results(plan, empty))
    remote = list(on_dask.plan_results(plan, empty, scheduler=dask_client))
    assert len(local) == len(remote)
    for mine, theirs in zip(local, remote, strict=True):
        for name in affinity.PAIR_FIELDS:
            assert np.array_equal(getattr(mine, name), getattr(theirs, name)), name


def test_dask_ranks_incremental_counts_too(dask_client):
    data = baskets(5)
    orders = np.repeat(np.arange(data.n_orders), np.diff(data.matrix.indptr))
    products = data.product_ids[data.matrix.indices]
    placed = np.full(len(orders), np.datetime64("2026-01-01", "ns"))
    _, counts = incremental.build_window(
        orders, products, placed, order_weighting="inverse_size", max_basket_size=9
    )
    kwargs = {"min_co_count": 2, "top_k": 4, "metric": "confidence", "min_blocks": 5}

    def runner(plan, empty, progress=None):
        return on_dask.plan_results(plan, empty, progress, scheduler=dask_client)

    local = affinity.AffinityResult.concat(list(incremental.rank(counts, **kwargs)))
    remote = affinity.AffinityResult.concat(list(incremental.rank(counts, **kwargs, runner=runner)))
    for name in affinity.PAIR_FIELDS:
        assert np.array_equal(getattr(local, name), getattr(remote, name)), name


@pytest.mark.django_db
def test_a_recompute_on_dask_writes_the_local_rows(dask_client):
    products = ProductFactory.create_batch(12)
    rng = np.random.default_rng(4)
    for _ in range(120):
        pick = rng.choice(12, size=int(rng.integers(2, 6)), replace=False)
        make_order(*(products[i] for i in pick))

    def rows(run):
        return sorted(
            ProductAffinity.objects.filter(run=run).values_list(
                "source_id", "target_id", "co_count", "support", "confidence", "lift", "score"
            ),
            key=lambda row: (str(row[0]), str(row[1])),
        )

    local = run_recompute(min_co_count=1)
    address = dask_client.scheduler.address
    with override_settings(CROSSSELL={**CROSSSELL, "ENGINE": "dask", "DASK_SCHEDULER": address}):
        remote = run_recompute(min_co_count=1)
    assert len(rows(local)) > 50
    assert rows(remote) == rows(local)
