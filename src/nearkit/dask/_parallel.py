"""Query-parallel prediction: one fitted model, sent to every worker once, many query blocks."""

from __future__ import annotations

import copy

import dask.array as da
import numpy as np
import pandas as pd
from dask.delayed import delayed
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from nearkit.dask._inputs import (
    as_dask_matrix,
    check_n_features,
    check_numeric,
    current_client,
    is_dask_dataframe,
)


class ParallelPredictor:
    """Predict with a fitted model on Dask collections of queries, block by block.

    The model is sent to every worker once, when the predictor is made
    (``client.scatter(..., broadcast=True)``); each query block (a chunk of a Dask array or
    a partition of a Dask DataFrame) is then answered by the model on the worker that holds
    the block, in parallel, and the answer is a Dask collection with the same row blocks.
    Each query is answered on its own, so the results equal the model's own ``predict``
    (for Mahalanobis up to the rounding of the per-block whitening, see
    :class:`~nearkit.dask.ShardedKNNClassifier`).

    Use it when the training set fits on every worker and the queries are many; when the
    training set itself is too large, use :class:`~nearkit.dask.ShardedKNNClassifier`.

    Parameters
    ----------
    estimator : KNNClassifier
        A fitted nearkit (or any scikit-learn) classifier; ``kneighbors`` needs a neighbours
        model.
    client : distributed.Client or None, default=None
        Cluster to scatter the model to; None uses the current client.  Without any client
        the model is placed in the task graph once and Dask's local scheduler runs it.
    n_jobs : int or None, default=1
        Threads each block task uses, set on a copy of the model when it has an ``n_jobs``
        parameter (the estimator itself is not changed).  The default of 1 lets each worker
        thread run one block without oversubscribing cores; None keeps the model's value.

    Attributes
    ----------
    model_ : distributed.Future or dask.delayed.Delayed
        The model on the cluster.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from nearkit import KNNClassifier
    >>> from nearkit.dask import ParallelPredictor
    >>> rng = np.random.default_rng(0)
    >>> model = KNNClassifier(n_neighbors=3).fit(rng.normal(size=(200, 2)),
    ...                                          rng.integers(0, 2, size=200))
    >>> Q = da.from_array(rng.normal(size=(1000, 2)), chunks=(250, 2))
    >>> predicted = ParallelPredictor(model).predict(Q)  # lazy: a Dask array
    >>> predicted.chunks
    ((250, 250, 250, 250),)
    >>> bool((predicted.compute() == model.predict(Q.compute())).all())
    True
    """

    def __init__(self, estimator, *, client=None, n_jobs=1):
        check_is_fitted(estimator)
        model = estimator
        if n_jobs is not None and "n_jobs" in estimator.get_params(deep=False):
            model = copy.copy(estimator)
            model.set_params(n_jobs=n_jobs)
        self.estimator = estimator
        self.client = client if client is not None else current_client()
        if self.client is not None:
            self.model_ = self.client.scatter(model, broadcast=True, hash=False)
        else:
            self.model_ = delayed(model, pure=True)

    def predict(self, X):
        """Predicted class of each query.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)

        Returns
        -------
        dask.array.Array, dask Series or ndarray of shape (n_queries,)
            A Dask array for a Dask array (same row chunks), a Dask Series with the
            DataFrame's index for a Dask DataFrame, a NumPy array for NumPy input.
        """
        dtype = self.estimator.classes_.dtype
        if is_dask_dataframe(X):
            self._check_columns(X)
            return X.map_partitions(_predict_frame, self.model_,
                                    meta=pd.Series(np.empty(0, dtype=dtype)))
        Q, to_numpy = self._as_array(X)
        out = Q.map_blocks(_predict_block, self.model_, drop_axis=1, dtype=dtype,
                           meta=np.empty(0, dtype=dtype))
        return out.compute() if to_numpy else out

    def predict_proba(self, X):
        """Class probabilities of each query.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)

        Returns
        -------
        dask.array.Array, dask DataFrame or ndarray of shape (n_queries, n_classes)
            Columns follow the model's ``classes_`` (the DataFrame's columns are them).
        """
        classes = self.estimator.classes_
        if is_dask_dataframe(X):
            self._check_columns(X)
            meta = pd.DataFrame(np.empty((0, len(classes))), columns=classes)
            return X.map_partitions(_predict_proba_frame, self.model_, classes, meta=meta)
        Q, to_numpy = self._as_array(X)
        out = Q.map_blocks(_predict_proba_block, self.model_, dtype=np.float64,
                           chunks=(Q.chunks[0], (len(classes),)))
        return out.compute() if to_numpy else out

    def kneighbors(self, X, n_neighbors=None, return_distance=True):
        """The k nearest training points of each query.

        Parameters
        ----------
        X : dask.array.Array, dask DataFrame or array-like of shape (n_queries, n_features)
        n_neighbors : int or None, default=None
            Number of neighbours (default: the model's ``n_neighbors``).
        return_distance : bool, default=True

        Returns
        -------
        neigh_dist : dask.array.Array or ndarray of shape (n_queries, n_neighbors)
            Only present if ``return_distance=True``.  Row chunk sizes are unknown
            (``np.nan``) for a DataFrame input.
        neigh_ind : dask.array.Array or ndarray of shape (n_queries, n_neighbors)
        """
        k = self.estimator.n_neighbors if n_neighbors is None else n_neighbors
        if is_dask_dataframe(X):
            self._check_columns(X)
            blocks = [(part, np.nan) for part in X.to_delayed()]
            to_numpy = False
        else:
            Q, to_numpy = self._as_array(X)
            blocks = list(zip(Q.to_delayed().ravel(), Q.chunks[0]))
        answers = [(delayed(_kneighbors_block, nout=2)(self.model_, block, k), rows)
                   for block, rows in blocks]
        dist = da.concatenate([da.from_delayed(answer[0], shape=(rows, k), dtype=np.float64)
                               for answer, rows in answers])
        ind = da.concatenate([da.from_delayed(answer[1], shape=(rows, k), dtype=np.int64)
                              for answer, rows in answers])
        if to_numpy:
            dist, ind = dist.compute(), ind.compute()
        return (dist, ind) if return_distance else ind

    def _as_array(self, X):
        n_features = getattr(self.estimator, "n_features_in_", None)
        if isinstance(X, da.Array):
            # unknown row chunk sizes are fine here: every block is answered on its own
            if X.ndim != 2:
                raise ValueError(f"X must be 2-d (n_queries, n_features); got shape {X.shape}.")
            check_numeric(X.dtype, "X")
            check_n_features(X.shape[1], n_features, "X")
            return (X.rechunk({1: -1}) if len(X.chunks[1]) > 1 else X), False
        return as_dask_matrix(X, "X", n_features)[0], True

    def _check_columns(self, X):
        if X.ndim != 2:
            raise ValueError("X must be 2-d: a Dask DataFrame, not a Series.")
        check_n_features(len(X.columns), getattr(self.estimator, "n_features_in_", None), "X")
        # the same names in the same order as at fit (scikit-learn's check)
        if hasattr(self.estimator, "feature_names_in_"):
            _check_feature_names(self.estimator, X._meta, reset=False)


# Blocks can be empty (a filtered Dask array or DataFrame): they get empty answers, as a
# model asked about no rows would give if it accepted them.

def _predict_block(block, model):
    if len(block) == 0:
        return np.empty(0, dtype=model.classes_.dtype)
    return model.predict(block)


def _predict_proba_block(block, model):
    if len(block) == 0:
        return np.empty((0, len(model.classes_)))
    return model.predict_proba(block)


def _predict_frame(part, model):
    return pd.Series(_predict_block(part, model), index=part.index)


def _predict_proba_frame(part, model, classes):
    return pd.DataFrame(_predict_proba_block(part, model), index=part.index, columns=classes)


def _kneighbors_block(model, block, k):
    if len(block) == 0:
        return np.empty((0, k)), np.empty((0, k), dtype=np.int64)
    dist, ind = model.kneighbors(block, n_neighbors=k)
    return dist, ind.astype(np.int64, copy=False)
