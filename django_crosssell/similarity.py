"""Content neighbours for products too new to have co-purchases (cold start).

Pure numpy/scipy, no Django: texts in, neighbours out; :mod:`.recompute` stores them with
the run (:class:`~.models.ProductSimilarity`) and the storefront shows them after staff
links and co-purchase partners, as "Similar products".

Why character n-grams and not words: Japanese product names have no spaces between words
(「オックスフォードシャツ綿白」), so a word tokenizer would need a morphological analyser
(MeCab and a dictionary) as a dependency; overlapping 2- and 3-character pieces match
「シャツ」 inside any name without one, and work the same for English names. Why scipy and
not scikit-learn's ``TfidfVectorizer``: the engine already depends on scipy, the whole
vectoriser is twenty lines of sparse-matrix code, and scikit-learn would add a large
dependency to every shop for them.

Before the n-grams, a name is NFKC-normalised (full-width 「ＡＢＣ１２３」 and
half-width katakana become the same characters as their ordinary forms) and lower-cased,
and numbers with their units (「500ml」, 「3個入」, 「2.5kg」, 「x2」) are stripped: two sizes of
the same tea are similar, while every "500ml" product is not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

#: Units stripped with the number before them (after NFKC and lower-casing).
UNITS = (
    "kg|mg|g|ml|l|cl|cm|mm|m|oz|lb|inch|in|pcs|pc|pack|packs|枚|個|本|袋|箱|入り|入|組|足|"
    "缶|瓶|包|粒|錠|食|杯|人前|ヶ月|か月|日分|回分|w|mah|gb|tb|%"
)
NUMBER_WITH_UNIT = re.compile(
    rf"(?:x|×)?\d+(?:[.,]\d+)?\s*(?:(?:{UNITS})(?![a-z]))*(?:\s*(?:x|×)\s*\d+)?"
)
SEPARATORS = re.compile(r"[\s\-_/・,.、。()\[\]（）「」【】]+")

DEFAULT_NGRAMS = (2, 3)
DEFAULT_TOP_K = 10
DEFAULT_MIN_SCORE = 0.1
#: Same-category neighbours' scores are multiplied by this (``"boost"`` mode).
DEFAULT_CATEGORY_BOOST = 1.5
#: Cold products compared with the whole catalogue at a time (bounds memory).
BLOCK_ROWS = 1_000
#: n-grams in more than this share of the names (and more than ``MAX_DF_FLOOR`` names) are
#: left out, as scikit-learn's ``max_df`` does: pieces such as "ing" or 「ット」 say little
#: about a product, and they made the similarity of 20,000 names a dense 20,000 x 20,000
#: product (three minutes; 3,390 real names went from 11.2M to about 0.4M candidate pairs).
MAX_DF = 0.02
MAX_DF_FLOOR = 30


def normalise(text: str) -> str:
    """NFKC, lower case, numbers and their units stripped, separators collapsed."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = NUMBER_WITH_UNIT.sub(" ", text)
    return SEPARATORS.sub(" ", text).strip()


def ngrams(text: str, sizes: Sequence[int] = DEFAULT_NGRAMS) -> list[str]:
    """Character n-grams of each word (words are padded with a space on each side)."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for n in sizes:
            grams.extend(padded[i : i + n] for i in range(max(len(padded) - n + 1, 1)))
    return grams


def tfidf(
    texts: Sequence[str],
    sizes: Sequence[int] = DEFAULT_NGRAMS,
    max_df: float | None = MAX_DF,
) -> sparse.csr_matrix:
    """Rows of L2-normalised TF-IDF weights of the texts' n-grams (smooth idf, as usual).

    n-grams in more than ``max(max_df * texts, MAX_DF_FLOOR)`` texts are dropped first.
    """
    vocabulary: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for text in texts:
        grams = ngrams(normalise(text), sizes)
        indices.extend(vocabulary.setdefault(g, len(vocabulary)) for g in grams)
        indptr.append(len(indices))
    n_docs = len(texts)
    matrix = sparse.csr_matrix(
        (np.ones(len(indices)), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(n_docs, len(vocabulary)),
    )
    matrix.sum_duplicates()  # term frequencies
    document_frequency = np.bincount(matrix.indices, minlength=len(vocabulary))
    if max_df is not None:
        common = document_frequency > max(max_df * n_docs, MAX_DF_FLOOR)
        if common.any():
            matrix.data[common[matrix.indices]] = 0
            matrix.eliminate_zeros()
    idf = np.log((1 + n_docs) / (1 + document_frequency)) + 1.0
    matrix.data *= idf[matrix.indices]
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


@dataclass
class Neighbours:
    """Parallel arrays: ``source`` and ``target`` index the texts given, best first."""

    source: np.ndarray
    target: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.source)


def neighbours(
    texts: Sequence[str],
    sources: np.ndarray,
    *,
    categories: Sequence[Any] | None = None,
    category_mode: str | None = "boost",
    category_boost: float = DEFAULT_CATEGORY_BOOST,
    top_k: int = DEFAULT_TOP_K,
    min_score: float = DEFAULT_MIN_SCORE,
) -> Neighbours:
    """The ``top_k`` most similar texts of each text in ``sources`` (indices into ``texts``).

    Cosine similarity of the TF-IDF rows; a text is never its own neighbour; pairs under
    ``min_score`` (before the category boost) are dropped. With ``categories`` (one per
    text, None for none), ``category_mode="restrict"`` keeps same-category neighbours only
    and ``"boost"`` multiplies their score by ``category_boost`` (so a same-category
    product wins a near tie, not a clearly better match elsewhere). Ties go to the lower
    index.
    """
    sources = np.asarray(sources, dtype=np.int64)
    empty = Neighbours(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if not len(sources) or len(texts) < 2:
        return empty
    matrix = tfidf(texts)
    codes = None
    if categories is not None and category_mode is not None:
        values = np.asarray([str(c) if c is not None else "" for c in categories], dtype=object)
        codes = np.unique(values, return_inverse=True)[1]
        codes[values == ""] = -1
    parts: list[Neighbours] = []
    transposed = matrix.T.tocsr()
    for first in range(0, len(sources), BLOCK_ROWS):
        block_sources = sources[first : first + BLOCK_ROWS]
        block = (matrix[block_sources] @ transposed).tocoo()
        rows = block_sources[block.row]
        cols = block.col.astype(np.int64)
        score = block.data
        keep = (cols != rows) & (score >= min_score)
        rows, cols, score, local = rows[keep], cols[keep], score[keep], block.row[keep]
        if codes is not None:
            same = (codes[rows] == codes[cols]) & (codes[rows] >= 0)
            if category_mode == "restrict":
                rows, cols, score, local = rows[same], cols[same], score[same], local[same]
            else:
                score = np.where(same, score * category_boost, score)
        order = np.lexsort((cols, -score, local))
        local_sorted = local[order]
        rank = np.arange(len(order)) - np.searchsorted(local_sorted, local_sorted, side="left")
        order = order[rank < top_k]
        parts.append(Neighbours(rows[order], cols[order], score[order]))
    if not parts:
        return empty
    return Neighbours(
        np.concatenate([p.source for p in parts]),
        np.concatenate([p.target for p in parts]),
        np.concatenate([p.score for p in parts]),
    )
