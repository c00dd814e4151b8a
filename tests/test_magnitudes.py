"""Exact at any magnitude: every engine and metric from 1e-300 to 1e300, and weights that
do not depend on the unit of the data.

Squares overflow beyond ~1e154 and underflow below ~1e-162, Manhattan column sums overflow
near 1e306; the definition of the distance (``nearkit._kernels.distances``) measures such
pairs again with scaled differences, and every engine must return the reference's
neighbours and distances, float32 pre-filters and box bounds included.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_kneighbors

from nearkit import (
    KNNClassifier,
    KNNClassifierCV,
    KNNImputer,
    KNNOutlierDetector,
    KNNRegressor,
    KNNRegressorCV,
    NearestNeighbors,
)
from nearkit.search import VALID_METRICS

#: (metric, p) of every row of the metric table but Mahalanobis (tested by invariance below)
METRICS = [("euclidean", 2.0), ("manhattan", 1.0), ("chebyshev", np.inf), ("minkowski", 3.0),
           ("minkowski", 0.5), ("cosine", 2.0)]
SCALES = [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300]


def _case(metric, p):
    return pytest.param(metric, p, id=f"{metric}-{p:g}")


def _tie_heavy(rng, n, d=4):
    """Half the rows on a small grid (exact ties and duplicates), half continuous, plus rows
    that repeat earlier ones."""
    grid = rng.random(n) < 0.5
    X = rng.integers(-3, 4, size=(n, d)) + rng.normal(size=(n, d)) * ~grid[:, None]
    X[n // 2: n // 2 + n // 10] = X[: n // 10]  # duplicates
    X[np.all(X == 0, axis=1), 0] = 1.0  # cosine needs no row of zeros
    Q = rng.integers(-3, 4, size=(30, d)).astype(float)
    Q[:8] = X[:8]  # exact matches
    Q[np.all(Q == 0, axis=1), 1] = 1.0
    return X, Q


def _check(X, Q, metric, p, algorithm, ks=(1, 5, 12)):
    model = NearestNeighbors(metric=metric, p=p, algorithm=algorithm).fit(X)
    ref_dist, ref_ind = reference_kneighbors(X, Q, max(ks), metric, p)
    for k in ks:
        dist, ind = model.kneighbors(Q, n_neighbors=k)
        np.testing.assert_array_equal(ind, ref_ind[:, :k], err_msg=f"k={k}")
        np.testing.assert_array_equal(dist, ref_dist[:, :k], err_msg=f"k={k}")
    ref_dist, ref_ind = reference_kneighbors(X, X[:40], 5, metric, p, exclude_self=True)
    dist, ind = model.kneighbors(n_neighbors=5)
    np.testing.assert_array_equal(ind[:40], ref_ind)
    np.testing.assert_array_equal(dist[:40], ref_dist)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("metric,p", [_case(*m) for m in METRICS])
@pytest.mark.parametrize("n", [300, 2600])  # below and above the float32 sweep's threshold
def test_every_engine_exact_at_extreme_scales(n, metric, p, scale):
    X, Q = _tie_heavy(np.random.default_rng(n), n)
    X, Q = X * scale, Q * scale
    name = "minkowski" if metric == "minkowski" else metric
    for algorithm in sorted(engine for engine, names in VALID_METRICS.items() if name in names):
        _check(X, Q, metric, p, algorithm)


@pytest.mark.parametrize("case", ["subnormal", "huge-beside-tiny"])
@pytest.mark.parametrize("metric,p", [_case(*m) for m in METRICS])
@pytest.mark.parametrize("n", [300, 2600])
def test_points_beyond_the_float32_scaling(n, metric, p, case):
    """Data whose float32 scaling is beyond float64 (fit raised OverflowError in every
    engine with a float32 pre-filter): every point subnormal, or a column of 1e308 beside
    columns that scaling by it makes subnormal."""
    X, Q = _tie_heavy(np.random.default_rng(n), n)
    if case == "subnormal":
        X, Q = X * 1e-312, Q * 1e-312
    else:
        X, Q = X * 1e-13, Q * 1e-13
        X[:, 0] = 1e308
        Q[:, 0] = 1e308
        Q[::3, 0] = 9e307
    name = "minkowski" if metric == "minkowski" else metric
    for algorithm in sorted(engine for engine, names in VALID_METRICS.items() if name in names):
        _check(X, Q, metric, p, algorithm)


@pytest.mark.parametrize("metric,p", [_case(*m) for m in METRICS])
def test_mixed_magnitudes_in_one_set(metric, p):
    """Coordinates from 1e-300 to 1e300 in the same rows: pairs that differ only in a tiny
    coordinate next to a huge one, and far queries."""
    rng = np.random.default_rng(1)
    exponents = rng.choice([-300, -150, -1, 0, 150, 300], size=(700, 3))
    X = rng.integers(1, 4, size=(700, 3)) * 10.0**exponents
    X[300:400] = X[:100]
    X[400:500, 2] = X[:100, 2] * 3  # same huge coordinates, other tiny ones
    X[np.all(X == 0, axis=1), 0] = 1.0
    Q = np.concatenate([X[:20], X[400:420] * (1 + 1e-12), -X[20:40]])
    for algorithm in ("brute", "tiled", "kd_tree"):
        _check(X, Q, metric, p, algorithm, ks=(1, 7))


def test_reported_reproducers():
    """The two cases of issue 11: a column sum that overflowed, squares that overflowed."""
    X = np.full((2048, 1), 1e306)
    X[::2] = 2e306
    model = KNNClassifier(1, metric="manhattan").fit(X, np.arange(2048) % 2)
    dist, ind = model.kneighbors([[1e306]])
    assert ind[0, 0] == 1 and dist[0, 0] == 0.0
    assert model.predict([[1e306]])[0] == 1
    model = KNNClassifier(1).fit([[0.0], [1e300], [-1e300]], [0, 1, 2])
    dist, ind = model.kneighbors([[0.9e300]])
    assert ind[0, 0] == 1 and np.isclose(dist[0, 0], 0.1e300, rtol=1e-12)


@pytest.mark.parametrize("algorithm", ["brute", "gemm", "tiled", "kd_tree"])
def test_mahalanobis_does_not_depend_on_the_unit(algorithm):
    """A learned Mahalanobis metric is unit-free: the same neighbours at 2**-1000 and
    2**900 times the data, distances to rounding."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2500, 4)) @ rng.normal(size=(4, 4))
    Q = rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4))
    base = NearestNeighbors(n_neighbors=5, metric="mahalanobis", algorithm=algorithm).fit(X)
    expected_dist, expected_ind = base.kneighbors(Q)
    for power in (-1000, -500, 500, 900):
        factor = 2.0**power
        model = NearestNeighbors(n_neighbors=5, metric="mahalanobis", algorithm=algorithm)
        dist, ind = model.fit(X * factor).kneighbors(Q * factor)
        np.testing.assert_array_equal(ind, expected_ind)
        np.testing.assert_allclose(dist, expected_dist, rtol=1e-10)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 60), d=st.integers(1, 4), exponent=st.integers(-300, 300),
       spread=st.integers(0, 300), metric=st.sampled_from(METRICS),
       algorithm=st.sampled_from(["brute", "gemm", "tiled", "kd_tree"]),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_property_every_engine_equals_reference(n, d, exponent, spread, metric, algorithm,
                                                seed, data):
    """Random data at any magnitude, columns up to ``spread`` decades apart, small-integer
    mantissas (ties and duplicates)."""
    name, p = metric
    if name not in VALID_METRICS[algorithm]:
        algorithm = "brute"
    rng = np.random.default_rng(seed)
    column_exponents = exponent + rng.integers(-spread, spread + 1, size=d) // 2
    column_exponents = np.clip(column_exponents, -300, 300)
    X = rng.integers(-3, 4, size=(n, d)) * 10.0**column_exponents
    Q = rng.integers(-3, 4, size=(5, d)) * 10.0**column_exponents
    if name == "cosine":
        X[np.all(X == 0, axis=1), 0] = 10.0**column_exponents[0]
        Q[np.all(Q == 0, axis=1), 0] = 10.0**column_exponents[0]
    k = data.draw(st.integers(1, n - 1))
    model = NearestNeighbors(n_neighbors=k, metric=name, p=p, algorithm=algorithm).fit(X)
    dist, ind = model.kneighbors(Q)
    ref_dist, ref_ind = reference_kneighbors(X, Q, k, name, p)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)
    dist, ind = model.kneighbors()
    ref_dist, ref_ind = reference_kneighbors(X, X, k, name, p, exclude_self=True)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


# -- weights -------------------------------------------------------------------------------

WEIGHTINGS = [{"weights": "gaussian"}, {"weights": "gaussian", "sigma": 1.5},
              {"weights": "distance"}, {"weights": "dudani"}, {"weights": "uniform"}]


@pytest.mark.parametrize("weights", WEIGHTINGS, ids=lambda w: "-".join(map(str, w.values())))
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_probabilities_do_not_depend_on_the_unit(weights, metric):
    """The same probabilities at scale 1, 1e-170, 1e160 and 1e300, always finite (gaussian
    weights were NaN at 1e160 and 1e-170; distance weights overflowed below 1e-308)."""
    X = np.array([[0.0], [1.0], [3.0], [3.5], [7.0]])
    y = [0, 1, 1, 0, 1]
    Q = np.array([[0.9], [2.0], [6.0]])
    expected = None
    for scale in (1.0, 1e-170, 1e-310, 1e160, 1e300):
        params = dict(weights)
        if "sigma" in params:
            params["sigma"] = params["sigma"] * scale
        model = KNNClassifier(3, metric=metric, **params).fit(X * scale, y)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow or invalid-value warnings either
            proba = model.predict_proba(Q * scale)
        assert np.all(np.isfinite(proba))
        if expected is None:
            expected = proba
        # subnormal distances (1e-310) keep only a few digits
        np.testing.assert_allclose(proba, expected, rtol=1e-3 if scale == 1e-310 else 1e-12)


def test_subnormal_distances_are_not_exact_matches():
    """Distances of 1e-310 are small, not zero: they vote by their inverse like any other."""
    X = np.array([[0.0], [1e-310], [3e-310]])
    model = KNNClassifier(2, weights="distance").fit(X, [0, 1, 1])
    proba = model.predict_proba([[0.5e-310]])
    np.testing.assert_allclose(proba, [[0.5, 0.5]], rtol=1e-2)


def test_huge_sigma_warns_nothing():
    model = KNNClassifier(3, weights="gaussian", sigma=1e300).fit([[0.0], [1.0], [2.0]], [0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(model.predict_proba([[0.2]]), [[1 / 3, 2 / 3]])


#: values near the largest float64 (1.8e308): sums of a few overflow
HUGE = 2.0**1021


def test_fit_and_predict_near_the_largest_float_warn_nothing():
    """scikit-learn's finiteness check sums the whole array, which overflows here and had
    warned "invalid value encountered in reduce" about valid data, in every estimator."""
    rng = np.random.default_rng(7)
    X, Q = rng.normal(size=(200, 3)) * HUGE, rng.normal(size=(10, 3)) * HUGE
    y = rng.integers(0, 2, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KNNClassifier(3).fit(X, y).predict(Q)
        KNNRegressor(3).fit(X, y.astype(float)).predict(Q)
        NearestNeighbors(n_neighbors=3).fit(X).kneighbors(Q)
        KNNOutlierDetector(n_neighbors=3, novelty=True).fit(X).decision_function(Q)
        KNNClassifierCV(n_neighbors=[1, 3], cv=3).fit(X, y).predict(Q)
        KNNRegressorCV(n_neighbors=[1, 3], cv=3).fit(X, y.astype(float)).predict(Q)
        holes = X.copy()
        holes[rng.random(X.shape) < 0.1] = np.nan
        KNNImputer(n_neighbors=3).fit(holes).transform(holes)
    with pytest.raises(ValueError, match="infinity"):  # an infinite value is still refused
        KNNClassifier(3).fit(np.vstack([X, [[np.inf, 0.0, 0.0]]]), np.append(y, 0))


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_means_of_values_near_the_largest_float_do_not_overflow(weights):
    """The regressor's mean of neighbour targets, and the imputer's means of donors and of
    columns, are finite where a plain sum overflows (they had been inf), and equal the mean
    of the same values at scale 1 scaled back (powers of two scale exactly)."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 2))
    y = 1.0 + rng.random(60)  # in [1, 2): the mean of three is in [1, 2) too
    Q = rng.normal(size=(15, 2))
    small = KNNRegressor(3, weights=weights).fit(X, y).predict(Q)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = KNNRegressor(3, weights=weights).fit(X, y * 2.0**1023).predict(Q)
    np.testing.assert_array_equal(big, small * 2.0**1023)
    two = np.column_stack([y, y[::-1]])  # two outputs
    small = KNNRegressor(3, weights=weights).fit(X, two).predict(Q)
    big = KNNRegressor(3, weights=weights).fit(X, two * [2.0**1023, 1.0]).predict(Q)
    np.testing.assert_array_equal(big, small * [2.0**1023, 1.0])

    holes = np.column_stack([X, y])
    holes[::4, 2] = np.nan  # imputed from three donors
    unit = KNNImputer(n_neighbors=3, weights=weights).fit(holes)
    scaled = holes * [1.0, 1.0, 2.0**1023]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imputer = KNNImputer(n_neighbors=3, weights=weights).fit(scaled)
        got = imputer.transform(scaled)
    np.testing.assert_array_equal(got, unit.transform(holes) * [1.0, 1.0, 2.0**1023])
    # the column means (for rows sharing no coordinate with any donor)
    np.testing.assert_array_equal(imputer._col_means, unit._col_means * [1.0, 1.0, 2.0**1023])
