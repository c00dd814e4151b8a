"""Euclidean k-nearest neighbours by float32 GEMM expansion, re-ranked exactly in float64.

For centred float32 copies of the points, ``||q - x||^2 = ||q||^2 + ||x||^2 - 2 q.x``; the dot
products of a block of queries with a tile of training points are one float32 GEMM (BLAS,
called per thread from numba).  This estimate only *selects* candidates: a training point is
re-measured exactly (the float64 definition of :mod:`nearkit._kernels.distances`) whenever its
estimate, minus a rigorous bound on the float32 error, could still beat the query's current
k-th exact distance.  The heap only ever holds exact distances, so the result is the exact one.

Error bound.  With unit roundoff ``u = 2**-24``, rounding the centred points to float32 and
evaluating ``||q||^2 + ||x||^2 - 2 q.x`` (any summation order, with or without FMA) errs by at
most ``(d + 8) u (||q|| + ||x||)^2 <= 2 (d + 8) u (||q||^2 + ||x||^2)``; the kernels use twice
that, ``c = 4 (d + 16) u``, which also covers the float32 evaluation of the comparison itself.
The bound splits into a per-point and a per-query term, so the test per (query, point) is one
fused multiply-add and one comparison:

    w[x] - 2 q.x <= top_rdist[q] - ||q||^2 + c ||q||^2,   w[x] = ||x||^2 - c ||x||^2
"""

import numba
import numpy as np

from nearkit._kernels.distances import EUCLIDEAN, pair_rdist
from nearkit._kernels.select import heap_init, heap_push, heap_sort_row

#: training points tested at once by the vectorised pre-filter (tiles are multiples of it)
CHUNK = 64


@numba.njit(parallel=True, cache=True)
def gemm_knn(tiles32, w32, X, Q32, q_slack, scale2, Q, k, exclude_self, query_block, out_dist,
             out_ind):
    """k nearest neighbours (Euclidean) of every query, parallel over query blocks.

    Parameters
    ----------
    tiles32 : float32 array of shape (n_tiles, tile, d)
        Centred training points in float32, cut into tiles (the last one padded).
    w32 : float32 array of shape (n_tiles, tile)
        ``||x||^2 (1 - c)`` rounded down; padding rows hold +inf.
    X : float64 array of shape (n, d)
        Training points (prepared, uncentred) for the exact re-rank.
    Q32 : float32 array of shape (m, d)
        Centred queries in float32.
    q_slack : float64 array of shape (m,)
        ``||q||^2 (c - 1)`` for each centred query: added to the k-th distance to get the
        admission limit of the estimates (+inf admits every point: used for queries whose
        float32 copy overflowed).
    scale2 : float
        Square of the power-of-two factor applied to the centred float32 copies (so that they
        neither overflow nor underflow); exact distances times ``scale2`` are in their units.
    Q : float64 array of shape (m, d)
        Queries (prepared, uncentred) for the exact re-rank.
    k, exclude_self, query_block, out_dist, out_ind
        As for :func:`nearkit._kernels.brute.brute_knn`.
    """
    n = X.shape[0]
    m = Q.shape[0]
    n_tiles, tile = w32.shape
    n_blocks = (m + query_block - 1) // query_block
    for b in numba.prange(n_blocks):
        q0 = b * query_block
        q1 = min(m, q0 + query_block)
        nb = q1 - q0
        hd = out_dist[q0:q1]
        hi = out_ind[q0:q1]
        hr = np.empty((nb, k))
        heap_init(hd, hr, hi)
        block32 = Q32[q0:q1]
        # one buffer per block: a fresh allocation per tile costs an mmap/munmap pair under
        # allocators told to trim eagerly (Dask workers set MALLOC_TRIM_THRESHOLD_=65536)
        G = np.empty((nb, tile), dtype=np.float32)
        for ti in range(n_tiles):
            np.dot(block32, tiles32[ti].T, G)
            w = w32[ti]
            base = ti * tile
            for row in range(nb):
                q = q0 + row
                limit = np.float32(hr[row, 0] * scale2 + q_slack[q])
                g = G[row]
                for c0 in range(0, tile, CHUNK):
                    # Vectorised test of a whole chunk first: after the first tiles almost no
                    # chunk holds a candidate, so the scalar loop below rarely runs.  Slicing
                    # before indexing lets LLVM vectorise (measured 1.8x on this loop).
                    wc = w[c0:c0 + CHUNK]
                    gc = g[c0:c0 + CHUNK]
                    hits = 0
                    for t in range(CHUNK):
                        hits += wc[t] - np.float32(2.0) * gc[t] <= limit
                    if hits == 0:
                        continue
                    for t in range(CHUNK):
                        if wc[t] - np.float32(2.0) * gc[t] <= limit:
                            idx = base + c0 + t
                            if idx >= n or (exclude_self and idx == q):
                                continue
                            r = pair_rdist(Q[q], X[idx], EUCLIDEAN, 2.0)
                            heap_push(hd, hr, hi, row, np.sqrt(r), r, idx)
                            limit = np.float32(hr[row, 0] * scale2 + q_slack[q])
        for row in range(nb):
            heap_sort_row(hd, hr, hi, row)
