"""ShardedKNNClassifier: the training rows stay partitioned across the Dask workers."""

from __future__ import annotations

import uuid
from concurrent.futures import CancelledError
from numbers import Integral

import dask
import dask.array as da
import numpy as np
from dask.delayed import delayed
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from nearkit.classifier import KNNClassifier
from nearkit.dask._inputs import (
    as_dask_labels,
    as_dask_matrix,
    check_finite,
    current_client,
    is_dask_dataframe,
)
from nearkit.dask._merge import drop_self, merge_neighbors
from nearkit.metrics import METRIC_ALIASES, resolve_metric
from nearkit.weights import compute_weights, vote_proba

#: how many partial top-k lists one merge task combines (the reduction tree's fan-in)
MERGE_FAN_IN = 4


class ShardedKNNClassifier(ClassifierMixin, BaseEstimator):
    """Exact k-nearest-neighbour classifier whose training rows stay on the Dask workers.

    Each row block of the training array is one *shard*: a nearkit :class:`KNNClassifier`
    fitted on a worker and kept there (persisted).  A query block is sent to every shard,
    each shard returns its exact top-k with *global* training indices, and the partial
    lists are merged in a tree reduction by the key (distance, global index).  That key is
    a strict total order, so the merge is a selection with no arithmetic: neighbours,
    distances, probabilities and predictions equal those of a single :class:`KNNClassifier`
    fitted on all rows, whatever the number of shards or workers, for every metric whose
    distances nearkit computes pair by pair (all but Mahalanobis; see the Notes).

    Works on any Dask scheduler; with a ``distributed.Client`` the shards live on its
    workers, and a worker lost mid-computation is recovered by Dask recomputing its shards
    from their source, so a job returns the complete exact result or raises.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        Vote weights, as in :class:`~nearkit.KNNClassifier`; a callable must be picklable
        by cloudpickle (it runs on the workers).
    sigma : float > 0 or None, default=None
        Gaussian bandwidth (``weights='gaussian'`` only); None uses ``d_k`` per query.
    metric : {'euclidean', 'manhattan', 'chebyshev', 'minkowski', 'mahalanobis'}, \
default='euclidean'
        Distance metric and its aliases, as in :class:`~nearkit.KNNClassifier`.
    p : float > 0, default=2
        Minkowski exponent.
    metric_params : dict or None, default=None
        ``{'VI': ...}`` or ``{'V': ...}`` for Mahalanobis; with neither, the covariance of
        all training rows is learned at fit from per-shard moments.
    algorithm : str, default='auto'
        Search engine of every shard, as in :class:`~nearkit.KNNClassifier`.
    n_jobs : int or None, default=None
        Threads each shard's search uses inside one Dask task.  None means 1, so a worker
        runs as many searches at once as it has threads and cores are not oversubscribed.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels of all training rows, sorted.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a Dask DataFrame.
    n_samples_fit_ : int
        Number of training rows over all shards.
    effective_metric_ : str
        The metric after resolving aliases and ``p``.
    effective_metric_params_ : dict
        ``{'p': p}`` for Minkowski, ``{'VI': VI}`` for Mahalanobis (the matrix every shard
        uses).
    shard_sizes_ : tuple of int
        Rows of each shard (non-empty row blocks of X), in training-row order.

    See Also
    --------
    nearkit.KNNClassifier : the single-machine estimator this one reproduces.
    nearkit.dask.ParallelPredictor : query-parallel prediction with a fitted model.

    Notes
    -----
    Only small values reach the client during ``fit``: per shard its row count, its
    distinct labels and, for a learned Mahalanobis metric, its mean and centred scatter
    matrix (``n_features**2`` numbers).  Nothing ever gathers training rows.

    **Mahalanobis.**  A learned covariance is combined from per-shard means and centred
    scatter matrices (Chan et al.'s pairwise update, in shard order), divided by
    ``n - 1``, and inverted exactly as :class:`~nearkit.KNNClassifier` does (pseudo-inverse
    with a warning when singular).  ``np.cov`` on one machine adds in another order, so the
    learned ``VI`` agrees with the single-machine one to rounding (relative differences
    around 1e-13 on well-conditioned data), not bit for bit.  Given the same ``VI`` the
    results are still not bit-identical: nearkit computes Mahalanobis as Euclidean after
    whitening ``x @ W`` with a BLAS matrix product, whose per-row rounding depends on how
    many rows are multiplied at once (the shard, the query block).  Distances therefore
    agree with the single-machine model to about 1e-12 relative, and neighbours and
    predictions agree except between candidates whose distances differ by less than that.

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

    _parameter_constraints = dict(KNNClassifier._parameter_constraints)

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
        """Fit one nearkit model per row block of ``X``, on the workers, and keep them there.

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
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not a thread count; use None, -1 or a positive int.")
        X, feature_names = as_dask_matrix(X, "X", n_blocks=_worker_threads())
        n_samples, n_features = X.shape
        if self.n_neighbors > n_samples:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} is larger than the number of training "
                f"samples (n_samples = {n_samples})."
            )
        y = as_dask_labels(y, X.chunks[0])
        learn_covariance = (METRIC_ALIASES.get(self.metric) == "mahalanobis"
                            and not self.metric_params)
        metric_params = self.metric_params
        if not learn_covariance:  # check the metric before reading any data
            metric = resolve_metric(self.metric, self.p, metric_params,
                                    np.empty((0, n_features)))

        offsets = np.concatenate(([0], np.cumsum(X.chunks[0])))[:-1].tolist()
        blocks = [(x_block, y_block, offset) for x_block, y_block, offset, rows
                  in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), offsets, X.chunks[0])
                  if rows > 0]
        token = uuid.uuid4().hex[:12]
        parts = dask.persist(*[
            delayed(_prepare_part)(x_block, y_block, offset,
                                   dask_key_name=f"nearkit-part-{token}-{i}")
            for i, (x_block, y_block, offset) in enumerate(blocks)
        ])
        stats = dask.compute(*[delayed(_part_stats)(part, learn_covariance) for part in parts])
        classes = np.unique(np.concatenate([labels for _, labels, _, _ in stats]))
        check_classification_targets(classes)
        if learn_covariance:
            metric = _learned_mahalanobis(stats, n_samples, n_features)
            metric_params = {"VI": metric.params["VI"]}

        shard_params = {**self.get_params(), "metric_params": metric_params,
                        "n_jobs": 1 if self.n_jobs is None else self.n_jobs}
        self._shards = list(dask.persist(*[
            delayed(_fit_shard)(part, classes, shard_params, offset,
                                dask_key_name=f"nearkit-shard-{token}-{i}")
            for i, (part, (_, _, offset)) in enumerate(zip(parts, blocks))
        ]))
        del parts  # the shards hold what they need; Dask keeps the lineage for recovery
        # waits for every shard and raises here if one failed to fit
        self.shard_sizes_ = tuple(dask.compute(*[delayed(_shard_rows)(s) for s in self._shards]))
        self._shard_offsets = [offset for _, _, offset in blocks]
        self._X = X
        self.classes_ = classes
        self.n_features_in_ = n_features
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        self.n_samples_fit_ = n_samples
        self.effective_metric_ = metric.name
        self.effective_metric_params_ = metric.params
        return self

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest training rows of each query, with global training indices.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame, array-like of shape (n_queries, n_features) \
or None, default=None
            Queries.  None means the training rows themselves, each excluded from its own
            neighbours.
        n_neighbors : int or None, default=None
            Number of neighbours (default: the ``n_neighbors`` given at construction).
        return_distance : bool, default=True
            Whether to return the distances too.

        Returns
        -------
        neigh_dist : ndarray or dask.array.Array of shape (n_queries, n_neighbors)
            True distances, ascending.  Only present if ``return_distance=True``.
        neigh_ind : ndarray or dask.array.Array of shape (n_queries, n_neighbors)
            Indices into the training rows (in the order of ``X`` at fit), ordered by
            (distance, index).  NumPy queries give NumPy arrays; Dask queries and
            ``X=None`` give Dask arrays.
        """
        blocks, k, to_numpy = self._neighbor_blocks(X, n_neighbors)
        dist = _stack([(block[0], rows) for block, rows in blocks], (k,), np.float64)
        ind = _stack([(block[1], rows) for block, rows in blocks], (k,), np.int64)
        if to_numpy:
            dist, ind = _compute(dist, ind)
        return (dist, ind) if return_distance else ind

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
        proba, _, to_numpy = self._vote(X)
        return _compute(proba)[0] if to_numpy else proba

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
        _, labels, to_numpy = self._vote(X)
        return _compute(labels)[0] if to_numpy else labels

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
        predicted = self.predict(X)
        if isinstance(predicted, da.Array) or isinstance(y, da.Array) or is_dask_dataframe(y):
            predicted, y = dask.compute(predicted, y)  # labels only, one per query
        return float(accuracy_score(np.asarray(y), predicted, sample_weight=sample_weight))

    # -- graph building ----------------------------------------------------------------

    def _vote(self, X):
        blocks, _, to_numpy = self._neighbor_blocks(X, None)
        token = uuid.uuid4().hex[:12]
        votes = [(delayed(_vote_block, nout=2)(block, self.weights, self.sigma, self.classes_,
                                               dask_key_name=f"nearkit-vote-{token}-{i}"), rows)
                 for i, (block, rows) in enumerate(blocks)]
        proba = _stack([(vote[0], rows) for vote, rows in votes], (len(self.classes_),),
                       np.float64)
        labels = _stack([(vote[1], rows) for vote, rows in votes], (), self.classes_.dtype)
        return proba, labels, to_numpy

    def _neighbor_blocks(self, X, n_neighbors):
        """One delayed (distances, indices, labels) per query block, and its row count."""
        check_is_fitted(self)
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
        k = int(k)
        to_numpy = False
        if exclude_self:
            training_blocks = [block for block, rows
                               in zip(self._X.to_delayed().ravel(), self._X.chunks[0]) if rows > 0]
            queries = list(zip(training_blocks, self._shard_offsets, self.shard_sizes_))
            wanted = k + 1  # each row finds itself, then is dropped
        else:
            to_numpy = not isinstance(X, da.Array) and not is_dask_dataframe(X)
            Q, _ = as_dask_matrix(X, "X", self.n_features_in_)
            starts = np.concatenate(([0], np.cumsum(Q.chunks[0])))[:-1].tolist()
            queries = list(zip(Q.to_delayed().ravel(), starts, Q.chunks[0]))
            wanted = k
        token = uuid.uuid4().hex[:12]
        blocks = []
        for b, (block, first_row, rows) in enumerate(queries):
            partial = [delayed(_query_shard)(shard, block, min(wanted, size), first_row,
                                             dask_key_name=f"nearkit-search-{token}-{b}-{s}")
                       for s, (shard, size) in enumerate(zip(self._shards, self.shard_sizes_))]
            level = 0
            while len(partial) > 1:
                partial = [
                    delayed(merge_neighbors)(partial[i:i + MERGE_FAN_IN], wanted,
                                             dask_key_name=f"nearkit-merge-{token}-{b}-{level}-{i}")
                    for i in range(0, len(partial), MERGE_FAN_IN)
                ]
                level += 1
            merged = partial[0]
            if exclude_self:
                merged = delayed(drop_self)(merged, first_row, k,
                                            dask_key_name=f"nearkit-drop-self-{token}-{b}")
            blocks.append((merged, rows))
        return blocks, k, to_numpy


def _worker_threads():
    """Threads of the cluster (or cores of this machine), to split NumPy training data."""
    client = current_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    from nearkit.search import available_threads

    return available_threads()


def _compute(*collections):
    """``dask.compute``, with a clear message when lost data cannot be recomputed."""
    try:
        return dask.compute(*collections)
    except CancelledError as exc:  # distributed's Future(s)CancelledError
        raise RuntimeError(
            f"Dask cancelled the computation, so no result is returned ({exc}).  'lost "
            "dependencies' means a worker died holding data that existed nowhere else (for "
            "example training rows sent with client.scatter) and Dask cannot recompute it: "
            "fit again, from a source Dask can re-read (from_array, from_zarr, read_parquet, "
            "...) to survive lost workers."
        ) from exc


def _stack(blocks, tail_shape, dtype):
    """Concatenate per-block delayed arrays of known row counts into one Dask array."""
    arrays = [da.from_delayed(value, shape=(rows, *tail_shape), dtype=dtype)
              for value, rows in blocks]
    return da.concatenate(arrays, axis=0)


# -- tasks (run on the workers) -------------------------------------------------------


class _Shard:
    """A nearkit model fitted on one row block, with the block's global labels and offset."""

    __slots__ = ("model", "labels", "offset", "nbytes")

    def __init__(self, model, labels, offset, nbytes):
        self.model = model
        self.labels = labels
        self.offset = offset
        self.nbytes = nbytes

    def __sizeof__(self):
        # Dask's sizeof falls back to this: it must see the data, or the scheduler would
        # move shards instead of the much smaller query blocks
        return self.nbytes


def _prepare_part(X_block, y_block, first_row):
    X = np.ascontiguousarray(X_block, dtype=np.float64)
    check_finite(X, "X", first_row)
    return X, np.asarray(y_block)


def _part_stats(part, with_moments):
    """Row count, distinct labels and, for a learned covariance, mean and centred scatter."""
    X, y = part
    labels = np.unique(y)
    if not with_moments:
        return X.shape[0], labels, None, None
    mean = X.mean(axis=0)
    centred = X - mean
    return X.shape[0], labels, mean, centred.T @ centred


def _learned_mahalanobis(stats, n_samples, n_features):
    """The Mahalanobis metric of the covariance of all rows, from per-part moments."""
    if n_samples < 2:
        raise ValueError(
            "metric='mahalanobis' learns the covariance of the training data, which needs at "
            f"least 2 samples (n_samples = {n_samples}); pass metric_params={{'VI': ...}}."
        )
    covariance = _combine_moments(stats)[2] / (n_samples - 1)
    # the same inversion (pseudo-inverse and warning when singular) as KNNClassifier's
    return resolve_metric("mahalanobis", 2, {"V": covariance}, np.empty((0, n_features)))


def _combine_moments(stats):
    """(n, mean, scatter) of all rows from per-part ones, combined in part order."""
    n, _, mean, scatter = stats[0]
    for n_b, _, mean_b, scatter_b in stats[1:]:
        total = n + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        scatter = scatter + scatter_b + np.outer(delta, delta) * (n * n_b / total)
        n = total
    return n, mean, scatter


def _fit_shard(part, classes, params, offset):
    X, y = part
    labels = np.searchsorted(classes, y)
    params = {**params, "n_neighbors": min(params["n_neighbors"], X.shape[0])}
    model = KNNClassifier(**params).fit(X, labels)
    return _Shard(model, labels, offset, X.nbytes + 2 * labels.nbytes)


def _shard_rows(shard):
    return shard.model.n_samples_fit_


def _query_shard(shard, Q, k, first_row):
    """The shard's exact top-k of each query, as (distances, global indices, labels)."""
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    if Q.shape[0] == 0:
        return np.empty((0, k)), np.empty((0, k), dtype=np.int64), np.empty((0, k), np.intp)
    check_finite(Q, "X", first_row)
    dist, ind = shard.model.kneighbors(Q, n_neighbors=k)
    return dist, ind + shard.offset, shard.labels[ind]


def _vote_block(neighbors, weights, sigma, classes):
    dist, _, labels = neighbors
    proba = vote_proba(labels, compute_weights(dist, weights, sigma), len(classes))
    return proba, classes[np.argmax(proba, axis=1)]
