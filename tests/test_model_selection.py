"""KNNClassifierCV and KNNRegressorCV equal GridSearchCV over the same grid, exactly."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.model_selection import GridSearchCV, KFold, LeaveOneOut, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nearkit import KNNClassifier, KNNRegressor
from nearkit.model_selection import KNNClassifierCV, KNNRegressorCV


def _scaled(X, decimals=None):
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X if decimals is None else np.round(X, decimals)


@pytest.fixture(scope="module")
def datasets():
    """Continuous data, and data rounded to one decimal: exact distance ties across k and
    vote ties."""
    cancer_X, cancer_y = load_breast_cancer(return_X_y=True)
    iris_X, iris_y = load_iris(return_X_y=True)
    wine_X, wine_y = load_wine(return_X_y=True)
    return {
        "cancer-ties": (_scaled(cancer_X, 1), cancer_y),
        "iris": (iris_X, iris_y),  # many duplicate rows
        "wine": (_scaled(wine_X), wine_y),
    }


def assert_same_results(ours, grid):
    """The scores, ranks and choice of GridSearchCV (times are measured, so they differ)."""
    for key in grid.cv_results_:
        if key.endswith("_time"):
            continue
        assert key in ours.cv_results_, key
        got, want = ours.cv_results_[key], grid.cv_results_[key]
        if key == "params":
            assert got == want
        elif key.startswith("param_"):
            assert list(got) == list(want) and np.array_equal(np.ma.getmaskarray(got),
                                                              np.ma.getmaskarray(want))
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)
    assert ours.best_params_ == grid.best_params_
    assert ours.best_index_ == grid.best_index_
    assert ours.best_score_ == grid.best_score_


GRID = {"n_neighbors": [1, 2, 3, 5, 8, 12],
        "weights": ["uniform", "distance", "dudani", "gaussian"], "sigma": [None, 0.8]}


@pytest.mark.parametrize("name, scoring", [
    ("cancer-ties", None), ("cancer-ties", "roc_auc"), ("cancer-ties", "neg_log_loss"),
    ("cancer-ties", "f1"), ("iris", None), ("iris", "f1_macro"), ("wine", "roc_auc_ovr"),
    ("wine", "balanced_accuracy"),
])
def test_classifier_equals_grid_search(datasets, name, scoring):
    X, y = datasets[name]
    ours = KNNClassifierCV(**GRID, metric=["euclidean", "manhattan"], scoring=scoring).fit(X, y)
    grid = GridSearchCV(KNNClassifier(), ours.param_grid_, scoring=scoring).fit(X, y)
    assert_same_results(ours, grid)
    np.testing.assert_array_equal(ours.predict_proba(X[:20]), grid.predict_proba(X[:20]))
    assert ours.score(X, y) == grid.score(X, y)


@pytest.mark.parametrize("cv", [KFold(4, shuffle=True, random_state=0), StratifiedKFold(3),
                                "custom", "loo"])
def test_splitters(datasets, cv):
    X, y = datasets["cancer-ties"]
    X, y = X[:100], y[:100]
    if cv == "custom":
        rng = np.random.default_rng(0)
        cv = [(np.flatnonzero(mask), np.flatnonzero(~mask))
              for mask in (rng.random(100) < 0.7 for _ in range(3))]
    ours = KNNClassifierCV(n_neighbors=[1, 2, 5, 9], weights=["uniform", "distance", "dudani"],
                           metric=["euclidean", "chebyshev"], cv=cv).fit(X, y)
    grid = GridSearchCV(KNNClassifier(), ours.param_grid_,
                        cv=LeaveOneOut() if cv == "loo" else cv).fit(X, y)
    assert_same_results(ours, grid)


def test_sample_weight_in_fits_and_scores(datasets):
    X, y = datasets["cancer-ties"]
    weights = np.random.default_rng(1).integers(0, 4, len(y)).astype(float)
    ours = KNNClassifierCV(n_neighbors=[1, 2, 4, 8], weights=["uniform", "dudani", "gaussian"],
                           class_weight="balanced").fit(X, y, sample_weight=weights)
    grid = GridSearchCV(KNNClassifier(class_weight="balanced"), ours.param_grid_)
    assert_same_results(ours, grid.fit(X, y, sample_weight=weights))


@pytest.mark.parametrize("scoring, cv", [(None, 5), ("neg_mean_squared_error", 5),
                                         ("neg_mean_absolute_error", "loo")])
def test_regressor_equals_grid_search(datasets, scoring, cv):
    X, _ = datasets["cancer-ties"]
    rows = 80 if cv == "loo" else 200  # GridSearchCV's leave-one-out fits once per row
    X, y = X[:rows, 1:], X[:rows, 0] * 2 + X[:rows, 3]
    weights = np.random.default_rng(2).integers(1, 3, len(y)).astype(float)
    ours = KNNRegressorCV(n_neighbors=[1, 2, 5, 10], weights=["uniform", "distance", "gaussian"],
                          metric=["euclidean", "minkowski"], p=3, scoring=scoring, cv=cv)
    ours.fit(X, y, sample_weight=weights)
    grid = GridSearchCV(KNNRegressor(p=3), ours.param_grid_, scoring=scoring,
                        cv=LeaveOneOut() if cv == "loo" else cv)
    assert_same_results(ours, grid.fit(X, y, sample_weight=weights))
    np.testing.assert_array_equal(ours.predict(X[:10]), grid.predict(X[:10]))


def test_loo_refuses_a_scorer_undefined_on_one_sample(datasets):
    X, y = datasets["wine"]
    with pytest.raises(ValueError, match="cv='loo' scores each one-row split"):
        KNNClassifierCV(n_neighbors=[1, 3], cv="loo", scoring="roc_auc_ovr").fit(X, y)


def test_one_search_per_metric_and_fold(datasets, monkeypatch):
    """The point of the estimator: 5 folds x 2 metrics = 10 searches for 96 candidates."""
    from nearkit.search._index import Index

    X, y = datasets["wine"]
    calls = []
    original = Index.query
    monkeypatch.setattr(Index, "query", lambda self, *a, **k: calls.append(1) or original(
        self, *a, **k))
    KNNClassifierCV(n_neighbors=range(1, 13), weights=["uniform", "distance", "dudani",
                                                        "gaussian"],
                    metric=["euclidean", "cosine"], refit=False).fit(X, y)
    assert len(calls) == 10


def test_refit_false_and_pipeline_patterns(datasets):
    X, y = datasets["wine"]
    search = KNNClassifierCV(n_neighbors=[1, 5], refit=False).fit(X, y)
    assert not hasattr(search, "best_estimator_")
    with pytest.raises(AttributeError, match="refit=False"):
        search.predict(X)
    # the CV estimator as the last step: the scaler is fitted once, on all rows
    pipe = make_pipeline(StandardScaler(), KNNClassifierCV(n_neighbors=[1, 5, 9])).fit(X, y)
    assert pipe.score(X, y) > 0.9
    # leakage-free: the scaler fitted inside every fold, by GridSearchCV
    inner = GridSearchCV(make_pipeline(StandardScaler(), KNNClassifier()),
                         {"knnclassifier__n_neighbors": [1, 5, 9]}).fit(X, y)
    assert inner.best_params_["knnclassifier__n_neighbors"] in (1, 5, 9)


def test_progress_bar_only_on_stderr(datasets, capsys):
    X, y = datasets["wine"]
    KNNClassifierCV(n_neighbors=[1, 3], verbose=True).fit(X, y)  # must not fail without a tty
    KNNClassifierCV(n_neighbors=[1, 3]).fit(X, y)
    assert capsys.readouterr().out == ""  # library code leaves stdout to the user
