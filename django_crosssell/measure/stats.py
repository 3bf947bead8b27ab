"""The statistics of an experiment, from scipy and statsmodels (not hand-rolled tests).

Imported only by reports, commands and tasks (and lazily by the staff dashboard), never by
the web path: ``tests/test_imports.py`` keeps it so. Every function takes plain numbers or
arrays, so each is proven on simulated data with a known answer (``tests/measure``).

* conversion rate: two-proportion z-test; the interval on the relative uplift is the
  statsmodels ratio interval (log method) minus one;
* revenue per visitor: values winsorised at the pooled 99th percentile, Welch's t-test, and
  a bootstrap percentile interval of the relative uplift;
* average order value: a ratio metric (revenue / orders over visitors), its variance by the
  delta method, the interval on the log ratio;
* attach rate: orders holding a recommended or bundled line, two-proportion again;
* sample ratio mismatch: chi-square of visitors per variant against the weights; p < 0.001
  hides the verdict;
* a verdict only with at least the minimum sample per variant and the minimum duration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

#: One arm's values: a list or a numpy array.
Values = Sequence[float] | np.ndarray

SRM_ALPHA = 0.001
WINSOR_QUANTILE = 0.99


@dataclass
class Comparison:
    metric: str
    control: float
    treatment: float
    uplift: float  # relative: treatment / control - 1
    ci_low: float
    ci_high: float
    p_value: float

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha and not (self.ci_low <= 0 <= self.ci_high)

    def as_dict(self) -> dict[str, Any]:
        return {key: _plain(value) for key, value in asdict(self).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return float(value) if isinstance(value, np.floating) else value


def _nan_comparison(metric: str, control: float, treatment: float) -> Comparison:
    nan = float("nan")
    return Comparison(metric, control, treatment, nan, nan, nan, nan)


def two_proportions(
    metric: str, successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> Comparison:
    """B against A (A the control) for a rate; the interval is on the relative uplift."""
    if min(n_a, n_b) == 0:
        return _nan_comparison(metric, float("nan"), float("nan"))
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    if successes_a == 0 or (successes_a == n_a and successes_b == n_b):
        return _nan_comparison(metric, rate_a, rate_b)
    _z, p_value = proportions_ztest([successes_b, successes_a], [n_b, n_a])
    low, high = confint_proportions_2indep(
        successes_b, n_b, successes_a, n_a, compare="ratio", method="log", alpha=alpha
    )
    return Comparison(
        metric, rate_a, rate_b, rate_b / rate_a - 1, low - 1, high - 1, float(p_value)
    )


def conversion(
    converted_a: int, n_a: int, converted_b: int, n_b: int, alpha: float = 0.05
) -> Comparison:
    return two_proportions("conversion", converted_a, n_a, converted_b, n_b, alpha)


def attach_rate(
    attached_a: int, orders_a: int, attached_b: int, orders_b: int, alpha: float = 0.05
) -> Comparison:
    return two_proportions("attach", attached_a, orders_a, attached_b, orders_b, alpha)


def winsorise(a: np.ndarray, b: np.ndarray, quantile: float = WINSOR_QUANTILE) -> tuple:
    """Both arms capped at the pooled quantile, so one huge order cannot decide."""
    pooled = np.concatenate([a, b])
    if pooled.size == 0:
        return a, b
    cap = float(np.quantile(pooled, quantile))
    return np.minimum(a, cap), np.minimum(b, cap)


def revenue_per_visitor(
    values_a: Values,
    values_b: Values,
    alpha: float = 0.05,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Welch's t-test on winsorised revenue per visitor; a bootstrap interval on the uplift."""
    a, b = winsorise(np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float))
    if a.size < 2 or b.size < 2 or a.mean() == 0:
        return _nan_comparison(
            "revenue", float(a.mean()) if a.size else 0.0, float(b.mean()) if b.size else 0.0
        )
    p_value = float(scipy_stats.ttest_ind(b, a, equal_var=False).pvalue)

    def uplift(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y, axis=axis) / np.mean(x, axis=axis) - 1

    options: dict[str, Any] = {
        "n_resamples": resamples,
        "confidence_level": 1 - alpha,
        "method": "percentile",
        "vectorized": True,
    }
    try:
        result = scipy_stats.bootstrap((a, b), uplift, rng=np.random.default_rng(seed), **options)
    except TypeError:  # SciPy before 1.15 names it random_state
        result = scipy_stats.bootstrap(
            (a, b), uplift, random_state=np.random.default_rng(seed), **options
        )
    interval = result.confidence_interval
    return Comparison(
        "revenue",
        float(a.mean()),
        float(b.mean()),
        float(b.mean() / a.mean() - 1),
        float(interval.low),
        float(interval.high),
        p_value,
    )


def _ratio_log_variance(revenue: np.ndarray, orders: np.ndarray) -> tuple[float, float]:
    """``(ratio, variance of log ratio)`` of sum(revenue)/sum(orders), by the delta method."""
    n = revenue.size
    mean_x, mean_y = revenue.mean(), orders.mean()
    ratio = mean_x / mean_y
    var_x, var_y = revenue.var(ddof=1), orders.var(ddof=1)
    cov = np.cov(revenue, orders, ddof=1)[0, 1]
    variance = (var_x - 2 * ratio * cov + ratio**2 * var_y) / (n * mean_y**2)
    return float(ratio), float(variance / ratio**2)


def average_order_value(
    revenue_a: Values,
    orders_a: Values,
    revenue_b: Values,
    orders_b: Values,
    alpha: float = 0.05,
) -> Comparison:
    """AOV as a ratio metric over visitors (their revenue and order counts), delta method."""
    xa, ya = np.asarray(revenue_a, dtype=float), np.asarray(orders_a, dtype=float)
    xb, yb = np.asarray(revenue_b, dtype=float), np.asarray(orders_b, dtype=float)
    if min(xa.size, xb.size) < 2 or ya.sum() == 0 or yb.sum() == 0:
        return _nan_comparison("aov", float("nan"), float("nan"))
    ra, va = _ratio_log_variance(xa, ya)
    rb, vb = _ratio_log_variance(xb, yb)
    if ra <= 0 or rb <= 0:
        return _nan_comparison("aov", ra, rb)
    diff = math.log(rb) - math.log(ra)
    se = math.sqrt(va + vb)
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    p_value = float(2 * scipy_stats.norm.sf(abs(diff) / se)) if se > 0 else float("nan")
    return Comparison(
        "aov",
        ra,
        rb,
        rb / ra - 1,
        math.exp(diff - z * se) - 1,
        math.exp(diff + z * se) - 1,
        p_value,
    )


@dataclass
class SampleRatio:
    observed: list[int]
    expected_shares: list[float]
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_ALPHA

    def as_dict(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "expected_shares": self.expected_shares,
            "p_value": _plain(self.p_value),
            "mismatch": self.mismatch,
        }


def sample_ratio(observed: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Chi-square goodness of fit of visitors per variant against the weights."""
    counts = np.asarray(observed, dtype=float)
    total_weight = float(sum(weights))
    shares = [float(w) / total_weight for w in weights] if total_weight > 0 else []
    if counts.sum() == 0 or not shares:
        return SampleRatio(list(map(int, observed)), shares, 1.0)
    expected = counts.sum() * np.asarray(shares)
    p_value = float(scipy_stats.chisquare(counts, expected).pvalue)
    return SampleRatio(list(map(int, observed)), shares, p_value)


def verdict(
    comparison: Comparison,
    *,
    alpha: float,
    srm: SampleRatio,
    sizes: Sequence[int],
    min_sample: int,
    days: float,
    min_days: float,
) -> str:
    """ "srm" (no verdict shown), "collecting", "better", "worse" or "no_difference"."""
    if srm.mismatch:
        return "srm"
    if min(sizes, default=0) < min_sample or days < min_days:
        return "collecting"
    if not math.isfinite(comparison.p_value):
        return "collecting"
    if comparison.significant(alpha):
        return "better" if comparison.uplift > 0 else "worse"
    return "no_difference"
