"""The sharded neighbours base: training rows partitioned across Dask workers.

:class:`ShardedNeighborsBase` stands on :class:`nearkit._base.NeighborsBase` (the same
parameters, checked at fit and at every method, the same metric table) and replaces its
index by shards: every row block of the training array is fitted, on a worker, as a nearkit
:class:`~nearkit.NearestNeighbors` kept there with its rows' *payload* (class codes for the
classifier, targets for the regressor, nothing for the search).  A query block is sent to
every shard, each returns its exact top-k with global training indices and payloads, and the
partial lists are merged in a tree reduction by (distance, global index)
(:mod:`nearkit.dask._merge`), so the neighbours equal those of one machine on all rows.
"""

from __future__ import annotations

import uuid
from concurrent.futures import CancelledError

import dask
import dask.array as da
import numpy as np
from dask.delayed import delayed
from sklearn.utils.validation import _check_feature_names

from nearkit._base import NeighborsBase, _check_n_neighbors
from nearkit.dask._inputs import (
    as_dask_labels,
    as_dask_matrix,
    check_finite,
    current_client,
    is_dask_dataframe,
)
from nearkit.dask._merge import drop_self, merge_neighbors
from nearkit.metrics import METRIC_ALIASES, resolve_metric
from nearkit.search import VALID_METRICS, available_threads

#: how many partial top-k lists one merge task combines (the reduction tree's fan-in)
MERGE_FAN_IN = 4


class ShardedNeighborsBase(NeighborsBase):
    """Shared by the sharded estimators: shards on the workers and the exact merged search.

    Subclasses call :meth:`_fit_shards` from ``fit`` and build on :meth:`_neighbor_blocks`.
    """

    # -- fitting -------------------------------------------------------------------------

    def _fit_shards(self, X, y=None, payload=None):
        """Fit one nearkit model per row block of ``X`` on the workers and keep them there.

        ``y`` (labels or targets, 1-d) is lined up with the row blocks; ``payload`` is called
        on the client with the parts' statistics (row count, distinct labels, ...) once they
        are known and returns the picklable function that maps a block's ``y``, on its
        worker, to what its shard returns with each neighbour.
        """
        self._check_feature_names_of(X, reset=True)
        X, _ = as_dask_matrix(X, "X", n_blocks=_worker_threads())
        n_samples, n_features = X.shape
        self._check_param_values(n_samples)
        learn_covariance = (METRIC_ALIASES.get(self.metric) == "mahalanobis"
                            and not self.metric_params)
        metric_params = self.metric_params
        if not learn_covariance:  # check the metric before reading any data
            metric = resolve_metric(self.metric, self.p, metric_params,
                                    np.empty((0, n_features)))
        name = "mahalanobis" if learn_covariance else metric.name
        if self.algorithm != "auto" and name not in VALID_METRICS[self.algorithm]:
            raise ValueError(
                f"algorithm={self.algorithm!r} does not search metric {name!r}; engines "
                f"for it: {sorted(a for a, m in VALID_METRICS.items() if name in m)}."
            )
        y_blocks = [None] * len(X.chunks[0])
        if y is not None:
            y_blocks = as_dask_labels(y, X.chunks[0]).to_delayed().ravel()
        offsets = np.concatenate(([0], np.cumsum(X.chunks[0])))[:-1].tolist()
        blocks = [(x_block, y_block, offset) for x_block, y_block, offset, rows
                  in zip(X.to_delayed().ravel(), y_blocks, offsets, X.chunks[0]) if rows > 0]
        token = uuid.uuid4().hex[:12]
        parts = dask.persist(*[
            delayed(_prepare_part)(x_block, y_block, offset,
                                   dask_key_name=f"nearkit-part-{token}-{i}")
            for i, (x_block, y_block, offset) in enumerate(blocks)
        ])
        stats = dask.compute(*[delayed(_part_stats)(part, learn_covariance) for part in parts])
        if learn_covariance:
            metric = _learned_mahalanobis(stats, n_samples, n_features)
            metric_params = {"VI": metric.params["VI"]}
        payload = None if payload is None else payload(stats)
        shard_params = {"metric": self.metric, "p": self.p, "metric_params": metric_params,
                        "algorithm": self.algorithm,
                        "n_jobs": 1 if self.n_jobs is None else self.n_jobs}
        self._shards = list(dask.persist(*[
            delayed(_fit_shard)(part, shard_params, offset, payload,
                                dask_key_name=f"nearkit-shard-{token}-{i}")
            for i, (part, (_, _, offset)) in enumerate(zip(parts, blocks))
        ]))
        del parts  # the shards hold what they need; Dask keeps the lineage for recovery
        # waits for every shard and raises here if one failed to fit
        self.shard_sizes_ = tuple(dask.compute(*[delayed(_shard_rows)(s) for s in self._shards]))
        self._shard_offsets = [offset for _, _, offset in blocks]
        self._X = X
        self.n_features_in_ = n_features
        self.n_samples_fit_ = n_samples
        self.effective_metric_ = metric.name
        self.effective_metric_params_ = metric.params
        self._remember_params()

    def _check_feature_names_of(self, X, reset):
        """scikit-learn's feature-name check (set at fit, the same names in the same order
        at every query), on a Dask DataFrame's empty pandas meta."""
        _check_feature_names(self, X._meta if is_dask_dataframe(X) else X, reset=reset)

    # -- search --------------------------------------------------------------------------

    def kneighbors(self, X=None, n_neighbors=None, return_distance=True):
        """The k nearest training rows of each query, with global training indices.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame, array-like of shape (n_queries, n_features) \
or None, default=None
            Queries.  None means the training rows themselves, each excluded from its own
            neighbours.
        n_neighbors : int or None, default=None
            Number of neighbours (default: the ``n_neighbors`` parameter).
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
        dist = stack_blocks([(block[0], rows) for block, rows in blocks], (k,), np.float64)
        ind = stack_blocks([(block[1], rows) for block, rows in blocks], (k,), np.int64)
        if to_numpy:
            dist, ind = compute(dist, ind)
        return (dist, ind) if return_distance else ind

    def _neighbor_blocks(self, X, n_neighbors):
        """One delayed (distances, indices, payloads) per query block, and its row count;
        also k and whether the caller wants NumPy back."""
        self._check_fitted()
        k = _check_n_neighbors(self.n_neighbors if n_neighbors is None else n_neighbors)
        exclude_self = X is None
        available = self.n_samples_fit_ - int(exclude_self)
        if k > available:
            raise ValueError(
                f"n_neighbors={k} is larger than the {available} training samples available"
                + (" (each point is excluded from its own neighbours)." if exclude_self else ".")
            )
        to_numpy = False
        if exclude_self:
            training_blocks = [block for block, rows
                               in zip(self._X.to_delayed().ravel(), self._X.chunks[0]) if rows > 0]
            queries = list(zip(training_blocks, self._shard_offsets, self.shard_sizes_))
            wanted = k + 1  # each row finds itself, then is dropped
        else:
            self._check_feature_names_of(X, reset=False)
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

    def _map_blocks(self, X, task, *args, name, tail_shape, dtype):
        """``task(neighbours, *args)`` on every query block (on the workers), stacked into
        one Dask array (or NumPy for NumPy queries)."""
        blocks, _, to_numpy = self._neighbor_blocks(X, None)
        token = uuid.uuid4().hex[:12]
        answers = [(delayed(task)(block, *args, dask_key_name=f"nearkit-{name}-{token}-{i}"),
                    rows) for i, (block, rows) in enumerate(blocks)]
        out = stack_blocks(answers, tail_shape, dtype)
        return compute(out)[0] if to_numpy else out


def _worker_threads():
    """Threads of the cluster (or cores of this machine), to split NumPy training data."""
    client = current_client()
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    return available_threads()


def compute(*collections):
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


def stack_blocks(blocks, tail_shape, dtype):
    """Concatenate per-block delayed arrays of known row counts into one Dask array."""
    arrays = [da.from_delayed(value, shape=(rows, *tail_shape), dtype=dtype)
              for value, rows in blocks]
    return da.concatenate(arrays, axis=0)


# -- tasks (run on the workers) -------------------------------------------------------


class _Shard:
    """A nearkit search fitted on one row block, with the block's payload and offset."""

    __slots__ = ("model", "payload", "offset", "nbytes")

    def __init__(self, model, payload, offset, nbytes):
        self.model = model
        self.payload = payload
        self.offset = offset
        self.nbytes = nbytes

    def __sizeof__(self):
        # Dask's sizeof falls back to this: it must see the data, or the scheduler would
        # move shards instead of the much smaller query blocks
        return self.nbytes


def _prepare_part(X_block, y_block, first_row):
    X = np.ascontiguousarray(X_block, dtype=np.float64)
    check_finite(X, "X", first_row)
    return X, (None if y_block is None else np.asarray(y_block))


def _part_stats(part, with_moments):
    """Row count, distinct labels (or None) and, for a learned covariance, mean and centred
    scatter."""
    X, y = part
    labels = None if y is None or y.dtype.kind == "f" else np.unique(y)
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


def _fit_shard(part, params, offset, payload):
    from nearkit.unsupervised import NearestNeighbors

    X, y = part
    model = NearestNeighbors(**params).fit(X)
    values = None if payload is None else payload(y)
    nbytes = X.nbytes + (0 if values is None else 2 * values.nbytes)
    return _Shard(model, values, offset, nbytes)


def _shard_rows(shard):
    return shard.model.n_samples_fit_


def _query_shard(shard, Q, k, first_row):
    """The shard's exact top-k of each query, as (distances, global indices, payloads)."""
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    if Q.shape[0] == 0:
        payload = None if shard.payload is None else np.empty(
            (0, k, *shard.payload.shape[1:]), dtype=shard.payload.dtype)
        return np.empty((0, k)), np.empty((0, k), dtype=np.int64), payload
    check_finite(Q, "X", first_row)
    dist, ind = shard.model.kneighbors(Q, n_neighbors=k)
    return dist, ind + shard.offset, None if shard.payload is None else shard.payload[ind]
