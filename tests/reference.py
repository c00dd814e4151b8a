"""A plain float64 NumPy k-nearest-neighbour reference, independent of nearkit's kernels.

Distances follow the definition of ``nearkit._kernels.distances``: the surrogate is
accumulated feature by feature, in stored order; where it lies in [2**-960, 2**960] the
distance is its correction (sqrt, p-th root, half, or itself), elsewhere the pair is measured
again with its differences scaled by the power of two that brings the largest to [0.5, 1).
So for the Minkowski family and cosine they agree with nearkit bit for bit.  Mahalanobis is
evaluated as the quadratic form ``(a-b)^T VI (a-b)`` (nearkit whitens instead), so for it
compare with a tolerance.

Neighbours are ordered by (distance, training index): ``np.lexsort((index, distance))``.
Votes follow scikit-learn: weights summed per class in neighbour order, normalised, ties to
the smallest class label.  Sample weights count as copies of their row.
"""

from __future__ import annotations

import math

import numpy as np


def _c_pow(x, y):
    """The C library's pow, +inf on overflow as in C (Python's math.pow raises instead)."""
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf


# NumPy's vectorised float64 power uses SIMD approximations that can differ from the C
# library's pow (which Python's ``**`` and numba's kernels both call) in the last bit.
_libm_pow = np.frompyfunc(_c_pow, 2, 1)

SAFE_LO, SAFE_HI = 2.0**-960, 2.0**960

#: metric name -> (how differences fold, how the distance follows); the table of
#: nearkit._kernels.distances written again
DEFINITIONS = {
    "euclidean": ("squares", "sqrt"),
    "manhattan": ("abs", "identity"),
    "chebyshev": ("max", "identity"),
    "minkowski": ("power", "root"),
    "cosine": ("squares", "half"),
}


def libm_pow(x, y):
    """``x ** y`` elementwise through the C library's pow, as the kernels compute it."""
    return np.asarray(_libm_pow(x, y), dtype=np.float64)


def _canonical(metric, p):
    if metric == "minkowski":
        return {1.0: "manhattan", 2.0: "euclidean", np.inf: "chebyshev"}.get(float(p), metric)
    return {"l2": "euclidean", "l1": "manhattan", "cityblock": "manhattan",
            "infinity": "chebyshev"}.get(metric, metric)


def _fold(acc, diff, kind, p):
    if kind == "squares":
        return acc + diff * diff
    if kind == "abs":
        return acc + np.abs(diff)
    if kind == "max":
        return np.maximum(acc, np.abs(diff))
    return acc + libm_pow(np.abs(diff), p)


def _correct(r, correction, p):
    if correction == "sqrt":
        return np.sqrt(r)
    if correction == "root":
        return libm_pow(r, 1.0 / p)
    if correction == "half":
        return r * 0.5
    return r


def scaled_distances(A, B, metric="euclidean", p=2.0):
    """Distances of the pairs (A[i], B[i]) with their differences scaled by the power of two
    that brings the largest to [0.5, 1) (the definition's outer range), vectorised over pairs."""
    kind, correction = DEFINITIONS[metric]
    with np.errstate(over="ignore", invalid="ignore"):
        diff = A - B
        big = np.max(np.abs(diff), axis=1, initial=0.0)
        halved = big == np.inf
        diff[halved] = 0.5 * A[halved] - 0.5 * B[halved]
        big = np.max(np.abs(diff), axis=1, initial=0.0)
        pre = np.where(big < 2.0**-900, 2.0**600, 1.0)
        s = np.ldexp(1.0, -np.frexp(big * pre)[1])
        acc = np.zeros(len(A))
        for j in range(A.shape[1]):
            acc = _fold(acc, (diff[:, j] * pre) * s, kind, p)
        dist = _correct(acc, correction, p)
        if correction == "half":
            dist = np.where(halved, 4.0, 1.0) * (dist / s / s / pre / pre)
        else:
            dist = np.where(halved, 2.0, 1.0) * (dist / s / pre)
    return np.where(big == 0.0, 0.0, dist)


def normalize(X):
    """Rows scaled to unit length as nearkit's cosine does: by the power of two that brings
    the row's largest entry to [0.5, 1), then by the square root of the squares summed in
    feature order."""
    X = np.asarray(X, dtype=np.float64)
    out = np.empty_like(X)
    for i, row in enumerate(X):
        big = float(np.abs(row).max())
        assert big > 0, "cosine is undefined for a row of zeros"
        pre = 2.0**600 if big < 2.0**-900 else 1.0
        scaled = (row * pre) * math.ldexp(1.0, -math.frexp(big * pre)[1])
        acc = 0.0
        for value in scaled:
            acc += value * value
        out[i] = scaled / np.sqrt(acc)
    return out


def reference_distances(X, Q, metric="euclidean", p=2.0, VI=None):
    """Full (n_queries, n_train) matrix of true distances."""
    X = np.asarray(X, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    if metric == "mahalanobis":
        diff = Q[:, None, :] - X[None, :, :]
        quad = np.einsum("qnj,jl,qnl->qn", diff, np.asarray(VI, dtype=np.float64), diff)
        return np.sqrt(np.maximum(quad, 0.0))
    metric = _canonical(metric, p)
    if metric == "cosine":
        X, Q = normalize(X), normalize(Q)
    kind, correction = DEFINITIONS[metric]
    acc = np.zeros((Q.shape[0], X.shape[0]))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for j in range(X.shape[1]):
            acc = _fold(acc, Q[:, j][:, None] - X[:, j][None, :], kind, p)
        dist = _correct(acc, correction, p)
    if kind != "max":
        q, i = np.nonzero(~((acc >= SAFE_LO) & (acc <= SAFE_HI)))
        dist[q, i] = scaled_distances(Q[q], X[i], metric, p)
    return dist


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
    """Per-neighbour weights for each scheme of the report (the issue's formulas)."""
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


def reference_regress(X, y, Q, k, metric="euclidean", p=2.0, weights="uniform", sigma=None):
    """Predictions of a plain KNN regressor: the weighted mean of the neighbours' targets."""
    dist, ind = reference_kneighbors(X, Q, k, metric, p)
    w = reference_weights(dist, weights, sigma)
    y = np.asarray(y, dtype=np.float64)
    values = y[ind] if y.ndim == 1 else y[ind]
    if y.ndim == 1:
        return (values * w).sum(axis=1) / w.sum(axis=1)
    return (values * w[:, :, None]).sum(axis=1) / w.sum(axis=1)[:, None]
