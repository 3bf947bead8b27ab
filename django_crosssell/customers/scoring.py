"""R, F and M scores (1-5) and deciles from per-customer arrays (numpy; snapshot path only).

Scorers:

* ``quantile``: quintiles of this shop's customers. Ties are never split: customers with
  the same value get the same score whatever order they were read in (a fifth of the
  customers may well have exactly one order, and two one-order customers with different F
  scores could not be explained to staff). A value's score is ``1 + floor(5 * below / n)``
  where ``below`` counts the customers strictly worse, so a large tie sits in one score
  and the scores above it stay free.
* ``ja_repeat`` / ``ja_one_off``: fixed thresholds as Japanese EC practice sets them, for
  repeat-buy shops (R5 within 30 days ... R1 at 366 days or more; F5 from 12 orders) and for
  one-off-purchase shops (furniture, appliances: R5 within 180 days; F5 from 5 orders); M in
  yen bands. They do not move with the customer base, so a score means the same every month.
* ``tertile``: three groups for small shops, scored 1, 3 and 5 so the 5 x 5 segment map
  still applies.

Every scorer also returns its thresholds (the lowest value of each score), which the admin
shows next to a customer's scores. Deciles (デシル) split customers into ten equal groups by
revenue, decile 1 the top tenth; equal revenue is ordered by the customer key, so a decile
never depends on read order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCORERS = ("quantile", "ja_repeat", "ja_one_off", "tertile")

#: Fixed presets: per metric, the bounds of scores 5, 4, 3, 2 (score 1 is everything else).
#: Recency bounds are "at most this many days", frequency and monetary "at least".
PRESETS: dict[str, dict[str, tuple[float, ...]]] = {
    "ja_repeat": {
        "r": (30, 90, 180, 365),
        "f": (12, 6, 3, 2),
        "m": (100_000, 50_000, 20_000, 5_000),
    },
    "ja_one_off": {
        "r": (180, 365, 730, 1095),
        "f": (5, 4, 3, 2),
        "m": (500_000, 200_000, 100_000, 30_000),
    },
}


@dataclass(frozen=True)
class Scores:
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    #: ``{"r": {score: bound}, ...}``: recency "at most" days, f and m "at least".
    thresholds: dict[str, dict[int, float]]


def quantile_scores(
    values: np.ndarray, groups: int = 5, *, higher_is_better: bool = True
) -> np.ndarray:
    """Scores 1..``groups`` by rank, ties sharing the score of their lowest rank."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    keyed = values if higher_is_better else -values
    ordered = np.sort(keyed, kind="stable")
    below = np.searchsorted(ordered, keyed, side="left")  # customers strictly worse
    return (1 + (groups * below) // n).astype(np.int8)


def _bounds(values: np.ndarray, scores: np.ndarray, *, higher_is_better: bool) -> dict[int, float]:
    bounds: dict[int, float] = {}
    for score in np.unique(scores):
        members = values[scores == score]
        bounds[int(score)] = float(members.min() if higher_is_better else members.max())
    return bounds


def fixed_scores(values: np.ndarray, bounds: tuple[float, ...], *, at_most: bool) -> np.ndarray:
    scores = np.ones(len(values), dtype=np.int8)
    # From the loosest bound (score 2) to the tightest (score 5): the last match wins.
    for score, bound in zip((5, 4, 3, 2)[::-1], bounds[::-1], strict=True):
        hit = values <= bound if at_most else values >= bound
        scores[hit] = score
    return scores


def score(scorer: str, recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> Scores:
    """The R, F and M scores of every customer under ``scorer``."""
    if scorer in PRESETS:
        preset = PRESETS[scorer]
        thresholds = {
            "r": dict(zip((5, 4, 3, 2), preset["r"], strict=True)),
            "f": dict(zip((5, 4, 3, 2), preset["f"], strict=True)),
            "m": dict(zip((5, 4, 3, 2), preset["m"], strict=True)),
        }
        return Scores(
            fixed_scores(recency, preset["r"], at_most=True),
            fixed_scores(frequency, preset["f"], at_most=False),
            fixed_scores(monetary, preset["m"], at_most=False),
            thresholds,
        )
    if scorer == "quantile":
        groups, spread = 5, _identity
    elif scorer == "tertile":
        groups, spread = 3, _tertile_to_five
    else:
        raise ValueError(f"Unknown scorer {scorer!r}; use one of {', '.join(SCORERS)}.")
    r = spread(quantile_scores(recency, groups, higher_is_better=False))
    f = spread(quantile_scores(frequency, groups))
    m = spread(quantile_scores(monetary, groups))
    return Scores(
        r,
        f,
        m,
        {
            "r": _bounds(recency, r, higher_is_better=False),
            "f": _bounds(frequency, f, higher_is_better=True),
            "m": _bounds(monetary, m, higher_is_better=True),
        },
    )


def _identity(scores: np.ndarray) -> np.ndarray:
    return scores


def _tertile_to_five(scores: np.ndarray) -> np.ndarray:
    return (2 * scores - 1).astype(np.int8)


def deciles(monetary: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Decile 1 (top revenue) to 10, ten equal groups; equal revenue ordered by key."""
    n = len(monetary)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    order = np.lexsort((keys, -monetary))  # by revenue descending, then key ascending
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return (1 + (10 * rank) // n).astype(np.int8)


def segment_grid(segments: list[Any]) -> np.ndarray:
    """A 6 x 6 lookup (index r, f in 1..5) of segment primary keys, 0 where none covers."""
    grid = np.zeros((6, 6), dtype=np.int64)
    for segment in reversed(segments):  # the first segment (lowest position) wins
        grid[segment.r_min : segment.r_max + 1, segment.f_min : segment.f_max + 1] = segment.pk
    return grid
