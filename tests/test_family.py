"""The family of estimators against their peers and the float64 reference.

Each estimator is compared with ``tests/reference.py`` everywhere (ties included: the
reference orders neighbours by (distance, index) as nearkit does) and with its peer where the
peer shares the option: scikit-learn's ``KNeighborsRegressor``, ``NearestNeighbors`` and
``KNNImputer``, and PyOD's ``KNN``.  scikit-learn breaks distance ties at the k-th neighbour by
its scan order, so k-neighbour results are compared with it only on the *clear* rows, where
the k-th and (k+1)-th reference distances differ; radius answers do not depend on ties and
are compared everywhere, at radii away from any distance (scikit-learn's rounding could move
a point across an exact boundary; exact boundaries are checked against the reference).
"""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest
from reference import (
    reference_distances,
    reference_kneighbors,
    reference_proba,
    reference_regress,
    reference_weights,
)
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.impute import KNNImputer as SKLearnKNNImputer
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    LeaveOneOut,
    cross_val_predict,
    cross_val_score,
)
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neighbors import NearestNeighbors as SKLearnNearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_classifier import WEIGHTS, ref_weight_kwargs, weight_kwargs

import nearkit.impute
import nearkit.search._index
from nearkit import KNNClassifier, KNNImputer, KNNOutlierDetector, KNNRegressor, NearestNeighbors
from nearkit.bench.measure import PeakMemory
from nearkit.metrics import METRICS, resolve_metric
from nearkit.search import ENGINES, VALID_METRICS

# -- data and metric cases ---------------------------------------------------------------------

def _continuous(seed=0, n=240, m=50, d=4):
    """Continuous points (no distance ties) and a smooth target with noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Q = rng.normal(size=(m, d))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    return X, y, Q


def _ties(seed=1, n=200, m=50, d=3):
    """Half the rows on a small integer grid, half continuous, a fifth of them duplicated, and
    queries equal to training rows: exact distance ties, distances of zero, and rows whose
    k-th neighbour is clear of ties (where scikit-learn can be compared).  No row of zeros
    (cosine's domain)."""
    rng = np.random.default_rng(seed)
    grid = rng.random(n) < 0.5
    X = rng.integers(-2, 3, size=(n, d)) + rng.normal(size=(n, d)) * ~grid[:, None]
    X[n // 2: n // 2 + n // 5] = X[: n // 5]
    Q = rng.integers(-2, 3, size=(m, d)) + rng.normal(size=(m, d)) * (rng.random(m) < 0.5)[
        :, None]
    Q[:10] = X[:10]
    X[np.all(X == 0, axis=1), 0] = 1.0
    Q[np.all(Q == 0, axis=1), 0] = 1.0
    y = rng.normal(size=n).round(1)
    return X, y, Q


DATA = {"continuous": _continuous, "ties": _ties}

#: integer sample weights, cycled over the rows: zero, one and repeated rows
SAMPLE_WEIGHTS = np.array([0, 1, 2, 3])


def _metric_cases():
    """One case per row of the metric table (Minkowski at p=3 and p=0.5): (metric name,
    nearkit parameters).  Mahalanobis gets its VI from :func:`_with_data`."""
    for name, spec in METRICS.items():
        if spec.uses_p:
            for p in (3.0, 0.5):
                yield pytest.param(name, {"metric": name, "p": p}, id=f"{name}-{p:g}")
        else:
            yield pytest.param(name, {"metric": name}, id=name)


METRIC_CASES = list(_metric_cases())


def _with_data(params, X, exact=False):
    """(nearkit kwargs, reference kwargs) of a metric case on training data ``X``.

    Mahalanobis gets the inverse covariance of ``X``: whitening and the reference's quadratic
    form then round apart, and exact ties may order differently.  With ``exact`` it gets a
    diagonal VI of powers of four instead, whose whitening is exact: exact ties stay ties.
    """
    if params["metric"] == "mahalanobis":
        if exact:
            VI = np.diag(4.0 ** (np.arange(X.shape[1]) - 1))
        else:
            VI = np.linalg.inv(np.cov(X, rowvar=False))
        return {"metric": "mahalanobis", "metric_params": {"VI": VI}}, {"metric": "mahalanobis",
                                                                        "VI": VI}
    return dict(params), {"metric": params["metric"], "p": params.get("p", 2.0)}


def _clear_rows(X, Q, k, exclude_self=False, margin=0.0, **ref):
    """Rows whose k-th and (k+1)-th reference distances differ (by more than ``margin``,
    relative): no tie crosses the k-th neighbour, so the neighbour set is the same whatever
    the scan order (and, with a margin, whatever a peer's rounding)."""
    dist, _ = reference_kneighbors(X, Q, k + 1, exclude_self=exclude_self, **ref)
    return dist[:, k - 1] < dist[:, k] * (1 - margin)


def _peer_atol(metric, X, Q):
    """Absolute tolerance for scikit-learn's distances: its Euclidean distances come from the
    expansion ``||q||^2 + ||x||^2 - 2 q.x``, whose rounding leaves up to about
    ``sqrt(eps (||q||^2 + ||x||^2))`` where the exact distance is 0 (2.98e-8 and 4.2e-8 for
    duplicated rows of ``_ties`` with scikit-learn 1.9.1); the other metrics' are direct."""
    if metric != "euclidean":
        return 1e-9
    norms = np.einsum("ij,ij->i", X, X).max() + np.einsum("ij,ij->i", Q, Q).max()
    return 4.0 * np.sqrt(np.finfo(np.float64).eps * norms)


def _reference_regression(X, y, Q, k, weights="uniform", sigma=None, exclude_self=False, **ref):
    """The weighted mean of the reference neighbours' targets (for what
    ``reference_regress`` does not take: Mahalanobis and leave-one-out)."""
    dist, ind = reference_kneighbors(X, Q, k, exclude_self=exclude_self, **ref)
    w = reference_weights(dist, weights, sigma)
    values = np.asarray(y, dtype=np.float64)[ind]
    if values.ndim == 2:
        return (values * w).sum(axis=1) / w.sum(axis=1)
    return (values * w[:, :, None]).sum(axis=1) / w.sum(axis=1)[:, None]


def _as_classes(y):
    """Three classes from a continuous target, by its terciles."""
    return np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))


# -- KNNRegressor ------------------------------------------------------------------------------

@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("metric,params", METRIC_CASES)
def test_regressor_equals_reference(data_name, metric, params):
    """Every weighting scheme at k = 1, 5 and 15."""
    X, y, Q = DATA[data_name]()
    ours, ref = _with_data(params, X, exact=data_name == "ties")
    for weights in WEIGHTS:
        for k in (1, 5, 15):
            model = KNNRegressor(k, **ours, **weight_kwargs(weights)).fit(X, y)
            if metric != "mahalanobis":
                expected = reference_regress(X, y, Q, k, **ref, **ref_weight_kwargs(weights))
                np.testing.assert_allclose(model.predict(Q), expected, rtol=1e-12, atol=1e-12,
                                           err_msg=f"{weights}, k={k}")
                continue
            expected = _reference_regression(X, y, Q, k, **ref_weight_kwargs(weights), **ref)
            rows = slice(None)
            if data_name == "continuous":  # distances to rounding: where no near-tie at k
                dist, _ = reference_kneighbors(X, Q, k + 1, **ref)
                rows = dist[:, k - 1] < dist[:, k] * (1 - 1e-9)
                assert rows.sum() > len(Q) // 2
            np.testing.assert_allclose(model.predict(Q)[rows], expected[rows], rtol=1e-9,
                                       atol=1e-12, err_msg=f"{weights}, k={k}")


SKLEARN_REGRESSOR_METRICS = [
    {"metric": "euclidean"}, {"metric": "manhattan"}, {"metric": "minkowski", "p": 3},
    {"metric": "chebyshev"}, {"metric": "cosine"},
]


@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", SKLEARN_REGRESSOR_METRICS, ids=lambda m: m["metric"])
def test_regressor_equals_sklearn_on_clear_rows(data_name, weights, metric):
    X, y, Q = DATA[data_name]()
    ref = {"metric": metric["metric"], "p": metric.get("p", 2.0)}
    for k in (1, 5, 15):
        ours = KNNRegressor(k, weights=weights, **metric).fit(X, y).predict(Q)
        theirs = KNeighborsRegressor(k, weights=weights, algorithm="brute", **metric) \
            .fit(X, y).predict(Q)
        clear = _clear_rows(X, Q, k, margin=1e-9, **ref)
        if weights == "distance" and metric["metric"] == "euclidean":
            # a duplicate's distance is 0 here (it alone votes) but not in scikit-learn's
            # expansion (see _peer_atol), where it only outweighs the others
            dist, _ = reference_kneighbors(X, Q, k, **ref)
            clear &= dist[:, 0] > 0
        assert clear.sum() >= len(Q) // 4
        np.testing.assert_allclose(ours[clear], theirs[clear], rtol=1e-9, atol=1e-9)


def test_regressor_multi_output():
    X, y, Q = _continuous()
    Y = np.column_stack([y, -2 * y, X[:, 2]])
    for weights in ("uniform", "distance", "gaussian"):
        model = KNNRegressor(5, weights=weights).fit(X, Y)
        prediction = model.predict(Q)
        assert prediction.shape == (len(Q), 3)
        np.testing.assert_allclose(prediction, reference_regress(X, Y, Q, 5, weights=weights),
                                   rtol=1e-12, atol=1e-12)
        if weights != "gaussian":
            peer = KNeighborsRegressor(5, weights=weights).fit(X, Y)
            np.testing.assert_allclose(prediction, peer.predict(Q), rtol=1e-9, atol=1e-9)
    # a single column given as 2-D stays 2-D, like scikit-learn's
    assert KNNRegressor(5).fit(X, y[:, None]).predict(Q).shape == (len(Q), 1)


def test_regressor_score_is_r2():
    X, y, Q = _continuous()
    y_test = np.sin(Q[:, 0]) + Q[:, 1] ** 2
    model = KNNRegressor(5, weights="distance").fit(X, y)
    assert model.score(Q, y_test) == pytest.approx(r2_score(y_test, model.predict(Q)), abs=1e-15)
    Y = np.column_stack([y, X[:, 0]])
    Y_test = np.column_stack([y_test, Q[:, 0]])
    model = KNNRegressor(5).fit(X, Y)
    assert model.score(Q, Y_test) == pytest.approx(r2_score(Y_test, model.predict(Q)),
                                                   abs=1e-15)
    # X=None: R² of the leave-one-out predictions against the training targets
    assert model.score() == pytest.approx(r2_score(Y, model.predict()), abs=1e-15)


@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("params", [{"weights": "uniform"}, {"weights": "distance"},
                                    {"weights": "dudani", "metric": "manhattan"},
                                    {"weights": "gaussian", "metric": "cosine"}],
                         ids=lambda p: "-".join(p.values()))
def test_regressor_leave_one_out(data_name, params):
    """``predict()`` is the reference with each point excluded from its own neighbours, and
    the same as refitting without the point (duplicates of it stay among its neighbours)."""
    X, y, _ = DATA[data_name](n=120)
    model = KNNRegressor(5, **params).fit(X, y)
    ref = {"metric": params.get("metric", "euclidean")}
    expected = _reference_regression(X, y, X, 5, weights=params["weights"], exclude_self=True,
                                     **ref)
    np.testing.assert_allclose(model.predict(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.predict(),
                               cross_val_predict(model, X, y, cv=LeaveOneOut()),
                               rtol=1e-14, atol=1e-14)
    sample_weight = SAMPLE_WEIGHTS[np.arange(len(X)) % len(SAMPLE_WEIGHTS)]
    model.fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(
        model.predict(),
        cross_val_predict(model, X, y, cv=LeaveOneOut(), params={"sample_weight": sample_weight}),
        rtol=1e-14, atol=1e-14)


# -- KNNClassifier: leave-one-out, sample and class weights -------------------------------------

@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("weights", ["uniform", "distance", "gaussian"])
def test_classifier_leave_one_out(data_name, weights):
    X, y, _ = DATA[data_name](n=120)
    labels = _as_classes(y)
    model = KNNClassifier(5, weights=weights).fit(X, labels)
    np.testing.assert_array_equal(model.predict(),
                                  cross_val_predict(model, X, labels, cv=LeaveOneOut()))
    np.testing.assert_allclose(
        model.predict_proba(),
        cross_val_predict(model, X, labels, cv=LeaveOneOut(), method="predict_proba"),
        rtol=0, atol=1e-15)
    assert model.score() == cross_val_score(model, X, labels, cv=LeaveOneOut()).mean()
    assert model.score() == np.mean(model.predict() == labels)
    sample_weight = SAMPLE_WEIGHTS[np.arange(len(X)) % len(SAMPLE_WEIGHTS)]
    model.fit(X, labels, sample_weight=sample_weight)
    np.testing.assert_array_equal(
        model.predict_proba(),
        cross_val_predict(model, X, labels, cv=LeaveOneOut(), method="predict_proba",
                          params={"sample_weight": sample_weight}))


def _repeated(X, y, sample_weight):
    return np.repeat(X, sample_weight, axis=0), np.repeat(y, sample_weight, axis=0)


@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("weights", WEIGHTS)
def test_integer_sample_weights_equal_repeated_rows(data_name, weights):
    """A row of weight w counts as w copies of it (zero: not at all), in the choice of the
    neighbours and in the vote or the mean (scikit-learn's check_sample_weight_equivalence)."""
    X, y, Q = DATA[data_name]()
    sample_weight = SAMPLE_WEIGHTS[np.arange(len(X)) % len(SAMPLE_WEIGHTS)]
    Q = np.vstack([Q, X[:8]])  # exact matches of rows of every weight, 0 included
    X_rep, y_rep = _repeated(X, y, sample_weight)
    labels, labels_rep = _as_classes(y), _as_classes(y)[np.repeat(np.arange(len(X)),
                                                                  sample_weight)]
    for k in (1, 4, 9):
        kw = {"n_neighbors": k, **weight_kwargs(weights)}
        weighted = KNNClassifier(**kw).fit(X, labels, sample_weight=sample_weight)
        repeated = KNNClassifier(**kw).fit(X_rep, labels_rep)
        np.testing.assert_allclose(weighted.predict_proba(Q), repeated.predict_proba(Q),
                                   rtol=0, atol=1e-12, err_msg=f"classifier k={k}")
        weighted = KNNRegressor(**kw).fit(X, y, sample_weight=sample_weight)
        repeated = KNNRegressor(**kw).fit(X_rep, y_rep)
        np.testing.assert_allclose(weighted.predict(Q), repeated.predict(Q),
                                   rtol=1e-12, atol=1e-12, err_msg=f"regressor k={k}")


@pytest.mark.parametrize("weights", WEIGHTS)
def test_fractional_sample_weights(weights):
    """Rows of weight 1/2 count as half a row: the k neighbours' worth of weight comes from
    2k rows, each weighing alike, so the answer is the unweighted one with 2k neighbours.
    Any positive fractional weights give finite probabilities summing to 1."""
    X, y, Q = _ties()
    labels = _as_classes(y)
    half = np.full(len(X), 0.5)
    kw = weight_kwargs(weights)
    for k in (1, 3, 6):
        np.testing.assert_allclose(
            KNNClassifier(k, **kw).fit(X, labels, sample_weight=half).predict_proba(Q),
            KNNClassifier(2 * k, **kw).fit(X, labels).predict_proba(Q), rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            KNNRegressor(k, **kw).fit(X, y, sample_weight=half).predict(Q),
            KNNRegressor(2 * k, **kw).fit(X, y).predict(Q), rtol=1e-12, atol=1e-12)
    fractional = np.random.default_rng(5).uniform(0.05, 1.7, size=len(X))
    fractional[::7] = 0.0
    proba = KNNClassifier(5, **kw).fit(X, labels, sample_weight=fractional).predict_proba(Q)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.isfinite(KNNRegressor(5, **kw).fit(X, y, sample_weight=fractional)
                              .predict(Q)))


@pytest.mark.parametrize("weights", WEIGHTS)
def test_sample_weights_in_tenths(weights):
    """Rows of weight 0.1: ten rows make one neighbour's worth, so the answer is the
    unweighted one with 10k neighbours (as with halves above, but 0.1 is inexact in binary:
    the ten tenths sum to 1 - 1.1e-16)."""
    X, y, Q = _continuous()
    kw = weight_kwargs(weights)
    tenth = np.full(len(X), 0.1)
    for k in (1, 2, 3):
        np.testing.assert_allclose(
            KNNRegressor(k, **kw).fit(X, y, sample_weight=tenth).predict(Q),
            KNNRegressor(10 * k, **kw).fit(X, y).predict(Q), rtol=1e-12, atol=1e-12,
            err_msg=f"k={k}")


def test_integer_sample_weights_allow_more_neighbours_than_rows():
    """Four rows of weight 3 are twelve rows: six neighbours can be chosen among them."""
    X, y, Q = _continuous(n=4, m=5)
    sample_weight = np.full(4, 3)
    X_rep, y_rep = _repeated(X, y, sample_weight)
    np.testing.assert_allclose(
        KNNRegressor(6).fit(X, y, sample_weight=sample_weight).predict(Q),
        KNNRegressor(6).fit(X_rep, y_rep).predict(Q), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("estimator", [KNNClassifier(5), KNNRegressor(5)], ids=repr)
def test_sample_weights_summing_below_n_neighbors_are_an_error(estimator):
    X, y, _ = _continuous(n=20)
    y = _as_classes(y) if isinstance(estimator, KNNClassifier) else y
    with pytest.raises(ValueError, match="sum to 4.75, fewer than n_neighbors=5"):
        clone(estimator).fit(X, y, sample_weight=np.full(20, 0.2375))
    clone(estimator).fit(X, y, sample_weight=np.full(20, 0.25))  # exactly 5: enough


@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("class_weight", ["balanced", {0: 1.0, 1: 3.0, 2: 0.25}],
                         ids=["balanced", "dict"])
@pytest.mark.parametrize("weights", ["uniform", "distance", "dudani"])
def test_class_weight_multiplies_the_votes(data_name, class_weight, weights):
    X, y, Q = DATA[data_name]()
    labels = _as_classes(y)
    if class_weight == "balanced":
        # n_samples / (n_classes * count of the class), by hand
        per_class = len(labels) / (3 * np.bincount(labels))
    else:
        per_class = np.array([class_weight[c] for c in range(3)])
    for k in (1, 5, 12):
        model = KNNClassifier(k, weights=weights, class_weight=class_weight).fit(X, labels)
        np.testing.assert_allclose(model.class_weight_, per_class, rtol=1e-15)
        dist, ind = reference_kneighbors(X, Q, k)
        votes = reference_weights(dist, weights) * per_class[labels[ind]]
        expected = reference_proba(labels[ind], votes, 3)
        np.testing.assert_allclose(model.predict_proba(Q), expected, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(model.predict(Q), np.argmax(expected, axis=1))


def test_balanced_class_weight_counts_sample_weights_as_copies():
    X, y, Q = _ties()
    labels = _as_classes(y)
    sample_weight = SAMPLE_WEIGHTS[np.arange(len(X)) % len(SAMPLE_WEIGHTS)]
    X_rep, labels_rep = _repeated(X, labels, sample_weight)
    weighted = KNNClassifier(7, class_weight="balanced").fit(X, labels,
                                                             sample_weight=sample_weight)
    repeated = KNNClassifier(7, class_weight="balanced").fit(X_rep, labels_rep)
    np.testing.assert_allclose(weighted.class_weight_, repeated.class_weight_, rtol=1e-12)
    np.testing.assert_allclose(weighted.predict_proba(Q), repeated.predict_proba(Q),
                               rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the division by zero behind it
def test_balanced_class_weight_with_a_class_of_zero_weight():
    """Rows of weight 0 count as no row, so a class whose rows all weigh 0 has no vote: the
    probabilities are those of the rows that weigh something, with 0 for that class."""
    X = np.arange(10.0).reshape(-1, 1)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    sample_weight = np.where(y == 2, 0.0, 1.0)
    Q = np.array([[2.0], [5.0], [8.5]])
    proba = KNNClassifier(3, class_weight="balanced").fit(
        X, y, sample_weight=sample_weight).predict_proba(Q)
    kept = sample_weight > 0
    expected = KNNClassifier(3, class_weight="balanced").fit(X[kept], y[kept]).predict_proba(Q)
    np.testing.assert_allclose(proba, np.column_stack([expected, np.zeros(len(Q))]),
                               rtol=0, atol=1e-12)


# -- NearestNeighbors ----------------------------------------------------------------------------

@pytest.mark.parametrize("metric,params", METRIC_CASES)
def test_kneighbors_and_graph_equal_reference(metric, params):
    X, _, Q = _ties()
    ours, ref = _with_data(params, X, exact=True)
    model = NearestNeighbors(**ours).fit(X)
    for k in (1, 6, 20):
        for queries, exclude_self in ((Q, False), (None, True)):
            dist, ind = model.kneighbors(queries, n_neighbors=k)
            points = X if queries is None else Q
            ref_dist, ref_ind = reference_kneighbors(X, points, k, exclude_self=exclude_self,
                                                     **ref)
            np.testing.assert_array_equal(ind, ref_ind)
            if metric == "mahalanobis":  # squares summed in another order
                np.testing.assert_allclose(dist, ref_dist, rtol=1e-14)
                ref_dist = dist
            np.testing.assert_array_equal(dist, ref_dist)
            for mode, values in (("connectivity", np.ones_like(ref_dist)),
                                 ("distance", ref_dist)):
                graph = model.kneighbors_graph(queries, n_neighbors=k, mode=mode)
                assert sparse.issparse(graph) and graph.format == "csr"
                assert graph.shape == (len(points), len(X))
                expected = np.zeros(graph.shape)
                np.put_along_axis(expected, ind, values, axis=1)
                np.testing.assert_array_equal(graph.toarray(), expected)
                # each row's entries in neighbour order
                np.testing.assert_array_equal(graph.indices.reshape(-1, k), ind)


@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("metric", SKLEARN_REGRESSOR_METRICS, ids=lambda m: m["metric"])
def test_kneighbors_and_graph_equal_sklearn_on_clear_rows(data_name, metric):
    X, _, Q = DATA[data_name]()
    ref = {"metric": metric["metric"], "p": metric.get("p", 2.0)}
    model = NearestNeighbors(**metric).fit(X)
    peer = SKLearnNearestNeighbors(algorithm="brute", **metric).fit(X)
    for k in (1, 5, 15):
        for queries, exclude_self in ((Q, False), (None, True)):
            points = X if queries is None else Q
            clear = _clear_rows(X, points, k, exclude_self=exclude_self, margin=1e-9, **ref)
            assert clear.sum() >= len(points) // 4
            dist, ind = model.kneighbors(queries, k)
            peer_dist, peer_ind = peer.kneighbors(queries, k)
            np.testing.assert_array_equal(np.sort(ind[clear], axis=1),
                                          np.sort(peer_ind[clear], axis=1))
            atol = _peer_atol(metric["metric"], X, points)
            np.testing.assert_allclose(dist[clear], peer_dist[clear], rtol=1e-9, atol=atol)
            for mode in ("connectivity", "distance"):
                ours = model.kneighbors_graph(queries, k, mode=mode).toarray()[clear]
                theirs = peer.kneighbors_graph(queries, k, mode=mode).toarray()[clear]
                # connectivity: the same neighbours; distance: the same distances (exact
                # matches are 0 here, about 1e-16 in scikit-learn's cosine and up to
                # _peer_atol in its Euclidean)
                np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=atol)


def _radius_data():
    """Half grid points with duplicates (many exactly equal distances), half continuous."""
    rng = np.random.default_rng(7)
    n, d = 260, 3
    grid = rng.random(n) < 0.5
    X = rng.integers(-2, 3, size=(n, d)) + rng.normal(size=(n, d)) * ~grid[:, None]
    X[200:230] = X[:30]
    Q = rng.integers(-2, 3, size=(40, d)) + rng.normal(size=(40, d)) * (rng.random(40) < 0.5)[
        :, None]
    Q[:8] = X[:8]
    X[np.all(X == 0, axis=1), 0] = 1.0
    Q[np.all(Q == 0, axis=1), 0] = 1.0
    return X, Q


def _gap_radii(D, quantiles=(0.02, 0.1, 0.3)):
    """Radii near the given quantiles of the distances ``D``, each in the middle of the
    widest gap between consecutive distinct distances nearby (far from every distance, so
    that any peer's rounding keeps the same points inside)."""
    values = np.unique(D[np.isfinite(D)])
    radii = []
    for q in quantiles:
        at = int(q * (len(values) - 1))
        window = slice(max(0, at - 20), min(len(values) - 1, at + 20))
        gaps = np.diff(values[window.start:window.stop + 1])
        j = window.start + int(np.argmax(gaps))
        assert values[j + 1] - values[j] > 1e-6 * values[j + 1]
        radii.append(float((values[j] + values[j + 1]) / 2))
    return radii


def _expected_rows(D, radius, exclude_self):
    """Per row, the indices within ``radius`` (reference distances ``D``), in index order."""
    inside = D <= radius
    if exclude_self:
        np.fill_diagonal(inside, False)
    return [np.flatnonzero(row) for row in inside]


def _sklearn_radius_peer(ours, X):
    # scikit-learn's trees measure distances directly (its brute Euclidean expands squares);
    # they take neither cosine nor p < 1, which its brute force measures directly
    brute = ours["metric"] == "cosine" or ours.get("p", 2.0) < 1
    return SKLearnNearestNeighbors(algorithm="brute" if brute else "ball_tree", **ours).fit(X)


def _radius_cases():
    for case in METRIC_CASES:
        metric, params = case.values
        name = METRICS[metric].name
        for engine in sorted(VALID_METRICS):
            if name in VALID_METRICS[engine]:
                yield pytest.param(metric, params, engine, id=f"{case.id}-{engine}")


@functools.cache
def _radius_reference(metric, p, self_queries):
    """Reference distances of the radius data: queries, or the training points themselves."""
    X, Q = _radius_data()
    _, ref = _with_data({"metric": metric, "p": p}, X, exact=True)
    return reference_distances(X, X if self_queries else Q, **ref)


def _check_radius_rows(ind, dist, graph, D, radius, exclude_self, sort_results):
    """Each row holds exactly the points whose reference distance is <= radius, in index
    order or (distance, index) order, with their distances; the graph holds the same."""
    for row, want in enumerate(_expected_rows(D, radius, exclude_self)):
        ref_dist = D[row, want]
        if sort_results:
            order = np.lexsort((want, ref_dist))
            want, ref_dist = want[order], ref_dist[order]
        np.testing.assert_array_equal(ind[row], want, err_msg=f"radius {radius}, row {row}")
        np.testing.assert_allclose(dist[row], ref_dist, rtol=1e-12, atol=0)
        cells = slice(graph.indptr[row], graph.indptr[row + 1])
        np.testing.assert_array_equal(graph.indices[cells], ind[row])
        np.testing.assert_array_equal(graph.data[cells], dist[row])


def _check_radius_against_sklearn(model, peer, queries, radius):
    """The same points within the radius as scikit-learn's, distances to 1e-12."""
    dist, ind = model.radius_neighbors(queries, radius)
    peer_dist, peer_ind = peer.radius_neighbors(queries, radius)
    for row in range(len(ind)):  # ours in index order; theirs in its scan order
        order = np.argsort(peer_ind[row])
        np.testing.assert_array_equal(ind[row], peer_ind[row][order])
        np.testing.assert_allclose(dist[row], peer_dist[row][order], rtol=1e-12, atol=1e-15)
    for mode in ("connectivity", "distance"):
        ours = model.radius_neighbors_graph(queries, radius, mode=mode)
        theirs = peer.radius_neighbors_graph(queries, radius, mode=mode)
        np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-12, atol=1e-15)
        assert ours.nnz == theirs.nnz


@pytest.mark.filterwarnings("ignore:Mind that for 0 < p < 1:UserWarning")
@pytest.mark.parametrize("metric,params,engine", list(_radius_cases()))
def test_radius_neighbors_equal_reference_and_sklearn(metric, params, engine):
    """Every metric of the table on every engine that searches it, queries and the training
    points (each without itself), at radii between distances (checked against scikit-learn
    too) and at a radius equal to many distances (the boundary is included)."""
    X, Q = _radius_data()
    ours, _ = _with_data(params, X, exact=True)
    model = NearestNeighbors(algorithm=engine, **ours).fit(X)
    peer = _sklearn_radius_peer(ours, X)
    for queries in (Q, None):
        exclude_self = queries is None
        D = _radius_reference(params["metric"], params.get("p", 2.0), exclude_self)
        between = _gap_radii(D)
        # distances are bit-exact but Mahalanobis's (the reference's quadratic form rounds)
        boundary = [] if metric == "mahalanobis" else [float(np.sort(D, axis=None)[D.size // 20])]
        for radius in between + boundary:
            for sort_results in (False, True):
                dist, ind = model.radius_neighbors(queries, radius, sort_results=sort_results)
                graph = model.radius_neighbors_graph(queries, radius, mode="distance",
                                                     sort_results=sort_results)
                connectivity = model.radius_neighbors_graph(queries, radius,
                                                            sort_results=sort_results)
                assert graph.shape == (len(D), len(X))
                _check_radius_rows(ind, dist, graph, D, radius, exclude_self, sort_results)
                np.testing.assert_array_equal(connectivity.indptr, graph.indptr)
                np.testing.assert_array_equal(connectivity.indices, graph.indices)
                assert np.all(connectivity.data == 1.0)
        for radius in between:
            _check_radius_against_sklearn(model, peer, queries, radius)


def test_radius_neighbors_without_return_distance_and_zero_radius():
    X, Q = _radius_data()
    model = NearestNeighbors(radius=0.0).fit(X)
    ind = model.radius_neighbors(Q, return_distance=False)
    D = reference_distances(X, Q)
    for row, want in zip(ind, _expected_rows(D, 0.0, False), strict=True):
        np.testing.assert_array_equal(row, want)
    assert sum(len(row) for row in ind) >= 8  # the queries equal to training rows


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_radius_over_the_pair_budget_fails_before_allocating(engine):
    """A radius covering everything: the answer would hold 10^8 pairs (1.6 GB); with a budget
    of 10,000 pairs the engine stops and says so, without allocating the answer."""
    rng = np.random.default_rng(3)
    X = rng.random((20_000, 2))
    Q = rng.random((5_000, 2))
    index = ENGINES[engine](X, resolve_metric("euclidean", 2, None, X))
    offsets, _, ind = index.query_radius(Q[:5], 10.0, max_pairs=200_000)
    assert offsets[-1] == 5 * len(X) and len(ind) == 5 * len(X)  # within the budget: answered
    with PeakMemory() as peak, pytest.raises(ValueError, match="more than 10,000 .* pairs"):
        index.query_radius(Q, 10.0, max_pairs=10_000)
    assert peak.bytes < 64 << 20


@pytest.mark.parametrize("engine", [e for e in sorted(VALID_METRICS)
                                    if "minkowski" in VALID_METRICS[e]])
def test_radius_whose_pth_power_overflows(engine):
    """Points at 1e200 and a radius of 2e200 with p=3: the distances are representable (the
    definition measures such pairs with scaled differences), the radius's cube is not."""
    X = np.array([[0.0], [1e200], [3e200]])
    model = NearestNeighbors(metric="minkowski", p=3, algorithm=engine).fit(X)
    dist, ind = model.radius_neighbors([[0.0]], radius=2e200, sort_results=True)
    ref = reference_distances(X, [[0.0]], "minkowski", 3.0)[0]
    np.testing.assert_array_equal(ind[0], [0, 1])
    np.testing.assert_array_equal(dist[0], ref[:2])


def test_radius_budget_reaches_the_estimator(monkeypatch):
    X = np.random.default_rng(4).random((3_000, 2))
    model = NearestNeighbors(radius=10.0).fit(X)
    assert model.radius_neighbors_graph(X[:10]).nnz == 10 * len(X)
    monkeypatch.setattr(nearkit.search._index, "default_max_pairs", lambda: 1_000)
    with pytest.raises(ValueError, match="more than 1,000"):
        model.radius_neighbors()
    with pytest.raises(ValueError, match="more than 1,000"):
        model.radius_neighbors_graph(X)


# -- KNNImputer ----------------------------------------------------------------------------------

def _with_missing(seed, n, d=5, share=0.1, missing=np.nan):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    X[rng.random(X.shape) < share] = missing
    return X


@pytest.mark.parametrize("params", [
    {}, {"weights": "distance"}, {"n_neighbors": 1}, {"n_neighbors": 12, "weights": "distance"},
    {"add_indicator": True}, {"weights": "distance", "add_indicator": True},
], ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()) or "default")
def test_imputer_equals_sklearn(params):
    train, test = _with_missing(0, 300), _with_missing(1, 120)
    ours = KNNImputer(**params).fit(train)
    theirs = SKLearnKNNImputer(**params).fit(train)
    out = ours.transform(test)
    assert not np.isnan(out).any()
    np.testing.assert_allclose(out, theirs.transform(test), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(KNNImputer(**params).fit_transform(train),
                               SKLearnKNNImputer(**params).fit_transform(train),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("keep_empty_features", [False, True])
def test_imputer_all_missing_column(keep_empty_features):
    train, test = _with_missing(2, 200), _with_missing(3, 50)
    train[:, 2] = np.nan
    kw = {"keep_empty_features": keep_empty_features, "add_indicator": True}
    out = KNNImputer(**kw).fit(train).transform(test)
    expected = SKLearnKNNImputer(**kw).fit(train).transform(test)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_imputer_missing_values_as_a_number():
    train, test = _with_missing(4, 200, missing=-1.0), _with_missing(5, 60, missing=-1.0)
    assert np.sum(test == -1.0) > 10
    for weights in ("uniform", "distance"):
        out = KNNImputer(missing_values=-1.0, weights=weights).fit(train).transform(test)
        expected = SKLearnKNNImputer(missing_values=-1, weights=weights).fit(train) \
            .transform(test)
        assert not np.any(out == -1.0)
        np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_imputer_rows_without_a_common_coordinate_get_the_column_mean():
    """Donors for column 0 never have column 2; a row with only column 2 (and a row with
    nothing) shares no coordinate with them: column 0 gets its training mean."""
    rng = np.random.default_rng(6)
    train = rng.normal(size=(40, 3))
    train[:20, 2] = np.nan
    train[20:, 0] = np.nan
    test = np.array([[np.nan, np.nan, 0.3], [np.nan, np.nan, np.nan], [np.nan, 0.2, 0.1]])
    out = KNNImputer(n_neighbors=3).fit(train).transform(test)
    np.testing.assert_allclose(out, SKLearnKNNImputer(n_neighbors=3).fit(train).transform(test),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[:2, 0], np.nanmean(train[:, 0]), rtol=1e-12)


def test_imputer_threads_give_identical_output(monkeypatch):
    train, test = _with_missing(7, 3000), _with_missing(8, 400)
    rows = np.isnan(test).any(axis=1).sum()
    assert rows * train.size >= nearkit.impute.SERIAL_IMPUTE_WORK  # big enough for threads
    one = KNNImputer(weights="distance", n_jobs=1).fit(train).transform(test)
    calls = []
    original = nearkit.impute.run_ranges
    monkeypatch.setattr(nearkit.impute, "run_ranges",
                        lambda *a, **kw: calls.append(a[3]) or original(*a, **kw))
    two = KNNImputer(weights="distance", n_jobs=2).fit(train).transform(test)
    assert calls == [2]
    np.testing.assert_array_equal(one, two)
    # a small batch stays on the calling thread
    KNNImputer(n_jobs=2).fit(train[:100]).transform(test[:20])
    assert 20 * train[:100].size < nearkit.impute.SERIAL_IMPUTE_WORK
    assert calls == [2, 1]


def test_imputer_with_fewer_donors_than_n_neighbors():
    """A cell with fewer donors than n_neighbors takes the mean of those it has (as
    scikit-learn does), whatever training row 0 holds."""
    train = np.array([[1.0, np.nan], [2.0, 3.0], [3.0, 5.0]])
    for weights in ("uniform", "distance"):
        out = KNNImputer(weights=weights).fit(train).transform([[2.5, np.nan]])
        np.testing.assert_allclose(out, [[2.5, 4.0]], rtol=1e-12)
    np.testing.assert_allclose(KNNImputer().fit_transform(train),
                               SKLearnKNNImputer().fit_transform(train), rtol=1e-12)
    # the same on a larger set: a column present in 8 rows, 12 neighbours asked for
    train, test = _with_missing(15, 200), _with_missing(16, 60)
    train[8:, 3] = np.nan
    train[0, 3] = np.nan
    out = KNNImputer(n_neighbors=12).fit(train).transform(test)
    np.testing.assert_allclose(out, SKLearnKNNImputer(n_neighbors=12).fit(train).transform(test),
                               rtol=1e-10, atol=1e-10)


def _inverse_one_plus(dist):
    return 1.0 / (1.0 + dist)


def test_imputer_callable_weights():
    train, test = _with_missing(9, 200), _with_missing(10, 60)
    out = KNNImputer(weights=_inverse_one_plus).fit(train).transform(test)
    expected = SKLearnKNNImputer(weights=_inverse_one_plus).fit(train).transform(test)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    assert not np.allclose(out, KNNImputer().fit(train).transform(test))  # weights mattered


# -- KNNOutlierDetector against PyOD -------------------------------------------------------------

def _outlier_data(data_name):
    X, _, Q = DATA[data_name]()
    rng = np.random.default_rng(11)
    far = rng.normal(size=(12, X.shape[1])) * 3
    return np.vstack([X, far]), np.vstack([Q, far[:4] + 0.5])


@pytest.mark.parametrize("data_name", sorted(DATA))
@pytest.mark.parametrize("method", ["largest", "mean", "median"])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
def test_outlier_scores_equal_pyod(data_name, method, metric):
    knn = pytest.importorskip("pyod.models.knn")
    X, Q = _outlier_data(data_name)
    for k, contamination in ((1, 0.05), (5, 0.1), (10, 0.2)):
        kw = {"n_neighbors": k, "method": method, "contamination": contamination,
              "metric": metric}
        peer = knn.KNN(**kw).fit(X)
        detector = KNNOutlierDetector(**kw).fit(X)
        np.testing.assert_allclose(detector.decision_scores_, peer.decision_scores_,
                                   rtol=1e-12, atol=1e-14)
        assert detector.threshold_ == pytest.approx(peer.threshold_, rel=1e-12, abs=1e-14)
        labels = KNNOutlierDetector(**kw).fit_predict(X)
        np.testing.assert_array_equal(labels, np.where(peer.labels_ == 1, -1, 1))
        # the share of outliers is the contamination when scores are distinct; equal scores
        # at the threshold are all inliers (PyOD's rule: a score above the threshold)
        share = np.mean(labels == -1)
        assert share <= contamination + 1 / len(X)
        if data_name == "continuous":
            assert share >= contamination - 1 / len(X)
        novelty = KNNOutlierDetector(novelty=True, **kw).fit(X)
        np.testing.assert_allclose(-novelty.score_samples(Q), peer.decision_function(Q),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(novelty.predict(Q), np.where(peer.predict(Q) == 1, -1, 1))
        np.testing.assert_allclose(novelty.decision_function(Q),
                                   peer.threshold_ - peer.decision_function(Q),
                                   rtol=1e-12, atol=1e-12)


def test_outlier_scores_equal_reference():
    """Scores from the reference distances, training points without themselves."""
    X, Q = _outlier_data("ties")
    for method, reduce in (("largest", lambda d: d[:, -1]), ("mean", lambda d: d.mean(axis=1)),
                           ("median", lambda d: np.median(d, axis=1))):
        detector = KNNOutlierDetector(6, method=method, novelty=True).fit(X)
        train_dist, _ = reference_kneighbors(X, X, 6, exclude_self=True)
        np.testing.assert_allclose(detector.decision_scores_, reduce(train_dist), rtol=1e-15)
        test_dist, _ = reference_kneighbors(X, Q, 6)
        np.testing.assert_allclose(-detector.score_samples(Q), reduce(test_dist), rtol=1e-15)


# -- the scikit-learn machinery: Pipeline, GridSearchCV, clone, pickle -----------------------

def _nn_score(estimator, X, y=None):
    return -float(estimator.kneighbors(X)[0].mean())


def _imputation_score(estimator, X, y=None):
    """Minus the squared error of imputing a tenth of the observed cells, hidden."""
    hidden = ~np.isnan(X) & (np.random.default_rng(0).random(X.shape) < 0.1)
    imputed = estimator.transform(np.where(hidden, np.nan, X))
    return -float(np.mean((imputed[hidden] - X[hidden]) ** 2))


def _outlier_auc(estimator, X, y):
    return roc_auc_score(y, -estimator.score_samples(X))


def _family_case(name):
    """(estimator, fit arguments, output of a fitted one on queries, grid, scoring)."""
    X, y, Q = _continuous(n=150)
    if name == "classifier":
        return (KNNClassifier(5), (X, _as_classes(y)), lambda m, q: m.predict_proba(q), Q,
                {"n_neighbors": [1, 5, 15], "weights": ["uniform", "distance"]}, None)
    if name == "regressor":
        return (KNNRegressor(5), (X, y), lambda m, q: m.predict(q), Q,
                {"n_neighbors": [1, 5, 15], "weights": ["uniform", "dudani"]}, None)
    if name == "nearest_neighbors":
        return (NearestNeighbors(n_neighbors=3), (X,), lambda m, q: np.hstack(m.kneighbors(q)),
                Q, {"metric": ["euclidean", "manhattan", "chebyshev"]}, _nn_score)
    if name == "imputer":
        train, test = _with_missing(12, 150), _with_missing(13, 40)
        return (KNNImputer(), (train,), lambda m, q: m.transform(q), test,
                {"n_neighbors": [1, 4, 9], "weights": ["uniform", "distance"]},
                _imputation_score)
    assert name == "outliers"
    X_out, _ = _outlier_data("continuous")
    labels = np.r_[np.zeros(len(X_out) - 12), np.ones(12)]
    order = np.random.default_rng(14).permutation(len(X_out))
    return (KNNOutlierDetector(5, novelty=True), (X_out[order], labels[order]),
            lambda m, q: m.score_samples(q), Q,
            {"n_neighbors": [1, 5, 15], "method": ["largest", "mean"]}, _outlier_auc)


FAMILY = ["classifier", "regressor", "nearest_neighbors", "imputer", "outliers"]


@pytest.mark.parametrize("name", FAMILY)
def test_in_a_pipeline_with_a_scaler(name):
    estimator, fit_args, output, Q, _, _ = _family_case(name)
    pipeline = make_pipeline(StandardScaler(), clone(estimator)).fit(*fit_args)
    scaler = StandardScaler().fit(fit_args[0])
    alone = clone(estimator).fit(scaler.transform(fit_args[0]), *fit_args[1:])
    step = pipeline[-1]
    np.testing.assert_array_equal(output(step, scaler.transform(Q)), output(alone,
                                                                            scaler.transform(Q)))
    if hasattr(pipeline, "predict"):
        np.testing.assert_array_equal(pipeline.predict(Q), alone.predict(scaler.transform(Q)))
    if name == "imputer":
        np.testing.assert_array_equal(pipeline.transform(Q), alone.transform(scaler.transform(Q)))


@pytest.mark.parametrize("name", FAMILY)
def test_in_grid_search(name):
    """GridSearchCV picks the candidate with the best mean score of the same folds, computed
    here one candidate at a time."""
    estimator, fit_args, _, _, grid, scoring = _family_case(name)
    cv = KFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(estimator, grid, cv=cv, scoring=scoring).fit(*fit_args)
    means = []
    for params in search.cv_results_["params"]:
        means.append(cross_val_score(clone(estimator).set_params(**params), *fit_args, cv=cv,
                                     scoring=scoring).mean())
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], means, rtol=1e-12)
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(means))]
    assert len(set(np.round(means, 12))) > 1  # the grid matters: a wrong pick would show


@pytest.mark.parametrize("name", FAMILY)
def test_clone_and_pickle(name):
    estimator, fit_args, output, Q, _, _ = _family_case(name)
    fitted = clone(estimator).fit(*fit_args)
    expected = output(fitted, Q)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(output(restored, Q), expected)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        output(copy, Q)
    np.testing.assert_array_equal(output(copy.fit(*fit_args), Q), expected)
