"""A table per affinity run on PostgreSQL (``partitions``, migration 0008).

The runs here commit (``transaction=True``): the write path attaches, and pruning drops,
tables only outside a caller's transaction, which is how a Celery worker runs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from django_crosssell import affinity, partitions, recompute, runs
from django_crosssell.models import AffinityRun, ProductAffinity
from django_crosssell.recommend import recommend_for_product
from tests.factories import ProductFactory, make_order
from tests.services import other_connection, require_postgresql

PARENT = ProductAffinity._meta.db_table


def tables() -> dict[str, str | None]:
    """Every run table → the table it is a partition of (None: not attached)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, p.relname FROM pg_class c "
            "LEFT JOIN pg_inherits i ON i.inhrelid = c.oid "
            "LEFT JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE c.relkind = 'r' AND c.relname LIKE %s",
            [PARENT + "%"],
        )
        return dict(cursor.fetchall())


def where_rows_are(run: AffinityRun) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT tableoid::regclass::text FROM {PARENT} WHERE run_id = %s", [run.pk]
        )
        return {row[0].strip('"') for row in cursor.fetchall()}


@contextlib.contextmanager
def reading(run: AffinityRun) -> Iterator[None]:
    """A storefront read of ``run``'s rows left open in another connection."""
    other = other_connection()
    try:
        other.execute(f"SELECT count(*) FROM {PARENT} WHERE run_id = %s", [run.pk]).fetchall()
        yield  # the transaction stays open, holding its share lock
    finally:
        other.rollback()
        other.close()


@pytest.fixture
def shop(transactional_db):
    require_postgresql()
    partitions.forget()
    a, b, c = ProductFactory.create_batch(3)
    for _ in range(2):
        make_order(a, b, c)
    return a, b, c


def test_a_run_writes_its_own_table_attached_with_the_parents_key_and_index(shop):
    a, b, c = shop
    assert partitions.enabled()
    run = recompute.run_recompute(min_co_count=1)
    table = partitions.table_for(run.pk)
    assert tables()[table] == PARENT
    assert where_rows_are(run) == {table}
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    primary = [info["columns"] for info in constraints.values() if info["primary_key"]]
    indexes = [
        info["columns"]
        for info in constraints.values()
        if info["index"] and not info["primary_key"]
    ]
    assert primary == [["id", "run_id"]]
    assert indexes == [["run_id", "source_id", "score"]]
    assert ProductAffinity.objects.filter(run=run).count() == run.pairs_written == 6
    assert {rec.product.pk for rec in recommend_for_product(a, limit=5)} == {b.pk, c.pk}
    # Ids still come from the one sequence: a row added by the ORM does not collide.
    row = ProductAffinity.objects.create(
        run=run, source=a, target=b, co_count=1, support=1, confidence=1, lift=1, score=0
    )
    assert row.pk > max(ProductAffinity.objects.exclude(pk=row.pk).values_list("pk", flat=True))


def test_pruning_drops_an_old_runs_table(shop):
    first = recompute.run_recompute(min_co_count=1)
    second = recompute.run_recompute(min_co_count=1)
    assert runs.prune_runs(keep=1) == 1
    names = tables()
    assert partitions.table_for(first.pk) not in names
    assert names[partitions.table_for(second.pk)] == PARENT
    assert set(ProductAffinity.objects.values_list("run_id", flat=True)) == {second.pk}


def test_a_busy_table_is_emptied_now_and_dropped_by_a_later_prune(shop):
    first = recompute.run_recompute(min_co_count=1)
    second = recompute.run_recompute(min_co_count=1)
    old = partitions.table_for(first.pk)
    with reading(first):  # a storefront read still running: no exclusive lock for the drop
        assert runs.prune_runs(keep=1) == 1
    assert not AffinityRun.objects.filter(pk=first.pk).exists()
    assert not ProductAffinity.objects.filter(run_id=first.pk).exists()  # deleted instead
    assert old in tables()  # the emptied table waits for the next prune
    third = recompute.run_recompute(min_co_count=1)
    runs.prune_runs(keep=2)
    assert old not in tables()
    assert {partitions.table_for(second.pk), partitions.table_for(third.pk)} <= set(tables())


def test_a_run_failing_part_way_leaves_no_table(shop, monkeypatch):
    good = recompute.run_recompute(min_co_count=1)

    def broken(*args, **kwargs):
        raise RuntimeError("engine broke after the COPY began")

    monkeypatch.setattr(affinity, "compute_block", broken)
    before = set(tables())
    with pytest.raises(RuntimeError):
        recompute.run_recompute(min_co_count=1)
    failed = AffinityRun.objects.get(status=AffinityRun.Status.FAILED)
    assert set(tables()) == before
    assert partitions.table_for(failed.pk) not in tables()
    assert AffinityRun.objects.get(is_current=True) == good
    assert ProductAffinity.objects.filter(run=good).count() == 6


def test_a_run_deleted_in_the_admin_loses_its_rows_and_later_its_table(shop):
    first = recompute.run_recompute(min_co_count=1)
    recompute.run_recompute(min_co_count=1)
    table, pk = partitions.table_for(first.pk), first.pk
    first.delete()  # Django's collector deletes the rows; the table stays, empty
    assert table in tables()
    assert not ProductAffinity.objects.filter(run_id=pk).exists()
    runs.prune_runs()
    assert table not in tables()


def test_a_cart_reads_only_the_current_runs_index(shop):
    """With the runs table analyzed by the recompute, the planner probes one partition's
    index for a cart (several sources) instead of scanning every run's table."""
    a, b, _c = shop
    for _ in range(3):
        current = recompute.run_recompute(min_co_count=1)
    plan = (
        ProductAffinity.objects.filter(run__is_current=True, source__in=[a, b])
        .order_by("-score")[:10]
        .explain(analyze=True)
    )
    scanned = [
        line for line in plan.splitlines() if "Scan" in line and "never executed" not in line
    ]
    touched = [line for line in scanned if PARENT in line]
    assert touched, plan
    assert all(partitions.table_for(current.pk) in line for line in touched), plan


def test_a_table_left_from_before_the_run_ids_were_reset_is_replaced(shop):
    first = recompute.run_recompute(min_co_count=1)
    AffinityRun.objects.filter(pk=first.pk).delete()  # rows deleted, the table stays
    with connection.cursor() as cursor:  # as after ``manage.py flush`` of the runs
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
            [AffinityRun._meta.db_table, first.pk],
        )
    again = recompute.run_recompute(min_co_count=1)
    assert again.pk == first.pk
    assert where_rows_are(again) == {partitions.table_for(again.pk)}
    assert ProductAffinity.objects.filter(run=again).count() == 6


@pytest.fixture
def limited_user(shop):
    """The connection acting as a user that may read and write rows but not change the
    schema (a shop that runs its migrations as another user)."""
    role = "crosssell_test_limited"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if not cursor.fetchone():
            cursor.execute(f"CREATE ROLE {role}")
        cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"SET ROLE {role}")
    partitions.forget()
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            cursor.execute(f"DROP OWNED BY {role}")
        partitions.forget()


def test_a_user_that_may_not_change_the_schema_writes_and_prunes_rows_as_before(
    shop, limited_user, caplog
):
    assert not partitions.enabled()
    assert "may not create or attach tables" in caplog.text
    first = recompute.run_recompute(min_co_count=1)
    second = recompute.run_recompute(min_co_count=1)
    assert where_rows_are(first) == where_rows_are(second) == {PARENT + "_default"}
    assert runs.prune_runs(keep=1) == 1
    assert set(ProductAffinity.objects.values_list("run_id", flat=True)) == {second.pk}
    assert partitions.table_for(second.pk) not in tables()


def _migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("django_crosssell", target)])
    partitions.forget()


def test_the_migration_moves_rows_to_a_table_per_run_and_back(shop):
    first = recompute.run_recompute(min_co_count=1)
    second = recompute.run_recompute(min_co_count=1)
    before = sorted(ProductAffinity.objects.values_list("pk", "run_id", "source_id", "score"))
    try:
        _migrate("0007_engine")
        assert not partitions.enabled()
        assert tables() == {PARENT: None}
        assert (
            sorted(ProductAffinity.objects.values_list("pk", "run_id", "source_id", "score"))
            == before
        )
        # The plain table works as before: the ORM's ids continue after the moved ones.
        third = recompute.run_recompute(min_co_count=1)
        assert ProductAffinity.objects.filter(run=third).count() == 6
        after_third = sorted(
            ProductAffinity.objects.values_list("pk", "run_id", "source_id", "score")
        )
        assert min(pk for pk, run_id, *_ in after_third if run_id == third.pk) > before[-1][0]
    finally:
        _migrate("0008_affinity_partitions")
    assert partitions.enabled()
    assert (
        sorted(ProductAffinity.objects.values_list("pk", "run_id", "source_id", "score"))
        == after_third
    )
    for run in (first, second, third):
        if AffinityRun.objects.filter(pk=run.pk).exists():
            assert where_rows_are(run) == {partitions.table_for(run.pk)}
    fourth = recompute.run_recompute(min_co_count=1)
    assert min(ProductAffinity.objects.filter(run=fourth).values_list("pk", flat=True)) > max(
        pk for pk, *_ in after_third
    )
