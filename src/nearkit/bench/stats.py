"""Statistics of the study: confidence intervals, speed-up ratios and McNemar's test.

- Mean: Student t-interval, ``scipy.stats.t.interval`` with the standard error of the mean.
- Median: percentile bootstrap, ``scipy.stats.bootstrap`` (seeded, so a report rebuilt from
  ``results.json`` is identical).
- Speed-up: ratio of mean times, baseline over engine, with a two-level *paired* bootstrap
  after Kalibera and Jones ("Rigorous benchmarking in reasonable time", ISMM 2013): repeats
  (splits) are resampled jointly for both engines, then the timed iterations inside each
  chosen repeat are resampled per engine; percentile interval.  A repeat is the unit of
  pairing because both engines ran on the same split, interleaved.
- McNemar: exact two-sided binomial test on the discordant pairs
  (``scipy.stats.binomtest(b, b + c, 0.5)``); the chi-squared statistic with continuity
  correction is reported beside it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 20240613


def t_interval(values, confidence=CONFIDENCE):
    """Mean and its Student t confidence interval.

    Parameters
    ----------
    values : array-like of float
        Independent samples.
    confidence : float, default=0.95
        Confidence level.

    Returns
    -------
    dict
        ``mean``, ``low``, ``high`` (NaN with fewer than two samples) and ``n``.

    Examples
    --------
    >>> ci = t_interval([1.0, 2.0, 3.0])
    >>> round(ci["mean"], 3), round(ci["low"], 3), round(ci["high"], 3)
    (2.0, -0.484, 4.484)
    """
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean()) if x.size else float("nan")
    if x.size < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": int(x.size)}
    sem = stats.sem(x)
    if sem == 0:
        return {"mean": mean, "low": mean, "high": mean, "n": int(x.size)}
    low, high = stats.t.interval(confidence, df=x.size - 1, loc=mean, scale=sem)
    return {"mean": mean, "low": float(low), "high": float(high), "n": int(x.size)}


def median_ci(values, confidence=CONFIDENCE, n_resamples=N_RESAMPLES, seed=SEED):
    """Median and its percentile-bootstrap confidence interval (``scipy.stats.bootstrap``).

    Parameters
    ----------
    values : array-like of float
        Samples.
    confidence : float, default=0.95
        Confidence level.
    n_resamples : int, default=2000
        Bootstrap resamples.
    seed : int
        Seed of the resampling, so the interval is reproducible.

    Returns
    -------
    dict
        ``median``, ``low``, ``high`` (NaN with fewer than two samples) and ``n``.
    """
    x = np.asarray(values, dtype=np.float64)
    median = float(np.median(x)) if x.size else float("nan")
    if x.size < 2:
        return {"median": median, "low": float("nan"), "high": float("nan"), "n": int(x.size)}
    if np.all(x == x[0]):
        return {"median": median, "low": median, "high": median, "n": int(x.size)}
    res = stats.bootstrap(
        (x,), np.median, confidence_level=confidence, n_resamples=n_resamples,
        method="percentile", rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return {"median": median, "low": float(ci.low), "high": float(ci.high), "n": int(x.size)}


def _resampled_repeat_means(samples, n_resamples, rng):
    """(n_repeats, n_resamples) means of each repeat's iterations, resampled with replacement."""
    out = np.empty((len(samples), n_resamples))
    for r, values in enumerate(samples):
        values = np.asarray(values, dtype=np.float64)
        picks = rng.integers(0, values.size, size=(n_resamples, values.size))
        out[r] = values[picks].mean(axis=1)
    return out


def speedup_ci(baseline, engine, confidence=CONFIDENCE, n_resamples=N_RESAMPLES, seed=SEED):
    """How many times faster ``engine`` is than ``baseline``, with a paired bootstrap CI.

    Parameters
    ----------
    baseline, engine : sequence of sequences of float
        Times per repeat: ``baseline[r]`` holds the timed iterations of repeat ``r``; the two
        are paired by repeat (same split, interleaved runs).
    confidence : float, default=0.95
        Confidence level.
    n_resamples : int, default=2000
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``ratio`` (mean baseline time / mean engine time; above 1 means the engine is
        faster), ``low``, ``high`` and ``n_repeats``.
    """
    if len(baseline) != len(engine):
        raise ValueError(f"{len(baseline)} baseline repeats but {len(engine)} engine repeats")
    base = [np.asarray(v, dtype=np.float64) for v in baseline]
    eng = [np.asarray(v, dtype=np.float64) for v in engine]
    n_repeats = len(base)
    if n_repeats == 0:
        return {"ratio": float("nan"), "low": float("nan"), "high": float("nan"), "n_repeats": 0}
    ratio = float(np.mean([v.mean() for v in base]) / np.mean([v.mean() for v in eng]))
    if sum(v.size for v in base) < 2 or sum(v.size for v in eng) < 2:
        return {"ratio": ratio, "low": float("nan"), "high": float("nan"), "n_repeats": n_repeats}
    rng = np.random.default_rng(seed)
    base_means = _resampled_repeat_means(base, n_resamples, rng)
    eng_means = _resampled_repeat_means(eng, n_resamples, rng)
    repeats = rng.integers(0, n_repeats, size=(n_resamples, n_repeats))
    columns = np.arange(n_resamples)[:, None]
    ratios = base_means[repeats, columns].mean(axis=1) / eng_means[repeats, columns].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.percentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {"ratio": ratio, "low": float(low), "high": float(high), "n_repeats": n_repeats}


def mcnemar(correct_a, correct_b):
    """McNemar's test of two classifiers' accuracy on the same queries.

    Parameters
    ----------
    correct_a, correct_b : array-like of bool
        Whether each classifier got each query right (same queries, same order).

    Returns
    -------
    dict
        ``b`` (A right, B wrong), ``c`` (A wrong, B right), ``p_value`` (exact two-sided
        binomial test, 1 when there is no discordant pair), ``chi2`` and ``p_value_chi2``
        (chi-squared with continuity correction, NaN without discordant pairs).

    Examples
    --------
    >>> res = mcnemar([True, True, False, True], [True, False, False, True])
    >>> res["b"], res["c"], res["p_value"]
    (1, 0, 1.0)
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} and {b_.shape}")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    if b + c == 0:
        return {"b": 0, "c": 0, "p_value": 1.0, "chi2": float("nan"), "p_value_chi2": float("nan")}
    p_exact = float(stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    chi2 = (abs(b - c) - 1.0) ** 2 / (b + c)
    return {
        "b": b, "c": c, "p_value": min(1.0, p_exact),
        "chi2": float(chi2), "p_value_chi2": float(stats.chi2.sf(chi2, df=1)),
    }


def percentiles(values, qs=(50, 99)):
    """Percentiles of the samples (linear interpolation), NaN for no samples."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(x, qs)]
