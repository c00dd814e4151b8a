"""KNNClassifier: the scikit-learn estimator in front of nearkit's exact search engines."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from nearkit.metrics import METRIC_ALIASES, resolve_metric
from nearkit.search import ENGINES, kernel_threads, resolve_n_jobs, select_index
from nearkit.weights import WEIGHTS, compute_weights, vote_proba


class KNNClassifier(ClassifierMixin, BaseEstimator):
    """Exact k-nearest-neighbour classifier.

    Stores the training data, finds the k nearest training points of each query exactly
    (as float64 arithmetic defines them) and lets them vote.  Neighbours are ordered by
    (distance, training index), so equal distances go to the lower index, and vote ties go
    to the smallest class label: predictions equal scikit-learn's
    :class:`~sklearn.neighbors.KNeighborsClassifier` wherever the two share an option.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        How neighbours at distances ``d_1 <= ... <= d_k`` weigh in the vote:

        - ``'uniform'``: equally.
        - ``'distance'``: ``1 / d_i``; where some ``d_i == 0`` only those neighbours count.
        - ``'dudani'``: ``(d_k - d_i) / (d_k - d_1)``; all 1 when ``d_k == d_1``.
        - ``'gaussian'``: ``exp(-d_i**2 / (2 sigma**2))``.
        - a callable mapping the (n_queries, k) distance array to weights of that shape.
    sigma : float > 0 or None, default=None
        Gaussian kernel bandwidth; None uses ``d_k`` of each query (uniform when it is 0).
        Ignored by the other weighting schemes.
    metric : {'euclidean', 'manhattan', 'chebyshev', 'minkowski', 'mahalanobis'}, \
default='euclidean'
        Distance metric.  Aliases: ``'l2'``; ``'cityblock'`` and ``'l1'``; ``'infinity'``.
        ``'minkowski'`` uses ``p``; with ``0 < p < 1`` it is not a true metric (the triangle
        inequality fails) but neighbours are still well defined.  ``'mahalanobis'`` uses
        ``metric_params={'VI': inverse_covariance}`` or ``{'V': covariance}``; with neither,
        the covariance of the training data is learned at fit (pseudo-inverse when singular,
        with a warning naming its rank).
    p : float > 0, default=2
        Minkowski exponent; ``np.inf`` gives Chebyshev.  Used with ``metric='minkowski'``.
    metric_params : dict or None, default=None
        Extra metric arguments (Mahalanobis only).
    algorithm : {'auto', 'brute', 'gemm', 'kd_tree', 'tiled'}, default='auto'
        Search engine.  ``'brute'``: exact tiled brute force (every metric);
        ``'gemm'``: float32 BLAS estimates re-ranked exactly in float64 (Euclidean and
        Mahalanobis only); ``'kd_tree'``: exact k-d tree (every metric); ``'tiled'``: exact
        search over tiles cut at the gaps of discrete columns, skipping the tiles whose
        bounding box is too far (every metric).  ``'auto'`` picks one from the fitted data's
        shape and metric, and on 4,096 or more training rows times the rivals ('tiled' for
        metrics other than Euclidean, a k-d tree in low dimension) on a sample of training
        rows.  All engines return identical neighbours.
    n_jobs : int or None, default=None
        Threads used by the search: None or -1 means all available cores, a positive integer
        limits the threads.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X had string column names.
    n_samples_fit_ : int
        Number of training samples.
    effective_metric_ : str
        The metric used after resolving aliases and ``p`` (e.g. 'minkowski' with p=1 is
        'manhattan').
    effective_metric_params_ : dict
        Its parameters: ``{'p': p}`` for Minkowski, ``{'VI': VI}`` for Mahalanobis.
    algorithm_ : str
        The engine chosen for the fitted data.

    Examples
    --------
    >>> from nearkit import KNNClassifier
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> y = [0, 0, 1, 1]
    >>> model = KNNClassifier(n_neighbors=3).fit(X, y)
    >>> model.predict([[1.1]])
    array([0])
    >>> model.predict_proba([[0.9]]).round(3)
    array([[0.667, 0.333]])
    >>> dist, ind = model.kneighbors([[1.5]], n_neighbors=2)
    >>> dist, ind
    (array([[0.5, 0.5]]), array([[1, 2]]))
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "weights": [StrOptions(set(WEIGHTS)), callable],
        "sigma": [Interval(Real, 0, None, closed="neither"), None],
        "metric": [StrOptions(set(METRIC_ALIASES))],
        "p": [Interval(Real, 0, None, closed="right")],
        "metric_params": [dict, None],
        "algorithm": [StrOptions({"auto", *ENGINES})],
        "n_jobs": [Integral, None],
    }

    def __init__(self, n_neighbors=5, *, weights="uniform", sigma=None, metric="euclidean",
                 p=2, metric_params=None, algorithm="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.sigma = sigma
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Store the training data and build the search index.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (finite numbers).
        y : array-like of shape (n_samples,)
            Class labels (integers or strings).

        Returns
        -------
        self : KNNClassifier
        """
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not a thread count; use None, -1 or a positive int.")
        X, y = validate_data(self, X, y, dtype=np.float64, order="C")
        check_classification_targets(y)
        n_samples = X.shape[0]
        if self.n_neighbors > n_samples:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the number of training "
                f"samples (n_samples = {n_samples})."
            )
        self.classes_, self._y = np.unique(y, return_inverse=True)
        metric = resolve_metric(self.metric, self.p, self.metric_params, X)
        self.effective_metric_ = metric.name
        self.effective_metric_params_ = metric.params
        self.n_samples_fit_ = n_samples
        self._metric = metric
        self._index = select_index(self.algorithm, self._prepare(X), metric, self.n_jobs)
        self.algorithm_ = self._index.name
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest training points of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries.  None means the training points themselves, each excluded from its
            own neighbours.
        n_neighbors : int or None, default=None
            Number of neighbours (default: the ``n_neighbors`` given at construction).
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
        k = self.n_neighbors if n_neighbors is None else n_neighbors
        exclude_self = X is None
        available = self.n_samples_fit_ - int(exclude_self)
        if not isinstance(k, Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_neighbors must be a positive integer; got {k!r}.")
        if k > available:
            raise ValueError(
                f"n_neighbors={k} is larger than the {available} training samples available"
                + (" (each point is excluded from its own neighbours)." if exclude_self else ".")
            )
        Q = self._index.data if exclude_self else self._validate_queries(X)
        dist, ind = self._search(Q, int(k), exclude_self)
        return (dist, ind) if return_distance else ind

    def _search(self, Q, k, exclude_self=False):
        return self._index.query(Q, k, exclude_self=exclude_self, n_threads=self.n_jobs)

    def predict_proba(self, X):
        """Class probabilities: each class's share of the neighbours' weights.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Columns follow ``classes_``.
        """
        self._check_fitted()
        dist, ind = self._search(self._validate_queries(X), self.n_neighbors)
        weights = compute_weights(dist, self.weights, self.sigma)
        return vote_proba(self._y[ind], weights, len(self.classes_))

    def predict(self, X):
        """Predicted class of each query (vote ties go to the smallest class label).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # -- internals ---------------------------------------------------------------------

    def _validate_queries(self, X):
        # Fast path for what validate_data would accept unchanged (a finite
        # float64 matrix of the right width, no feature names to check): it costs ~2 us
        # instead of ~50 us, which is most of a single-row predict.
        if (type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2
                and X.shape[0] > 0 and X.shape[1] == self.n_features_in_
                and not hasattr(self, "feature_names_in_") and np.isfinite(X).all()):
            X = np.ascontiguousarray(X)
        else:
            X = validate_data(self, X, dtype=np.float64, order="C", reset=False)
        return self._prepare(X)

    def _check_fitted(self):
        if not hasattr(self, "_index"):  # cheaper than check_is_fitted's attribute scan
            check_is_fitted(self)

    def _prepare(self, X):
        if self._metric.whitening is None:
            return self._metric.prepare(X)
        with kernel_threads(resolve_n_jobs(self.n_jobs)):
            return self._metric.prepare(X)
