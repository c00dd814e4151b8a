"""NearestNeighbors: the search itself, by count or by radius."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy import sparse
from sklearn.utils._param_validation import Interval

from nearkit._base import NeighborsBase, fit_context, validate_training


class NearestNeighbors(NeighborsBase):
    """Exact nearest-neighbour search: the k nearest, or every point within a radius.

    Finding similar items (recommendation, deduplication, retrieval) with the exact engines
    of :class:`~nearkit.KNNClassifier`: neighbours ordered by (distance, training index),
    equal to the float64 reference for any finite input.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours returned by :meth:`kneighbors` by default.
    radius : float >= 0, default=1.0
        Radius used by :meth:`radius_neighbors` by default (``distance <= radius``).
    metric : str, default='euclidean'
        A name of the metric table (:data:`nearkit.metrics.METRICS`); see
        :class:`~nearkit.KNNClassifier`.
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
    >>> from nearkit import NearestNeighbors
    >>> X = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]
    >>> search = NearestNeighbors(n_neighbors=2).fit(X)
    >>> dist, ind = search.kneighbors([[0.1, 0.0]])
    >>> ind
    array([[0, 1]])
    >>> dist, ind = search.radius_neighbors([[0.0, 0.0]], radius=2.0, sort_results=True)
    >>> ind[0], dist[0]
    (array([0, 1, 2]), array([0., 1., 2.]))
    >>> search.kneighbors_graph(n_neighbors=1).toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 0., 0.],
           [1., 0., 0., 0.],
           [0., 0., 1., 0.]])
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        "radius": [Interval(Real, 0, None, closed="left")],
    }
    # n_neighbors is only kneighbors' default here: checked when used, as scikit-learn does
    _n_neighbors_bounded_at_fit = False

    def __init__(self, *, n_neighbors=5, radius=1.0, metric="euclidean", p=2,
                 metric_params=None, algorithm="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.n_jobs = n_jobs

    @fit_context
    def fit(self, X, y=None):
        """Index the training points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (finite numbers).
        y : ignored

        Returns
        -------
        self : NearestNeighbors
        """
        X = validate_training(self, X)
        self._fit_index(X)
        return self

    def radius_neighbors(self, X=None, radius=None, return_distance=True, sort_results=False):
        """Every training point within ``radius`` of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries; None means the training points, each excluding itself.
        radius : float >= 0 or None, default=None
            Largest distance included (default: the ``radius`` parameter).
        return_distance : bool, default=True
        sort_results : bool, default=False
            Order each row by (distance, index); otherwise rows are in index order.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries,), dtype=object
            Each entry the distances of one query's neighbours.  Only present if
            ``return_distance=True``.
        neigh_ind : ndarray of shape (n_queries,), dtype=object
            Each entry the training indices of one query's neighbours.

        Raises
        ------
        ValueError
            If the answer would hold more pairs than half the available memory holds
            (raised before that memory is allocated).
        """
        offsets, dist, ind = self._radius_query(X, radius, sort_results)
        splits = offsets[1:-1]
        neigh_ind = _object_rows(np.split(ind, splits))
        if not return_distance:
            return neigh_ind
        return _object_rows(np.split(dist, splits)), neigh_ind

    def radius_neighbors_graph(self, X=None, radius=None, mode="connectivity",
                               sort_results=False):
        """The radius-neighbours graph: a sparse (n_queries, n_samples_fit) matrix.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries; None means the training points, each excluding itself.
        radius : float >= 0 or None, default=None
            Largest distance included (default: the ``radius`` parameter).
        mode : {'connectivity', 'distance'}, default='connectivity'
            Entries 1, or the distances.
        sort_results : bool, default=False
            Order each row's entries by (distance, index) (otherwise by index).

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_queries, n_samples_fit)
        """
        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode must be 'connectivity' or 'distance'; got {mode!r}.")
        offsets, dist, ind = self._radius_query(X, radius, sort_results)
        data = np.ones(len(ind)) if mode == "connectivity" else dist
        return sparse.csr_matrix((data, ind, offsets),
                                 shape=(len(offsets) - 1, self.n_samples_fit_))

    def _radius_query(self, X, radius, sort_results):
        self._check_fitted()
        radius = self.radius if radius is None else radius
        if (isinstance(radius, (bool, np.bool_)) or not isinstance(radius, (Real, np.floating))
                or not radius >= 0):
            raise ValueError(f"radius must be a number >= 0; got {radius!r}.")
        return self._index.query_radius(self._queries_or_none(X), float(radius),
                                        n_threads=self.n_jobs, sort_results=sort_results)


def _object_rows(parts):
    rows = np.empty(len(parts), dtype=object)
    for i, part in enumerate(parts):
        rows[i] = part
    return rows
