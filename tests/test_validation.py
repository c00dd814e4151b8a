"""Bad input gets a ValueError naming the problem, never a wrong answer or a kernel crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_kneighbors

from nearkit import KNNClassifier

X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
y = np.array([0, 1, 0, 1])


@pytest.fixture(scope="module")
def fitted():
    return KNNClassifier(3).fit(X, y)


@pytest.mark.parametrize("bad, message", [
    (np.array([[np.nan, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]]), "NaN"),
    (np.array([[np.inf, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]]), "infinity"),
    (np.array([0.0, 1.0, 2.0, 3.0]), "2D array"),
    (np.zeros((4, 2, 1)), "dim"),
    (np.empty((0, 2)), "0 sample"),
    (np.array([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]], dtype=object), "string"),
])
def test_bad_training_data(bad, message):
    with pytest.raises(ValueError, match=message):
        KNNClassifier(3).fit(bad, y[: len(bad)] if len(bad) else [])


@pytest.mark.parametrize("bad, message", [
    (np.array([[1e308, 1.0], [1e308, 0.0], [np.nan, 2.0], [3.0, 1.0]]), "NaN"),
    (np.array([[1e308, 1.0], [1e308, 0.0], [-np.inf, 2.0], [3.0, 1.0]]), "infinity"),
    (np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), "inconsistent numbers of samples"),
])
def test_bad_training_data_of_the_fast_path(bad, message):
    """Float64 arrays with integer labels skip scikit-learn's container checks: a sum that
    overflows still finds the NaN, and mismatched lengths are still named."""
    with pytest.raises(ValueError, match=message):
        KNNClassifier(2).fit(bad, y)


def test_fast_path_fits_as_validate_data_does():
    """The same fitted state from a float64 array (fast path) as from a list (scikit-learn's
    validation), in either memory order; a refit without column names drops them."""
    import pandas as pd

    from nearkit.classifier import encode_labels

    rng = np.random.default_rng(0)
    data = rng.normal(size=(60, 3))
    labels = rng.integers(-5, 3, size=60).astype(np.int8)
    queries = rng.normal(size=(7, 3))
    reference = KNNClassifier(4).fit(data.tolist(), labels.tolist())
    for array in (data, np.asfortranarray(data)):
        model = KNNClassifier(4).fit(pd.DataFrame(array, columns=list("abc")), labels)
        assert list(model.feature_names_in_) == list("abc")
        model.fit(array, labels)
        assert not hasattr(model, "feature_names_in_") and model.n_features_in_ == 3
        np.testing.assert_array_equal(model.classes_, reference.classes_)
        assert model.classes_.dtype == np.int8
        np.testing.assert_array_equal(model.predict_proba(queries),
                                      reference.predict_proba(queries))
    for dtype in (np.int8, np.uint8, np.int64, np.uint64):
        info = np.iinfo(dtype)
        for values in ([info.min, info.max, 0], [info.max, info.max - 1], [info.min, 7]):
            labels = np.array(values * 5, dtype=dtype)
            expected = np.unique(labels, return_inverse=True)
            found = encode_labels(labels)
            for a, b in zip(expected, found):
                np.testing.assert_array_equal(a, b)
                assert a.dtype == b.dtype


@pytest.mark.parametrize("bad, message", [
    ([[np.nan, 0.0]], "NaN"),
    ([[np.inf, 0.0]], "infinity"),
    ([[-np.inf, 0.0]], "infinity"),
    ([0.0, 1.0], "2D array"),
    ([[0.0, 1.0, 2.0]], "3 features, but KNNClassifier is expecting 2 features"),
    (np.empty((0, 2)), "0 sample"),
    ([["a", "b"]], "string"),
])
def test_bad_queries(fitted, bad, message):
    for method in (fitted.predict, fitted.predict_proba, fitted.kneighbors):
        with pytest.raises(ValueError, match=message):
            method(bad)


@pytest.mark.parametrize("params, message", [
    ({"n_neighbors": 0}, "'n_neighbors' parameter"),
    ({"n_neighbors": 5}, r"n_neighbors=5 is larger than the number of training samples"),
    ({"n_neighbors": 2.5}, "'n_neighbors' parameter"),
    ({"metric": "hamming"}, "'metric' parameter"),
    ({"weights": "triangular"}, "'weights' parameter"),
    ({"metric": "minkowski", "p": 0}, "'p' parameter"),
    ({"metric": "minkowski", "p": -1.5}, "'p' parameter"),
    ({"weights": "gaussian", "sigma": 0.0}, "'sigma' parameter"),
    ({"weights": "gaussian", "sigma": -1.0}, "'sigma' parameter"),
    ({"algorithm": "ball_tree"}, "'algorithm' parameter"),
    ({"n_jobs": 0}, "n_jobs=0"),
    ({"metric": "mahalanobis", "metric_params": {"VI": np.eye(3)}}, r"shape \(2, 2\)"),
    ({"metric": "mahalanobis", "metric_params": {"V": np.eye(3)}}, r"shape \(2, 2\)"),
    ({"metric": "mahalanobis", "metric_params": {"VI": [[1.0, 0], [0, np.nan]]}}, "NaN"),
    ({"metric": "mahalanobis", "metric_params": {"VI": -np.eye(2)}}, "positive semi-definite"),
    ({"metric": "mahalanobis", "metric_params": {"V": np.diag([1.0, -1.0])}},
     "V must be positive semi-definite"),
    ({"metric": "mahalanobis", "metric_params": {"W": np.eye(2)}}, "metric_params"),
    ({"metric": "euclidean", "metric_params": {"VI": np.eye(2)}}, "not used by metric"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        KNNClassifier(**{"n_neighbors": 3, **params}).fit(X, y)


def test_bad_n_neighbors_at_query(fitted):
    with pytest.raises(ValueError, match="n_neighbors=5 is larger than the 4 training"):
        fitted.kneighbors([[0.0, 0.0]], n_neighbors=5)
    with pytest.raises(ValueError, match="excluded from its own neighbours"):
        fitted.kneighbors(n_neighbors=4)
    with pytest.raises(ValueError, match="positive integer"):
        fitted.kneighbors([[0.0, 0.0]], n_neighbors=0)


def test_cosine_zero_row_is_named():
    with pytest.raises(ValueError, match="Row 1 of X is all zeros"):
        KNNClassifier(1, metric="cosine").fit([[1.0, 0.0], [0.0, 0.0]], [0, 1])
    model = KNNClassifier(1, metric="cosine").fit(X + 1, y)
    with pytest.raises(ValueError, match="Row 0 of X is all zeros"):
        model.predict([[0.0, 0.0]])


def test_weights_callable_wrong_shape():
    model = KNNClassifier(2, weights=lambda d: d[:, :1]).fit(X, y)
    with pytest.raises(ValueError, match=r"must return an array of shape \(1, 2\)"):
        model.predict([[0.0, 0.0]])


def test_mahalanobis_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        KNNClassifier(1, metric="mahalanobis").fit([[0.0, 1.0]], [0])


METRICS = st.sampled_from([("euclidean", 2.0), ("manhattan", 1.0), ("chebyshev", np.inf),
                           ("minkowski", 0.5), ("minkowski", 3.0)])


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40), d=st.integers(1, 5), m=st.integers(1, 12),
    metric=METRICS, seed=st.integers(0, 2**31 - 1), data=st.data(),
)
def test_random_shapes_equal_reference(n, d, m, metric, seed, data):
    rng = np.random.default_rng(seed)
    # small integers: plenty of exact ties and duplicate rows
    train = rng.integers(-2, 3, size=(n, d)).astype(float)
    queries = rng.integers(-2, 3, size=(m, d)).astype(float)
    k = data.draw(st.integers(1, n))
    name, p = metric
    model = KNNClassifier(k, metric=name, p=p).fit(train, rng.integers(0, 2, n))
    dist, ind = model.kneighbors(queries)
    ref_dist, ref_ind = reference_kneighbors(train, queries, k, metric=name, p=p)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)
    if k < n:
        dist, ind = model.kneighbors()
        ref_dist, ref_ind = reference_kneighbors(train, train, k, metric=name, p=p,
                                                 exclude_self=True)
        np.testing.assert_array_equal(ind, ref_ind)
