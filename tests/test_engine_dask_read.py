"""DASK_READ = "sharded": workers read order-id ranges; the summed counts rank as a local run.

The cluster is an in-process ``LocalCluster`` whose worker threads open their own database
connections, so the orders are committed (``transaction=True``) for them to see.
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from django_crosssell.adapter import CrossSellAdapter
from django_crosssell.engine_checks import check_engine_settings
from django_crosssell.models import ProductAffinity, ProductSales
from django_crosssell.recompute import run_recompute
from django_crosssell.sources import iter_line_chunks, shard_bounds
from tests.factories import ProductFactory, make_order
from tests.settings import CROSSSELL

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
from django_crosssell import distributed as on_dask  # noqa: E402


def place_orders(n_products=14, n_orders=160, seed=4, big=2):
    """Orders of 1-6 products over a few weeks, plus ``big`` orders above a cap of 8."""
    products = ProductFactory.create_batch(n_products)
    rng = np.random.default_rng(seed)
    now = timezone.now()
    for i in range(n_orders):
        size = int(rng.integers(1, 7))
        pick = rng.choice(n_products, size=size, replace=False)
        placed = now - timedelta(days=float(rng.uniform(0, 60)), minutes=i)
        make_order(*(products[j] for j in pick), placed_at=placed)
    for _ in range(big):
        make_order(*products[:10], placed_at=now - timedelta(days=3))
    return products


def rows(run):
    return sorted(
        ProductAffinity.objects.filter(run=run).values_list(
            "source_id", "target_id", "co_count", "support", "confidence", "lift", "score"
        ),
        key=lambda row: (str(row[0]), str(row[1])),
    )


def sales(run):
    return sorted(
        ProductSales.objects.filter(run=run).values_list("product_id", "orders"),
        key=lambda row: str(row[0]),
    )


def sharded(dask_client, **overrides):
    settings = {
        **CROSSSELL,
        "ENGINE": "dask",
        "DASK_SCHEDULER": dask_client.scheduler.address,
        "DASK_READ": "sharded",
        **overrides,
    }
    return override_settings(CROSSSELL=settings)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("weighting", "metric", "cap", "shards"),
    [
        ("inverse_size", "cosine", 8, 3),
        ("none", "confidence", None, 5),
        ("bm25", "lift", 8, 2),
        ("inverse_size", "co_count", None, 1),
    ],
)
def test_a_sharded_read_writes_the_local_rows_bit_for_bit(
    dask_client, weighting, metric, cap, shards
):
    place_orders()
    params = {
        "min_co_count": 1,
        "top_k": 4,
        "metric": metric,
        "order_weighting": weighting,
        "max_basket_size": cap or 0,
    }
    local = run_recompute(**params)
    with sharded(dask_client, DASK_SHARDS=shards):
        remote = run_recompute(**params)
    assert remote.parameters["shards"] == shards
    assert "shards" not in local.parameters
    assert len(rows(local)) > 30
    assert rows(remote) == rows(local)  # floats compared exactly
    assert sales(remote) == sales(local)
    assert (remote.orders_read, remote.lines_read, remote.products) == (
        local.orders_read,
        local.lines_read,
        local.products,
    )


@pytest.mark.django_db(transaction=True)
def test_a_sharded_read_keeps_the_lookback_window_and_the_filter(dask_client):
    products = place_orders(n_orders=80)
    old = make_order(*products[:3], placed_at=timezone.now() - timedelta(days=400))
    make_order(*products[3:6], status="cancelled")
    params = {"min_co_count": 1, "top_k": 0, "lookback_days": 30}
    local = run_recompute(**params)
    with sharded(dask_client, DASK_SHARDS=4):
        remote = run_recompute(**params)
    assert rows(remote) == rows(local)
    assert remote.orders_read == local.orders_read < 84
    assert old.pk  # the old order exists but is outside the window of both runs


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("weighting", ["inverse_size", "none"])
def test_with_time_decay_counts_are_exact_and_weighted_figures_agree_to_1e12(
    dask_client, weighting
):
    place_orders()
    params = {"min_co_count": 1, "top_k": 0, "half_life_days": 20, "metric": "cosine"}
    params["order_weighting"] = weighting
    local = run_recompute(**params)
    with sharded(dask_client, DASK_SHARDS=3):
        remote = run_recompute(**params)
    mine, theirs = rows(local), rows(remote)
    assert len(mine) == len(theirs) > 30
    for a, b in zip(mine, theirs, strict=True):
        assert a[:3] == b[:3]  # the pair and its integer co_count
        for x, y in zip(a[3:], b[3:], strict=True):
            assert math.isclose(x, y, rel_tol=1e-12), (a, b)
    assert sales(remote) == sales(local)


@pytest.mark.django_db(transaction=True)
def test_an_empty_window_reads_no_orders_on_the_cluster_either(dask_client):
    with sharded(dask_client, DASK_SHARDS=3):
        run = run_recompute(dry_run=True)
    assert (run.orders_read, run.pairs_written) == (0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("shards", [1, 2, 3, 7, 500])
def test_integer_shards_cover_every_line_once(shards):
    place_orders(n_orders=40, big=0)
    bounds = shard_bounds(shards)
    assert len(bounds) <= shards
    assert bounds[0][0] is None and bounds[-1][1] is None
    seen = []
    for order_range in bounds:
        for chunk in iter_line_chunks(order_range=order_range):
            seen.extend(chunk)
    everything = [line for chunk in iter_line_chunks() for line in chunk]
    assert sorted(seen, key=str) == sorted(everything, key=str)
    # an order's lines are never split between shards
    shard_of = {}
    for index, order_range in enumerate(bounds):
        for chunk in iter_line_chunks(order_range=order_range):
            for order, _ in chunk:
                assert shard_of.setdefault(order, index) == index


@pytest.mark.django_db
def test_keys_that_are_not_integers_are_cut_at_every_nth_distinct_key():
    place_orders(n_orders=60, big=0)
    fields = {**CROSSSELL.get("ORDER_LINE_FIELDS", {}), "order": "order__placed_at"}
    fields.setdefault("product", "product")
    fields.setdefault("placed_at", "order__placed_at")
    with override_settings(CROSSSELL={**CROSSSELL, "ORDER_LINE_FIELDS": fields}):
        bounds = shard_bounds(4)
        sizes = [
            len({row[0] for chunk in iter_line_chunks(order_range=r) for row in chunk})
            for r in bounds
        ]
    assert len(bounds) == 4
    assert sum(sizes) == 60 and max(sizes) - min(sizes) <= 1


def test_an_order_source_callable_cannot_be_sharded():
    with (
        override_settings(CROSSSELL={**CROSSSELL, "ORDER_SOURCE": lambda **kw: iter(())}),
        pytest.raises(ImproperlyConfigured, match="cannot shard"),
    ):
        next(iter_line_chunks(order_range=(None, 5)))


def test_shard_counts_add_up_to_the_whole():
    """Counting two halves of the orders and adding them equals counting them at once."""
    from django_crosssell.reader import OrderLines

    rng = np.random.default_rng(9)
    sizes = rng.integers(1, 9, 300)
    orders = np.repeat(np.arange(300), sizes)
    products = rng.integers(0, 40, len(orders)).astype(np.int64)
    ids = np.unique(products)
    now = timezone.now()
    kwargs = {"half_life_days": None, "now": now, "order_weighting": "inverse_size"}

    def count(mask):
        lines = OrderLines(orders[mask], products[mask], None, int(mask.sum()))
        return on_dask.count_shard(lines, ids, max_basket_size=6, **kwargs)

    whole = count(np.ones(len(orders), bool))
    low, high = count(orders < 140), count(orders >= 140)
    totals = on_dask.add_totals(low.totals, high.totals)
    first, second = on_dask.add_rows(
        on_dask.shard_rows(low, 0, len(ids)), on_dask.shard_rows(high, 0, len(ids))
    )
    assert second is None and whole.second is None
    assert whole.pairs.nnz > 100 and (first != whole.pairs).nnz == 0
    assert whole.pairs.diagonal().sum() == 0
    assert np.array_equal(totals.item_counts, whole.totals.item_counts)
    assert np.array_equal(totals.cost, whole.totals.cost)
    assert np.array_equal(totals.score_counts, whole.totals.score_counts)
    assert totals.score_total == whole.totals.score_total
    assert totals.n_orders == whole.totals.n_orders == 300


def check_ids(**overrides):
    with override_settings(CROSSSELL={**CROSSSELL, **overrides}):
        return sorted(message.id for message in check_engine_settings())


DASK = {"ENGINE": "dask", "DASK_SCHEDULER": "tcp://127.0.0.1:8786"}


def test_checks_of_the_sharded_read():
    assert check_ids(**DASK, DASK_READ="sharded", DASK_SHARDS=8) == []
    assert check_ids(DASK_READ="all") == ["crosssell.E090"]
    assert check_ids(DASK_READ=None) == ["crosssell.E090"]
    for shards in (0, -1, 2.5, "4", True):
        assert check_ids(DASK_SHARDS=shards) == ["crosssell.E091"]
    assert check_ids(DASK_READ="sharded") == ["crosssell.E092"]
    source = "tests.test_engine_dask_read.no_lines"
    assert check_ids(**DASK, DASK_READ="sharded", ORDER_SOURCE=source) == ["crosssell.E093"]
    adapter = "tests.test_engine_dask_read.OwnLines"
    assert check_ids(**DASK, DASK_READ="sharded", ADAPTER=adapter) == ["crosssell.E093"]
    assert check_ids(**DASK, DASK_READ="sharded", INCREMENTAL=True) == ["crosssell.E094"]
    # the local read has none of these constraints
    assert check_ids(ORDER_SOURCE=source, INCREMENTAL=True) == []


def test_check_messages_have_hints():
    with override_settings(CROSSSELL={**CROSSSELL, "DASK_READ": "sharded", "DASK_SHARDS": 0}):
        messages = check_engine_settings()
    assert {m.id for m in messages} == {"crosssell.E091", "crosssell.E092"}
    assert all(m.hint for m in messages)


def no_lines(**kwargs):
    return iter(())


class OwnLines(CrossSellAdapter):
    def order_lines(self, **kwargs):
        return iter(())


@pytest.mark.django_db(transaction=True)
def test_one_run_can_choose_the_dask_engine(dask_client):
    place_orders(n_orders=60)
    local = run_recompute(min_co_count=1)
    address = dask_client.scheduler.address
    with override_settings(
        CROSSSELL={**CROSSSELL, "DASK_SCHEDULER": address, "DASK_READ": "sharded"}
    ):
        remote = run_recompute(min_co_count=1, engine="dask")
    assert local.parameters["engine"] == "local"
    assert remote.parameters["engine"] == "dask" and remote.parameters["shards"] >= 2
    assert rows(remote) == rows(local)
