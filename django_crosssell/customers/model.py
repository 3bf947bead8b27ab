"""The customer model: item-to-item weights learned from who bought what (numpy; snapshot only).

EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): with ``X``
the binary customer x product matrix, ``G = XᵀX + λI`` and ``P = G⁻¹``, the weights are
``B = -P / diag(P)`` with a zero diagonal, and a customer's scores are ``x·B``. It is one
matrix inversion, has one parameter (``λ``), needs no sampling or iterations, and on a time
split of the Online Retail file it beat bestsellers, the affinity engine's partners and
implicit's ALS (``benchmarks/personal.py``; figures in ``benchmarks/RESULTS.md``).

The inversion is dense, so only the ``max_items`` products bought by most customers take
part (5,000 products: a 200 MB matrix and seconds of work); each source keeps its ``top_k``
strongest positive weights, which is what the storefront query reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

DEFAULT_L2 = 200.0
DEFAULT_TOP_K = 50
DEFAULT_MAX_ITEMS = 5_000


@dataclass(frozen=True)
class ItemWeights:
    """Top-K weights per source as parallel arrays of item codes (the caller's indices)."""

    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.source)


def fit_item_weights(
    customers: np.ndarray,
    items: np.ndarray,
    *,
    l2: float = DEFAULT_L2,
    top_k: int = DEFAULT_TOP_K,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> ItemWeights:
    """Weights from ``(customer code, item code)`` purchase pairs (codes are 0..n-1 ints)."""
    empty = ItemWeights(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    if len(customers) == 0:
        return empty
    pairs = np.unique(np.stack([customers.astype(np.int64), items.astype(np.int64)]), axis=1)
    buyers = np.bincount(pairs[1])
    # The most bought items (ties by code, so the choice does not depend on read order).
    kept = np.lexsort((np.arange(len(buyers)), -buyers))[:max_items]
    kept = kept[buyers[kept] > 0]
    if len(kept) < 2:
        return empty
    column = np.full(len(buyers), -1, dtype=np.int64)
    column[kept] = np.arange(len(kept))
    mask = column[pairs[1]] >= 0
    rows, cols = pairs[0][mask], column[pairs[1][mask]]
    x = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float64), (rows, cols)),
        shape=(int(pairs[0].max()) + 1, len(kept)),
    )
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[np.newaxis, :]
    np.fill_diagonal(weights, 0.0)
    k = min(top_k, len(kept) - 1)
    top = np.argpartition(-weights, k - 1, axis=1)[:, :k]
    source = np.repeat(np.arange(len(kept)), k)
    target = top.ravel()
    values = weights[source, target]
    positive = values > 0
    return ItemWeights(kept[source[positive]], kept[target[positive]], values[positive])
