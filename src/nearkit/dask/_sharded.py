"""The sharded estimators: search, classifier and regressor with their training rows kept on
the Dask workers (thin files on :class:`~nearkit.dask._shards.ShardedNeighborsBase`)."""

from __future__ import annotations

from functools import partial

import dask
import dask.array as da
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets

from nearkit._base import NeighborsBase, WeightedNeighborsMixin, fit_context
from nearkit.dask._inputs import is_dask_dataframe
from nearkit.dask._shards import ShardedNeighborsBase
from nearkit.weights import compute_weights, vote_proba, weighted_mean

_SHARED_NOTES = """
    Notes
    -----
    Only small values reach the client during ``fit``: per shard its row count, its
    distinct labels (classifier) and, for a learned Mahalanobis metric, its mean and
    centred scatter matrix (``n_features**2`` numbers).  Nothing ever gathers training rows.

    **Mahalanobis.**  A learned covariance is combined from per-shard means and centred
    scatter matrices (Chan et al.'s pairwise update, in shard order), divided by ``n - 1``,
    and inverted exactly as the single-machine estimators do (pseudo-inverse with a warning
    when singular).  ``np.cov`` on one machine adds in another order, so the learned ``VI``
    agrees with the single-machine one to rounding (relative differences around 1e-13 on
    well-conditioned data), not bit for bit, and so do the distances.  Given the same ``VI``
    (``metric_params={'VI': ...}``) the results are identical: the whitening is computed row
    by row in a fixed order, whatever shard or query block a point is in.
"""


def _with_shared_notes(cls):
    """Put the notes every sharded estimator shares before the Examples of its docstring.

    (A string joined with ``+`` in the class body is an expression, not a docstring: it
    would leave ``__doc__`` None.)
    """
    if cls.__doc__ is None:  # python -OO
        return cls
    head, examples, tail = cls.__doc__.partition("\n    Examples\n    --------\n")
    cls.__doc__ = head.rstrip() + "\n" + _SHARED_NOTES + examples + tail
    return cls


@_with_shared_notes
class ShardedNearestNeighbors(ShardedNeighborsBase):
    """Exact nearest-neighbour search whose training rows stay on the Dask workers.

    Each row block of the training array is one *shard*: a nearkit
    :class:`~nearkit.NearestNeighbors` fitted on a worker and kept there (persisted).  A
    query block is sent to every shard, each returns its exact top-k with *global* training
    indices, and the partial lists are merged in a tree reduction by (distance, global
    index): a strict total order, so the merge is a selection with no arithmetic, and the
    neighbours equal those of one :class:`~nearkit.NearestNeighbors` on all rows, whatever
    the number of shards or workers.

    Works on any Dask scheduler; with a ``distributed.Client`` the shards live on its
    workers, and a worker lost mid-computation is recovered by Dask recomputing its shards
    from their source, so a job returns the complete exact result or raises.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours returned by :meth:`kneighbors` by default.
    metric : str, default='euclidean'
        A name of the metric table, as in :class:`~nearkit.NearestNeighbors`.
    p : float > 0, default=2
        Minkowski exponent.
    metric_params : dict or None, default=None
        ``{'VI': ...}`` or ``{'V': ...}`` for Mahalanobis; with neither, the covariance of
        all training rows is learned at fit from per-shard moments.
    algorithm : str, default='auto'
        Search engine of every shard, checked against the metric at fit.
    n_jobs : int or None, default=None
        Threads each shard's search uses inside one Dask task.  None means 1, so a worker
        runs as many searches at once as it has threads and cores are not oversubscribed.

    Attributes
    ----------
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names, when X was a DataFrame; queries must then have the same columns in
        the same order.
    n_samples_fit_ : int
        Number of training rows over all shards.
    effective_metric_, effective_metric_params_
        As for :class:`~nearkit.NearestNeighbors` (the matrix every shard uses).
    shard_sizes_ : tuple of int
        Rows of each shard (non-empty row blocks of X), in training-row order.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from nearkit.dask import ShardedNearestNeighbors
    >>> X = da.from_array(np.arange(20.0).reshape(10, 2), chunks=(4, 2))  # 3 shards
    >>> search = ShardedNearestNeighbors(n_neighbors=2).fit(X)
    >>> search.kneighbors(np.array([[4.1, 5.0]]))[1]  # rows [4, 5] and [6, 7]
    array([[2, 3]])
    """

    _n_neighbors_bounded_at_fit = False

    def __init__(self, *, n_neighbors=5, metric="euclidean", p=2, metric_params=None,
                 algorithm="auto", n_jobs=None):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.algorithm = algorithm
        self.n_jobs = n_jobs

    @fit_context
    def fit(self, X, y=None):
        """Fit one search per row block of ``X``, on the workers, and keep them there.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_samples, n_features)
            Training points (finite numbers).  Each row block becomes one shard; a NumPy
            array is split into one block per worker thread.  Chunk sizes must be known.
        y : ignored

        Returns
        -------
        self : ShardedNearestNeighbors
        """
        self._fit_shards(X)
        return self


@_with_shared_notes
class ShardedKNNClassifier(ClassifierMixin, WeightedNeighborsMixin, ShardedNeighborsBase):
    """Exact k-nearest-neighbour classifier whose training rows stay on the Dask workers.

    The shards and the exact merge of :class:`ShardedNearestNeighbors`; each shard also
    keeps its rows' class codes, and each query block's merged neighbours vote on a worker
    as :class:`~nearkit.KNNClassifier` votes: neighbours, distances, probabilities and
    predictions equal those of one :class:`~nearkit.KNNClassifier` fitted on all rows.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        Vote weights, as in :class:`~nearkit.KNNClassifier`; a callable must be picklable
        by cloudpickle (it runs on the workers).
    sigma : float > 0 or None, default=None
        Gaussian bandwidth (``weights='gaussian'`` only); None uses ``d_k`` per query.
    metric, p, metric_params, algorithm, n_jobs
        As for :class:`ShardedNearestNeighbors`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels of all training rows, sorted.
    n_features_in_, feature_names_in_, n_samples_fit_, effective_metric_,
    effective_metric_params_, shard_sizes_
        As for :class:`ShardedNearestNeighbors`.

    See Also
    --------
    nearkit.KNNClassifier : the single-machine estimator this one reproduces.
    nearkit.dask.ParallelPredictor : query-parallel prediction with a fitted model.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from nearkit.dask import ShardedKNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(rng.normal(size=(1000, 4)), chunks=(250, 4))  # 4 shards
    >>> y = da.from_array(rng.integers(0, 3, size=1000), chunks=250)
    >>> model = ShardedKNNClassifier(n_neighbors=5).fit(X, y)
    >>> model.shard_sizes_
    (250, 250, 250, 250)
    >>> Q = rng.normal(size=(3, 4))
    >>> model.predict(Q)  # NumPy in, NumPy out
    array([1, 1, 0])
    >>> from nearkit import KNNClassifier
    >>> single = KNNClassifier(n_neighbors=5).fit(X.compute(), y.compute())
    >>> bool((single.predict_proba(Q) == model.predict_proba(Q)).all())
    True
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        **WeightedNeighborsMixin._weight_constraints,
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

    @fit_context
    def fit(self, X, y):
        """Fit one model per row block of ``X``, on the workers, and keep them there.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_samples, n_features)
            Training points (finite numbers).  Each row block becomes one shard; a NumPy
            array is split into one block per worker thread.  Chunk sizes must be known.
        y : dask.array.Array, dask Series or array-like of shape (n_samples,)
            Class labels; rechunked to line up with the row blocks of ``X``.

        Returns
        -------
        self : ShardedKNNClassifier
        """
        self._fit_shards(X, y, payload=self._class_codes)
        return self

    def _class_codes(self, stats):
        """Learn the classes from the parts' distinct labels; each shard keeps its rows'
        class codes (computed on its worker)."""
        self.classes_ = np.unique(np.concatenate([labels for _, labels, _, _ in stats]))
        check_classification_targets(self.classes_)
        return partial(np.searchsorted, self.classes_)

    def predict_proba(self, X):
        """Class probabilities: each class's share of the neighbours' weights.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray or dask.array.Array of shape (n_queries, n_classes)
            Columns follow ``classes_``; a Dask array for Dask queries.
        """
        return self._map_blocks(X, _vote_block, self.weights, self.sigma, self.classes_,
                                name="vote", tail_shape=(len(self.classes_),),
                                dtype=np.float64)

    def predict(self, X):
        """Predicted class of each query (vote ties go to the smallest class label).

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray or dask.array.Array of shape (n_queries,)
            A Dask array for Dask queries.
        """
        proba = self.predict_proba(X)
        labels = proba.argmax(axis=1)
        if isinstance(labels, da.Array):
            return labels.map_blocks(partial(_decode, self.classes_), dtype=self.classes_.dtype)
        return self.classes_[labels]

    def score(self, X, y, sample_weight=None):
        """Accuracy of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)
        y : dask.array.Array or array-like of shape (n_queries,)
        sample_weight : array-like of shape (n_queries,) or None, default=None

        Returns
        -------
        float
        """
        predicted, y = _computed(self.predict(X), y)
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))


@_with_shared_notes
class ShardedKNNRegressor(RegressorMixin, WeightedNeighborsMixin, ShardedNeighborsBase):
    """Exact k-nearest-neighbour regression whose training rows stay on the Dask workers.

    The shards and the exact merge of :class:`ShardedNearestNeighbors`; each shard also
    keeps its rows' targets, and each query block's merged neighbours are averaged on a
    worker as :class:`~nearkit.KNNRegressor` averages them: predictions equal those of one
    :class:`~nearkit.KNNRegressor` fitted on all rows.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours averaged.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        As in :class:`~nearkit.KNNRegressor`.
    sigma : float > 0 or None, default=None
        Gaussian bandwidth.
    metric, p, metric_params, algorithm, n_jobs
        As for :class:`ShardedNearestNeighbors`.

    Attributes
    ----------
    n_features_in_, feature_names_in_, n_samples_fit_, effective_metric_,
    effective_metric_params_, shard_sizes_
        As for :class:`ShardedNearestNeighbors`.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from nearkit.dask import ShardedKNNRegressor
    >>> X = da.from_array(np.arange(10.0).reshape(-1, 1), chunks=(4, 1))
    >>> y = da.from_array(np.arange(10.0) ** 2, chunks=4)
    >>> ShardedKNNRegressor(n_neighbors=2).fit(X, y).predict(np.array([[2.4]]))
    array([6.5])
    """

    _parameter_constraints = {
        **NeighborsBase._parameter_constraints,
        **WeightedNeighborsMixin._weight_constraints,
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

    @fit_context
    def fit(self, X, y):
        """Fit one model per row block of ``X``, on the workers, and keep them there.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_samples, n_features)
            Training points (finite numbers).
        y : dask.array.Array, dask Series or array-like of shape (n_samples,)
            Numeric targets (finite); rechunked to line up with the row blocks of ``X``.

        Returns
        -------
        self : ShardedKNNRegressor
        """
        self._fit_shards(X, y, payload=lambda stats: _targets)
        return self

    def predict(self, X):
        """The weighted mean of each query's neighbours' targets.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)

        Returns
        -------
        ndarray or dask.array.Array of shape (n_queries,)
        """
        return self._map_blocks(X, _mean_block, self.weights, self.sigma, name="mean",
                                tail_shape=(), dtype=np.float64)

    def score(self, X, y, sample_weight=None):
        """R² of ``predict(X)`` against ``y``.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)
        y : dask.array.Array or array-like of shape (n_queries,)
        sample_weight : array-like of shape (n_queries,) or None, default=None

        Returns
        -------
        float
        """
        predicted, y = _computed(self.predict(X), y)
        return float(r2_score(y, predicted, sample_weight=sample_weight))


def _computed(predicted, y):
    """Predictions and true values as NumPy (one value per query is all that moves)."""
    if isinstance(predicted, da.Array) or isinstance(y, da.Array) or is_dask_dataframe(y):
        predicted, y = dask.compute(predicted, y)
    return np.asarray(predicted), np.asarray(y)


def _decode(classes, codes):
    return classes[codes]


def _targets(y):
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; nearkit needs finite targets.")
    return y


# -- tasks on the query blocks (run on the workers) -------------------------------------


def _vote_block(neighbors, weights, sigma, classes):
    dist, _, labels = neighbors
    return vote_proba(labels, compute_weights(dist, weights, sigma), len(classes))


def _mean_block(neighbors, weights, sigma):
    dist, _, values = neighbors
    uniform = weights == "uniform"
    return weighted_mean(values, None if uniform else compute_weights(dist, weights, sigma),
                         uniform)
