"""Exact brute-force k-nearest neighbours, tiled and fused with top-k selection.

The training matrix is stored transposed, ``XT`` of shape (d, n), so that the innermost loop
runs over consecutive training points: one query against a tile of training points is a
SIMD-friendly sweep ``acc[t] += (q_j - XT[j, t])**2`` per feature.  Tiles are sized to stay
in the L2 cache while a block of queries sweeps them, and each tile's surrogate distances are
filtered at once against the query's current k-th best (early rejection), so the full
(m, n) distance matrix is never materialised: memory is O(tile + k) per thread.

Exactness: each surrogate is accumulated feature by feature in float64 in stored order (the
definition of :mod:`nearkit._kernels.distances`), and neighbours are kept by the key
(true distance, training index).
"""

import numba
import numpy as np

from nearkit._kernels.distances import CHEBYSHEV, EUCLIDEAN, MANHATTAN, MINKOWSKI
from nearkit._kernels.select import (
    chunk_heaps,
    heap_init,
    heap_sort_row,
    merge_heaps,
    offer_tile,
)


@numba.njit(inline="always", cache=True)
def _fold4(a, XT, q, j, t0, metric):
    """Fold features j .. j+3 into ``a`` (points t0 ..) in one pass, in feature order:
    ``(((a + f_j) + f_j+1) + f_j+2) + f_j+3``, the same roundings as four passes, with one
    load and store of ``a`` instead of four (measured 1.6x on pima_diabetes)."""
    tl = a.shape[0]
    q0, q1, q2, q3 = q[j], q[j + 1], q[j + 2], q[j + 3]
    r0 = XT[j, t0:t0 + tl]
    r1 = XT[j + 1, t0:t0 + tl]
    r2 = XT[j + 2, t0:t0 + tl]
    r3 = XT[j + 3, t0:t0 + tl]
    if metric == EUCLIDEAN:
        for t in range(tl):
            d0 = q0 - r0[t]
            d1 = q1 - r1[t]
            d2 = q2 - r2[t]
            d3 = q3 - r3[t]
            a[t] = a[t] + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
    elif metric == MANHATTAN:
        for t in range(tl):
            a[t] = (a[t] + abs(q0 - r0[t]) + abs(q1 - r1[t]) + abs(q2 - r2[t])
                    + abs(q3 - r3[t]))
    else:  # CHEBYSHEV (max is exact in any order)
        for t in range(tl):
            a[t] = max(a[t], abs(q0 - r0[t]), abs(q1 - r1[t]), abs(q2 - r2[t]),
                       abs(q3 - r3[t]))


@numba.njit(cache=True)
def tile_rdist(XT, q, t0, tl, metric, p, acc):
    """acc[:tl] = surrogate distances from query ``q`` to training points t0 .. t0+tl-1.

    Works for float64 and float32 arrays alike (the float32 sweep of :mod:`brute32`).
    """
    d = XT.shape[0]
    a = acc[:tl]
    a[:] = 0.0
    # Specialised loops per metric so that each vectorises.  Rows are sliced first:
    # indexing ``XT[j][t0 + t]`` directly defeats LLVM's vectoriser (measured: 7x slower).
    folded = 0
    if metric != MINKOWSKI:
        while folded + 4 <= d:
            _fold4(a, XT, q, folded, t0, metric)
            folded += 4
    for j in range(folded, d):
        qj = q[j]
        row = XT[j, t0:t0 + tl]
        if metric == EUCLIDEAN:
            for t in range(tl):
                diff = qj - row[t]
                a[t] += diff * diff
        elif metric == MANHATTAN:
            for t in range(tl):
                a[t] += abs(qj - row[t])
        elif metric == CHEBYSHEV:
            for t in range(tl):
                a[t] = max(a[t], abs(qj - row[t]))
        else:
            for t in range(tl):
                a[t] += abs(qj - row[t]) ** p


@numba.njit(inline="always", cache=True)
def _brute_block(XT, Q, k, metric, p, exclude_self, tile, q0, q1, out_dist, out_ind):
    """Rows q0 .. q1-1 of :func:`brute_knn`: one work item, owned by one thread."""
    n = XT.shape[1]
    nb = q1 - q0
    hd = out_dist[q0:q1]
    hi = out_ind[q0:q1]
    hr = np.empty((nb, k))
    heap_init(hd, hr, hi)
    acc = np.empty(tile)
    lanes = np.empty(64)
    for t0 in range(0, n, tile):
        tl = min(tile, n - t0)
        for row in range(nb):
            tile_rdist(XT, Q[q0 + row], t0, tl, metric, p, acc)
            skip = q0 + row if exclude_self else -1
            offer_tile(acc[:tl], t0, None, metric, p, skip, hd, hr, hi, row, lanes)
    for row in range(nb):
        heap_sort_row(hd, hr, hi, row)


@numba.njit(parallel=True, cache=True)
def brute_knn(XT, Q, k, metric, p, exclude_self, tile, query_block, out_dist, out_ind):
    """k nearest training points of every query, parallel over blocks of queries.

    Parameters
    ----------
    XT : float64 array of shape (d, n)
        Training points, transposed.
    Q : float64 array of shape (m, d)
        Queries.
    k, metric : int
        Number of neighbours (1 <= k <= n, k < n with ``exclude_self``) and metric code.
    p : float
        Minkowski exponent (used by metric code 3 only).
    exclude_self : bool
        Queries are the training points themselves; row i never counts itself.
    tile, query_block : int
        Training points per tile; queries per parallel work item.
    out_dist, out_ind : arrays of shape (m, k)
        Receive true distances and training indices, sorted by (distance, index).
    """
    m = Q.shape[0]
    n_blocks = (m + query_block - 1) // query_block
    for b in numba.prange(n_blocks):
        q0 = b * query_block
        _brute_block(XT, Q, k, metric, p, exclude_self, tile, q0, min(m, q0 + query_block),
                     out_dist, out_ind)


@numba.njit(cache=True)
def brute_knn_serial(XT, Q, k, metric, p, exclude_self, tile, query_block, out_dist, out_ind):
    """:func:`brute_knn` on the calling thread only (small batches, single rows)."""
    m = Q.shape[0]
    for q0 in range(0, m, query_block):
        _brute_block(XT, Q, k, metric, p, exclude_self, tile, q0, min(m, q0 + query_block),
                     out_dist, out_ind)


@numba.njit(parallel=True, cache=True)
def brute_knn_split(XT, Q, k, metric, p, exclude_self, tile, n_chunks, out_dist, out_ind):
    """Same result as :func:`brute_knn`, parallel over chunks of the training set.

    For few queries against many training points: each chunk keeps its own heaps, which
    are merged by the full (distance, index) key at the end.
    """
    n = XT.shape[1]
    m = Q.shape[0]
    chunk = (n + n_chunks - 1) // n_chunks
    cd, cr, ci = chunk_heaps(n_chunks, m, k)
    for c in numba.prange(n_chunks):
        heap_init(cd[c], cr[c], ci[c])
        acc = np.empty(tile)
        lanes = np.empty(64)
        c0 = c * chunk
        c1 = min(n, c0 + chunk)
        for t0 in range(c0, c1, tile):
            tl = min(tile, c1 - t0)
            for row in range(m):
                tile_rdist(XT, Q[row], t0, tl, metric, p, acc)
                skip = row if exclude_self else -1
                offer_tile(acc[:tl], t0, None, metric, p, skip, cd[c], cr[c], ci[c], row,
                           lanes)
    merge_heaps(cd, cr, ci, out_dist, out_ind)
