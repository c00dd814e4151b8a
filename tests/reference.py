"""A plain float64 NumPy k-nearest-neighbour reference, independent of nearkit's kernels.

Distances are accumulated feature by feature, in stored order, exactly as the definition in
``nearkit._kernels.distances`` says, so for the Minkowski family they agree with nearkit bit
for bit.  Mahalanobis is evaluated as the quadratic form ``(a-b)^T VI (a-b)`` (nearkit whitens
instead), so for it compare with a tolerance.

Neighbours are ordered by (distance, training index): ``np.lexsort((index, distance))``.
Votes follow scikit-learn: weights summed per class in neighbour order, normalised, ties to
the smallest class label.
"""

from __future__ import annotations

import math

import numpy as np

# NumPy's vectorised float64 power uses SIMD approximations that can differ from the C
# library's pow (which Python's ``**`` and numba's kernels both call) in the last bit.
_libm_pow = np.frompyfunc(math.pow, 2, 1)


def libm_pow(x, y):
    """``x ** y`` elementwise through the C library's pow, as the kernels compute it."""
    return np.asarray(_libm_pow(x, y), dtype=np.float64)


def reference_distances(X, Q, metric="euclidean", p=2.0, VI=None):
    """Full (n_queries, n_train) matrix of true distances."""
    X = np.asarray(X, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    if metric == "mahalanobis":
        diff = Q[:, None, :] - X[None, :, :]
        quad = np.einsum("qnj,jl,qnl->qn", diff, np.asarray(VI, dtype=np.float64), diff)
        return np.sqrt(np.maximum(quad, 0.0))
    if metric == "minkowski" and p == 2:
        metric = "euclidean"
    if metric == "minkowski" and p == 1:
        metric = "manhattan"
    if metric == "minkowski" and np.isinf(p):
        metric = "chebyshev"
    acc = np.zeros((Q.shape[0], X.shape[0]))
    for j in range(X.shape[1]):
        diff = Q[:, j][:, None] - X[:, j][None, :]
        if metric == "euclidean":
            acc += diff * diff
        elif metric == "manhattan":
            acc += np.abs(diff)
        elif metric == "chebyshev":
            acc = np.maximum(acc, np.abs(diff))
        elif metric == "minkowski":
            acc += libm_pow(np.abs(diff), p)
        else:
            raise ValueError(metric)
    if metric == "euclidean":
        return np.sqrt(acc)
    if metric == "minkowski":
        return libm_pow(acc, 1.0 / p)
    return acc


def reference_kneighbors(X, Q, k, metric="euclidean", p=2.0, VI=None, exclude_self=False):
    """(distances, indices) of the k nearest training rows, ordered by (distance, index).

    With ``exclude_self`` the queries are the training rows themselves and row i never
    counts as its own neighbour (scikit-learn's ``kneighbors(X=None)``).
    """
    D = reference_distances(X, Q, metric, p, VI)
    n = D.shape[1]
    idx = np.arange(n)
    out_d = np.empty((D.shape[0], k))
    out_i = np.empty((D.shape[0], k), dtype=np.int64)
    for q in range(D.shape[0]):
        order = np.lexsort((idx, D[q]))
        if exclude_self:
            order = order[order != q]
        out_i[q] = order[:k]
        out_d[q] = D[q, order[:k]]
    return out_d, out_i


def reference_weights(dist, weights="uniform", sigma=None):
    """Per-neighbour weights for each scheme of the report (see the issue's formulas)."""
    dist = np.asarray(dist, dtype=np.float64)
    if weights == "uniform":
        return np.ones_like(dist)
    if weights == "distance":
        w = np.empty_like(dist)
        for r in range(dist.shape[0]):
            if np.any(dist[r] == 0):
                w[r] = (dist[r] == 0).astype(float)
            else:
                w[r] = 1.0 / dist[r]
        return w
    if weights == "dudani":
        w = np.empty_like(dist)
        for r in range(dist.shape[0]):
            d1, dk = dist[r, 0], dist[r, -1]
            w[r] = 1.0 if dk == d1 else (dk - dist[r]) / (dk - d1)
        return w
    if weights == "gaussian":
        w = np.empty_like(dist)
        for r in range(dist.shape[0]):
            s = dist[r, -1] if sigma is None else sigma
            if s == 0:
                w[r] = 1.0
            else:
                w[r] = np.exp(-(dist[r] ** 2 - dist[r, 0] ** 2) / (2 * s * s))
        return w
    if callable(weights):
        return np.asarray(weights(dist), dtype=np.float64)
    raise ValueError(weights)


def reference_proba(neigh_labels, w, n_classes):
    """Class weights summed in neighbour order then normalised (scikit-learn's order)."""
    proba = np.zeros((neigh_labels.shape[0], n_classes))
    rows = np.arange(neigh_labels.shape[0])
    for i in range(neigh_labels.shape[1]):
        proba[rows, neigh_labels[:, i]] += w[:, i]
    return proba / proba.sum(axis=1, keepdims=True)


def reference_predict(X, y, Q, k, metric="euclidean", p=2.0, VI=None, weights="uniform",
                      sigma=None):
    """(predictions, probabilities) of a plain KNN classifier."""
    classes, y_enc = np.unique(y, return_inverse=True)
    dist, ind = reference_kneighbors(X, Q, k, metric, p, VI)
    proba = reference_proba(y_enc[ind], reference_weights(dist, weights, sigma), len(classes))
    return classes[np.argmax(proba, axis=1)], proba
