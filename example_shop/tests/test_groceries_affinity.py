"""Groceries loaded into the example shop: stored pair metrics equal mlxtend's pair rules.

This is the end-to-end oracle of the affinity engine: the real file goes through
``load_baskets`` into orders, through the configured order source and the engine into
``ProductAffinity`` rows, and those rows must be mlxtend's ``fpgrowth`` +
``association_rules`` pair rules exactly (counts exact, ratios within 1e-9).
"""

from __future__ import annotations

import pandas as pd
import pytest
from django.core.management import call_command

from django_crosssell.models import AffinityRun, ProductAffinity
from django_crosssell.recompute import run_recompute
from example_shop.shop.management.commands.load_baskets import read_baskets
from tests.reference import GROCERIES, mlxtend_pair_rules

ORDERS = 9835


@pytest.fixture(scope="module")
def baskets():
    if not GROCERIES.is_file():
        pytest.skip(f"{GROCERIES} is absent (it ships in the project's shared data only)")
    return read_baskets(GROCERIES)


@pytest.fixture(scope="module")
def mlxtend_rules(baskets):
    return mlxtend_pair_rules(baskets, min_support=0.001, min_confidence=0.0)


@pytest.fixture
def stored(db, baskets):
    call_command("load_baskets", str(GROCERIES), verbosity=0)
    # Unweighted orders: the score is then the confidence itself (checked below).
    run = run_recompute(
        min_co_count=1, top_k=0, lookback_days=0, metric="confidence", order_weighting="none"
    )
    rows = ProductAffinity.objects.filter(run=run).values_list(
        "source__name", "target__name", "co_count", "support", "confidence", "lift", "score"
    )
    frame = pd.DataFrame(
        list(rows),
        columns=["source", "target", "co_count", "support", "confidence", "lift", "score"],
    )
    return run, frame


@pytest.mark.slow
def test_stored_pairs_equal_mlxtend_pair_rules(stored, mlxtend_rules):
    run, frame = stored
    assert run.status == AffinityRun.Status.SUCCEEDED and run.is_current
    assert (run.orders_read, run.lines_read, run.products) == (ORDERS, 43367, 169)
    # The published figures: 150 pair rules at 0.006/0.25, 11 at 0.001/0.5.
    for min_support, min_confidence, expected in [(0.006, 0.25, 150), (0.001, 0.5, 11)]:
        ours = frame[(frame.support >= min_support) & (frame.confidence >= min_confidence)]
        theirs = mlxtend_rules[
            (mlxtend_rules.support >= min_support) & (mlxtend_rules.confidence >= min_confidence)
        ]
        assert len(ours) == len(theirs) == expected
        merged = theirs.merge(ours, on=["source", "target"], suffixes=("_ml", ""), validate="1:1")
        assert len(merged) == expected
        assert (merged.co_count == (merged.support_ml * ORDERS).round().astype(int)).all()
        for column in ("support", "confidence", "lift"):
            assert (merged[column] - merged[f"{column}_ml"]).abs().max() <= 1e-9, column
        assert (merged.score == merged.confidence).all()
    # Every pair mlxtend finds at support >= 0.001 is stored with the same numbers.
    everything = mlxtend_rules.merge(
        frame, on=["source", "target"], suffixes=("_ml", ""), validate="1:1"
    )
    assert len(everything) == len(mlxtend_rules)
    assert (everything.lift - everything.lift_ml).abs().max() <= 1e-9


@pytest.mark.slow
def test_default_settings_rank_partners_by_cosine(stored):
    run = run_recompute()  # the shipped defaults: cosine, min_co_count 2, top 50
    top = ProductAffinity.objects.filter(run=run, source__name="whole milk").order_by("-score")
    assert top.count() == 50
    scores = list(top.values_list("score", flat=True))
    assert scores == sorted(scores, reverse=True)
    assert top.first().target.name == "other vegetables"
    assert all(row.co_count >= 2 for row in top)
