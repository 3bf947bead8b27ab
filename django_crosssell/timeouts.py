"""Bounded waits for the queries of widgets and public endpoints.

A product page must not hang because a table is locked (a long ``ALTER``, a ``VACUUM
FULL``, an ``ACCESS EXCLUSIVE`` lock held by a migration) or a query turned slow: the
storefront queries run under :func:`bounded`, which on PostgreSQL sets
``statement_timeout`` and ``lock_timeout`` with ``set_config(..., true)`` (``SET LOCAL``)
inside a savepoint. The savepoint is always rolled back at the end: the block only reads,
rolling back is what undoes ``SET LOCAL`` before the host's next query (releasing it would
keep the timeouts for the rest of an ``ATOMIC_REQUESTS`` transaction), and a failed query
inside it leaves the host's transaction usable, so one widget's error does not empty the
others or break the page.

On other databases the block does nothing (SQLite has no lock waits worth bounding and its
failed statements do not poison a transaction). Blocks nest: only the outermost sets the
timeouts, so a widget that queries costs four statements more on PostgreSQL
(``SAVEPOINT``, the ``set_config``, ``ROLLBACK TO SAVEPOINT`` and ``RELEASE SAVEPOINT``)
whatever it calls inside; one that does not query costs none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .conf import app_settings

#: SQLSTATEs of a cancelled statement (57014) and a lock wait that ran out (55P03).
TIMEOUT_SQLSTATES = frozenset({"57014", "55P03"})


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is PostgreSQL cancelling a query that ran too long."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        code = getattr(current, "pgcode", None) or getattr(current, "sqlstate", None)
        if code in TIMEOUT_SQLSTATES:
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _milliseconds(value: object) -> int | None:
    if value is None:
        return None
    return max(1, int(value))  # type: ignore[call-overload]


@contextmanager
def bounded(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run read-only queries with bounded waits, isolated in a savepoint.

    Everything written inside the block is rolled back: use it around reads only. The
    savepoint opens with the block's first query, so a block that needs none (a warm or
    empty widget) costs nothing.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or getattr(connection, "_crosssell_bounded", False):
        yield  # nothing to bound, or an outer block already does (one savepoint per widget)
        return
    statement = _milliseconds(app_settings.QUERY_TIMEOUT_MS)
    lock = _milliseconds(app_settings.LOCK_TIMEOUT_MS)
    if not (statement or lock):
        yield
        return
    opener = _Opener(connection, using, f"{statement or 0}ms", f"{lock or 0}ms")
    connection._crosssell_bounded = True  # type: ignore[attr-defined]
    try:
        with connection.execute_wrapper(opener):
            yield
    except BaseException as exc:
        opener.close(exc)
        raise
    else:
        opener.close(None)
    finally:
        connection._crosssell_bounded = False  # type: ignore[attr-defined]


class _Opener:
    """Opens the savepoint and sets the timeouts just before the block's first query."""

    def __init__(self, connection: Any, using: str, statement: str, lock: str) -> None:
        self.connection = connection
        self.using = using
        self.settings = [statement, lock]
        self.depth = len(connection.savepoint_ids) if connection.in_atomic_block else -1
        self.atomic: Any = None
        self.opening = False

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.atomic is None and not self.opening and self._same_level():
            self.opening = True
            try:
                atomic = transaction.atomic(using=self.using)
                atomic.__enter__()
                self.atomic = atomic
                with self.connection.cursor() as cursor:
                    cursor.execute(SET_TIMEOUTS, self.settings)
            finally:
                self.opening = False
        return execute(sql, params, many, context)

    def _same_level(self) -> bool:
        """No atomic block opened since ``bounded()`` began (ours must nest properly)."""
        if not self.connection.in_atomic_block:
            return self.depth == -1
        return len(self.connection.savepoint_ids) == self.depth

    def close(self, exc: BaseException | None) -> None:
        if self.atomic is None:
            return
        # Always roll back: the only way to undo SET LOCAL before the host's next query.
        transaction.set_rollback(True, using=self.using)
        if exc is None:
            self.atomic.__exit__(None, None, None)
        else:
            self.atomic.__exit__(type(exc), exc, exc.__traceback__)


SET_TIMEOUTS = (
    "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)"
)


def overhead(using: str = DEFAULT_DB_ALIAS) -> int:
    """Statements :func:`bounded` adds to a block that queries (query budgets count them)."""
    bounding = app_settings.QUERY_TIMEOUT_MS or app_settings.LOCK_TIMEOUT_MS
    return 4 if connections[using].vendor == "postgresql" and bounding else 0


def is_bookkeeping(sql: str) -> bool:
    """Whether ``sql`` is one of the statements :func:`bounded` adds (tests count data
    queries without them)."""
    head = sql.lstrip().upper()
    if head in ("BEGIN", "ROLLBACK"):  # outside a transaction the block is its own one
        return True
    return head.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")) or (
        sql.startswith("SELECT set_config('statement_timeout'")
    )
