"""KNNClassifier: the neighbours' weighted vote."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from nearkit._base import (
    NeighborsBase,
    WeightedNeighborsMixin,
    fit_context,
    validate_training,
)
from nearkit.weights import majority_vote, vote_proba


class KNNClassifier(ClassifierMixin, WeightedNeighborsMixin, NeighborsBase):
    """Exact k-nearest-neighbour classifier.

    Stores the training data, finds the k nearest training points of each query exactly
    (as float64 arithmetic defines them; see :mod:`nearkit._kernels.distances`) and lets
    them vote.  Neighbours are ordered by (distance, training index), so equal distances go
    to the lower index, and vote ties go to the smallest class label.  Results equal the
    plain float64 reference in ``tests/reference.py`` for any finite input; they equal
    scikit-learn's :class:`~sklearn.neighbors.KNeighborsClassifier` with the same options
    wherever no distance tie crosses the k-th neighbour (scikit-learn breaks such ties by its
    scan order) and its own arithmetic is accurate (its GEMM expansion loses precision on
    features with a large offset, e.g. near 1e8 varying by 1e-3).

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

        Weights depend on ratios of distances only: the same at any unit of the data.
    sigma : float > 0 or None, default=None
        Gaussian kernel bandwidth; None uses ``d_k`` of each query (uniform when it is 0).
        Ignored by the other weighting schemes.
    metric : str, default='euclidean'
        Distance metric, a name of the metric table (:data:`nearkit.metrics.METRICS`):
        ``'euclidean'`` (``'l2'``), ``'manhattan'`` (``'cityblock'``, ``'l1'``),
        ``'chebyshev'`` (``'infinity'``), ``'minkowski'`` (uses ``p``; with ``0 < p < 1`` it
        is not a true metric, the triangle inequality fails, but neighbours are still well
        defined), ``'mahalanobis'`` (``metric_params={'VI': inverse_covariance}`` or
        ``{'V': covariance}``; with neither, the covariance of the training data is learned
        at fit, pseudo-inverse when singular with a warning naming its rank), ``'cosine'``
        (``1 - cos`` of the angle, scikit-learn's definition; a row of zeros is an error).
    p : float > 0, default=2
        Minkowski exponent; ``np.inf`` gives Chebyshev.  Used with ``metric='minkowski'``.
    metric_params : dict or None, default=None
        Extra metric arguments (Mahalanobis only).
    algorithm : {'auto', 'brute', 'gemm', 'kd_tree', 'tiled', 'projected'}, default='auto'
        Search engine (:data:`nearkit.search.ENGINES`; which metrics each searches:
        :data:`nearkit.search.VALID_METRICS`).  ``'brute'``: exact tiled brute force;
        ``'gemm'``: float32 BLAS estimates re-ranked exactly in float64 (Euclidean,
        Mahalanobis, cosine); ``'kd_tree'``: exact k-d tree; ``'tiled'``: exact search over
        tiles cut at the gaps of discrete columns, skipping the tiles whose bounding box is
        too far; ``'projected'``: principal-component lower bounds for many features (sums
        of squares).  ``'auto'`` picks one from the fitted data's shape and metric, and on
        4,096 or more training rows from the share of pairs each engine's bounds would
        leave on a sample of rows (:mod:`nearkit.search.auto`).  All engines return
        identical neighbours.
    n_jobs : int or None, default=None
        Threads used by the search: None or -1 means all available cores, a positive integer
        limits the threads.
    class_weight : dict, 'balanced' or None, default=None
        Multiplies each neighbour's vote by the weight of its class: ``{label: weight}``, or
        ``'balanced'``, ``n_samples / (n_classes * count of the class)`` (counts weighted by
        ``sample_weight`` when given).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
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
    class_weight_ : ndarray of shape (n_classes,) or None
        The weight of each class in ``classes_`` order (None without ``class_weight``).

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
    >>> model.set_params(n_neighbors=1).predict()  # leave-one-out: each point without itself
    array([0, 0, 0, 1])
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        **WeightedNeighborsMixin._weight_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(self, n_neighbors=5, *, weights="uniform", sigma=None, metric="euclidean",
                 p=2, metric_params=None, algorithm="auto", n_jobs=None, class_weight=None):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.sigma = sigma
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.n_jobs = n_jobs
        self.class_weight = class_weight

    @fit_context
    def fit(self, X, y, sample_weight=None):
        """Store the training data and build the search index.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (finite numbers).
        y : array-like of shape (n_samples,)
            Class labels (integers or strings).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weight of each training row: a row of weight w counts as w copies
            of it, both in choosing the k neighbours (they are the first ``n_neighbors``
            units of weight in (distance, index) order) and in the vote, so integer weights
            equal repeating the rows.

        Returns
        -------
        self : KNNClassifier
        """
        X, y = validate_training(self, X, y)
        if not (y.ndim == 1 and y.dtype.kind in "iu"):  # (integer labels are classes)
            check_classification_targets(y)
        self.classes_, self._y = encode_labels(y)
        self._fit_sample_weight(X, sample_weight)
        self.class_weight_ = None
        if self.class_weight is not None:
            self.class_weight_ = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y, sample_weight=sample_weight)
            # 'balanced' gives a class whose rows all weigh 0 an infinite weight; those rows
            # never count among the neighbours, so their class weight is moot: 0
            self.class_weight_[~np.isfinite(self.class_weight_)] = 0.0
        self._fit_index(X, self._sample_weight)
        return self

    def predict_proba(self, X=None):
        """Class probabilities: each class's share of the neighbours' weights.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries.  None means the training points, each without itself among its
            neighbours (leave-one-out).

        Returns
        -------
        ndarray of shape (n_queries, n_classes)
            Columns follow ``classes_``.
        """
        self._check_fitted()
        return self._proba(self._queries_or_none(X))

    def _proba(self, X):
        """:meth:`predict_proba` of validated queries (None: leave-one-out)."""
        ind, weights = self._weighted_neighbors(X)
        labels = self._y[ind]
        if self.class_weight_ is not None:
            weights = weights * self.class_weight_[labels]
        return vote_proba(labels, weights, len(self.classes_))

    def predict(self, X=None):
        """Predicted class of each query (vote ties go to the smallest class label).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or None, default=None
            Queries; None means leave-one-out predictions of the training points.

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        self._check_fitted()
        X = self._queries_or_none(X)
        if (self.weights == "uniform" and self._sample_weight is None
                and self.class_weight_ is None):
            # a plain majority: integer counts, no weights or normalisation (the argmax of
            # predict_proba's row, whose entries are these counts over k)
            _, ind = self._neighbors(X, self.n_neighbors)
            return self.classes_[majority_vote(self._y[ind], len(self.classes_))]
        return self.classes_[np.argmax(self._proba(X), axis=1)]

    def score(self, X=None, y=None, sample_weight=None):
        """Mean accuracy of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or None, default=None
            Test samples; None scores leave-one-out predictions of the training points
            (``y`` then defaults to the training labels), like
            ``cross_val_score(model, X, y, cv=LeaveOneOut())`` but in one search.
        y : array-like of shape (n_samples,) or None, default=None
            True labels.
        sample_weight : array-like of shape (n_samples,) or None, default=None

        Returns
        -------
        float
        """
        if X is None and y is None:
            self._check_fitted()
            y = self.classes_[self._y]
        return super().score(X, y, sample_weight)


def encode_labels(y):
    """``np.unique(y, return_inverse=True)``: the sorted classes and each label's position
    among them.  Integer labels spanning a range not much wider than their count are
    counted instead of sorted (np.unique's argsort took 6 ms of a new process's first fit
    on loan_approval's 36,000 labels)."""
    if y.ndim == 1 and y.dtype.kind in "iu" and y.size:
        low, high = int(y.min()), int(y.max())
        if high - low <= 4 * y.size + 1024 and high <= np.iinfo(np.intp).max:
            shifted = y.astype(np.intp, copy=False)
            if low:
                shifted = shifted - low
            span = high - low
            present = np.bincount(shifted, minlength=span + 1) > 0
            classes = (np.flatnonzero(present) + low).astype(y.dtype)
            return classes, (np.cumsum(present) - 1)[shifted]
    return np.unique(y, return_inverse=True)
