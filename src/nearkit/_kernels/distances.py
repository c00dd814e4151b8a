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


@numba.njit(inline="always", cache=True)
def prefilter_slack(metric, p):
    """(slack, tiny_r) for filtering candidates on the surrogate instead of the full key.

    Neighbours are ranked by (distance, index), and two different surrogates can convert to
    the same distance (``sqrt`` and ``** (1/p)`` compress: for Euclidean, surrogates one ulp
    apart share a square root), so a point whose surrogate is a little *above* the k-th one
    may still tie its distance and win on index.  A filter on the surrogate must therefore
    admit everything up to :func:`widen` of the k-th surrogate, and decide on the full key:
    a relative slack far larger than that rounding (1e-12, times p for Minkowski with p > 1;
    libm's ``pow`` is monotone only up to its last-bit error, which the slack also absorbs),
    floored at ``tiny_r`` below which the distance may be subnormal and a relative slack
    means nothing.  Manhattan and Chebyshev compare exactly (the distance is the surrogate).
    """
    if metric == EUCLIDEAN:
        return 1e-12, 1e-300
    if metric == MINKOWSKI:
        return 1e-12 * max(1.0, p), 1e-300 ** min(p, 1.0)
    return 0.0, 0.0


@numba.njit(inline="always", cache=True)
def widen(top_r, slack, tiny_r):
    """Largest surrogate that could still give a key at or below surrogate ``top_r``'s
    distance (see :func:`prefilter_slack`); +inf stays +inf."""
    t = top_r * (1.0 + slack)
    return t if t > tiny_r else tiny_r


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
