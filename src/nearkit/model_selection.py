"""Model selection in one neighbour pass: KNNClassifierCV and KNNRegressorCV.

The neighbours of a query for every k <= k_max are the first k of its k_max list (neighbours
are ordered by (distance, index), a total order), and every weighting scheme is a function of
those distances.  So one search per (metric, fold) answers a whole grid of ``n_neighbors`` x
``weights``: the predictions of each candidate come from prefixes of the same arrays,
computed exactly as :class:`~nearkit.KNNClassifier` / :class:`~nearkit.KNNRegressor` compute
them, and are scored by scikit-learn's scorers.  ``cv_results_``, ``best_params_`` and
``best_score_`` are those of ``GridSearchCV`` over the same grid and splits.
"""

from __future__ import annotations

import time
from collections import defaultdict
from numbers import Integral, Real

import numpy as np
from numpy.ma import MaskedArray
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from nearkit._base import validate_data
from nearkit.classifier import KNNClassifier
from nearkit.metrics import METRIC_ALIASES
from nearkit.regressor import KNNRegressor
from nearkit.search import ENGINES
from nearkit.weights import WEIGHTS, compute_weights, mass_counts, vote_proba, weighted_mean

#: scorers whose value on one sample is an elementwise function (leave-one-out splits are
#: scored for all rows at once with it, equal to scoring each one-row split)
_POINTWISE = {
    "accuracy": lambda y, pred: (y == pred).astype(np.float64),
    "neg_mean_squared_error": lambda y, pred: -_per_row((y - pred) ** 2),
    "neg_mean_absolute_error": lambda y, pred: -_per_row(np.abs(y - pred)),
}


def _per_row(values):
    return values if values.ndim == 1 else values.mean(axis=1)


class _OneNeighbourPassCV(BaseEstimator):
    """What the two CV estimators share: the grid, the folds, one search per (metric, fold),
    scores from prefixes, GridSearchCV's results, the refit."""

    _parameter_constraints = {
        "n_neighbors": ["array-like", Interval(Integral, 1, None, closed="left"), None],
        "weights": ["array-like", StrOptions(set(WEIGHTS)), callable],
        "sigma": ["array-like", Interval(Real, 0, None, closed="neither"), None],
        "metric": ["array-like", StrOptions(set(METRIC_ALIASES))],
        "p": [Interval(Real, 0, None, closed="right")],
        "metric_params": [dict, None],
        "algorithm": [StrOptions({"auto", *ENGINES})],
        "cv": ["cv_object", StrOptions({"loo"})],
        "scoring": [str, callable, None],
        "refit": ["boolean"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    # -- the grid ----------------------------------------------------------------------

    def _param_grid(self):
        """The equivalent ``GridSearchCV`` grid (a list of dicts), in candidate order.

        Schemes other than gaussian, then gaussian crossed with every ``sigma``; within a
        dict scikit-learn's order (keys sorted, the last varying fastest).
        """
        ks = range(1, 31) if self.n_neighbors is None else _as_list(self.n_neighbors)
        base = {"n_neighbors": [int(k) for k in ks]}
        metrics = _as_list(self.metric)
        if len(metrics) > 1 or metrics != ["euclidean"]:
            base["metric"] = metrics
        weights = _as_list(self.weights)
        plain = [w for w in weights if not (isinstance(w, str) and w == "gaussian")]
        grid = [{**base, "weights": plain}] if plain else []
        if len(plain) < len(weights):
            sigmas = _as_list(self.sigma)
            grid.append({**base, "weights": ["gaussian"]}
                        if sigmas == [None] else {**base, "weights": ["gaussian"],
                                                   "sigma": sigmas})
        return grid

    def _check_grid_values(self, grid):
        """Each value of the grid checked once against the estimator's own constraints."""
        constraints = self._estimator_class._parameter_constraints
        for name in {name for entry in grid for name in entry}:
            seen = []
            for value in (value for entry in grid for value in entry.get(name, ())):
                if not any(value is other for other in seen):
                    seen.append(value)
                    validate_parameter_constraints({name: constraints[name]}, {name: value},
                                                   caller_name=type(self).__name__)
        self._estimator()._validate_params()  # the fixed parameters

    def _estimator(self, **params):
        """The single model a candidate stands for (GridSearchCV's estimator)."""
        fixed = {"p": self.p, "metric_params": self.metric_params, "algorithm": self.algorithm,
                 "n_jobs": self.n_jobs, **self._fixed_params()}
        return self._estimator_class(**{**fixed, **params})

    def _fixed_params(self):
        return {}

    # -- fit -----------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Score every candidate of the grid by cross-validation, one search per (metric,
        fold), then refit the best on all of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) (or (n_samples, n_outputs) for regression)
        sample_weight : array-like of shape (n_samples,) or None, default=None
            As ``GridSearchCV`` uses it: passed to the fits of every fold (a row of weight w
            counts as w copies of it) and to the scorer on each validation fold.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, order="C",
                             multi_output=self._multi_output, y_numeric=self._multi_output)
        self._check_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        grid = self._param_grid()
        candidates = list(ParameterGrid(grid))
        if not candidates:
            raise ValueError("The grid is empty: n_neighbors, weights and metric each need "
                             "at least one value.")
        self._check_grid_values(grid)
        k_max = max(candidate["n_neighbors"] for candidate in candidates)
        splits = self._splits(X, y)
        scorer = check_scoring(self._estimator(), self.scoring)
        # leave-one-out is one search whose rows are the splits
        n_splits = X.shape[0] if splits[0][0] is None else len(splits)
        scores = np.empty((len(candidates), n_splits))
        fit_times = np.zeros_like(scores)
        score_times = np.zeros_like(scores)
        by_metric = defaultdict(list)
        for i, candidate in enumerate(candidates):
            by_metric[candidate.get("metric", "euclidean")].append(i)
        with _progress(self.verbose, len(by_metric) * len(splits)) as advance:
            for metric, members in by_metric.items():
                for s, (train, test) in enumerate(splits):
                    columns = slice(None) if train is None else s
                    start = time.perf_counter()
                    fold = self._fold(X, y, sample_weight, train, test, metric, k_max)
                    elapsed = (time.perf_counter() - start) / len(members)
                    for i in members:
                        start = time.perf_counter()
                        scores[i, columns] = fold.score(candidates[i], scorer)
                        score_times[i, columns] = time.perf_counter() - start
                        fit_times[i, columns] = elapsed
                    advance(f"{metric}, split {s + 1} of {len(splits)}")
        self.param_grid_ = grid
        self.n_splits_ = n_splits
        self.scorer_ = scorer
        self.cv_results_ = _results(candidates, scores, fit_times, score_times)
        self.best_index_ = int(self.cv_results_["rank_test_score"].argmin())
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.best_params_ = candidates[self.best_index_]
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = self._estimator(**self.best_params_)
            self.best_estimator_.fit(X, y, sample_weight=sample_weight)
            self.refit_time_ = time.perf_counter() - start
        return self

    def _splits(self, X, y):
        if isinstance(self.cv, str) and self.cv == "loo":
            return [(None, None)]  # one search of the training points, each without itself
        cv = check_cv(self.cv, y, classifier=is_classifier(self))
        return list(cv.split(X, y))

    def _fold(self, X, y, sample_weight, train, test, metric, k_max):
        """The neighbours of a fold's test rows among its training rows, up to k_max."""
        loo = train is None
        weights = sample_weight if loo or sample_weight is None else sample_weight[train]
        model = self._estimator(n_neighbors=1, metric=metric)
        model.fit(X if loo else X[train], y if loo else y[train], sample_weight=weights)
        available = model.n_samples_fit_ - int(loo)
        if k_max > available:
            raise ValueError(
                f"n_neighbors={k_max} is larger than the {available} training samples of a "
                "fold" + (" (each point is excluded from its own neighbours)." if loo else ".")
            )
        queries = None if loo else X[test]
        dist, ind = model._neighbors(queries, k_max)
        test_weight = None
        if sample_weight is not None:
            test_weight = sample_weight if loo else sample_weight[test]
        return _Fold(self, model, queries, dist, ind, y if loo else y[test], test_weight, loo)

    # -- the refitted best model ------------------------------------------------------------

    def predict(self, X):
        """``best_estimator_.predict(X)``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        return self._best().predict(X)

    def score(self, X, y, sample_weight=None):
        """The chosen scorer (``scorer_``) on ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,) or None, default=None

        Returns
        -------
        float
        """
        best = self._best()
        if sample_weight is None:
            return self.scorer_(best, X, y)
        return self.scorer_(best, X, y, sample_weight=sample_weight)

    def _best(self):
        check_is_fitted(self)
        if not self.refit:
            raise AttributeError("refit=False: there is no best_estimator_ to predict with; "
                                 "fit a model with best_params_.")
        return self.best_estimator_


class _Fold:
    """One fold's neighbours (up to k_max) and the predictions of each candidate from them.

    Each candidate sees exactly the arrays its single model would: the first k columns, or
    with sample weights the columns that model's search would have taken (so that even the
    order of its sums is the same).
    """

    def __init__(self, search, model, queries, dist, ind, y_test, test_weight, loo):
        self.search = search
        self.model = model
        self.queries = queries
        self.dist = dist
        self.ind = ind
        self.y_test = y_test
        self.test_weight = test_weight
        self.loo = loo
        self.class_counts = None  # the classifier's cumulative uniform votes, made once

    def _arrays(self, k):
        weights = self.model._sample_weight
        if weights is None:
            return self.dist[:, :k], self.ind[:, :k], None
        available = self.model.n_samples_fit_ - int(self.loo)
        n = k
        while True:  # the doubling of WeightedNeighborsMixin._weighted_neighbors
            if n > self.ind.shape[1]:
                self.dist, self.ind = self.model._neighbors(self.queries, n)
            counts = mass_counts(weights[self.ind[:, :n]], k)
            if n == available or np.all(counts.sum(axis=1) >= k * (1 - 1e-12)):
                return self.dist[:, :n], self.ind[:, :n], counts
            n = min(available, 2 * n)

    def score(self, candidate, scorer):
        k = candidate["n_neighbors"]
        scheme = candidate.get("weights", "uniform")
        dist, ind, counts = self._arrays(k)
        uniform = isinstance(scheme, str) and scheme == "uniform" and counts is None
        if uniform:
            frozen = self.search._frozen_uniform(self, k)
        else:
            weights = compute_weights(dist, scheme, candidate.get("sigma"), counts)
            frozen = self.search._frozen(self.model, ind, weights)
        name = self.search.scoring or self.search._default_scoring
        if not self.loo:
            if name == "accuracy":  # accuracy_score's own arithmetic, without its checks
                return float(np.average(self.y_test == frozen.predict(None),
                                        weights=self.test_weight))
            if self.test_weight is None:
                return scorer(frozen, None, self.y_test)
            return scorer(frozen, None, self.y_test, sample_weight=self.test_weight)
        if isinstance(name, str) and name in _POINTWISE:
            scores = _POINTWISE[name](self.y_test, frozen.predict(None))
            if self.test_weight is not None:  # one weighted sample: itself, or 0/0
                scores[self.test_weight == 0] = np.nan
            return scores
        raise ValueError(
            f"cv='loo' scores each one-row split, which needs a scorer defined on one sample: "
            f"one of {sorted(_POINTWISE)}; got scoring={name!r}.  Use cv=LeaveOneOut() to "
            "score with any scorer (one search per split)."
        )


class KNNClassifierCV(ClassifierMixin, _OneNeighbourPassCV):
    """:class:`~nearkit.KNNClassifier` with ``n_neighbors``, ``weights`` and ``metric`` chosen
    by cross-validation, in one neighbour search per (metric, fold).

    Equivalent to ``GridSearchCV(KNNClassifier(), param_grid_, cv=cv, scoring=scoring)``:
    the same ``cv_results_`` scores, ranks and ``best_params_`` on the same splits (the
    neighbours, the vote and its tie rule are computed exactly as the classifier does), but
    a grid of K values of k and W schemes costs one search at the largest k per fold and
    metric instead of K x W fits and searches.

    Parameters
    ----------
    n_neighbors : int, array-like of int or None, default=None
        Numbers of neighbours to try; None means 1 to 30.
    weights : str, callable or array-like of them, default=('uniform', 'distance')
        Weighting schemes to try (see :class:`~nearkit.KNNClassifier`); ``'gaussian'`` is
        tried with every value of ``sigma``.
    sigma : float > 0, None or array-like of them, default=None
        Gaussian bandwidths to try (None: ``d_k`` per query).
    metric : str or array-like of str, default='euclidean'
        Metrics to try (names of :data:`nearkit.metrics.METRICS`); one search per metric
        and fold.
    p : float > 0, default=2
        Minkowski exponent.
    metric_params : dict or None, default=None
        Mahalanobis ``{'VI': ...}`` or ``{'V': ...}``.
    algorithm : {'auto', 'brute', 'gemm', 'kd_tree', 'tiled', 'projected'}, default='auto'
        Search engine.
    cv : int, cross-validation generator, iterable or 'loo', default=5
        As ``GridSearchCV``'s (an int means stratified k-fold); ``'loo'`` means
        leave-one-out on the training set in a single search (``kneighbors(X=None)``), with
        an elementwise scorer (accuracy); a learned Mahalanobis covariance is then learned
        once on all rows.
    scoring : str, callable or None, default=None
        Any scikit-learn scorer or its name (``'accuracy'``, ``'f1'``, ``'roc_auc'``,
        ``'neg_log_loss'``, ...); None uses accuracy.
    refit : bool, default=True
        Refit the best candidate on all the data (``best_estimator_``); ``predict``,
        ``predict_proba`` and ``score`` use it.
    n_jobs : int or None, default=None
        Search threads.
    verbose : int or bool, default=False
        Show a progress bar (rich) over the (metric, fold) searches.

    Attributes
    ----------
    cv_results_ : dict of arrays
        As ``GridSearchCV``'s: ``params``, ``param_*``, ``split{i}_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score``, and fit and score
        times (a fold's search time is shared among its candidates).
    best_params_ : dict
    best_score_ : float
    best_index_ : int
    best_estimator_ : KNNClassifier
        Only with ``refit=True``.
    param_grid_ : list of dict
        The equivalent ``GridSearchCV`` grid.
    scorer_ : callable
    n_splits_ : int
    classes_ : ndarray of shape (n_classes,)
    refit_time_ : float

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from nearkit.model_selection import KNNClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = KNNClassifierCV(n_neighbors=range(1, 16),
    ...                          weights=["uniform", "distance", "dudani"]).fit(X, y)
    >>> search.best_params_
    {'n_neighbors': 10, 'weights': 'distance'}
    >>> round(search.best_score_, 3)
    0.987
    >>> len(search.cv_results_["params"])
    45

    Scaling inside the folds needs the scaler fitted per fold, i.e. a Pipeline inside a
    GridSearchCV; a Pipeline *ending* with the CV estimator fits the scaler once on all the
    rows (faster; the folds' validation rows then leak into the scaling).
    """

    _estimator_class = KNNClassifier
    _multi_output = False
    _default_scoring = "accuracy"
    score = _OneNeighbourPassCV.score  # the chosen scorer, not ClassifierMixin's accuracy
    _parameter_constraints = {
        **_OneNeighbourPassCV._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(self, n_neighbors=None, *, weights=("uniform", "distance"), sigma=None,
                 metric="euclidean", p=2, metric_params=None, algorithm="auto", cv=5,
                 scoring=None, refit=True, n_jobs=None, verbose=False, class_weight=None):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.sigma = sigma
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.class_weight = class_weight

    def _fixed_params(self):
        return {"class_weight": self.class_weight}

    def _check_targets(self, y):
        check_classification_targets(y)
        self.classes_ = np.unique(y)

    def _frozen_uniform(self, fold, k):
        """The uniform vote of the first k neighbours, for every k from one cumulative
        count of each class (the same integer sums as the vote's, divided by k)."""
        model = fold.model
        if model.class_weight_ is not None:
            ind = fold.ind[:, :k]
            return self._frozen(model, ind, np.ones(ind.shape))
        counts = fold.class_counts
        if counts is None:
            labels = model._y[fold.ind]
            one_hot = labels[:, :, None] == np.arange(len(model.classes_))
            counts = fold.class_counts = np.cumsum(one_hot, axis=1, dtype=np.float64)
        return _FrozenClassifier(model.classes_, counts[:, k - 1] / k)

    def _frozen(self, model, ind, weights):
        labels = model._y[ind]
        if model.class_weight_ is not None:
            weights = weights * model.class_weight_[labels]
        return _FrozenClassifier(model.classes_, vote_proba(labels, weights,
                                                            len(model.classes_)))

    def predict_proba(self, X):
        """``best_estimator_.predict_proba(X)``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
        """
        return self._best().predict_proba(X)


class KNNRegressorCV(RegressorMixin, _OneNeighbourPassCV):
    """:class:`~nearkit.KNNRegressor` with ``n_neighbors``, ``weights`` and ``metric`` chosen
    by cross-validation, in one neighbour search per (metric, fold).

    Equivalent to ``GridSearchCV(KNNRegressor(), param_grid_, cv=cv, scoring=scoring)``
    (same ``cv_results_`` scores and ``best_params_``); see :class:`KNNClassifierCV` for the
    parameters (``cv`` as an int means k-fold, ``scoring=None`` means R²; with ``cv='loo'``
    an elementwise scorer, e.g. ``'neg_mean_squared_error'``).

    Examples
    --------
    >>> import numpy as np
    >>> from nearkit.model_selection import KNNRegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 6, size=(200, 1))
    >>> y = np.sin(X[:, 0]) + rng.normal(scale=0.1, size=200)
    >>> search = KNNRegressorCV(n_neighbors=[1, 5, 10, 20, 40]).fit(X, y)
    >>> search.best_params_["n_neighbors"]
    10
    >>> search.predict([[1.5]]).round(2)
    array([0.96])
    """

    _estimator_class = KNNRegressor
    _multi_output = True
    _default_scoring = "r2"
    score = _OneNeighbourPassCV.score  # the chosen scorer, not RegressorMixin's R²

    def __init__(self, n_neighbors=None, *, weights=("uniform", "distance"), sigma=None,
                 metric="euclidean", p=2, metric_params=None, algorithm="auto", cv=5,
                 scoring=None, refit=True, n_jobs=None, verbose=False):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.sigma = sigma
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.n_jobs = n_jobs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_targets(self, y):
        pass

    def _frozen_uniform(self, fold, k):
        return _FrozenRegressor(weighted_mean(fold.model._y[fold.ind[:, :k]], None, True))

    def _frozen(self, model, ind, weights):
        return _FrozenRegressor(weighted_mean(model._y[ind], weights, False))


class _FrozenClassifier(ClassifierMixin, BaseEstimator):
    """Stands for a fold's fitted classifier in front of a scorer: its answers on the
    fold's validation rows are already known."""

    def __init__(self, classes, proba):
        self.classes_ = classes
        self.proba = proba

    def predict_proba(self, X):
        return self.proba

    def predict(self, X):
        return self.classes_[np.argmax(self.proba, axis=1)]


class _FrozenRegressor(RegressorMixin, BaseEstimator):
    """Stands for a fold's fitted regressor in front of a scorer."""

    def __init__(self, predictions):
        self.predictions = predictions

    def predict(self, X):
        return self.predictions


def _as_list(value):
    if isinstance(value, (str, Integral, Real)) or value is None or callable(value):
        return [value]
    return list(value)


def _results(candidates, scores, fit_times, score_times):
    """``cv_results_`` as ``GridSearchCV._format_results`` builds it."""
    results = {}

    def store(name, array, splits=False, rank=False):
        if splits:
            for s in range(array.shape[1]):
                results[f"split{s}_{name}"] = array[:, s]
        means = np.average(array, axis=1)
        results[f"mean_{name}"] = means
        results[f"std_{name}"] = np.sqrt(np.average((array - means[:, None]) ** 2, axis=1))
        if rank:
            if np.isnan(means).all():
                results[f"rank_{name}"] = np.ones_like(means, dtype=np.int32)
            else:
                filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
                results[f"rank_{name}"] = rankdata(-filled, method="min").astype(np.int32)

    store("fit_time", fit_times)
    store("score_time", score_times)
    names = sorted({name for candidate in candidates for name in candidate})
    for name in names:
        values = [candidate.get(name) for candidate in candidates]
        present = [name in candidate for candidate in candidates]
        probe = np.array([v for v, p in zip(values, present) if p])
        dtype = probe.dtype if probe.dtype.kind != "U" and probe.ndim == 1 else object
        column = MaskedArray(np.empty(len(candidates), dtype=dtype), mask=True)
        for i, (value, here) in enumerate(zip(values, present)):
            if here:
                column[i] = value
        results[f"param_{name}"] = column
    results["params"] = candidates
    store("test_score", scores, splits=True, rank=True)
    return results


class _progress:
    """A rich progress bar over the searches when ``verbose``; otherwise nothing."""

    def __init__(self, verbose, total):
        self.bar = None
        if verbose:
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(transient=True, console=Console(stderr=True))
            self.total = total

    def __enter__(self):
        if self.bar is None:
            return lambda text: None
        self.bar.start()
        task = self.bar.add_task("searching", total=self.total)
        return lambda text: self.bar.update(task, advance=1, description=text)

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.stop()
        return False


__all__ = ["KNNClassifierCV", "KNNRegressorCV"]
