"""The statistics on simulated data with known answers: coverage, false positives, SRM."""

from __future__ import annotations

import numpy as np
import pytest

from django_crosssell.measure import stats


def covered(comparison, truth):
    return comparison.ci_low <= truth <= comparison.ci_high


def test_conversion_interval_covers_the_true_uplift_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits, wins, n, p, uplift = 0, 0, 5000, 0.1, 0.2
    for _ in range(400):
        a = rng.binomial(n, p)
        b = rng.binomial(n, p * (1 + uplift))
        result = stats.conversion(a, n, b, n)
        hits += covered(result, uplift)
        wins += result.significant(0.05)
    assert 0.92 <= hits / 400 <= 0.98
    assert wins / 400 > 0.5  # the test has power at this size


def test_conversion_false_positive_rate_at_zero_uplift():
    rng = np.random.default_rng(2)
    false = sum(
        stats.conversion(
            rng.binomial(4000, 0.05), 4000, rng.binomial(4000, 0.05), 4000
        ).significant(0.05)
        for _ in range(400)
    )
    assert false / 400 <= 0.08


def test_the_exact_numbers_of_one_comparison():
    # pooled rate 0.115, se = sqrt(0.115 * 0.885 * 2 / 1000) = 0.01427, z = 2.103
    result = stats.conversion(100, 1000, 130, 1000)
    assert (result.control, result.treatment) == (0.1, 0.13)
    assert result.uplift == pytest.approx(0.3)
    assert result.ci_low < 0.3 < result.ci_high and result.p_value == pytest.approx(
        0.0355, abs=1e-4
    )


def revenue(rng, n, conversion, scale):
    buys = rng.random(n) < conversion
    return np.where(buys, rng.lognormal(np.log(3000 * scale), 0.5, n), 0.0)


@pytest.mark.slow
def test_revenue_per_visitor_interval_and_false_positives():
    rng = np.random.default_rng(3)
    hits = false = 0
    for rep in range(60):
        a = revenue(rng, 3000, 0.1, 1.0)
        b = revenue(rng, 3000, 0.1, 1.25)
        hits += covered(stats.revenue_per_visitor(a, b, resamples=600, seed=rep), 0.25)
        c = revenue(rng, 3000, 0.1, 1.0)
        false += stats.revenue_per_visitor(a, c, resamples=200, seed=rep).significant(0.05)
    assert hits / 60 >= 0.85
    assert false / 60 <= 0.12


def test_winsorising_stops_one_whale():
    a = np.array([1000.0, 1200.0] * 50 + [0.0])
    b = np.array([1000.0, 1200.0] * 50 + [10_000_000.0])
    _capped_a, capped_b = stats.winsorise(a, b)
    assert capped_b.max() == pytest.approx(1200.0)
    assert not stats.revenue_per_visitor(a, b, resamples=200).significant(0.05)


@pytest.mark.slow
def test_aov_delta_method_covers_the_true_ratio():
    rng = np.random.default_rng(4)
    hits = 0
    for _ in range(200):
        results = []
        for mean in (3000, 3300):
            orders = rng.poisson(0.2, 4000).astype(float)
            revenue_ = np.array([rng.gamma(4, mean / 4, int(k)).sum() for k in orders])
            results.append((revenue_, orders))
        comparison = stats.average_order_value(*results[0], *results[1])
        hits += covered(comparison, 0.1)
    assert 0.9 <= hits / 200 <= 0.99


def test_attach_rate_is_a_rate_of_orders():
    result = stats.attach_rate(30, 200, 60, 200)
    assert result.uplift == pytest.approx(1.0) and result.significant(0.05)


def test_sample_ratio_mismatch():
    assert stats.sample_ratio([10_000, 10_500], [1, 1]).mismatch
    assert not stats.sample_ratio([10_000, 10_100], [1, 1]).mismatch
    assert not stats.sample_ratio([2000, 8000], [0.2, 0.8]).mismatch


def test_verdicts():
    better = stats.conversion(100, 1000, 160, 1000)
    fine = stats.sample_ratio([1000, 1000], [1, 1])
    bad = stats.sample_ratio([1000, 1300], [1, 1])
    common = {"alpha": 0.05, "sizes": [1000, 1000], "min_sample": 500, "min_days": 7}
    assert stats.verdict(better, srm=fine, days=14, **common) == "better"
    assert stats.verdict(better, srm=bad, days=14, **common) == "srm"
    assert stats.verdict(better, srm=fine, days=3, **common) == "collecting"
    flat = stats.conversion(100, 1000, 102, 1000)
    assert stats.verdict(flat, srm=fine, days=14, **common) == "no_difference"
    worse = stats.conversion(160, 1000, 100, 1000)
    assert stats.verdict(worse, srm=fine, days=14, **common) == "worse"
