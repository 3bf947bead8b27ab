"""Content neighbours for a run's products without co-purchase partners (cold start).

A product bought with nothing else often enough (``MIN_CO_COUNT``) gets no computed
partners, and a new product gets no orders at all: until now both showed bestsellers only.
After the pairs are written, :func:`write_similar` compares every such product's name
with the catalogue's (:mod:`.similarity`) and stores its best matches with the run
(:class:`~.models.ProductSimilarity`); the storefront shows them after staff links and
partners, with the reason "Similar products".

Imports numpy through :mod:`.similarity`: only the recompute uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from . import similarity
from .adapter import get_adapter
from .conf import app_settings
from .models import AffinityRun, ProductSimilarity
from .writer import copy_rows

#: ``(source keys, target keys, scores)``
Similar = tuple[list[Any], list[Any], list[float]]


def content_rows() -> list[tuple[Any, str, Any]]:
    """The catalogue's ``(pk, text, category)`` rows (the one query the neighbours need)."""
    return list(get_adapter().content_texts())


def compute_similar(
    partnered: Iterable[Any], rows: list[tuple[Any, str, Any]] | None = None
) -> Similar:
    """(source keys, target keys, scores) for catalogue products not in ``partnered``.

    ``rows`` are :func:`content_rows`, read here when not given; given, this touches no
    database, so the recompute runs it in a thread while the pairs' COPY finishes.
    """
    rows = content_rows() if rows is None else rows
    if len(rows) < 2:
        return [], [], []
    keys = [row[0] for row in rows]
    texts = [row[1] for row in rows]
    categories = [row[2] for row in rows]
    has_partner = set(partnered)
    cold = np.asarray([i for i, key in enumerate(keys) if key not in has_partner], np.int64)
    mode = app_settings.SIMILAR_CATEGORY if app_settings.CATEGORY_FIELD else None
    found = similarity.neighbours(
        texts,
        cold,
        categories=categories if mode else None,
        category_mode=mode,
        top_k=int(app_settings.SIMILAR_TOP_K),
        min_score=float(app_settings.SIMILAR_MIN_SCORE),
    )
    return (
        [keys[i] for i in found.source.tolist()],
        [keys[i] for i in found.target.tolist()],
        found.score.tolist(),
    )


def write_similar(
    run: AffinityRun, partnered: Iterable[Any] = (), *, found: Similar | None = None
) -> int:
    """Store the content neighbours of the run's products without partners; rows written.

    ``found`` is what :func:`compute_similar` returned, when it was computed already.
    """
    sources, targets, scores = compute_similar(partnered) if found is None else found
    if not sources:
        return 0
    rows = [(run.pk, *row) for row in zip(sources, targets, scores, strict=True)]
    copy_rows(ProductSimilarity, ("run", "source", "target", "score"), rows)
    return len(rows)
