"""Curse of dimensionality: how much neighbour distances still tell apart, per dataset.

- Relative contrast of a query, ``(d_max - d_min) / d_min`` over its distances to every
  training row (Beyer et al., 1999): large means near and far points differ clearly and a
  space-partitioning tree can prune; near 0 means every point is about equally far.
- Intrinsic dimension, two estimates from nearest-neighbour distances of the training rows
  (duplicate rows are dropped first, their distance 0 carries no information):
  TwoNN (Facco et al., 2017), the maximum-likelihood form ``(N - 1) / sum(log(r2 / r1))``, and
  Levina and Bickel's (2004) MLE with ``k = 10``, averaged as MacKay and Ghahramani suggest.

A dataset whose intrinsic dimension is far below its number of features (e.g. one-hot columns,
correlated features) is one on which a k-d tree can still beat brute force.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

MAX_QUERIES = 300
MAX_POINTS = 5000
LB_NEIGHBORS = 10


def relative_contrast(X_train, Q):
    """Relative contrast ``(d_max - d_min) / d_min`` of each query (Euclidean).

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
    Q : ndarray of shape (n_queries, n_features)

    Returns
    -------
    ndarray of shape (n_queries,)
        ``inf`` for a query that coincides with a training row.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    sq_train = np.einsum("ij,ij->i", X_train, X_train)
    out = np.empty(len(Q))
    for start in range(0, len(Q), 64):
        block = np.asarray(Q[start : start + 64], dtype=np.float64)
        sq = np.einsum("ij,ij->i", block, block)[:, None] + sq_train[None, :] - 2 * block @ X_train.T
        dist = np.sqrt(np.maximum(sq, 0.0))
        d_min, d_max = dist.min(axis=1), dist.max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + len(block)] = np.where(d_min > 0, (d_max - d_min) / d_min, np.inf)
    return out


def _distinct(X, max_points, rng):
    X = np.unique(np.asarray(X, dtype=np.float64), axis=0)
    if len(X) > max_points:
        X = X[rng.choice(len(X), max_points, replace=False)]
    return X


def intrinsic_dimension(X, max_points=MAX_POINTS, seed=0):
    """TwoNN and Levina-Bickel estimates of the intrinsic dimension of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
        Points (duplicates are dropped; at most ``max_points`` are sampled).
    max_points : int, default=5000
        Subsample size.
    seed : int, default=0
        Seed of the subsample.

    Returns
    -------
    dict
        ``twonn``, ``levina_bickel`` (None when too few distinct points) and ``n_points``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> plane = rng.normal(size=(2000, 2)) @ rng.normal(size=(2, 6))
    >>> round(intrinsic_dimension(plane)["twonn"])
    2
    """
    points = _distinct(X, max_points, np.random.default_rng(seed))
    n = len(points)
    if n <= LB_NEIGHBORS + 1:
        return {"twonn": None, "levina_bickel": None, "n_points": int(n)}
    dist, _ = NearestNeighbors(n_neighbors=LB_NEIGHBORS + 1).fit(points).kneighbors(points)
    dist = dist[:, 1:]  # drop the point itself
    dist = dist[dist[:, 0] > 0]
    with np.errstate(divide="ignore"):
        log_mu = np.log(dist[:, 1] / dist[:, 0])
    log_mu = log_mu[np.isfinite(log_mu) & (log_mu > 0)]
    twonn = float((log_mu.size - 1) / log_mu.sum()) if log_mu.size > 1 else None
    logs = np.log(dist[:, -1:] / dist[:, :-1])  # log(T_k / T_j), j < k
    inverse = logs.sum(axis=1) / (LB_NEIGHBORS - 1)
    inverse = inverse[np.isfinite(inverse) & (inverse > 0)]
    levina = float(1.0 / inverse.mean()) if inverse.size else None
    return {"twonn": twonn, "levina_bickel": levina, "n_points": int(n)}


def dataset_geometry(X_train, Q, seed=0):
    """Relative contrast (median and quartiles) and intrinsic dimension of a split.

    Parameters
    ----------
    X_train : ndarray of shape (n_train, n_features)
        Preprocessed training rows.
    Q : ndarray of shape (n_queries, n_features)
        Preprocessed queries (at most 300 are used).
    seed : int, default=0
        Seed of the subsamples.

    Returns
    -------
    dict
        JSON-ready summary.
    """
    rng = np.random.default_rng(seed)
    if len(Q) > MAX_QUERIES:
        Q = Q[rng.choice(len(Q), MAX_QUERIES, replace=False)]
    contrast = relative_contrast(X_train, Q)
    finite = contrast[np.isfinite(contrast)]
    q25, q50, q75 = (np.percentile(finite, [25, 50, 75]) if finite.size else [np.nan] * 3)
    return {
        "n_features": int(np.asarray(X_train).shape[1]),
        "relative_contrast_median": float(q50),
        "relative_contrast_q25": float(q25),
        "relative_contrast_q75": float(q75),
        "n_contrast_queries": int(len(Q)),
        "n_coinciding_queries": int(np.sum(~np.isfinite(contrast))),
        **intrinsic_dimension(X_train, seed=seed),
    }
