"""The Groceries reference data set and mlxtend as the oracle, shared by tests and benchmarks.

The file ships only in the project's ``../shared/data`` (beside the repository); callers that
need it skip (tests) or report it missing (benchmarks) when it is absent.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

GROCERIES = Path(__file__).resolve().parents[2] / "shared" / "data" / "groceries.csv"


def read_groceries() -> list[list[str]] | None:
    """One list of item names per basket (stripped, blanks dropped), or None when absent."""
    if not GROCERIES.is_file():
        return None
    with GROCERIES.open(newline="") as handle:
        return [[item.strip() for item in row if item.strip()] for row in csv.reader(handle)]


def mlxtend_pair_rules(
    baskets: list[list[str]], min_support: float, min_confidence: float
) -> pd.DataFrame:
    """Pair rules (one item -> one item) from mlxtend's fpgrowth + association_rules."""
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    encoder = TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)
    itemsets = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=2)
    rules = association_rules(itemsets, metric="confidence", min_threshold=min_confidence)
    rules = rules[(rules.antecedents.map(len) == 1) & (rules.consequents.map(len) == 1)]
    return pd.DataFrame(
        {
            "source": rules.antecedents.map(lambda s: next(iter(s))),
            "target": rules.consequents.map(lambda s: next(iter(s))),
            "support": rules.support.to_numpy(),
            "confidence": rules.confidence.to_numpy(),
            "lift": rules.lift.to_numpy(),
        }
    )
