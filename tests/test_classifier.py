"""KNNClassifier against the plain float64 reference and against scikit-learn."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from reference import reference_kneighbors, reference_predict, reference_weights
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nearkit import KNNClassifier
from nearkit.search import ENGINES, VALID_METRICS

# (nearkit metric kwargs, reference kwargs)
METRICS = {
    "euclidean": ({"metric": "euclidean"}, {"metric": "euclidean"}),
    "manhattan": ({"metric": "manhattan"}, {"metric": "manhattan"}),
    "chebyshev": ({"metric": "chebyshev"}, {"metric": "chebyshev"}),
    "minkowski_0.5": ({"metric": "minkowski", "p": 0.5}, {"metric": "minkowski", "p": 0.5}),
    "minkowski_3": ({"metric": "minkowski", "p": 3}, {"metric": "minkowski", "p": 3.0}),
}
WEIGHTS = ["uniform", "distance", "dudani", "gaussian", "gaussian_sigma", "callable"]


def inverse_square(dist):
    return 1.0 / (1.0 + dist**2)


def weight_kwargs(name):
    if name == "gaussian_sigma":
        return {"weights": "gaussian", "sigma": 0.7}
    if name == "callable":
        return {"weights": inverse_square}
    return {"weights": name}


def ref_weight_kwargs(name):
    kw = weight_kwargs(name)
    return {"weights": kw["weights"], "sigma": kw.get("sigma")}


def fit_or_skip(X, y, **params):
    """Fit, or skip when the chosen engine does not search the metric (VALID_METRICS)."""
    model = KNNClassifier(**params)
    effective = {"minkowski": "minkowski"}.get(params["metric"], params["metric"])
    if effective not in VALID_METRICS[params["algorithm"]]:
        pytest.skip(f"{params['algorithm']} does not search {effective}")
    return model.fit(X, y)


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@pytest.mark.parametrize("data_name", ["gaussian_data", "tie_data"])
@pytest.mark.parametrize("metric", sorted(METRICS))
def test_kneighbors_equal_reference(request, data_name, metric, algorithm):
    X, y, Q = request.getfixturevalue(data_name)
    ours, ref = METRICS[metric]
    model = fit_or_skip(X, y, n_neighbors=15, algorithm=algorithm, **ours)
    for k in (1, 3, 5, 15):
        dist, ind = model.kneighbors(Q, n_neighbors=k)
        ref_dist, ref_ind = reference_kneighbors(X, Q, k, **ref)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)
        dist, ind = model.kneighbors(n_neighbors=k)
        ref_dist, ref_ind = reference_kneighbors(X, X, k, exclude_self=True, **ref)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.parametrize("data_name", ["gaussian_data", "tie_data"])
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("metric", sorted(METRICS))
def test_predictions_equal_reference(request, data_name, metric, weights):
    X, y, Q = request.getfixturevalue(data_name)
    ours, ref = METRICS[metric]
    for k in (1, 3, 5, 15):
        model = KNNClassifier(k, **ours, **weight_kwargs(weights)).fit(X, y)
        ref_pred, ref_proba = reference_predict(X, y, Q, k, **ref, **ref_weight_kwargs(weights))
        np.testing.assert_allclose(model.predict_proba(Q), ref_proba, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(model.predict(Q), ref_pred)


@pytest.mark.parametrize("source", ["learned", "V", "VI"])
def test_mahalanobis_equals_quadratic_form(gaussian_data, source):
    X, y, Q = gaussian_data
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 4))
    V = A @ A.T + 0.5 * np.eye(4)
    params = {"learned": None, "V": {"V": V}, "VI": {"VI": np.linalg.inv(V)}}[source]
    VI = np.linalg.inv(np.cov(X, rowvar=False)) if source == "learned" else np.linalg.inv(V)
    model = KNNClassifier(5, metric="mahalanobis", metric_params=params).fit(X, y)
    np.testing.assert_allclose(model.effective_metric_params_["VI"], VI, rtol=1e-10)
    ref_dist, ref_ind = reference_kneighbors(X, Q, 15, metric="mahalanobis", VI=VI)
    for algorithm in sorted(ENGINES):
        dist, ind = model.set_params(algorithm=algorithm).fit(X, y).kneighbors(Q, n_neighbors=15)
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-10)
        np.testing.assert_array_equal(ind, ref_ind)  # continuous data: no near-ties
    model.set_params(algorithm="auto").fit(X, y)
    for weights in WEIGHTS:
        model.set_params(**weight_kwargs(weights))
        ref_pred, ref_proba = reference_predict(X, y, Q, 5, metric="mahalanobis", VI=VI,
                                                **ref_weight_kwargs(weights))
        np.testing.assert_allclose(model.predict_proba(Q), ref_proba, atol=1e-9)
        np.testing.assert_array_equal(model.predict(Q), ref_pred)


def test_mahalanobis_singular_covariance_warns_with_rank():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 3))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])  # rank 3 of 4
    y = rng.integers(0, 2, 50)
    with pytest.warns(UserWarning, match=r"rank 3 < 4"):
        model = KNNClassifier(3, metric="mahalanobis").fit(X, y)
    VI = np.linalg.pinv(np.cov(X, rowvar=False))
    dist, ind = model.kneighbors(X[:10])
    ref_dist, ref_ind = reference_kneighbors(X, X[:10], 3, metric="mahalanobis", VI=VI)
    np.testing.assert_allclose(dist, ref_dist, atol=1e-9)
    np.testing.assert_array_equal(ind, ref_ind)


# scikit-learn orders equal distances arbitrarily (checked: it does not use the index), so
# the comparison keeps the rows whose k-th and (k+1)-th reference distances differ: there the
# neighbour *set* is unambiguous and the vote must agree.
SKLEARN_SAME = [
    ({"metric": "euclidean"}, {"metric": "euclidean"}),
    ({"metric": "manhattan"}, {"metric": "manhattan"}),
    ({"metric": "chebyshev"}, {"metric": "chebyshev"}),
    ({"metric": "minkowski", "p": 3}, {"metric": "minkowski", "p": 3}),
    ({"metric": "minkowski", "p": 1.5}, {"metric": "minkowski", "p": 1.5}),
]


@pytest.mark.parametrize("weights", ["uniform", "distance", "callable"])
@pytest.mark.parametrize("metric_pair", SKLEARN_SAME, ids=lambda m: str(m[0]))
def test_equal_to_sklearn(gaussian_data, weights, metric_pair):
    X, y, Q = gaussian_data
    ours, theirs = metric_pair
    for k in (1, 3, 5, 15):
        wk = weight_kwargs(weights)
        model = KNNClassifier(k, **ours, **wk).fit(X, y)
        peer = KNeighborsClassifier(k, algorithm="brute", **theirs, **wk).fit(X, y)
        ref_dist, _ = reference_kneighbors(X, Q, k + 1, **theirs)
        clear = ref_dist[:, k - 1] < ref_dist[:, k]
        assert clear.sum() > len(Q) // 3
        np.testing.assert_array_equal(model.predict(Q)[clear], peer.predict(Q)[clear])
        np.testing.assert_allclose(model.predict_proba(Q)[clear], peer.predict_proba(Q)[clear],
                                   rtol=0, atol=1e-9)
        np.testing.assert_allclose(model.kneighbors(Q)[0], peer.kneighbors(Q)[0], atol=1e-9)


@pytest.mark.parametrize("metric_pair", SKLEARN_SAME, ids=lambda m: str(m[0]))
def test_tie_distances_equal_sklearn(tie_data, metric_pair):
    X, y, Q = tie_data
    ours, theirs = metric_pair
    model = KNNClassifier(15, **ours).fit(X, y)
    peer = KNeighborsClassifier(15, algorithm="brute", **theirs).fit(X, y)
    np.testing.assert_allclose(model.kneighbors(Q)[0], peer.kneighbors(Q)[0], atol=1e-12)


def test_mahalanobis_equal_to_sklearn(gaussian_data):
    X, y, Q = gaussian_data
    VI = np.linalg.inv(np.cov(X, rowvar=False))
    for weights in ("uniform", "distance"):
        model = KNNClassifier(5, metric="mahalanobis", weights=weights).fit(X, y)
        peer = KNeighborsClassifier(5, metric="mahalanobis", metric_params={"VI": VI},
                                    algorithm="brute", weights=weights).fit(X, y)
        np.testing.assert_array_equal(model.predict(Q), peer.predict(Q))
        np.testing.assert_allclose(model.predict_proba(Q), peer.predict_proba(Q), atol=1e-9)


def test_string_labels_and_multiclass(gaussian_data):
    X, y, Q = gaussian_data
    labels = np.array(["cat", "dog", "emu"])[y]
    model = KNNClassifier(5).fit(X, labels)
    np.testing.assert_array_equal(model.classes_, ["cat", "dog", "emu"])
    numeric = KNNClassifier(5).fit(X, y)
    np.testing.assert_array_equal(model.predict(Q), labels[0:0].dtype.type("") +
                                  np.array(["cat", "dog", "emu"])[numeric.predict(Q)])
    assert model.score(X, labels) == numeric.score(X, y)


def test_vote_ties_go_to_smallest_label():
    X = np.array([[0.0], [1.0], [-1.0], [2.0]])
    y = np.array([7, 3, 7, 3])
    model = KNNClassifier(2).fit(X, y)  # neighbours of 0.5: index 0 (7) and 1 (3)
    assert model.predict([[0.5]])[0] == 3
    np.testing.assert_array_equal(model.predict_proba([[0.5]]), [[0.5, 0.5]])


def test_exact_ties_prefer_lower_index():
    X = np.array([[1.0], [-1.0], [1.0], [-1.0], [3.0]])
    model = KNNClassifier(3).fit(X, [0, 1, 0, 1, 0])
    dist, ind = model.kneighbors([[0.0]])
    np.testing.assert_array_equal(ind, [[0, 1, 2]])
    np.testing.assert_array_equal(dist, [[1.0, 1.0, 1.0]])


def test_kneighbors_none_excludes_self_even_with_duplicates():
    X = np.zeros((6, 2))
    model = KNNClassifier(2).fit(X, [0, 1, 0, 1, 0, 1])
    ind = model.kneighbors(return_distance=False)
    for i, row in enumerate(ind):
        assert i not in row
        np.testing.assert_array_equal(row, [j for j in range(6) if j != i][:2])


def test_distance_weights_exact_match():
    X = np.array([[0.0], [1.0], [0.0], [5.0]])
    model = KNNClassifier(3, weights="distance").fit(X, [1, 0, 1, 0])
    np.testing.assert_array_equal(model.predict_proba([[0.0]]), [[0.0, 1.0]])


def test_gaussian_tiny_sigma_gives_nearest_class():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    for sigma in (1e-3, 1e-200):
        model = KNNClassifier(4, weights="gaussian", sigma=sigma).fit(X, [0, 1, 1, 1])
        proba = model.predict_proba([[0.4]])
        assert np.all(np.isfinite(proba))
        np.testing.assert_array_equal(proba, [[1.0, 0.0]])
    wide = KNNClassifier(4, weights="gaussian", sigma=1e6).fit(X, [0, 1, 1, 1])
    np.testing.assert_allclose(wide.predict_proba([[0.4]]), [[0.25, 0.75]], atol=1e-9)


def test_dudani_weights():
    w = reference_weights(np.array([[1.0, 2.0, 5.0], [2.0, 2.0, 2.0]]), "dudani")
    np.testing.assert_allclose(w, [[1.0, 0.75, 0.0], [1.0, 1.0, 1.0]])
    model = KNNClassifier(3, weights="dudani").fit([[1.0], [2.0], [5.0]], [0, 1, 1])
    np.testing.assert_allclose(model.predict_proba([[0.0]]), [[1 / 1.75, 0.75 / 1.75]])


def test_all_zero_weights_raise():
    def zero(dist):
        return np.zeros_like(dist)

    model = KNNClassifier(2, weights=zero).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(ValueError, match="weights of query 0 are zero.*a weights callable"):
        model.predict([[0.2]])


def test_single_row_votes_equal_batch_votes():
    """One row takes its own vote path: the same sums, in the same order, as in a batch."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(400, 3)), rng.integers(0, 12, 400)
    Q = rng.normal(size=(40, 3))
    for weights in ("uniform", "distance", "gaussian"):
        model = KNNClassifier(25, weights=weights).fit(X, y)
        batch = model.predict_proba(Q)
        rows = np.vstack([model.predict_proba(Q[i:i + 1]) for i in range(len(Q))])
        np.testing.assert_array_equal(rows, batch)


def test_class_sums_equal_the_plain_loop_across_the_cached_batch_size():
    """The votes' per-class sums (first cells from a cache up to 4,096 queries, computed
    beyond it) equal the plain loop's, counts and weights, for every batch size around the
    cache's limit and several class counts."""
    from nearkit.weights import _CACHED_ROWS, _class_sums

    rng = np.random.default_rng(14)
    for n in (1, 2, 80, _CACHED_ROWS, _CACHED_ROWS + 1):
        for n_classes in (1, 2, 5):
            labels = rng.integers(0, n_classes, size=(n, 7))
            weights = rng.random((n, 7))
            counts = np.zeros((n, n_classes), dtype=np.int64)
            sums = np.zeros((n, n_classes))
            for i in range(n):
                for j in range(7):
                    counts[i, labels[i, j]] += 1
                    sums[i, labels[i, j]] += weights[i, j]
            np.testing.assert_array_equal(_class_sums(labels, n_classes), counts)
            np.testing.assert_array_equal(_class_sums(labels, n_classes, weights.ravel()), sums)


def test_minkowski_aliases_resolve():
    X, y = [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [0, 1, 0]
    for p, name in ((1, "manhattan"), (2, "euclidean"), (np.inf, "chebyshev")):
        assert KNNClassifier(1, metric="minkowski", p=p).fit(X, y).effective_metric_ == name
    model = KNNClassifier(1, metric="minkowski", p=0.5).fit(X, y)
    assert (model.effective_metric_, model.effective_metric_params_) == ("minkowski", {"p": 0.5})
    for alias, name in (("cityblock", "manhattan"), ("l1", "manhattan"),
                        ("infinity", "chebyshev"), ("l2", "euclidean")):
        assert KNNClassifier(1, metric=alias).fit(X, y).effective_metric_ == name


def test_results_do_not_depend_on_threads(gaussian_data):
    X, y, Q = gaussian_data
    one = KNNClassifier(7, n_jobs=1).fit(X, y).kneighbors(Q)
    every = KNNClassifier(7, n_jobs=-1).fit(X, y).kneighbors(Q)
    np.testing.assert_array_equal(one[1], every[1])
    np.testing.assert_array_equal(one[0], every[0])


def test_sklearn_integration(gaussian_data):
    X, y, Q = gaussian_data
    pipe = make_pipeline(StandardScaler(), KNNClassifier(5, weights="dudani"))
    pipe.fit(X, y)
    assert pipe.score(X, y) > 0.4
    grid = GridSearchCV(KNNClassifier(), {"n_neighbors": [1, 5, 15],
                                          "weights": ["uniform", "gaussian"]}, cv=3)
    grid.fit(X, y)
    # the grid's choice is the best mean accuracy of the same folds computed by hand
    scores = {(k, w): cross_val_score(KNNClassifier(k, weights=w), X, y, cv=3).mean()
              for k in (1, 5, 15) for w in ("uniform", "gaussian")}
    best = max(scores, key=scores.get)
    assert (grid.best_params_["n_neighbors"], grid.best_params_["weights"]) == best
    assert grid.best_score_ == scores[best]
    model = KNNClassifier(5, metric="mahalanobis").fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(Q), model.predict_proba(Q))
    cloned = clone(model)
    assert cloned.get_params() == model.get_params()
    assert not hasattr(cloned, "classes_")


def test_feature_names_recorded():
    import pandas as pd

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0], "b": [1.0, 0.0, 1.0]})
    model = KNNClassifier(1).fit(frame, [0, 1, 0])
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b"])
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(frame.to_numpy())


def test_uniform_majority_equals_the_probabilities_argmax():
    """predict's plain-majority path (uniform weights, no sample or class weights) answers
    what the argmax of predict_proba answers: batches, single rows, leave-one-out, vote
    ties (k=4 on three classes) and string labels."""
    rng = np.random.default_rng(7)
    X = rng.integers(0, 4, size=(120, 3)).astype(float)
    y = np.array(["b", "a", "c"])[rng.integers(0, 3, 120)]
    for k in (1, 4, 5):
        model = KNNClassifier(k).fit(X, y)
        Q = rng.integers(0, 4, size=(40, 3)) + 0.5 * rng.random((40, 3))
        expected = model.classes_[np.argmax(model.predict_proba(Q), axis=1)]
        np.testing.assert_array_equal(model.predict(Q), expected)
        np.testing.assert_array_equal(model.predict(Q[3:4]), expected[3:4])
        loo = model.classes_[np.argmax(model.predict_proba(), axis=1)]
        np.testing.assert_array_equal(model.predict(), loo)
        np.testing.assert_array_equal(model.predict(Q), reference_predict(X, y, Q, k)[0])
