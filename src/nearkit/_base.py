"""The neighbours base every nearkit estimator stands on.

:class:`NeighborsBase` validates the training points and the parameters (at fit, and again
at every method that uses them, so ``set_params`` after fit cannot reach a kernel with a bad
value), resolves the metric through the metric table, builds the search index, and answers
``kneighbors`` and ``kneighbors_graph``, where ``X=None`` means the training points, each
excluding itself.  :class:`WeightedNeighborsMixin` adds what the classifier and the regressor
share: the weighting scheme and sample weights.  Estimators are thin files on top: the
classifier adds the vote, the regressor the weighted mean, and so on.
"""

from __future__ import annotations

import functools
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from sklearn import config_context, get_config
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from sklearn.utils.validation import validate_data as _validate_data

from nearkit.metrics import METRIC_ALIASES, resolve_metric
from nearkit.search import ENGINES, select_index
from nearkit.weights import WEIGHTS, compute_weights, mass_counts


def validate_data(estimator, *args, **kwargs):
    """scikit-learn's ``validate_data``, without its RuntimeWarning on large finite values.

    Its finiteness test first sums the whole array, which overflows for values near the
    largest float64 and warned "invalid value encountered in reduce" about valid data.  The
    test stays exact: a non-finite sum is followed by an element-wise check.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _validate_data(estimator, *args, **kwargs)


def validate_training(estimator, X, *y):
    """``validate_data(estimator, X, *y, dtype=np.float64, order="C")`` of a ``fit`` (``y``:
    nothing, or the targets).

    A finite float64 matrix ``X`` (:func:`_plain_finite_matrix`) and, when given, a 1-D
    integer ndarray ``y`` of its length are returned as that call would return them (``X``
    in C order, no copy when it already is), with ``n_features_in_`` set and
    ``feature_names_in_`` removed as it would; anything else goes through it.  The fast path
    skips scikit-learn's container checks: their first call in a process scans the installed
    packages' entry points for narwhals plugins (10-11 ms of a new process's first fit on
    spotify_tracks and on loan_approval, whose whole fit is then 12-35 ms).
    """
    if (_plain_finite_matrix(X)
            and all(type(t) is np.ndarray and t.ndim == 1 and t.dtype.kind in "iu"
                    and t.shape[0] == X.shape[0] for t in y)):
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        estimator.n_features_in_ = X.shape[1]
        X = np.ascontiguousarray(X)
        return (X, *y) if y else X
    return validate_data(estimator, X, *y, dtype=np.float64, order="C")


def _plain_finite_matrix(X):
    """Whether ``X`` is what ``validate_data(dtype=np.float64)`` accepts without converting:
    a float64 ndarray (not a subclass) with rows and columns, every value finite.

    Small arrays are tested value by value (``count_nonzero`` skips ``.all()``'s reduction
    machinery: 0.73 against 1.35 us on one row, most of a single-row predict's check); large
    ones by their sum, one pass without a mask, which is finite only when every value is
    (a sum that overflows on huge values falls back to the test value by value).
    """
    if not (type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2 and X.size):
        return False
    if X.size > 4096:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.add.reduce(X, axis=None)):
                return True
    return np.count_nonzero(np.isfinite(X)) == X.size


def fit_context(fit):
    """Decorate an estimator's ``fit``: validate the parameters (unless scikit-learn's
    ``skip_parameter_validation`` is set), then fit with nested validation skipped.

    What scikit-learn's private ``_fit_context(prefer_skip_nested_validation=True)`` does,
    without its callback set-up, which nearkit's estimators do not use and whose first call
    imports ``sklearn.callback`` and ``rich.progress`` (measured 50 ms of a fresh process's
    first fit on bank_churn, whose fit is 20 ms).
    """
    @functools.wraps(fit)
    def wrapper(estimator, *args, **kwargs):
        if not get_config()["skip_parameter_validation"]:
            estimator._validate_params()
        with config_context(skip_parameter_validation=True):
            return fit(estimator, *args, **kwargs)

    return wrapper


class NeighborsBase(BaseEstimator):
    """Shared by every nearkit estimator: parameters, the index and ``kneighbors``.

    Subclasses declare their own parameters in ``_parameter_constraints`` (starting from
    this class's) and call :meth:`_fit_index` from ``fit``.
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRIC_ALIASES))],
        "p": [Interval(Real, 0, None, closed="right")],
        "metric_params": [dict, None],
        "algorithm": [StrOptions({"auto", *ENGINES})],
        "n_jobs": [Integral, None],
    }
    #: the parameters the index is built from: changing them after fit needs a new fit
    _index_params = ("metric", "p", "metric_params", "algorithm")
    #: whether n_neighbors may not exceed the training set (it is then an error at fit)
    _n_neighbors_bounded_at_fit = True

    # -- fitting -------------------------------------------------------------------------

    def _fit_index(self, X, sample_weight=None):
        """Check the parameters and build the index over validated training points ``X``
        (float64, C order, from ``validate_data``); ``sample_weight`` weighs the rows in a
        learned Mahalanobis covariance.

        Call from ``fit`` (inside :func:`fit_context`, which has checked the
        parameter constraints).
        """
        self._check_param_values(n_samples=X.shape[0])
        metric = resolve_metric(self.metric, self.p, self.metric_params, X, sample_weight)
        self._index = select_index(self.algorithm, X, metric, self.n_jobs)
        self.effective_metric_ = metric.name
        self.effective_metric_params_ = metric.params
        self.n_samples_fit_ = X.shape[0]
        self.algorithm_ = self._index.name
        self._remember_params()

    def _remember_params(self):
        """Note the parameter values the fitted state was built with (compared by
        :meth:`_check_fitted` after a ``set_params``)."""
        self._checked_params = {name: getattr(self, name) for name in self._parameter_constraints}

    def _check_param_values(self, n_samples):
        """What the constraints cannot say: no booleans for numbers, n_jobs != 0, and
        n_neighbors within the training set."""
        for name in ("n_neighbors", "p", "n_jobs", "sigma", "radius"):
            if isinstance(getattr(self, name, None), (bool, np.bool_)):
                raise ValueError(f"The {name!r} parameter must be a number, not a boolean; "
                                 f"got {getattr(self, name)!r}.")
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not a thread count; use None, -1 or a positive int.")
        # with sample weights a row counts as that many copies: the bound is their sum
        weights = getattr(self, "_sample_weight", None)
        if weights is None and self._n_neighbors_bounded_at_fit and self.n_neighbors > n_samples:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the number of training "
                f"samples (n_samples = {n_samples})."
            )
        if weights is not None and self.n_neighbors > weights.sum():
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the sum of the sample weights "
                f"({weights.sum():g}): a weight counts as that many copies of its row."
            )

    # -- checks at every method ------------------------------------------------------------

    def _check_fitted(self):
        """Raise unless fitted; re-validate parameters changed since (``set_params``)."""
        if not hasattr(self, "_index"):  # cheaper than check_is_fitted's attribute scan
            check_is_fitted(self)
        checked = self._checked_params
        changed = [name for name, value in checked.items() if getattr(self, name) is not value]
        if changed:
            self._revalidate(changed)

    def _revalidate(self, changed):
        for name in changed:
            if name in self._index_params and not _same(getattr(self, name),
                                                        self._checked_params[name]):
                raise ValueError(
                    f"The {name!r} parameter was changed after fit "
                    f"({self._checked_params[name]!r} -> {getattr(self, name)!r}), but the "
                    "search index was built for the old value: call fit again."
                )
        validate_parameter_constraints(
            {name: self._parameter_constraints[name] for name in changed},
            {name: getattr(self, name) for name in changed},
            caller_name=type(self).__name__,
        )
        self._check_param_values(self.n_samples_fit_)
        self._checked_params.update({name: getattr(self, name) for name in changed})

    def _validate_queries(self, X):
        """Queries as a finite float64 C-ordered matrix with the training width."""
        # Fast path for what validate_data would accept unchanged (a finite float64 matrix of
        # the right width, no feature names to check): it costs ~2 us instead of ~50 us,
        # which is most of a single-row predict.
        if (_plain_finite_matrix(X) and X.shape[1] == self.n_features_in_
                and not hasattr(self, "feature_names_in_")):
            return np.ascontiguousarray(X)
        return validate_data(self, X, dtype=np.float64, order="C", reset=False)

    # -- neighbours --------------------------------------------------------------------------

    def _neighbors(self, X, k):
        """(distances, indices) of the ``k`` nearest training points of validated queries
        ``X``, or of the training points each excluding itself when ``X`` is None."""
        available = self.n_samples_fit_ - int(X is None)
        if k > available:
            raise ValueError(
                f"n_neighbors={k} is larger than the {available} training samples available"
                + (" (each point is excluded from its own neighbours)." if X is None else ".")
            )
        return self._index.query(X, k, n_threads=self.n_jobs)

    def _queries_or_none(self, X):
        return None if X is None else self._validate_queries(X)

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest training points of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries.  None means the training points themselves, each excluded from its
            own neighbours.
        n_neighbors : int or None, default=None
            Number of neighbours (default: the ``n_neighbors`` parameter).
        return_distance : bool, default=True
            Whether to return the distances too.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            True metric distances (not squared or otherwise transformed), ascending.
            Only present if ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Indices of the neighbours in the training data, ordered by (distance, index).
        """
        self._check_fitted()
        k = _check_n_neighbors(self.n_neighbors if n_neighbors is None else n_neighbors)
        dist, ind = self._neighbors(self._queries_or_none(X), k)
        return (dist, ind) if return_distance else ind

    def kneighbors_graph(self, X=None, n_neighbors=None, mode="connectivity"):
        """The k-neighbours graph: a sparse (n_queries, n_samples_fit) matrix.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries; None means the training points, each excluding itself.
        n_neighbors : int or None, default=None
            Number of neighbours per query (default: the ``n_neighbors`` parameter).
        mode : {'connectivity', 'distance'}, default='connectivity'
            Entries 1, or the distances.

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
            Row ``i`` holds query ``i``'s neighbours, in (distance, index) order.
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode must be 'connectivity' or 'distance'; got {mode!r}.")
        dist, ind = self.kneighbors(X, n_neighbors)
        n_queries, k = ind.shape
        data = np.ones(ind.size) if mode == "connectivity" else dist.ravel()
        return sparse.csr_matrix((data, ind.ravel(), np.arange(0, n_queries * k + 1, k)),
                                 shape=(n_queries, self.n_samples_fit_))


class WeightedNeighborsMixin:
    """Weights of the neighbours (a scheme times sample weights), for the classifier and
    the regressor."""

    _weight_constraints = {
        "weights": [StrOptions(set(WEIGHTS)), callable],
        "sigma": [Interval(Real, 0, None, closed="neither"), None],
    }

    def _fit_sample_weight(self, X, sample_weight):
        """Store the sample weights (None when not given)."""
        if sample_weight is None:
            self._sample_weight = None
            return
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                             ensure_non_negative=True)
        if sample_weight.sum() < self.n_neighbors:
            raise ValueError(
                f"The sample weights sum to {sample_weight.sum():g}, fewer than "
                f"n_neighbors={self.n_neighbors}: a weight counts as that many copies of its "
                "row, so there are not enough neighbours to choose from."
            )
        self._sample_weight = sample_weight

    def _weighted_neighbors(self, X):
        """Indices of the neighbours of validated queries ``X`` (None: the training points,
        each excluding itself) and their weights.

        With sample weights, neighbours are taken in (distance, index) order until
        ``n_neighbors`` units of weight are collected (a row of weight w counts as w copies
        of it; see :func:`~nearkit.weights.mass_counts`), searching further when rows of
        weight below 1 leave the first ``n_neighbors`` short.
        """
        k = self.n_neighbors
        if self._sample_weight is None:
            dist, ind = self._neighbors(X, k)
            return ind, compute_weights(dist, self.weights, self.sigma)
        available = self.n_samples_fit_ - int(X is None)
        n_search = min(k, available)
        while True:
            dist, ind = self._neighbors(X, n_search)
            counts = mass_counts(self._sample_weight[ind], k)
            if n_search == available or np.all(counts.sum(axis=1) >= k * (1 - 1e-12)):
                break
            n_search = min(available, 2 * n_search)
        return ind, compute_weights(dist, self.weights, self.sigma, counts)


def _check_n_neighbors(k):
    if not isinstance(k, (Integral, np.integer)) or isinstance(k, (bool, np.bool_)) or k < 1:
        raise ValueError(f"n_neighbors must be a positive integer; got {k!r}.")
    return int(k)


def _same(a, b):
    """Whether two parameter values are equal (dicts of arrays included)."""
    if a is b:
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    try:
        return bool(np.array_equal(a, b))
    except (TypeError, ValueError):
        return False
