"""The scorers on arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from django_crosssell.customers.scoring import (
    PRESETS,
    deciles,
    fixed_scores,
    quantile_scores,
    score,
)


def test_quintiles_of_distinct_values_are_equal_fifths():
    values = np.arange(100, dtype=float)
    scores = quantile_scores(values)
    assert [int((scores == s).sum()) for s in range(1, 6)] == [20] * 5
    assert scores[0] == 1 and scores[-1] == 5


def test_ties_share_one_score_whatever_the_order():
    values = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5], dtype=float)  # six one-order customers
    scores = quantile_scores(values)
    assert set(scores[:6]) == {1}
    shuffled = np.random.default_rng(3).permutation(len(values))
    again = quantile_scores(values[shuffled])
    assert list(again) == list(scores[shuffled])
    assert list(scores[6:]) == [4, 4, 5, 5]  # ranks 6..9 of 10


def test_recency_scores_favour_recent_customers():
    recency = np.array([1, 400, 30, 90, 200], dtype=float)
    scores = quantile_scores(recency, higher_is_better=False)
    assert scores[0] == 5 and scores[1] == 1
    assert scores[2] > scores[3] > scores[4]


def test_japanese_repeat_preset_thresholds():
    r = fixed_scores(
        np.array([0, 30, 31, 90, 180, 365, 366]), PRESETS["ja_repeat"]["r"], at_most=True
    )
    assert list(r) == [5, 5, 4, 4, 3, 2, 1]
    f = fixed_scores(
        np.array([1, 2, 3, 5, 6, 11, 12, 40]), PRESETS["ja_repeat"]["f"], at_most=False
    )
    assert list(f) == [1, 2, 3, 3, 4, 4, 5, 5]
    m = fixed_scores(
        np.array([4_999, 5_000, 20_000, 49_999, 50_000, 100_000]),
        PRESETS["ja_repeat"]["m"],
        at_most=False,
    )
    assert list(m) == [1, 2, 3, 3, 4, 5]


def test_one_off_preset_is_more_patient_than_repeat_buy():
    recency = np.array([200.0])
    frequency = np.array([5.0])
    monetary = np.array([600_000.0])
    repeat = score("ja_repeat", recency, frequency, monetary)
    one_off = score("ja_one_off", recency, frequency, monetary)
    assert (repeat.r[0], repeat.f[0]) == (2, 3)
    assert (one_off.r[0], one_off.f[0], one_off.m[0]) == (4, 5, 5)
    assert one_off.thresholds["r"][5] == 180


def test_tertiles_use_scores_one_three_five():
    values = np.arange(9, dtype=float)
    result = score("tertile", values, values, values)
    assert sorted(set(result.f)) == [1, 3, 5]
    assert list(result.r[:3]) == [5, 5, 5]  # the lowest recency is the best


def test_quantile_thresholds_are_the_lowest_value_of_each_score():
    values = np.arange(1, 11, dtype=float)
    result = score("quantile", values, values, values)
    assert result.thresholds["f"] == {1: 1.0, 2: 3.0, 3: 5.0, 4: 7.0, 5: 9.0}
    assert result.thresholds["r"][5] == 2.0  # recency: "at most" this many days


def test_deciles_are_ten_equal_groups_ordered_by_revenue_then_key():
    monetary = np.array([5.0] * 20)
    keys = np.array([f"c{i:02d}" for i in range(20)])
    result = deciles(monetary, keys)
    assert [int((result == d).sum()) for d in range(1, 11)] == [2] * 10
    assert result[0] == 1 and result[-1] == 10  # equal revenue: ordered by key
    monetary[19] = 100.0
    assert deciles(monetary, keys)[19] == 1


def test_unknown_scorer_is_an_error():
    with pytest.raises(ValueError, match="Unknown scorer"):
        score("rfm", np.zeros(1), np.zeros(1), np.zeros(1))
