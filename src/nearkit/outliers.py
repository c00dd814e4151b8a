"""KNNOutlierDetector: how far a point is from its k nearest neighbours."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, StrOptions

from nearkit._base import NeighborsBase, fit_context, validate_training

#: how the k distances make one score (PyOD's ``method``)
METHODS = {
    "largest": lambda dist: dist[:, -1],
    "mean": lambda dist: dist.mean(axis=1),
    "median": lambda dist: np.median(dist, axis=1),
}


class KNNOutlierDetector(OutlierMixin, NeighborsBase):
    """Outlier scores from the k nearest neighbours (the KNN detector of PyOD).

    A point's *outlier score* is its distance to its k-th nearest neighbour
    (``method='largest'``), or the mean or median of the k distances; the larger, the more
    abnormal.  Training points are scored without themselves among their neighbours.  The
    scores equal PyOD's ``pyod.models.knn.KNN`` (``decision_scores_`` and its
    ``decision_function``) with the same ``n_neighbors``, ``method`` and metric, the
    threshold too: the ``(1 - contamination)`` quantile of the training scores.

    The methods follow scikit-learn's outlier detectors (like
    :class:`~sklearn.neighbors.LocalOutlierFactor`): ``score_samples`` is the *negated*
    outlier score (lower is more abnormal), ``decision_function`` is ``score_samples -
    offset_`` (negative for outliers) and ``predict`` gives -1 for outliers, 1 for inliers.
    As with LocalOutlierFactor, ``novelty`` says what the model is for:

    - ``novelty=False`` (outlier detection): ``fit_predict(X)`` labels the training points
      themselves; ``predict``, ``decision_function`` and ``score_samples`` are unavailable
      (a training point would count itself among its neighbours there).
    - ``novelty=True`` (novelty detection): ``predict``, ``decision_function`` and
      ``score_samples`` label and score new points against the training set;
      ``fit_predict`` is unavailable.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours whose distances make the score.
    method : {'largest', 'mean', 'median'}, default='largest'
        Distance to the k-th neighbour, or the mean or median of the k distances.
    contamination : float in (0, 0.5], default=0.1
        Share of outliers expected in the training set: the threshold is the
        ``100 * (1 - contamination)`` percentile of the training scores.
    novelty : bool, default=False
        See above.
    metric, p, metric_params, algorithm, n_jobs
        As for :class:`~nearkit.NearestNeighbors`.

    Attributes
    ----------
    decision_scores_ : ndarray of shape (n_samples,)
        Outlier score of each training point (itself excluded), PyOD's attribute.
    threshold_ : float
        Scores above it are outliers (PyOD's attribute).
    offset_ : float
        ``-threshold_``: ``decision_function = score_samples - offset_``.
    n_features_in_, feature_names_in_, n_samples_fit_, effective_metric_,
    effective_metric_params_, algorithm_
        As for :class:`~nearkit.NearestNeighbors`.

    Examples
    --------
    >>> from nearkit import KNNOutlierDetector
    >>> X = [[0.0], [0.1], [0.2], [0.3], [5.0]]
    >>> KNNOutlierDetector(n_neighbors=2, contamination=0.2).fit_predict(X)
    array([ 1,  1,  1,  1, -1])
    >>> detector = KNNOutlierDetector(2, contamination=0.2, novelty=True).fit(X)
    >>> detector.predict([[0.15], [3.0]])
    array([ 1, -1])
    >>> detector.decision_scores_.round(2)
    array([0.2, 0.1, 0.1, 0.2, 4.8])
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        "method": [StrOptions(set(METHODS))],
        "contamination": [Interval(Real, 0, 0.5, closed="right")],
        "novelty": ["boolean"],
    }

    def __init__(self, n_neighbors=5, *, method="largest", contamination=0.1, novelty=False,
                 metric="euclidean", p=2, metric_params=None, algorithm="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.method = method
        self.contamination = contamination
        self.novelty = novelty
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.n_jobs = n_jobs

    @fit_context
    def fit(self, X, y=None):
        """Index the training points and score them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (finite numbers).
        y : ignored

        Returns
        -------
        self : KNNOutlierDetector
        """
        X = validate_training(self, X)
        if self.n_neighbors >= X.shape[0]:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be below the number of training samples "
                f"(n_samples = {X.shape[0]}): each point is scored without itself."
            )
        self._fit_index(X)
        self.decision_scores_ = self._outlier_scores(None)
        self.threshold_ = float(np.percentile(self.decision_scores_,
                                              100 * (1 - self.contamination)))
        self.offset_ = -self.threshold_
        return self

    def _outlier_scores(self, X):
        self._check_fitted()
        dist, _ = self._neighbors(X, self.n_neighbors)
        return METHODS[self.method](dist)

    @available_if(lambda self: not self.novelty)
    def fit_predict(self, X, y=None):
        """Fit, then label the training points: -1 for outliers, 1 for inliers.

        Only with ``novelty=False``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        scores = self.fit(X).decision_scores_
        return np.where(scores > self.threshold_, -1, 1)

    @available_if(lambda self: self.novelty)
    def score_samples(self, X):
        """Negated outlier scores of new points (lower is more abnormal).

        Only with ``novelty=True``.  ``-score_samples(X)`` equals PyOD's
        ``decision_function(X)``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        self._check_fitted()
        return -self._outlier_scores(self._validate_queries(X))

    @available_if(lambda self: self.novelty)
    def decision_function(self, X):
        """``score_samples(X) - offset_``: negative for outliers.  Only with ``novelty=True``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        return self.score_samples(X) - self.offset_

    @available_if(lambda self: self.novelty)
    def predict(self, X):
        """-1 for outliers (score above ``threshold_``), 1 for inliers.  Only with
        ``novelty=True``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray of shape (n_queries,)
        """
        return np.where(self.decision_function(X) < 0, -1, 1)
