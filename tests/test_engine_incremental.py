"""Incremental runs: sliding the window's counts equals a full recompute of the new window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from django_crosssell import affinity, incremental

DAY = np.timedelta64(1, "D")
START = np.datetime64("2026-01-01T00:00:00", "ns")


def shop_lines(seed: int, n_orders: int = 600, n_products: int = 60, days: int = 100):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_orders)
    sizes[::97] = 40  # a few large orders, some over the cap
    orders = np.repeat(np.arange(1000, 1000 + n_orders), sizes)
    weights = 1 / np.arange(1, n_products + 1)
    products = rng.choice(
        np.arange(5000, 5000 + n_products), len(orders), p=weights / weights.sum()
    )
    order_time = START + (rng.uniform(0, days, n_orders) * 86400e9).astype("timedelta64[ns]")
    placed = order_time[orders - 1000]
    return orders, products, placed


def full(orders, products, placed, since, until, weighting, cap, **rank):
    keep = (placed >= since) & (placed < until)
    baskets, counts = incremental.build_window(
        orders[keep], products[keep], placed[keep], order_weighting=weighting, max_basket_size=cap
    )
    result = affinity.AffinityResult.concat(
        list(affinity.iter_pair_blocks(baskets, **rank, min_blocks=3))
    )
    return result, counts


def assert_identical(a: affinity.AffinityResult, b: affinity.AffinityResult):
    np.testing.assert_array_equal(a.product_ids, b.product_ids)
    np.testing.assert_array_equal(a.item_counts, b.item_counts)
    assert a.n_orders == b.n_orders
    for name in affinity.PAIR_FIELDS:
        # Bitwise: not allclose.
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("weighting", ["none", "inverse_size"])
@pytest.mark.parametrize("metric", ["cosine", "confidence", "lift"])
def test_a_slide_equals_a_full_recompute_bit_for_bit(weighting, metric):
    orders, products, placed = shop_lines(3)
    rank = {"min_co_count": 2, "top_k": 5, "metric": metric}
    first_since, first_until = START, START + 60 * DAY
    _, state = full(orders, products, placed, first_since, first_until, weighting, 30, **rank)
    # Ten days later: the window moves by ten days at both ends.
    since, until = START + 10 * DAY, START + 70 * DAY
    new_lines = (placed >= first_until - DAY) & (placed < until)  # overlapping read
    slid, changed = incremental.slide(
        state, orders[new_lines], products[new_lines], placed[new_lines], since=since
    )
    assert changed["orders_added"] > 0 and changed["orders_removed"] > 0
    expected, expected_counts = full(orders, products, placed, since, until, weighting, 30, **rank)
    got = affinity.AffinityResult.concat(list(incremental.rank(slid, **rank, min_blocks=3)))
    assert_identical(got, expected)
    np.testing.assert_array_equal(slid.pair_count.sum(), expected_counts.pair_count.sum())


def test_counts_survive_storage_and_a_second_slide():
    orders, products, placed = shop_lines(5)
    rank = {"min_co_count": 1, "top_k": None, "metric": "cosine"}
    _, state = full(orders, products, placed, START, START + 50 * DAY, "inverse_size", None, **rank)
    state = incremental.load(incremental.dump(state))
    for step in (1, 2):
        since, until = START + 5 * step * DAY, START + (50 + 5 * step) * DAY
        lines = (placed >= until - 5 * DAY) & (placed < until)
        state, _ = incremental.slide(
            state, orders[lines], products[lines], placed[lines], since=since
        )
        state = incremental.load(incremental.dump(state))
    expected, _ = full(orders, products, placed, since, until, "inverse_size", None, **rank)
    got = affinity.AffinityResult.concat(list(incremental.rank(state, **rank)))
    assert_identical(got, expected)


def test_products_that_leave_the_window_leave_the_index():
    orders = np.array([1, 1, 2, 2])
    products = np.array([10, 11, 12, 13])
    placed = pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-01", "2026-02-01"]).to_numpy()
    _, state = incremental.build_window(
        orders[:2], products[:2], placed[:2], order_weighting="none", max_basket_size=None
    )
    slid, changed = incremental.slide(
        state, orders[2:], products[2:], placed[2:], since=np.datetime64("2026-01-15")
    )
    assert changed == {"orders_added": 1, "orders_removed": 1}
    assert slid.product_ids.tolist() == [12, 13]
    assert slid.pair_count.tolist() == [1]


@pytest.mark.parametrize("weighting", ["none", "inverse_size"])
def test_a_full_run_keeps_the_counts_its_blocks_computed(weighting):
    # The counts come from the ranking's own blocks (one product, not two): the same pairs
    # as the whole co-occurrence, and the same ranking as the plain engine.
    orders, products, placed = shop_lines(7)
    baskets, counts = incremental.build_window(
        orders, products, placed, order_weighting=weighting, max_basket_size=30
    )
    assert counts.upper is None
    rank = {"min_co_count": 2, "top_k": 5, "metric": "cosine"}
    plan = affinity.plan_blocks(baskets, **rank, min_blocks=4)
    empty = affinity.empty_result(baskets, **rank)
    assert len(plan.blocks) >= 4
    got = list(incremental.counting_runner(counts)(plan, empty))
    assert counts.upper is not None
    expected = incremental._pair_matrix(baskets)
    assert (counts.upper != expected).nnz == 0
    assert counts.upper.has_sorted_indices
    np.testing.assert_array_equal(counts.upper.indptr, expected.indptr)
    np.testing.assert_array_equal(counts.upper.indices, expected.indices)
    assert_identical(
        affinity.AffinityResult.concat(got),
        affinity.AffinityResult.concat(list(affinity.plan_results(plan, empty))),
    )


def test_storage_keeps_values_that_do_not_fit_the_narrow_types():
    # Counts over 255 and weights float32 cannot hold are stored beside the narrow arrays.
    rng = np.random.default_rng(2)
    n_orders = 700
    orders = np.repeat(np.arange(n_orders), 3)
    products = np.stack(
        [np.full(n_orders, 70_001), np.full(n_orders, 70_002), rng.integers(1, 90_000, n_orders)]
    ).T.ravel()
    placed = np.repeat(START + np.arange(n_orders) * np.timedelta64(1, "m"), 3)
    _, state = incremental.build_window(
        orders, products, placed, order_weighting="inverse_size", max_basket_size=None
    )
    assert state.pair_count.max() == n_orders
    assert (state.pair_weight.astype(np.float32) != state.pair_weight).any()
    loaded = incremental.load(incremental.dump(state))
    for name in ("product_ids", "order_ids", "placed_at", "pair_count", "pair_weight"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(state, name), name)
    assert (loaded.matrix != state.matrix).nnz == 0
    np.testing.assert_array_equal(loaded.upper.indices, state.upper.indices)


def test_counts_of_another_format_are_refused():
    with pytest.raises(incremental.CountsFormatError):
        incremental.load(b"x\x9c not an archive")


def test_new_products_between_old_ids_keep_the_old_pairs():
    # New ids sort between old ones: every old pair moves to new product indices.
    orders = np.array([1, 1, 1, 2, 2, 3, 3, 3, 4, 4])
    products = np.array([10, 30, 50, 10, 30, 20, 30, 40, 10, 20])
    placed = pd.to_datetime(["2026-01-01"] * 5 + ["2026-01-10"] * 5).to_numpy()
    rank = {"min_co_count": 1, "top_k": None, "metric": "cosine"}
    _, state = incremental.build_window(
        orders[:5], products[:5], placed[:5], order_weighting="inverse_size", max_basket_size=None
    )
    slid, _ = incremental.slide(
        state, orders[5:], products[5:], placed[5:], since=np.datetime64("2025-12-01")
    )
    baskets, _ = incremental.build_window(
        orders, products, placed, order_weighting="inverse_size", max_basket_size=None
    )
    expected = affinity.AffinityResult.concat(list(affinity.iter_pair_blocks(baskets, **rank)))
    assert slid.product_ids.tolist() == [10, 20, 30, 40, 50]
    assert_identical(affinity.AffinityResult.concat(list(incremental.rank(slid, **rank))), expected)


def test_counts_without_times_lose_the_orders_named_leaving():
    # Order keys that are not integers (UUIDs) are compared as the stored text.
    import uuid

    keys = [uuid.UUID(int=i) for i in range(4)]
    orders = np.array([keys[0], keys[0], keys[1], keys[1], keys[2], keys[2], keys[3], keys[3]])
    products = np.array([10, 11, 10, 11, 11, 12, 10, 12])
    rank = {"min_co_count": 1, "top_k": None, "metric": "cosine"}
    _, state = incremental.build_window(
        orders[:6], products[:6], None, order_weighting="none", max_basket_size=None
    )
    assert state.placed_at is None
    state = incremental.load(incremental.dump(state))
    # The read overlaps (keys[2] again) and keys[0] left the window.
    slid, changed = incremental.slide(
        state, orders[4:], products[4:], None, leaving=np.array([keys[0]], dtype=object)
    )
    assert changed == {"orders_added": 1, "orders_removed": 1}
    baskets, _ = incremental.build_window(
        orders[2:], products[2:], None, order_weighting="none", max_basket_size=None
    )
    expected = affinity.AffinityResult.concat(list(affinity.iter_pair_blocks(baskets, **rank)))
    assert_identical(affinity.AffinityResult.concat(list(incremental.rank(slid, **rank))), expected)
    with pytest.raises(affinity.AffinityInputError):
        incremental.slide(state, orders[4:], products[4:], None)


def test_decay_and_bm25_are_refused():
    baskets = affinity.build_basket_matrix([1, 1], [1, 2])
    with pytest.raises(affinity.AffinityInputError):
        incremental.window_counts(
            affinity.weigh_orders(baskets, "bm25"), np.array([1]), np.array([0])
        )


# --- The recompute --------------------------------------------------------------------

from datetime import timedelta  # noqa: E402
from unittest import mock  # noqa: E402

from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from django_crosssell.models import AffinityCounts, ProductAffinity, ProductSales  # noqa: E402
from django_crosssell.recompute import run_recompute  # noqa: E402
from tests.factories import ProductFactory, make_order  # noqa: E402
from tests.settings import CROSSSELL  # noqa: E402
from tests.testapp.models import Order  # noqa: E402

INCREMENTAL = {**CROSSSELL, "INCREMENTAL": True, "LOOKBACK_DAYS": 30, "SIMILAR_PRODUCTS": False}


def rows_of(run):
    return sorted(
        ProductAffinity.objects.filter(run=run).values_list(
            "source_id", "target_id", "co_count", "support", "confidence", "lift", "score"
        ),
        key=lambda row: (str(row[0]), str(row[1])),
    )


def at(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


def source_lines(*, since, with_placed_at, chunk_size):
    """An ORDER_SOURCE over the test shop's paid orders (its runs store order times)."""
    from tests.testapp.models import OrderLine

    lines = OrderLine.objects.filter(order__status="paid", product__isnull=False)
    if since is not None:
        lines = lines.filter(order__placed_at__gte=since)
    yield from lines.values_list("order_id", "product_id", "order__placed_at").iterator()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "source"),
    [("UTC", None), ("Asia/Tokyo", None), ("Asia/Tokyo", f"{__name__}.source_lines")],
)
def test_an_incremental_run_equals_a_full_run_of_the_same_window(zone, source, settings):
    # The shop's time zone must not move the window (order times are read in UTC). The
    # order-line model's runs look the leaving orders up by time; ORDER_SOURCE's store
    # each order's time.
    settings.TIME_ZONE = zone
    settings.CROSSSELL = {**INCREMENTAL, "ORDER_SOURCE": source}
    rng = np.random.default_rng(11)
    products = ProductFactory.create_batch(25)
    t0 = timezone.now() - timedelta(days=60)

    def orders(days):
        for day in days:
            for _ in range(4):
                basket = rng.choice(25, size=int(rng.integers(1, 6)), replace=False)
                placed = t0 + timedelta(days=day, hours=20)  # near the next day: zones matter
                make_order(*(products[i] for i in basket), placed_at=placed)

    orders(range(40))
    # Orders exactly on the first and on the second window's start: the first leaves, the
    # second stays, as in the full runs.
    make_order(products[0], products[1], placed_at=t0 + timedelta(days=10))
    make_order(products[0], products[2], placed_at=t0 + timedelta(days=15))
    with at(t0 + timedelta(days=40)):
        first = run_recompute(min_co_count=1, top_k=5)  # days 10..39
    assert AffinityCounts.objects.filter(run=first).exists()
    assert first.parameters["full_run_at"]
    stored = incremental.load(bytes(AffinityCounts.objects.get(run=first).data))
    assert (stored.placed_at is None) == (source is None)
    # An order of day 12, counted, is cancelled: it leaves the window as it was counted.
    cancelled = Order.objects.filter(placed_at__date=(t0 + timedelta(days=12)).date()).first()
    cancelled.status = "cancelled"
    cancelled.save()
    # Five days later: days 15..44 in the window (days 10..14 leave, 40..44 arrive).
    orders(range(40, 45))
    with at(t0 + timedelta(days=45)):
        slid = run_recompute(min_co_count=1, top_k=5, incremental=True)
    assert slid.parameters["incremental"] is True
    assert set(slid.parameters["stage_seconds"]) == {"read", "pairs", "sales_similar", "counts"}
    assert slid.parameters["orders_added"] == 20
    assert slid.parameters["orders_removed"] == 21
    with at(t0 + timedelta(days=45)):
        full = run_recompute(min_co_count=1, top_k=5)
    assert "incremental" not in full.parameters
    assert len(rows_of(full)) > 50
    assert rows_of(slid) == rows_of(full)  # exactly: floats compared with ==
    assert (slid.orders_read, slid.products) == (full.orders_read, full.products)

    def sales(run):
        return dict(ProductSales.objects.filter(run=run).values_list("product_id", "orders"))

    assert sales(slid) == sales(full)


@pytest.mark.django_db
def test_an_incremental_run_falls_back_to_a_full_one():
    products = ProductFactory.create_batch(3)
    for _ in range(3):
        make_order(*products)
    with override_settings(CROSSSELL={**CROSSSELL, "SIMILAR_PRODUCTS": False}):
        run = run_recompute(incremental=True)  # INCREMENTAL off: full, no counts kept
    assert run.parameters["incremental"] is False
    assert not AffinityCounts.objects.exists()
    with override_settings(CROSSSELL=INCREMENTAL):
        run = run_recompute(incremental=True)
        assert run.parameters["full_because"] == "the current run kept no counts"
        assert AffinityCounts.objects.filter(run=run).exists()
        run = run_recompute(incremental=True, max_basket_size=50)
        assert (
            run.parameters["full_because"] == "max_basket_size changed since the counts were kept"
        )
        run = run_recompute(incremental=True, max_basket_size=50)
        assert run.parameters["incremental"] is True
    with override_settings(CROSSSELL={**INCREMENTAL, "INCREMENTAL_RECONCILE_DAYS": 0}):
        run = run_recompute(incremental=True, max_basket_size=50)
        assert "INCREMENTAL_RECONCILE_DAYS" in run.parameters["full_because"]
    # Counts kept without times cannot be slid through an ORDER_SOURCE.
    source = {**INCREMENTAL, "ORDER_SOURCE": f"{__name__}.source_lines"}
    with override_settings(CROSSSELL=source):
        run = run_recompute(incremental=True, max_basket_size=50)
        assert (
            run.parameters["full_because"] == "the order source changed since the counts were kept"
        )
    # Counts an older version stored (deflated) are not slid: a full run replaces them.
    AffinityCounts.objects.filter(run=run).update(data=b"x\x9c older format")
    with override_settings(CROSSSELL=INCREMENTAL):
        run = run_recompute(incremental=True, max_basket_size=50)
        assert run.parameters["full_because"] == "the stored counts are of another format"
        assert run_recompute(incremental=True, max_basket_size=50).parameters["incremental"]


@pytest.mark.django_db
@override_settings(CROSSSELL=INCREMENTAL)
def test_only_the_current_run_keeps_its_counts():
    products = ProductFactory.create_batch(3)
    for _ in range(3):
        make_order(*products)
    first = run_recompute()
    second = run_recompute(incremental=True)
    assert list(AffinityCounts.objects.values_list("run_id", flat=True)) == [second.pk]
    assert first.pk != second.pk
