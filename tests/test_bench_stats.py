"""The benchmark's statistics against scipy.stats on known samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nearkit.bench.stats import mcnemar, median_ci, percentiles, speedup_ci, t_interval

SAMPLE = [12.1, 11.8, 12.6, 12.0, 13.1, 11.9, 12.4]


def test_t_interval_matches_scipy():
    ci = t_interval(SAMPLE, confidence=0.95)
    low, high = stats.t.interval(0.95, df=len(SAMPLE) - 1, loc=np.mean(SAMPLE),
                                 scale=stats.sem(SAMPLE))
    assert ci["mean"] == pytest.approx(np.mean(SAMPLE))
    assert (ci["low"], ci["high"]) == pytest.approx((low, high))
    assert ci["n"] == len(SAMPLE)


def test_t_interval_known_value_and_edge_cases():
    ci = t_interval([1.0, 2.0, 3.0])
    # mean 2, sem 1/sqrt(3), t(0.975, 2) = 4.302653
    assert ci["low"] == pytest.approx(2 - 4.302653 / np.sqrt(3), rel=1e-6)
    single = t_interval([5.0])
    assert single["mean"] == 5.0 and np.isnan(single["low"]) and np.isnan(single["high"])
    constant = t_interval([2.0, 2.0, 2.0])
    assert constant["low"] == constant["high"] == 2.0


def test_median_ci_is_scipy_bootstrap_with_the_same_seed():
    ci = median_ci(SAMPLE, n_resamples=3000, seed=7)
    ref = stats.bootstrap((np.asarray(SAMPLE),), np.median, n_resamples=3000,
                          method="percentile", rng=np.random.default_rng(7))
    assert ci["median"] == np.median(SAMPLE)
    assert ci["low"] == pytest.approx(ref.confidence_interval.low)
    assert ci["high"] == pytest.approx(ref.confidence_interval.high)
    assert ci["low"] <= ci["median"] <= ci["high"]


def test_median_ci_is_reproducible():
    assert median_ci(SAMPLE) == median_ci(SAMPLE)


def test_speedup_of_a_constant_ratio_is_exact():
    engine = [[1.0, 1.1], [0.9, 1.2], [1.3, 1.0]]
    baseline = [[3 * t for t in repeat] for repeat in engine]
    res = speedup_ci(baseline, engine)
    # resampling pairs iterations per engine independently, so only the point is exact
    assert res["ratio"] == pytest.approx(3.0)
    assert res["low"] <= 3.0 <= res["high"]
    one_each = speedup_ci([[3.0], [6.0], [4.5]], [[1.0], [2.0], [1.5]])
    assert one_each["ratio"] == pytest.approx(3.0)
    assert one_each["low"] == pytest.approx(3.0) and one_each["high"] == pytest.approx(3.0)


def test_speedup_matches_scipy_paired_bootstrap_with_one_iteration_per_repeat():
    rng = np.random.default_rng(3)
    engine = rng.lognormal(0.0, 0.2, size=30)
    baseline = 2.5 * engine * rng.lognormal(0.0, 0.1, size=30)
    ours = speedup_ci([[b] for b in baseline], [[e] for e in engine], n_resamples=20000)

    def ratio(b, e, axis=-1):
        return np.mean(b, axis=axis) / np.mean(e, axis=axis)

    ref = stats.bootstrap((baseline, engine), ratio, paired=True, vectorized=True,
                          n_resamples=20000, method="percentile",
                          rng=np.random.default_rng(0)).confidence_interval
    assert ours["ratio"] == pytest.approx(baseline.mean() / engine.mean())
    assert ours["low"] == pytest.approx(ref.low, rel=0.01)
    assert ours["high"] == pytest.approx(ref.high, rel=0.01)


def test_speedup_rejects_unpaired_samples():
    with pytest.raises(ValueError, match="repeats"):
        speedup_ci([[1.0]], [[1.0], [2.0]])


def test_mcnemar_matches_binomtest_and_the_textbook_chi2():
    # Wikipedia's example: b = 121, c = 59; corrected chi2 = (|121 - 59| - 1)^2 / 180
    a = np.array([True] * 101 + [True] * 121 + [False] * 59 + [False] * 33)
    b = np.array([True] * 101 + [False] * 121 + [True] * 59 + [False] * 33)
    res = mcnemar(a, b)
    assert (res["b"], res["c"]) == (121, 59)
    assert res["chi2"] == pytest.approx(61**2 / 180)
    assert res["p_value_chi2"] == pytest.approx(stats.chi2.sf(61**2 / 180, df=1))
    assert res["p_value"] == pytest.approx(stats.binomtest(121, 180, 0.5).pvalue)
    assert res["p_value"] < 1e-4


def test_mcnemar_without_discordant_pairs():
    res = mcnemar([True, False], [True, False])
    assert res["p_value"] == 1.0 and res["b"] == res["c"] == 0


def test_percentiles_are_numpy_linear():
    values = np.arange(101.0)
    assert percentiles(values) == [50.0, 99.0]
    empty = percentiles([])
    assert len(empty) == 2 and all(np.isnan(empty))
