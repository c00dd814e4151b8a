"""The harness's own check of returned neighbours: it never trusts an engine.

For each checked query the harness recomputes, in float64, the distance of every neighbour
the engine returned, and compares the sorted distances with the exact k smallest distances of
a brute-force reference.  Equal distances may come in any order and any of several points at
the same distance may be returned (ties are not errors); what must agree is the multiset of
distances.  Each query is classed as

- ``exact``: the distances agree to ``EXACT_RTOL`` (float64 summation order only);
- ``near_tie``: they agree only to ``NEAR_TIE_RTOL`` (e.g. FAISS's float32 picking another
  point at a near-tie); reported, never hidden;
- ``wrong``: anything else (a farther point, a duplicate, an index out of range).
"""

from __future__ import annotations

import numpy as np

from nearkit.bench.engines import minkowski_p

EXACT_RTOL = 1e-9
NEAR_TIE_RTOL = 1e-4
_CHUNK_ELEMENTS = 20_000_000


def pair_distances(X, Q, indices, metric="euclidean", p=2.0, VI=None):
    """Float64 distances between each query and the training rows it lists.

    Parameters
    ----------
    X : ndarray of shape (n_train, n_features)
        Training data.
    Q : ndarray of shape (n_queries, n_features)
        Queries.
    indices : ndarray of shape (n_queries, k)
        Training rows of each query (must be valid row numbers).
    metric : str, default='euclidean'
        Distance metric, a name of :data:`nearkit.metrics.METRICS`.
    p : float, default=2
        Minkowski exponent.
    VI : ndarray or None
        Inverse covariance for Mahalanobis.

    Returns
    -------
    ndarray of shape (n_queries, k)
    """
    X = np.asarray(X, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    if metric == "cosine":
        # half the squared distance of the unit vectors: 1 - cos, without 1 - cos's
        # cancellation between near neighbours
        X, Q = _unit_rows(X), _unit_rows(Q)
        unit_diff = Q[:, None, :] - X[indices]
        return 0.5 * (unit_diff * unit_diff).sum(axis=-1)
    diff = Q[:, None, :] - X[indices]
    if metric == "mahalanobis":
        quad = np.einsum("qkj,jl,qkl->qk", diff, np.asarray(VI, dtype=np.float64), diff)
        return np.sqrt(np.maximum(quad, 0.0))
    return _minkowski(np.abs(diff), minkowski_p(metric, p))


def _unit_rows(A):
    norms = np.sqrt((A * A).sum(axis=1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        return A / norms  # a row of zeros has no direction: NaN, never a match


def _minkowski(absdiff, p):
    if p == 2:
        return np.sqrt((absdiff * absdiff).sum(axis=-1))
    if p == 1:
        return absdiff.sum(axis=-1)
    if np.isinf(p):
        return absdiff.max(axis=-1)
    return (absdiff**p).sum(axis=-1) ** (1.0 / p)


def reference_kth_distances(X, Q, k, metric="euclidean", p=2.0, VI=None):
    """Exact sorted distances of the k nearest training rows of each query (brute force).

    Parameters
    ----------
    X, Q : ndarray
        Training data and queries.
    k : int
        Number of neighbours.
    metric, p, VI
        As in :func:`pair_distances`.

    Returns
    -------
    ndarray of shape (n_queries, k)
        Ascending distances.
    """
    X = np.asarray(X, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    out = np.empty((Q.shape[0], k))
    all_rows = np.arange(X.shape[0])
    # bound the (chunk, n_train, n_features) difference array to about 160 MB
    chunk = max(1, _CHUNK_ELEMENTS // max(1, X.shape[0] * X.shape[1]))
    for start in range(0, Q.shape[0], chunk):
        block = Q[start : start + chunk]
        dist = pair_distances(X, block, np.broadcast_to(all_rows, (block.shape[0], X.shape[0])),
                              metric, p, VI)
        part = np.partition(dist, k - 1, axis=1)[:, :k]
        out[start : start + block.shape[0]] = np.sort(part, axis=1)
    return out


def check_neighbors(X, Q, distances, indices, k, metric="euclidean", p=2.0, VI=None,
                    reference=None, max_examples=3):
    """Compare an engine's neighbours with the exact reference, tie-aware.

    Parameters
    ----------
    X, Q : ndarray
        Training data and the checked queries.
    distances, indices : ndarray of shape (n_queries, k)
        What the engine returned.
    k : int
        Number of neighbours asked for.
    metric, p, VI
        As in :func:`pair_distances`.
    reference : ndarray of shape (n_queries, k) or None
        Output of :func:`reference_kth_distances` (computed when None).
    max_examples : int, default=3
        How many mismatching queries to describe.

    Returns
    -------
    dict
        ``n_checked``, ``n_exact``, ``n_near_tie``, ``n_wrong``,
        ``max_reported_distance_error`` (largest relative gap between the distances the
        engine reported and the recomputed ones) and ``examples`` (mismatching queries).
    """
    if reference is None:
        reference = reference_kth_distances(X, Q, k, metric, p, VI)
    indices = np.asarray(indices)
    distances = np.asarray(distances, dtype=np.float64)
    n_queries = reference.shape[0]
    malformed = np.zeros(n_queries, dtype=bool)
    if indices.shape != (n_queries, k):
        malformed[:] = True
        safe = np.zeros((n_queries, k), dtype=np.int64)
    else:
        out_of_range = (indices < 0) | (indices >= X.shape[0])
        malformed |= out_of_range.any(axis=1)
        safe = np.where(out_of_range, 0, indices).astype(np.int64)
        ordered = np.sort(safe, axis=1)
        malformed |= (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    true = pair_distances(X, Q, safe, metric, p, VI)
    gap = (np.abs(np.sort(true, axis=1) - reference) / np.maximum(np.abs(reference), 1e-12)).max(
        axis=1
    )
    exact = ~malformed & (gap <= EXACT_RTOL)
    near = ~malformed & ~exact & (gap <= NEAR_TIE_RTOL)
    wrong = ~(exact | near)
    if distances.shape == true.shape and not malformed.all():
        err = np.abs(distances - true) / np.maximum(np.abs(true), 1e-12)
        reported_err = float(np.max(np.where(malformed[:, None], 0.0, err)))
    else:
        reported_err = float("nan")
    examples = []
    for q in np.flatnonzero(~exact)[:max_examples]:
        examples.append({
            "query": int(q),
            "kind": "near_tie" if near[q] else "wrong",
            "returned": [int(i) for i in np.asarray(indices)[q].ravel()[:k]] if indices.ndim == 2 else [],
            "returned_distances": [float(d) for d in np.sort(true[q])],
            "reference_distances": [float(d) for d in reference[q]],
        })
    return {
        "n_checked": int(n_queries),
        "n_exact": int(exact.sum()),
        "n_near_tie": int(near.sum()),
        "n_wrong": int(wrong.sum()),
        "max_reported_distance_error": reported_err,
        "examples": examples,
    }
