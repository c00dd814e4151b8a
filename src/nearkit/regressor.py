"""KNNRegressor: the weighted mean of the neighbours' targets."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin

from nearkit._base import NeighborsBase, WeightedNeighborsMixin, fit_context, validate_data
from nearkit.weights import weighted_mean


class KNNRegressor(RegressorMixin, WeightedNeighborsMixin, NeighborsBase):
    """Exact k-nearest-neighbour regression: the weighted mean of the neighbours' targets.

    The neighbours are exactly those of :class:`~nearkit.KNNClassifier` (ordered by
    (distance, training index), equal to the float64 reference for any finite input), and
    every weighting scheme and metric of the classifier applies.  With uniform weights the
    prediction equals scikit-learn's :class:`~sklearn.neighbors.KNeighborsRegressor` wherever
    no distance tie crosses the k-th neighbour.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours averaged.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        Weight of each neighbour in the mean; see :class:`~nearkit.KNNClassifier`.
    sigma : float > 0 or None, default=None
        Gaussian bandwidth; None uses ``d_k`` of each query.
    metric : str, default='euclidean'
        A name of the metric table; see :class:`~nearkit.KNNClassifier`.
    p : float > 0, default=2
        Minkowski exponent (``metric='minkowski'``).
    metric_params : dict or None, default=None
        Mahalanobis ``{'VI': ...}`` or ``{'V': ...}``.
    algorithm : {'auto', 'brute', 'gemm', 'kd_tree', 'tiled', 'projected'}, default='auto'
        Search engine; all return identical neighbours.
    n_jobs : int or None, default=None
        Search threads (None or -1: all cores).

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        When X had string column names.
    n_samples_fit_ : int
    effective_metric_ : str
    effective_metric_params_ : dict
    algorithm_ : str

    Examples
    --------
    >>> from nearkit import KNNRegressor
    >>> X = [[0.0], [1.0], [2.0], [3.0]]
    >>> y = [0.0, 0.5, 2.0, 4.0]
    >>> model = KNNRegressor(n_neighbors=2).fit(X, y)
    >>> model.predict([[0.4], [2.6]])
    array([0.25, 3.  ])
    >>> KNNRegressor(2, weights="distance").fit(X, y).predict([[0.25]])
    array([0.125])
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        **WeightedNeighborsMixin._weight_constraints,
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

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

    @fit_context
    def fit(self, X, y, sample_weight=None):
        """Store the training data and build the search index.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (finite numbers).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets (finite numbers).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weight of each row: a row of weight w counts as w copies of it, in
            choosing the neighbours and in the mean (see :class:`~nearkit.KNNClassifier`).

        Returns
        -------
        self : KNNRegressor
        """
        X, y = validate_data(self, X, y, dtype=np.float64, order="C", multi_output=True,
                             y_numeric=True)
        self._y = y.astype(np.float64, copy=False)
        self._fit_sample_weight(X, sample_weight)
        self._fit_index(X, self._sample_weight)
        return self

    def predict(self, X=None):
        """The weighted mean of each query's neighbours' targets.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries; None means leave-one-out predictions of the training points.

        Returns
        -------
        ndarray of shape (n_queries,) or (n_queries, n_outputs)
        """
        self._check_fitted()
        ind, weights = self._weighted_neighbors(self._queries_or_none(X))
        uniform = self.weights == "uniform" and self._sample_weight is None
        return weighted_mean(self._y[ind], weights, uniform)

    def score(self, X=None, y=None, sample_weight=None):
        """R² of ``predict(X)`` against ``y`` (``sklearn.metrics.r2_score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or None, default=None
            Test samples; None scores leave-one-out predictions of the training points
            (``y`` then defaults to the training targets).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs) or None
        sample_weight : array-like of shape (n_samples,) or None, default=None

        Returns
        -------
        float
        """
        if X is None and y is None:
            self._check_fitted()
            y = self._y
        return super().score(X, y, sample_weight)

