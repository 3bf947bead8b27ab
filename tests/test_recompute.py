"""Recompute runs: stored rows, atomic swap, failures, pruning, locking, command, enqueue."""

from __future__ import annotations

import threading
from itertools import islice
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone

from django_crosssell import affinity, cache, recompute, runs, writer
from django_crosssell.enqueue import enqueue_recompute
from django_crosssell.errors import (
    OrderSourceError,
    RecomputeLocked,
    RecomputeParameterError,
    RecomputeRefused,
)
from django_crosssell.models import AffinityRun, ProductAffinity, ProductSales
from django_crosssell.params import resolve_parameters
from django_crosssell.recompute import run_recompute
from tests.factories import ProductFactory, make_order
from tests.testapp.models import Order

SETTINGS = {
    "ORDER_LINE_MODEL": "testapp.OrderLine",
    "ORDER_FILTER": {"order__status": "paid"},
    "AVAILABLE_PRODUCTS_FILTER": {"is_active": True, "stock__gt": 0},
    "CATEGORY_FIELD": "category",
}


@pytest.fixture
def shop(db):
    """a+b bought together 3 times, a+c twice, b+c once, plus single-item orders."""
    a, b, c, d = ProductFactory.create_batch(4)
    for _ in range(3):
        make_order(a, b)
    make_order(a, c)
    make_order(a, c, b)
    make_order(d)
    make_order(a)
    return a, b, c, d


def stored(run):
    return {(row.source_id, row.target_id): row for row in ProductAffinity.objects.filter(run=run)}


def test_a_run_stores_exact_metrics_and_becomes_current(shop):
    a, b, c, d = shop
    version = cache.current_version()
    run = run_recompute(min_co_count=1, metric="confidence", order_weighting="none")
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.SUCCEEDED
    assert run.is_current
    assert run.finished_at is not None
    assert (run.orders_read, run.lines_read, run.products) == (7, 13, 4)
    assert run.pairs_written == 6
    assert run.parameters["metric"] == "confidence"
    rows = stored(run)
    ab = rows[(a.pk, b.pk)]
    assert ab.co_count == 4
    assert ab.support == pytest.approx(4 / 7, abs=1e-15)
    assert ab.confidence == pytest.approx(4 / 6, abs=1e-15)
    assert ab.lift == pytest.approx((4 / 6) / (4 / 7), abs=1e-12)
    assert ab.score == ab.confidence
    assert rows[(c.pk, a.pk)].confidence == 1.0
    assert not any(d.pk in pair for pair in rows)
    assert cache.current_version() > version


def test_defaults_come_from_settings(shop):
    with override_settings(CROSSSELL={**SETTINGS, "MIN_CO_COUNT": 3, "TOP_K": 1}):
        run = run_recompute()
    assert run.parameters["min_co_count"] == 3
    assert run.parameters["metric"] == "cosine"
    assert {(r.source_id, r.target_id) for r in stored(run).values()} == {
        (shop[0].pk, shop[1].pk),
        (shop[1].pk, shop[0].pk),
    }


def test_a_new_run_replaces_the_current_one(shop):
    first = run_recompute(min_co_count=1)
    second = run_recompute(min_co_count=2)
    first.refresh_from_db()
    assert not first.is_current
    assert second.is_current
    assert AffinityRun.objects.filter(is_current=True).count() == 1
    current_rows = ProductAffinity.objects.filter(run__is_current=True)
    assert set(current_rows.values_list("run", flat=True)) == {second.pk}


def test_a_failure_while_writing_keeps_the_previous_run(shop):
    good = run_recompute(min_co_count=1)
    real_writer = recompute.write_affinities

    def write_then_fail(run, result, **kwargs):
        real_writer(run, result, **kwargs)  # rows of the new run exist at this point
        raise OperationalError("server closed the connection unexpectedly")

    with (
        mock.patch.object(recompute, "write_affinities", write_then_fail),
        pytest.raises(OperationalError),
    ):
        run_recompute(min_co_count=1)
    failed = AffinityRun.objects.exclude(pk=good.pk).get()
    assert failed.status == AffinityRun.Status.FAILED
    assert "OperationalError: server closed the connection unexpectedly" in failed.error
    assert not failed.is_current
    assert not ProductAffinity.objects.filter(run=failed).exists()
    good.refresh_from_db()
    assert good.is_current
    assert ProductAffinity.objects.filter(run__is_current=True).count() == good.pairs_written


def test_a_failure_in_the_engine_is_recorded(shop):
    good = run_recompute(min_co_count=1)
    real_blocks = affinity.plan_results

    def fail_after_a_block(*args, **kwargs):
        # One real block reaches the writer (into the open COPY on PostgreSQL) first.
        yield from islice(real_blocks(*args, **kwargs), 1)
        raise MemoryError("big")

    with (
        mock.patch.object(affinity, "plan_results", fail_after_a_block),
        pytest.raises(MemoryError),
    ):
        run_recompute(min_co_count=1)
    failed = AffinityRun.objects.exclude(pk=good.pk).get()
    assert failed.status == AffinityRun.Status.FAILED
    assert failed.error == "MemoryError: big"
    assert not failed.is_current
    assert not ProductAffinity.objects.filter(run=failed).exists()
    good.refresh_from_db()
    assert good.is_current
    assert ProductAffinity.objects.filter(run__is_current=True).count() == good.pairs_written
    assert not [t for t in threading.enumerate() if t.name == "crosssell-affinity-engine"]


def test_a_failed_copy_stops_the_engine_thread(shop):
    from tests.services import require_postgresql

    require_postgresql()
    blocks_computed = []
    real_blocks = affinity.plan_results

    def counted(*args, **kwargs):
        for block in real_blocks(*args, **kwargs):
            blocks_computed.append(block.n_pairs)
            yield block

    def broken_rows(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with (
        mock.patch.object(affinity, "plan_results", counted),
        mock.patch.object(writer, "binary_rows", broken_rows),
        pytest.raises(OperationalError),
    ):
        run_recompute(min_co_count=1)
    run = AffinityRun.objects.get()
    assert run.status == AffinityRun.Status.FAILED
    assert not ProductAffinity.objects.exists()
    assert blocks_computed  # the engine ran, in its thread, and was stopped with the COPY
    assert not [t for t in threading.enumerate() if t.name == "crosssell-affinity-engine"]


def test_partners_tied_on_score_are_ranked_by_ascending_product_id(db):
    first, second, third = ProductFactory.create_batch(3)
    # ``third`` is seen before ``second`` but both are tied as partners of ``first``.
    make_order(first, third)
    make_order(first, second)
    run = run_recompute(min_co_count=1, top_k=1, metric="co_count")
    partner = ProductAffinity.objects.get(run=run, source=first).target_id
    assert partner == min(second.pk, third.pk)


def test_background_blocks_keep_order_and_reraise_errors():
    assert list(writer.in_background(iter(range(50)), depth=2)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("engine broke")

    stream = writer.in_background(broken())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="engine broke"):
        next(stream)


def test_closing_the_background_stream_stops_its_thread():
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = writer.in_background(endless(), depth=2)
    assert next(stream) == 0
    stream.close()
    settled = len(produced)
    assert settled <= 5  # the item handed over, the queue's two, one waiting to be put
    assert not [t for t in threading.enumerate() if t.name == "crosssell-affinity-engine"]


@pytest.mark.parametrize(
    "baskets",
    [[], [[0], [1], [0]]],
    ids=["no orders", "one-item orders only"],
)
def test_no_pairs_is_a_successful_empty_run(db, baskets):
    products = ProductFactory.create_batch(2)
    for basket in baskets:
        make_order(*(products[i] for i in basket))
    run = run_recompute()
    assert run.status == AffinityRun.Status.SUCCEEDED
    assert run.is_current
    assert run.pairs_written == 0
    assert run.orders_read == len(baskets)


def test_deleted_products_are_left_out(shop):
    a, b, c, _ = shop
    b.delete()
    run = run_recompute(min_co_count=1)
    assert set(stored(run)) == {(a.pk, c.pk), (c.pk, a.pk)}


def test_old_runs_are_pruned(shop):
    with override_settings(CROSSSELL={**SETTINGS, "KEEP_RUNS": 2}):
        runs = [run_recompute(min_co_count=1) for _ in range(4)]
    kept = set(AffinityRun.objects.values_list("pk", flat=True))
    assert kept == {runs[2].pk, runs[3].pk}
    assert set(ProductAffinity.objects.values_list("run", flat=True)) == kept


def test_dry_run_writes_nothing(shop):
    run = run_recompute(min_co_count=1, dry_run=True)
    assert run.pk is None
    assert run.pairs_written == 6
    assert run.parameters["dry_run"] is True
    assert not AffinityRun.objects.exists()
    assert not ProductAffinity.objects.exists()


def test_progress_reports_every_stage(shop):
    stages = []
    run_recompute(min_co_count=1, progress=lambda stage, done, total: stages.append(stage))
    assert stages[0] == "read"
    assert {"pairs", "write"} <= set(stages)
    assert stages[-1] == "done"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "lift!"}, "metric must be one of"),
        ({"min_co_count": 0}, "min_co_count"),
        ({"top_k": "5"}, "top_k"),
        ({"top_k": -1}, "top_k must be a whole number of at least 0"),
        ({"lookback_days": -1}, "lookback_days"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(db, kwargs, message):
    with pytest.raises(RecomputeParameterError, match=message):
        run_recompute(**kwargs)
    assert not AffinityRun.objects.exists()
    with pytest.raises(RecomputeParameterError, match=message):
        enqueue_recompute(**kwargs)
    assert not AffinityRun.objects.exists()


def test_zero_switches_limits_off():
    params = resolve_parameters(top_k=0, lookback_days=0, half_life_days=0)
    assert params["top_k"] is None
    assert params["lookback_days"] is None
    assert params["half_life_days"] is None


def test_half_life_runs_through_the_database(shop):
    run = run_recompute(min_co_count=1, half_life_days=30)
    assert run.status == AffinityRun.Status.SUCCEEDED
    assert run.pairs_written == 6


def test_a_finished_run_is_not_recomputed(shop):
    run = run_recompute(min_co_count=1)
    with mock.patch.object(recompute, "prepare_pairs") as compute:
        again = run_recompute(run=run)
    compute.assert_not_called()
    assert again.pk == run.pk and again.status == AffinityRun.Status.SUCCEEDED


def test_a_queued_run_is_run_with_its_id(shop):
    queued = AffinityRun.objects.create(status=AffinityRun.Status.QUEUED)
    run = run_recompute(run=queued, min_co_count=1)
    assert run.pk == queued.pk
    assert run.status == AffinityRun.Status.SUCCEEDED


def test_a_run_left_running_by_a_dead_worker_is_failed(shop):
    from datetime import timedelta

    from django.utils import timezone

    stale = AffinityRun.objects.create(
        status=AffinityRun.Status.RUNNING,
        started_at=timezone.now() - timedelta(seconds=runs.CACHE_LOCK_TIMEOUT + 60),
    )
    ProductAffinity.objects.create(
        run=stale, source=shop[0], target=shop[1], co_count=1, support=1, confidence=1,
        lift=1, score=1,
    )  # fmt: skip
    run_recompute()
    stale.refresh_from_db()
    assert stale.status == AffinityRun.Status.FAILED
    assert "Interrupted" in stale.error
    assert not ProductAffinity.objects.filter(run=stale).exists()


def test_a_redelivered_running_run_is_redone(shop):
    crashed = AffinityRun.objects.create(status=AffinityRun.Status.RUNNING)
    ProductAffinity.objects.create(
        run=crashed, source=shop[0], target=shop[3], co_count=9, support=1, confidence=1,
        lift=1, score=1,
    )  # fmt: skip
    run = run_recompute(run=crashed, min_co_count=1)
    assert run.status == AffinityRun.Status.SUCCEEDED
    assert (shop[0].pk, shop[3].pk) not in stored(run)


def test_enqueue_returns_the_queued_run_and_runs_it_on_commit(
    shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = enqueue_recompute(min_co_count=1, top_k=None)
        assert run.status == AffinityRun.Status.QUEUED
        assert run.parameters == {"min_co_count": 1}
    assert callbacks  # the task is sent only once the transaction commits
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.SUCCEEDED
    assert run.is_current


def test_enqueue_with_an_unreachable_broker_fails_the_run_not_the_caller(
    db, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError as BrokerError

    from django_crosssell import tasks

    with (
        mock.patch.object(
            tasks.recompute_affinity, "delay", side_effect=BrokerError("Connection refused")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = enqueue_recompute()
    run.refresh_from_db()
    assert run.status == AffinityRun.Status.FAILED
    assert "Could not queue the recompute (OperationalError: Connection refused)" in run.error


def test_enqueue_rejects_unknown_parameters(db):
    with pytest.raises(RecomputeParameterError, match="Unknown parameter"):
        enqueue_recompute(topk=3)


# --- The command -----------------------------------------------------------------------


def test_command_prints_progress_and_a_summary(shop, capsys):
    call_command("crosssell_recompute", "--min-co-count", "1", "--metric", "confidence")
    out = capsys.readouterr().out
    assert "order lines read: 13" in out
    assert "pairs written: 6 / 6" in out
    assert "made current" in out
    assert "7 orders, 13 lines, 4 products, 6 pairs" in out
    assert "metric=confidence" in out
    assert AffinityRun.objects.get().is_current


def test_command_dry_run(shop, capsys):
    call_command("crosssell_recompute", "--dry-run", "--top-k", "1", "-v", "0")
    assert "Dry run (nothing written)" in capsys.readouterr().out
    assert not AffinityRun.objects.exists()


def test_command_rejects_bad_parameters(db):
    with pytest.raises(CommandError, match="min_co_count"):
        call_command("crosssell_recompute", "--min-co-count", "0")


def test_command_reports_a_failure_clearly(shop):
    with (
        mock.patch.object(recompute, "write_affinities", side_effect=OperationalError("gone")),
        pytest.raises(CommandError, match="previous recommendations stay in use"),
    ):
        call_command("crosssell_recompute", "-v", "0")


# --- Two recomputes at once -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_second_run_while_one_runs_exits_cleanly_and_never_writes(capsys):
    a, b = ProductFactory.create_batch(2)
    for _ in range(2):
        make_order(a, b)
    entered, release = threading.Event(), threading.Event()
    real_compute = recompute.prepare_pairs
    outcome = {}

    def slow_compute(params, progress):
        entered.set()
        assert release.wait(20)
        return real_compute(params, progress)

    def first():
        try:
            outcome["run"] = run_recompute()
        except BaseException as exc:  # surfaced by the assertion below
            outcome["error"] = exc
        finally:
            connection.close()

    with mock.patch.object(recompute, "prepare_pairs", slow_compute):
        thread = threading.Thread(target=first)
        thread.start()
        try:
            assert entered.wait(20)
            with pytest.raises(RecomputeLocked):
                run_recompute()
            call_command("crosssell_recompute")
            assert "Nothing was done" in capsys.readouterr().err
        finally:
            release.set()
            thread.join(30)
    assert "error" not in outcome, outcome.get("error")
    assert AffinityRun.objects.count() == 1
    run = AffinityRun.objects.get()
    assert run.pk == outcome["run"].pk and run.is_current
    assert ProductAffinity.objects.count() == run.pairs_written == 2


def test_a_fresh_running_run_blocks_only_without_advisory_locks(shop):
    """PostgreSQL's advisory lock proves a 'running' run is dead; elsewhere its age decides."""
    other = AffinityRun.objects.create(status=AffinityRun.Status.RUNNING)
    if connection.vendor == "postgresql":
        run_recompute()
        other.refresh_from_db()
        assert other.status == AffinityRun.Status.FAILED
    else:
        with pytest.raises(RecomputeLocked, match=f"run #{other.pk} has been running since"):
            run_recompute()
        assert AffinityRun.objects.count() == 1


def test_text_copy_is_used_for_key_types_binary_copy_does_not_cover(shop):
    from tests.services import require_postgresql

    require_postgresql()
    with mock.patch.object(writer, "binary_column_kinds", return_value=None):
        run = run_recompute(min_co_count=1, metric="confidence")
    rows = stored(run)
    assert len(rows) == run.pairs_written == 6
    assert rows[(shop[2].pk, shop[0].pk)].confidence == 1.0


# --- A recompute that read far fewer orders than the current run ----------------------


#: Lines yielded by the dotted-path order source below (set by the test using it).
CUSTOM_ROWS: list[tuple] = []


def custom_source(*, since, with_placed_at, chunk_size):
    return iter(CUSTOM_ROWS)


def cancel(orders):
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(status="cancelled")


@pytest.fixture
def current(shop):
    run = run_recompute(min_co_count=1)
    assert run.orders_read == 7
    return run, set(stored(run))


def assert_untouched(current):
    run, pairs = current
    run.refresh_from_db()
    assert run.is_current and run.status == AffinityRun.Status.SUCCEEDED
    assert set(stored(run)) == pairs
    assert AffinityRun.objects.filter(is_current=True).get() == run


def test_a_recompute_that_reads_no_orders_is_refused(current):
    with (
        override_settings(CROSSSELL={**SETTINGS, "ORDER_FILTER": {"order__status": "refunded"}}),
        pytest.raises(RecomputeRefused, match="read no orders") as raised,
    ):
        run_recompute(min_co_count=1)
    assert f"current run #{current[0].pk}" in str(raised.value)
    assert "allow_shrink" in str(raised.value)
    refused = AffinityRun.objects.exclude(pk=current[0].pk).get()
    assert refused.status == AffinityRun.Status.FAILED and not refused.is_current
    assert refused.error.startswith("RecomputeRefused: The recompute read no orders")
    assert not ProductAffinity.objects.filter(run=refused).exists()
    assert_untouched(current)


def test_a_recompute_that_reads_under_min_orders_ratio_is_refused(current):
    cancel(Order.objects.order_by("pk")[:4])  # 3 of 7 orders left: under half
    with pytest.raises(RecomputeRefused, match=r"read 3 orders \(.*fewer than MIN_ORDERS_RATIO"):
        run_recompute(min_co_count=1)
    assert_untouched(current)
    with override_settings(CROSSSELL={**SETTINGS, "MIN_ORDERS_RATIO": 0.4}):
        run = run_recompute(min_co_count=1)  # 3 >= 0.4 x 7
    assert run.is_current and run.orders_read == 3


def test_allow_shrink_replaces_the_current_run(current):
    with override_settings(CROSSSELL={**SETTINGS, "ORDER_FILTER": {"order__status": "refunded"}}):
        run = run_recompute(min_co_count=1, allow_shrink=True)
    assert run.is_current and run.orders_read == 0 and run.pairs_written == 0
    assert run.parameters["allow_shrink"] is True
    assert not ProductAffinity.objects.filter(run__is_current=True).exists()


def test_min_orders_ratio_zero_still_refuses_an_empty_read(current):
    cancel(Order.objects.order_by("pk")[:6])
    with override_settings(CROSSSELL={**SETTINGS, "MIN_ORDERS_RATIO": 0}):
        assert run_recompute(min_co_count=1).orders_read == 1
        cancel(Order.objects.all())
        with pytest.raises(RecomputeRefused, match="read no orders"):
            run_recompute(min_co_count=1)


def test_command_refuses_a_shrink_with_the_reason_and_allow_shrink_overrides(current):
    cancel(Order.objects.order_by("pk")[:5])
    with pytest.raises(CommandError, match="previous recommendations stay in use") as raised:
        call_command("crosssell_recompute", "--min-co-count", "1", "-v", "0")
    assert raised.value.returncode == 1
    assert "fewer than MIN_ORDERS_RATIO = 0.5 of the 7 orders" in str(raised.value)
    assert_untouched(current)
    call_command("crosssell_recompute", "--min-co-count", "1", "--allow-shrink", "-v", "0")
    assert AffinityRun.objects.get(is_current=True).orders_read == 2


@pytest.mark.django_db(transaction=True)
def test_manage_py_crosssell_recompute_exits_non_zero_when_refused(capsys):
    from django.core.management import ManagementUtility

    a, b = ProductFactory.create_batch(2)
    orders = [make_order(a, b) for _ in range(4)]
    first = run_recompute(min_co_count=1)
    cancel(orders[:3])
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "crosssell_recompute", "-v", "0"]).execute()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "CommandError: The recompute failed; the previous recommendations stay in use." in err
    assert "read 1 orders (2 lines), fewer than MIN_ORDERS_RATIO = 0.5 of the 4 orders" in err
    first.refresh_from_db()
    assert first.is_current
    assert ProductAffinity.objects.filter(run=first).count() == first.pairs_written == 2


def test_a_dry_run_is_never_refused(current):
    cancel(Order.objects.all())
    preview = run_recompute(dry_run=True)
    assert preview.orders_read == 0
    assert_untouched(current)


def test_a_source_without_placed_at_fails_the_run_and_keeps_the_current_one(current):
    product = next(iter(current[1]))[0]
    CUSTOM_ROWS[:] = [(1, product, timezone.now()), (2, product, None)]
    source = {"ORDER_SOURCE": f"{__name__}.custom_source"}
    with (
        override_settings(CROSSSELL={**SETTINGS, **source}),
        pytest.raises(OrderSourceError, match="yielded an order line without placed_at"),
    ):
        run_recompute(min_co_count=1, lookback_days=30)
    failed = AffinityRun.objects.exclude(pk=current[0].pk).get()
    assert failed.status == AffinityRun.Status.FAILED
    assert "OrderSourceError: CROSSSELL['ORDER_SOURCE'] yielded" in failed.error
    assert_untouched(current)


def test_content_neighbours_are_computed_off_the_main_thread_as_the_last_block_is(shop):
    threads = []
    real = recompute.compute_similar

    def recorded(partnered, rows=None):
        threads.append((threading.current_thread().name, rows is not None))
        return real(partnered, rows)

    with mock.patch.object(recompute, "compute_similar", recorded):
        run = run_recompute(min_co_count=1)
    # The texts were read up front; the neighbours needed no database in their thread.
    assert threads == [("crosssell-after-blocks", True)]
    assert run.parameters["similar_written"] >= 0
    assert not [t for t in threading.enumerate() if t.name == "crosssell-after-blocks"]


def test_a_failure_in_the_content_neighbours_keeps_the_previous_run(shop):
    good = run_recompute(min_co_count=1)

    def broken(partnered, rows=None):
        raise MemoryError("neighbours")

    with mock.patch.object(recompute, "compute_similar", broken), pytest.raises(MemoryError):
        run_recompute(min_co_count=1)
    failed = AffinityRun.objects.exclude(pk=good.pk).get()
    assert failed.status == AffinityRun.Status.FAILED
    assert failed.error == "MemoryError: neighbours"
    # Its sales went to the server before its pairs; none of its rows are left.
    assert not ProductAffinity.objects.filter(run=failed).exists()
    assert not ProductSales.objects.filter(run=failed).exists()
    assert ProductSales.objects.filter(run=good).exists()
    good.refresh_from_db()
    assert good.is_current
