"""Parameters are checked at fit and again at every method that uses them.

``set_params`` after fit must never reach a kernel with a bad value (issue 11: five invented
neighbours with index -1 from the k-d tree, IndexError from the others, ZeroDivisionError
from ``n_jobs=0``, a silently ignored ``sigma=-1``).
"""

from __future__ import annotations

import numpy as np
import pytest

from nearkit import KNNClassifier, KNNOutlierDetector, KNNRegressor, NearestNeighbors
from nearkit.search import ENGINES

X = np.arange(10.0).reshape(-1, 1)
Y = np.array([0] * 9 + [1])


def _fitted(estimator):
    return estimator.fit(X, Y) if isinstance(estimator, (KNNClassifier, KNNRegressor)) \
        else estimator.fit(X)


def _use(estimator):
    """Every method of the estimator that searches."""
    if isinstance(estimator, KNNClassifier):
        return [estimator.predict_proba, estimator.predict, estimator.kneighbors]
    if isinstance(estimator, KNNRegressor):
        return [estimator.predict, estimator.kneighbors]
    if isinstance(estimator, KNNOutlierDetector):
        return [estimator.score_samples, estimator.predict, estimator.kneighbors]
    return [estimator.kneighbors]


ESTIMATORS = [KNNClassifier(3, algorithm=a) for a in sorted(ENGINES)] + [
    KNNRegressor(3), KNNOutlierDetector(3, novelty=True), NearestNeighbors(n_neighbors=3)]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
@pytest.mark.parametrize("params, message", [
    ({"n_neighbors": 15}, "n_neighbors=15 is larger than"),
    ({"n_neighbors": 0}, "'n_neighbors' parameter"),
    ({"n_neighbors": True}, "'n_neighbors' parameter must be a number, not a boolean"),
    ({"n_neighbors": 2.5}, "'n_neighbors' parameter"),
    ({"n_jobs": 0}, "n_jobs=0"),
    ({"n_jobs": 1.5}, "'n_jobs' parameter"),
])
def test_query_parameters_checked_after_set_params(estimator, params, message):
    model = _fitted(estimator.set_params(n_neighbors=3, n_jobs=None))
    model.set_params(**params)
    for method in _use(model):
        with pytest.raises(ValueError, match=message):
            method(X[:2])


@pytest.mark.parametrize("params, message", [
    ({"sigma": -1.0}, "'sigma' parameter"),
    ({"sigma": True}, "'sigma' parameter"),
    ({"weights": "triangular"}, "'weights' parameter"),
    ({"class_weight": "even"}, "'class_weight' parameter"),
])
def test_weighting_parameters_checked_after_set_params(params, message):
    model = KNNClassifier(3, weights="gaussian").fit(X, Y).set_params(**params)
    with pytest.raises(ValueError, match=message):
        model.predict_proba(X[:2])


@pytest.mark.parametrize("initial, params", [
    ({"metric": "minkowski", "p": 1.5}, {"metric": "manhattan"}),
    ({"metric": "minkowski", "p": 1.5}, {"p": 3}),
    ({"algorithm": "kd_tree"}, {"algorithm": "brute"}),
    ({"metric": "mahalanobis", "metric_params": {"VI": np.eye(1)}},
     {"metric_params": {"VI": 2 * np.eye(1)}}),
])
def test_index_parameters_changed_after_fit_ask_for_a_new_fit(initial, params):
    model = KNNClassifier(3, **initial).fit(X, Y)
    model.set_params(**params)
    name = next(iter(params))
    with pytest.raises(ValueError, match=f"'{name}' parameter was changed after fit"):
        model.predict(X[:2])
    model.fit(X, Y).predict(X[:2])  # a new fit takes them


def test_same_value_set_again_is_no_change():
    model = KNNClassifier(3, metric="minkowski", p=1.5, metric_params=None).fit(X, Y)
    model.set_params(p=1.5, metric="minkowski", metric_params=None, n_neighbors=4)
    assert model.kneighbors(X[:1])[1].shape == (1, 4)


@pytest.mark.parametrize("params, message", [
    ({"n_neighbors": True}, "'n_neighbors' parameter must be a number, not a boolean"),
    ({"p": True, "metric": "minkowski"}, "'p' parameter must be a number, not a boolean"),
    ({"sigma": True, "weights": "gaussian"}, "'sigma' parameter must be a number"),
    ({"n_jobs": False}, "'n_jobs' parameter must be a number, not a boolean"),
])
def test_booleans_are_not_numbers_at_fit(params, message):
    with pytest.raises(ValueError, match=message):
        KNNClassifier(**{"n_neighbors": 3, **params}).fit(X, Y)


def test_explicit_n_neighbors_checked_at_query():
    model = NearestNeighbors(n_neighbors=30).fit(X)  # the default is only used when asked
    with pytest.raises(ValueError, match="n_neighbors=30 is larger than the 10"):
        model.kneighbors(X[:1])
    assert model.kneighbors(X[:1], n_neighbors=10)[1].shape == (1, 10)


def test_fit_context_validates_then_skips_nested_validation():
    """nearkit's ``fit_context`` (scikit-learn's ``_fit_context`` without the callback set-up):
    parameters checked before fit unless scikit-learn is told to skip it, nested validation
    skipped inside."""
    from sklearn import config_context, get_config
    from sklearn.utils._param_validation import InvalidParameterError

    from nearkit._base import fit_context

    seen = []

    class Probe(NearestNeighbors):
        @fit_context
        def fit(self, X, y=None):
            seen.append(get_config()["skip_parameter_validation"])
            return self

    with pytest.raises(InvalidParameterError, match="n_neighbors"):
        Probe(n_neighbors="five").fit(np.ones((3, 1)))
    assert seen == []
    Probe().fit(np.ones((3, 1)))
    with config_context(skip_parameter_validation=True):
        Probe(n_neighbors="five").fit(np.ones((3, 1)))  # not checked, as scikit-learn does
    assert seen == [True, True] and not get_config()["skip_parameter_validation"]
