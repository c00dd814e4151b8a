"""Sums of squares in high dimension, pruned by lower bounds from a few principal components.

An orthonormal projection never lengthens a vector, so the distance between the
projections of two points onto the top r principal directions is a lower bound of their
distance; on data of low intrinsic dimension (images, embeddings) it is close to it, and
only the few points whose bound is within a query's k-th distance are measured in full.

Rigour.  With centred points ``w = x - mu``, projections ``z = w @ V`` and the expansion
``P = ||z_q||^2 + ||z_x||^2 - 2 z_q . z_x`` computed in float64 (BLAS), the kernels use

    sqrt(P - c (||z_q||^2 + ||z_x||^2)) - kappa (||w_q|| + ||w_x||)  <=  ||q - x||

``c`` bounds the expansion's rounding and ``kappa`` (relative to the centred norms) the
rounding of the centring and the projection and the basis's departure from orthonormality.
So a point is measured exactly unless ``P - c (...) > (sqrt(r_k) + kappa (...))**2`` for the
query's widened k-th surrogate ``r_k``; the answer is the exact one (the definition of
:mod:`nearkit._kernels.distances`).  The engine is used only on data whose scale keeps every
square in range (no pair needs the definition's scaled outer range).
"""

from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import NO_REFCOUNTS, load_lightly
from nearkit._kernels.distances import exact_dist, pair_rdist, widen
from nearkit._kernels.select import LANES, Heap, heap_init, heap_push, heap_sort_row, kth_bound

#: training side: points ``X`` (n, d), projections ``Z`` (n, r), ``z2`` their squared
#: norms, ``w_norm`` the centred points' norms
ProjectedPoints = namedtuple("ProjectedPoints", ["X", "Z", "z2", "w_norm"])
#: query side, the same for the queries
ProjectedQueries = namedtuple("ProjectedQueries", ["Q", "Z", "z2", "w_norm"])


@numba.njit(nogil=True, cache=True)
def projected_knn(points, queries, self_index, metric, c, kappa, query_block, b0, b1, out):
    """k nearest neighbours (sums of squares) of the queries in blocks ``b0:b1``.

    Parameters
    ----------
    points : ProjectedPoints
    queries : ProjectedQueries
    self_index : int64 array of shape (m,)
        Training index each query must not list, or -1.
    metric : KernelMetric
        A metric of kind SQUARES.
    c, kappa : float
        The margins of the module docstring.
    query_block, b0, b1 : int
        Queries per block, and the range of blocks to answer.
    out : Heap of arrays of shape (m, k)
    """
    m = queries.Q.shape[0]
    n = points.X.shape[0]
    G = np.empty((query_block, n))
    bound = np.empty(n)
    lanes = np.empty(LANES)
    for b in range(b0, b1):
        q0 = b * query_block
        q1 = min(m, q0 + query_block)
        heap = Heap(out.dist[q0:q1], out.rdist[q0:q1], out.ind[q0:q1])
        heap_init(heap)
        block = G[:q1 - q0]
        np.dot(queries.Z[q0:q1], points.Z.T, block)
        for row in range(q1 - q0):
            _search_row(points, queries, q0 + row, self_index[q0 + row], metric, c, kappa,
                        block[row], bound, lanes, heap, row)
            heap_sort_row(heap, row)


@numba.njit(cache=True, **NO_REFCOUNTS)
def _search_row(points, queries, q, skip, metric, c, kappa, dots, bound, lanes, heap, row):
    """One query: measure the points of smallest bound first, then every point whose
    bound is within the k-th distance found."""
    z2q = queries.z2[q]
    z2 = points.z2
    n = z2.shape[0]
    for t in range(n):  # the projected squared distance, minus its rounding margin
        bound[t] = max((z2q + z2[t]) * (1.0 - c) - 2.0 * dots[t], 0.0)
    first = kth_bound(bound, heap.dist.shape[1], lanes)
    query = queries.Q[q]
    for t in range(n):
        if bound[t] <= first and t != skip:
            r = pair_rdist(query, points.X[t], metric)
            heap_push(heap, row, exact_dist(r, query, points.X[t], metric), r, t)
    margin_q = kappa * queries.w_norm[q]
    w_norm = points.w_norm
    limit = np.sqrt(widen(heap.rdist[row, 0], metric))
    for t in range(n):
        reach = limit + margin_q + kappa * w_norm[t]
        if bound[t] <= reach * reach and bound[t] > first and t != skip:
            r = pair_rdist(query, points.X[t], metric)
            heap_push(heap, row, exact_dist(r, query, points.X[t], metric), r, t)
            limit = np.sqrt(widen(heap.rdist[row, 0], metric))


load_lightly(globals())
