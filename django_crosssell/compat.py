"""Shims over Python and Django internals, each with a public fallback (no numpy).

:func:`fetch_chunks` reads through private SQL-compiler APIs because they are much faster
for millions of rows; when a Django version changes them it falls back to the public
``QuerySet.iterator()`` with the same results, only slower. :func:`binary_copy` compiles a
queryset the same way into a ``COPY ... TO STDOUT (FORMAT BINARY)`` statement, or says
that it cannot (the caller then reads through :func:`fetch_chunks`).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, models, transaction

MULTI: str | None
try:
    from django.db.models.sql.constants import MULTI
except ImportError:  # pragma: no cover - a Django without it takes the public path
    MULTI = None

#: What :func:`fetch_chunks` needs of ``SQLCompiler.execute_sql``.
EXECUTE_SQL_ARGUMENTS = ("result_type", "chunked_fetch", "chunk_size")


def batched(iterable: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """``itertools.batched`` (Python 3.12+) for Python 3.11."""
    iterator = iter(iterable)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def supports_chunk_fetch(compiler: Any) -> bool:
    """Whether ``compiler`` has the private API the fast path of :func:`fetch_chunks` uses."""
    if MULTI is None:
        return False
    if not all(
        callable(getattr(compiler, name, None)) for name in ("get_converters", "apply_converters")
    ) or not hasattr(compiler, "select"):
        return False
    try:
        parameters = inspect.signature(compiler.execute_sql).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return all(name in parameters for name in EXECUTE_SQL_ARGUMENTS)


def fetch_chunks(queryset: models.QuerySet, chunk_size: int) -> Iterator[list[Any]]:
    """The rows of ``values_list(...)`` in lists of at most ``chunk_size`` rows.

    The same SQL, the same server-side cursor on PostgreSQL and the same value converters
    as ``iterator(chunk_size)``. The fast path hands over each chunk as the list the
    cursor's ``fetchmany()`` returns instead of one generator step per row: at a million
    lines those steps cost as much as the query itself. Rows may be tuples or lists.
    """
    compiler = queryset.query.get_compiler(using=queryset.db)
    # Outside a transaction Django declares the server-side cursor ``WITH HOLD``, and
    # PostgreSQL then runs the whole query and stores its result before the first fetch
    # (at a million lines that storing cost about a third of the query again). Inside a
    # transaction the cursor streams straight from the running query. (No savepoint: inside
    # a caller's transaction there is nothing to add, and the read changes nothing.)
    with transaction.atomic(using=queryset.db, savepoint=False):
        if supports_chunk_fetch(compiler):
            yield from _fetch_with_compiler(queryset, compiler, chunk_size)
        else:
            for chunk in batched(queryset.iterator(chunk_size=chunk_size), chunk_size):
                yield list(chunk)


def _fetch_with_compiler(
    queryset: models.QuerySet, compiler: Any, chunk_size: int
) -> Iterator[list[Any]]:
    connection = connections[queryset.db]
    chunked = connection.features.can_use_chunked_reads and not connection.settings_dict.get(
        "DISABLE_SERVER_SIDE_CURSORS"
    )
    results = compiler.execute_sql(MULTI, chunked_fetch=chunked, chunk_size=chunk_size)
    converters = None
    for rows in results:
        if converters is None:
            fields = [select[0] for select in compiler.select[: compiler.col_count]]
            converters = compiler.get_converters(fields)
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        # Without a server-side cursor the driver may hand over everything at once.
        for start in range(0, len(rows), chunk_size):
            yield rows[start : start + chunk_size]


def binary_copy(queryset: models.QuerySet) -> tuple[str, list[str | None]] | None:
    """``COPY (<the queryset's SQL>) TO STDOUT (FORMAT BINARY)`` and its columns' types.

    The same compiled SQL as :func:`fetch_chunks` runs, its parameters merged on the client
    (COPY takes none). None unless the connection is PostgreSQL through psycopg 3 (psycopg2
    has no ``cursor.copy()``), the compiler has the API used here, and no column has a value
    converter: a converted column is not what the server sends, so only the fetch path can
    produce it. The types are the server's (``db_type()``), for the caller to know the width
    of each value in the binary rows.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    from django.db.backends.postgresql.psycopg_any import (  # type: ignore[import-untyped]
        is_psycopg3,
    )

    if not is_psycopg3:
        return None
    compiler = queryset.query.get_compiler(using=queryset.db)
    if not supports_chunk_fetch(compiler) or not hasattr(connection.ops, "compose_sql"):
        return None
    try:
        sql, params = compiler.as_sql()
    except EmptyResultSet:  # the fetch path knows what to do with it (no rows)
        return None
    fields = [select[0] for select in compiler.select[: compiler.col_count]]
    if compiler.get_converters(fields):
        return None
    types = []
    for field in fields:
        output = getattr(field, "output_field", None)
        types.append(output.db_type(connection) if output is not None else None)
    statement = f"COPY ({connection.ops.compose_sql(sql, params)}) TO STDOUT (FORMAT BINARY)"
    return statement, types
