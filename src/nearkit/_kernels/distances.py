"""The exact distance of one pair of points, shared by every engine.

A metric is identified by an integer code.  Engines rank by the *surrogate* distance
``rdist`` (cheap, monotone in the true distance) and convert survivors with
:func:`rdist_to_dist`.  The definition below is the project's notion of "exact": a
sequential float64 loop over the features in their stored order, without fast-math.
The NumPy reference in ``tests/reference.py`` evaluates the same formula in the same order,
so distances agree bit for bit.

============  ====  ==================================  ===========================
metric        code  rdist (loop over features j)         distance
============  ====  ==================================  ===========================
euclidean     0     sum (a_j - b_j)**2                   sqrt(rdist)
manhattan     1     sum |a_j - b_j|                      rdist
chebyshev     2     max |a_j - b_j|                      rdist
minkowski     3     sum |a_j - b_j|**p                   rdist**(1/p)
============  ====  ==================================  ===========================

Mahalanobis is Euclidean after a whitening transform applied once at fit time
(see :mod:`nearkit.metrics`).
"""

import numba
import numpy as np

EUCLIDEAN = 0
MANHATTAN = 1
CHEBYSHEV = 2
MINKOWSKI = 3


@numba.njit(inline="always", cache=True)
def accumulate(acc, diff, metric, p):
    """Fold one feature difference ``diff`` into the running surrogate ``acc``."""
    if metric == EUCLIDEAN:
        return acc + diff * diff
    elif metric == MANHATTAN:
        return acc + abs(diff)
    elif metric == CHEBYSHEV:
        a = abs(diff)
        return a if a > acc else acc
    else:
        return acc + abs(diff) ** p


@numba.njit(inline="always", cache=True)
def pair_rdist(a, b, metric, p):
    """Surrogate distance between two 1-d float64 arrays (see the module table)."""
    acc = 0.0
    for j in range(a.shape[0]):
        acc = accumulate(acc, a[j] - b[j], metric, p)
    return acc


@numba.njit(inline="always", cache=True)
def rdist_to_dist(rdist, metric, p):
    """Convert a surrogate distance to the true metric distance."""
    if metric == EUCLIDEAN:
        return np.sqrt(rdist)
    elif metric == MINKOWSKI:
        return rdist ** (1.0 / p)
    return rdist


@numba.njit(parallel=True, cache=True)
def whiten(X, W, out):
    """``out = X @ W``, each entry summed over the features in order (no BLAS).

    BLAS rounds a row's product differently depending on how many rows it multiplies at
    once, which would make Mahalanobis distances depend on the batch a query arrives in.
    """
    n, d = X.shape
    for i in numba.prange(n):
        for c in range(W.shape[1]):
            acc = 0.0
            for j in range(d):
                acc += X[i, j] * W[j, c]
            out[i, c] = acc
