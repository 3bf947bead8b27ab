"""Deterministic assignment: GrowthBook's FNV-1a hashing (v1 and v2) and bucket ranges.

A documented algorithm rather than our own, so an assignment can be reproduced anywhere
(and checked against GrowthBook's published test vectors in ``tests/measure``):

* ``hash(seed, value, 2)`` = ``fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000``;
* a variant owns ``[start, start + coverage * weight)`` of ``[0, 1)``, the ranges laid out
  by cumulative weight, so lowering coverage never moves a unit to another variant.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def fnv1a32(text: str) -> int:
    value = FNV_OFFSET
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * FNV_PRIME) & 0xFFFFFFFF
    return value


def gb_hash(seed: str, value: str, version: int = 2) -> float | None:
    """GrowthBook's ``hash()``: a number in [0, 1); None for an unknown version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's ``getBucketRanges()``: bad weights fall back to equal ones."""
    coverage = min(max(coverage, 0.0), 1.0)
    equal = [1.0 / count] * count if count else []
    chosen = list(weights) if weights else equal
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal
    ranges = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding ``n``, or -1 (outside the coverage)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def normalised(weights: Sequence[float]) -> list[float]:
    """Admin weights (any positive numbers) as shares summing to 1."""
    total = float(sum(weights))
    if total <= 0:
        return [1.0 / len(weights)] * len(weights) if weights else []
    return [float(weight) / total for weight in weights]
