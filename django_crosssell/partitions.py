"""A table of its own for each affinity run on PostgreSQL, attached as a partition.

Writing a run's rows into one shared table made the server maintain the table's indexes
row by row, and pruning an old run deleted as many rows again: on the 1M-line benchmark
shop the two took about 0.5 s of a 1.3 s recompute, more than the engine. Migration 0008
makes ``ProductAffinity``'s table partitioned by run (``LIST (run_id)``, plus a default
partition). A run's rows are then copied into a new table with no index, indexed once at
the end (one sorted build), and attached as the run's partition in the COPY's own
transaction, so a failure leaves nothing behind. An old run's partition is dropped instead
of deleted.

Dropping or detaching a partition needs a brief exclusive lock on the parent table, which
waits for the storefront's reads in flight and holds new ones back while it waits; it is
therefore tried with a short ``lock_timeout`` (:data:`LOCK_TIMEOUT_MS`). When the lock is
not granted the rows are deleted as before and the emptied table is dropped by a later
prune (:func:`drop_strays`), so correctness never depends on the lock.

Rows written any other way (the ORM, the text COPY for product keys the binary COPY does
not cover) land in the default partition and are deleted as before. Other databases, and a
PostgreSQL table that was never partitioned, keep the single table.

Numpy-free: imports only Django and ``models``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError, connections, transaction

from .models import AffinityRun, ProductAffinity

logger = logging.getLogger("django_crosssell")

#: How long dropping a partition may wait for the parent's lock (readers queue behind it
#: meanwhile, so it is kept well under the widgets' own ``LOCK_TIMEOUT_MS``).
LOCK_TIMEOUT_MS = 100

_partitioned: dict[tuple[str, str], bool] = {}
_definitions: dict[tuple[str, str], list[tuple[str, str]]] = {}


def parent_table() -> str:
    return ProductAffinity._meta.db_table


def table_for(run_id: int) -> str:
    """The name of run ``run_id``'s own table (a partition once attached)."""
    return f"{parent_table()}_r{int(run_id)}"


def enabled(using: str = "default") -> bool:
    """Whether runs get tables of their own on this database.

    Only when the affinity table is partitioned (migration 0008) and the database user may
    create tables in its schema and owns it (attaching and detaching need both): a shop
    whose web user cannot change the schema keeps writing into the default partition and
    deleting rows, as before. Asked once per process and database.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    key = (using, str(connection.settings_dict.get("NAME")))
    if key not in _partitioned:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relkind = 'p', pg_has_role(c.relowner, 'USAGE') "
                "AND has_schema_privilege(c.relnamespace, 'CREATE') "
                "FROM pg_class c WHERE c.oid = to_regclass(%s)",
                [connection.ops.quote_name(parent_table())],
            )
            row = cursor.fetchone()
        partitioned, allowed = (bool(row[0]), bool(row[1])) if row else (False, False)
        if partitioned and not allowed:
            logger.warning(
                "django-crosssell: the database user may not create or attach tables for "
                "the affinity runs; their rows go into the default partition and are "
                "deleted when pruned (slower). Grant the user CREATE on the schema and "
                "ownership of %s to give each run its own table.",
                parent_table(),
            )
        _partitioned[key] = partitioned and allowed
    return _partitioned[key]


def forget() -> None:
    """Ask the database again next time (after migrating, in tests)."""
    _partitioned.clear()
    _definitions.clear()


def create(cursor: Any, run_id: int) -> str:
    """Create run ``run_id``'s table with the parent's columns, defaults and checks.

    No index yet (:func:`attach` builds them), and a check that every row belongs to the
    run, so attaching needs no scan of its own. Call inside the transaction that fills and
    attaches it: a rollback then removes it.
    """
    qn = cursor.db.ops.quote_name
    table = table_for(run_id)
    # A table of this name can only be left from before the runs' ids were reset (a
    # flushed database): nothing live reads it.
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [qn(table)])
    if cursor.fetchone()[0]:
        cursor.execute(f"DROP TABLE {qn(table)}")
    cursor.execute(
        f"CREATE TABLE {qn(table)} (LIKE {qn(parent_table())} "
        "INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    cursor.execute(
        f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(table + '_run')} "
        f"CHECK (run_id IS NOT NULL AND run_id = {int(run_id)})"
    )
    return table


def attach(cursor: Any, run_id: int) -> None:
    """Build the parent's keys and indexes on the filled table, then attach it.

    Each is built here from the parent's own definition (a primary key as a constraint,
    or the attach would build another index for it), so the attach finds them in place
    instead of building them while it holds its lock.
    """
    qn = cursor.db.ops.quote_name
    table = table_for(run_id)
    key = (cursor.db.alias, str(cursor.db.settings_dict.get("NAME")))
    if key not in _definitions:  # asked once per process, like :func:`enabled`
        cursor.execute(
            "SELECT 'constraint', pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.conrelid = to_regclass(%s) AND c.contype IN ('p', 'u') "
            "UNION ALL SELECT CASE WHEN i.indisunique THEN 'UNIQUE INDEX' ELSE 'INDEX' END, "
            "pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [qn(parent_table())] * 2,
        )
        _definitions[key] = cursor.fetchall()
    for kind, definition in _definitions[key]:
        if kind == "constraint":
            cursor.execute(f"ALTER TABLE {qn(table)} ADD {definition}")
        else:
            using = definition[definition.index(" USING ") :]
            cursor.execute(f"CREATE {kind} ON {qn(table)}{using}")
    cursor.execute(
        f"ALTER TABLE {qn(parent_table())} ATTACH PARTITION {qn(table)} "
        f"FOR VALUES IN ({int(run_id)})"
    )


def existing(using: str = "default") -> dict[int, bool]:
    """Run id → attached? for every run table on the database (attached or not)."""
    connection = connections[using]
    pattern = re.compile(re.escape(parent_table()) + r"_r(\d+)$")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relispartition FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname = ANY(current_schemas(false)) "
            "AND c.relname LIKE %s",
            [parent_table().replace("_", r"\_") + r"\_r%"],
        )
        rows = cursor.fetchall()
    found = {}
    for name, attached in rows:
        match = pattern.match(name)
        if match:
            found[int(match.group(1))] = bool(attached)
    return found


def drop(run_ids: Iterable[int], using: str = "default") -> set[int]:
    """Drop the tables of runs ``run_ids``; returns the runs whose table is gone.

    Each in its own short transaction with :data:`LOCK_TIMEOUT_MS`; a table whose lock
    was not granted stays (its rows are then deleted by the caller, the empty table by a
    later :func:`drop_strays`). Never called inside a caller's transaction: the lock would
    be held to its end.
    """
    connection = connections[using]
    tables = existing(using)
    qn = connection.ops.quote_name
    dropped: set[int] = set()
    for run_id in sorted(set(run_ids) & tables.keys()):
        table = table_for(run_id)
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                    [f"{int(LOCK_TIMEOUT_MS)}ms"],
                )
                shown = cursor.fetchone()[0]
                if tables[run_id]:
                    cursor.execute(f"ALTER TABLE {qn(parent_table())} DETACH PARTITION {qn(table)}")
                cursor.execute(f"DROP TABLE {qn(table)}")
                # Inside a caller's transaction the setting would outlive this block.
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [shown])
        except DatabaseError as exc:
            logger.info(
                "django-crosssell: run #%s's table stays until the next prune (%s)",
                run_id,
                exc,
            )
            continue
        dropped.add(run_id)
    return dropped


def drop_strays(live_run_ids: Iterable[int], using: str = "default") -> set[int]:
    """Drop run tables no live run owns: a pruned run's table whose lock was not granted,
    or one whose run was deleted another way (the admin: its rows were deleted, the
    emptied table stays)."""
    strays = set(existing(using)) - set(live_run_ids)
    return drop(strays, using) if strays else set()


def analyze_runs(using: str = "default") -> None:
    """Refresh the planner's statistics of the (tiny) runs table.

    The widgets join the affinity table to the current run. A runs table the server has
    never analyzed (a handful of rows stays under autovacuum's thresholds for weeks) is
    estimated at some 200 current runs, and the planner then scans every partition for a
    cart's partners (105 ms instead of 0.5 ms on the 1M-line shop) instead of probing the
    current run's index. A few milliseconds, once per recompute.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(AffinityRun._meta.db_table)}")
