# Written by hand: PostgreSQL only, the model does not change.
#
# ProductAffinity's table becomes partitioned by run (LIST (run_id)) with a default
# partition, so a recompute copies its rows into a table of its own, indexes it once and
# attaches it, and pruning drops an old run's table instead of deleting its rows (see
# django_crosssell/partitions.py). The primary key becomes (id, run_id), as PostgreSQL
# requires of a partitioned table; ids still come from one sequence and stay unique.
# Existing rows keep their ids and move to one partition per run.

from django.db import migrations


def _indexes(cursor, table):
    """(name, is_primary, definition) of every index on ``table``."""
    cursor.execute(
        "SELECT c.relname, i.indisprimary, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s) "
        "ORDER BY c.relname",
        [table],
    )
    return cursor.fetchall()


def _relkind(cursor, table):
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
    row = cursor.fetchone()
    return row[0] if row else None


def _next_id(cursor, qtable, table):
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {qtable}")
    start = cursor.fetchone()[0]
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    if sequence:
        cursor.execute(f"SELECT last_value FROM {sequence}")
        start = max(start, cursor.fetchone()[0])
    return start + 1, sequence


def _recreate(cursor, qn, table, indexes, primary_key):
    """The indexes read by :func:`_indexes`, under their names, on ``table``."""
    for name, primary, definition in indexes:
        if primary:
            cursor.execute(
                f"ALTER TABLE {qn(table)} ADD CONSTRAINT {qn(name)} PRIMARY KEY ({primary_key})"
            )
        else:
            using = definition[definition.index(" USING ") :]
            unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
            cursor.execute(f"CREATE {unique}INDEX {qn(name)} ON {qn(table)}{using}")


def partition_by_run(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("django_crosssell", "ProductAffinity")
    table = model._meta.db_table
    qn = schema_editor.quote_name
    old = f"{table}_unpartitioned"
    sequence = f"{table}_id_seq"
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor, qn(table)) != "r":
            return
        indexes = _indexes(cursor, qn(table))
        start, old_sequence = _next_id(cursor, qn(table), table)
        cursor.execute(f"ALTER TABLE {qn(table)} RENAME TO {qn(old)}")
        # Free the names (index names are per schema) and the id's sequence.
        for name, primary, _definition in indexes:
            if primary:
                cursor.execute(f"ALTER TABLE {qn(old)} DROP CONSTRAINT {qn(name)}")
            else:
                cursor.execute(f"DROP INDEX {qn(name)}")
        cursor.execute(f"ALTER TABLE {qn(old)} ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cursor.execute(f"ALTER TABLE {qn(old)} ALTER COLUMN id DROP DEFAULT")
        if old_sequence:
            cursor.execute(f"DROP SEQUENCE IF EXISTS {old_sequence}")
        cursor.execute(
            f"CREATE TABLE {qn(table)} (LIKE {qn(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " PARTITION BY LIST (run_id)"
        )
        cursor.execute(f"CREATE SEQUENCE {qn(sequence)} START WITH {int(start)} CACHE 1000")
        cursor.execute(f"ALTER SEQUENCE {qn(sequence)} OWNED BY {qn(table)}.id")
        cursor.execute(
            f"ALTER TABLE {qn(table)} ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)"
        )
        _recreate(cursor, qn, table, indexes, "id, run_id")
        cursor.execute(f"CREATE TABLE {qn(table + '_default')} PARTITION OF {qn(table)} DEFAULT")
        cursor.execute(f"SELECT DISTINCT run_id FROM {qn(old)} ORDER BY run_id")
        for (run_id,) in cursor.fetchall():
            cursor.execute(
                f"CREATE TABLE {qn(f'{table}_r{int(run_id)}')} PARTITION OF {qn(table)} "
                f"FOR VALUES IN ({int(run_id)})"
            )
        cursor.execute(f"INSERT INTO {qn(table)} SELECT * FROM {qn(old)}")
        cursor.execute(f"DROP TABLE {qn(old)}")


def one_table(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    model = apps.get_model("django_crosssell", "ProductAffinity")
    table = model._meta.db_table
    qn = schema_editor.quote_name
    flat = f"{table}_flat"
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor, qn(table)) != "p":
            return
        indexes = _indexes(cursor, qn(table))
        start, _sequence = _next_id(cursor, qn(table), table)
        cursor.execute(
            f"CREATE TABLE {qn(flat)} (LIKE {qn(table)} INCLUDING CONSTRAINTS)"
        )
        cursor.execute(f"INSERT INTO {qn(flat)} SELECT * FROM {qn(table)}")
        cursor.execute(f"DROP TABLE {qn(table)} CASCADE")  # its partitions and sequence
        # Run tables never attached (a recompute's leftovers) go too.
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE %s",
            [table.replace("_", r"\_") + r"\_r%"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP TABLE {qn(name)}")
        cursor.execute(f"ALTER TABLE {qn(flat)} RENAME TO {qn(table)}")
        cursor.execute(
            f"ALTER TABLE {qn(table)} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
            f"(START WITH {int(start)})"
        )
        _recreate(cursor, qn, table, indexes, "id")


class Migration(migrations.Migration):

    dependencies = [
        ("django_crosssell", "0007_engine"),
    ]

    operations = [
        migrations.RunPython(partition_by_run, one_table),
    ]
