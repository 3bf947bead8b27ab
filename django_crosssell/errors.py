"""The errors a recompute reports to its caller (no numpy: the API and the checks use them)."""

from __future__ import annotations


class RecomputeError(Exception):
    """Base class of the errors a recompute reports to its caller."""


class RecomputeParameterError(RecomputeError, ValueError):
    """A parameter is out of range; the message says which and why.

    ``field`` names the parameter, so the REST API can answer with that field's error.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RecomputeLocked(RecomputeError):
    """Another recompute holds the lock; nothing was read or written."""


class RecomputeRefused(RecomputeError):
    """The recompute read far fewer orders than the current run; the current run stays.

    Raised before anything is written, so the current run and its rows are untouched;
    ``allow_shrink=True`` lets a deliberate shrink (a shorter window, a new filter) through.
    """


class OrderSourceError(RecomputeError):
    """The order lines cannot be used as configured; the message names the fix."""
