"""Shims over Python and Django internals, each with a public fallback (no numpy).

:func:`fetch_chunks` reads through private SQL-compiler APIs because they are much faster
for millions of rows; when a Django version changes them it falls back to the public
``QuerySet.iterator()`` with the same results, only slower. :func:`binary_copy` compiles a
queryset the same way into a ``COPY ... TO STDOUT (FORMAT BINARY)`` statement, or says
that it cannot (the caller then reads through :func:`fetch_chunks`); :func:`copy_out` reads
such a COPY's bytes through libpq's own calls (psycopg's documented ``Connection.pgconn``),
or through ``cursor.copy()`` where those calls are missing.
"""

from __future__ import annotations

import inspect
import selectors
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, connections, models, transaction

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


#: What :func:`copy_out` calls on psycopg's ``pgconn`` (else it reads through ``cursor.copy()``).
LIBPQ_CALLS = ("send_query", "get_result", "get_copy_data", "consume_input", "is_busy")


def copy_out(alias: str, statement: str, size: int) -> Generator[bytearray, None, int]:
    """The bytes of ``statement`` (a ``COPY ... TO STDOUT``) in pieces of at least ``size``
    bytes (the last may be shorter); the generator returns the server's row count.

    psycopg's ``Copy`` hands over one message, one row, per Python call through its
    waiting machinery: at a million rows that cost 0.45 s of this process's time, as much
    as the server's whole query. libpq's ``PQgetCopyData``, called from here on the
    connection's ``pgconn``, returns the messages already received without waiting; this
    loop waits on the socket only when they run out, so the GIL is never held while
    blocked. The connection is left as psycopg leaves it: every message and result read,
    a server error raised as Django's error, a consumer that stops early drained first.
    """
    connection = connections[alias]
    with connection.cursor() as cursor:
        raw = cursor.connection
        pgconn = getattr(raw, "pgconn", None)
        if not all(callable(getattr(pgconn, name, None)) for name in LIBPQ_CALLS):
            return (yield from _copy_with_cursor(cursor, statement, size))
        with connection.wrap_database_errors:
            return (yield from _copy_with_libpq(raw, pgconn, statement, size))


def _copy_with_cursor(cursor: Any, statement: str, size: int) -> Generator[bytearray, None, int]:
    piece = bytearray()
    with cursor.copy(statement) as copy:
        for block in copy:
            piece += block
            if len(piece) >= size:
                yield piece
                piece = bytearray()
    if piece:
        yield piece
    return int(cursor.rowcount)


def _copy_with_libpq(
    raw: Any, pgconn: Any, statement: str, size: int
) -> Generator[bytearray, None, int]:
    import psycopg
    from psycopg import pq

    get, consume = pgconn.get_copy_data, pgconn.consume_input
    with selectors.DefaultSelector() as selector:
        selector.register(pgconn.socket, selectors.EVENT_READ)
        pgconn.send_query(statement.encode(raw.info.encoding))
        result = _next_result(pgconn, selector)
        if result is None or result.status != pq.ExecStatus.COPY_OUT:
            _drain_results(pgconn, selector)
            raise _error(psycopg, raw, pgconn, result)
        finished = False
        try:
            piece = bytearray()
            filled = 0  # len(piece), without a call per message
            while True:
                nbytes, data = get(1)  # 1: never blocks
                if nbytes > 0:
                    piece += data
                    filled += nbytes
                    if filled >= size:
                        yield piece
                        piece = bytearray()
                        filled = 0
                elif nbytes == 0:  # nothing received yet
                    selector.select()
                    consume()
                else:
                    break
            finished = True
            if nbytes == -2:
                raise psycopg.OperationalError(_message(raw, pgconn))
            result = _next_result(pgconn, selector)
            _drain_results(pgconn, selector)
            if result is None or result.status != pq.ExecStatus.COMMAND_OK:
                raise _error(psycopg, raw, pgconn, result)
            if piece:
                yield piece
            return int(result.command_tuples or 0)
        finally:
            if not finished:  # the consumer stopped early: read the rest, keep the connection
                while (nbytes := get(1)[0]) >= 0:
                    if nbytes == 0:
                        selector.select()
                        consume()
                _drain_results(pgconn, selector)


def _next_result(pgconn: Any, selector: selectors.BaseSelector) -> Any:
    """``PQgetResult`` once it would not block (it would, holding the GIL, while the
    server plans and starts the query)."""
    pgconn.consume_input()
    while pgconn.is_busy():
        selector.select()
        pgconn.consume_input()
    return pgconn.get_result()


def _drain_results(pgconn: Any, selector: selectors.BaseSelector) -> None:
    while _next_result(pgconn, selector) is not None:
        pass


def _message(raw: Any, pgconn: Any) -> str:
    return bytes(pgconn.error_message or b"").decode(raw.info.encoding, "replace")


def _error(psycopg: Any, raw: Any, pgconn: Any, result: Any) -> Exception:
    if result is not None:
        try:
            return psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
        except Exception:  # an older psycopg: the message is enough
            pass
    return psycopg.DatabaseError(_message(raw, pgconn))


@contextmanager
def work_mem(alias: str, value: str | None) -> Iterator[None]:
    """PostgreSQL's ``work_mem`` set to ``value`` for the statements inside, then put back.

    ``set_config(..., false)``, not ``SET LOCAL``: inside a caller's transaction the value
    must not outlive the statement either. When a statement inside fails its transaction,
    the rollback undoes the change (PostgreSQL's settings are transactional), so putting it
    back is then left to it.
    """
    if not value:
        yield
        return
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('work_mem'), set_config('work_mem', %s, false)", [value]
        )
        previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('work_mem', %s, false)", [previous])
        except DatabaseError:  # an aborted transaction: its rollback restores work_mem
            pass
