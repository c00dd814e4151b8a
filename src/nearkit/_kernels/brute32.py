"""Brute force for Euclidean and Manhattan with a float32 pre-filter and an exact re-rank.

The same sweep as :mod:`nearkit._kernels.brute` (training data transposed, SIMD over training
points), but in float32 on centred copies scaled by a power of two: twice the lanes per
vector.  The float32 value ``E`` of a pair only *selects* candidates; each candidate is
re-measured exactly (the float64 definition of :mod:`nearkit._kernels.distances`) before it
can enter a heap, so results are those of float64 arithmetic.

Error bound.  With ``u = 2**-24`` and ``N`` the squared L2 norm (Euclidean) or the L1 norm
(Manhattan) of a scaled centred float32 copy, rounding the copies, subtracting, squaring
and summing in float32 errs from the scaled exact distance ``D`` by at most
``(2 d + 8) u (N(q) + N(x))`` (Euclidean) or ``(d + 2) u (N(q) + N(x))`` (Manhattan), plus
``d 2**-149`` per term where float32 underflows.  The kernels use ``c = 8 (d + 16) u``,
which also covers the float64 rounding of the exact value and the float32 comparisons:

    |E - D| <= m_x + m_q,   m_x = c N(x),   m_q = c N(q) + (d + 1) 2**-140

A point can beat the query's current k-th exact distance ``r_k`` only if
``E - m_x <= r_k * scale + m_q``, and it cannot be among the k best if
``E - m_x > B + 2 m_q`` where ``B`` bounds the tile's k-th smallest ``E + m_x``
(:func:`~nearkit._kernels.select.kth_bound`).
"""

import numba
import numpy as np

from nearkit._kernels.brute import tile_rdist
from nearkit._kernels.distances import pair_rdist, rdist_to_dist
from nearkit._kernels.select import (
    chunk_heaps,
    heap_init,
    heap_push,
    heap_sort_row,
    kth_bound,
    merge_heaps,
)


@numba.njit(inline="always", cache=True)
def _limit(hr, row, scale_r, m_q, bound):
    """float32 admission limit of the estimates, rounded up (never excludes a candidate)."""
    return min(np.float32((hr[row, 0] * scale_r + m_q) * (1.0 + 2.0**-20)), bound)


@numba.njit(cache=True)
def _brute32_rows(XT32, m_x, X, Q32, m_q, Q, metric, scale_r, exclude_self, tile, q0, p0, p1,
                  hd, hr, hi):
    """Offer training points p0 .. p1-1 to the heaps of queries q0 .. q0+len(hd)-1."""
    nb, k = hd.shape
    est = np.empty(tile, dtype=np.float32)
    upper = np.empty(tile, dtype=np.float32)
    lanes = np.empty(64, dtype=np.float32)
    for t0 in range(p0, p1, tile):
        tl = min(tile, p1 - t0)
        mx = m_x[t0:t0 + tl]
        for row in range(nb):
            q = q0 + row
            q32 = Q32[q]
            e = est[:tl]
            tile_rdist(XT32, q32, t0, tl, metric, 1.0, e)
            up = upper[:tl]
            for t in range(tl):
                up[t] = e[t] + mx[t]
            skip = q if exclude_self else -1
            if t0 <= skip < t0 + tl:
                up[skip - t0] = np.inf  # the query itself never counts among the k
            mq = m_q[q]
            bound = np.float32((kth_bound(up, k, lanes) + 2.0 * mq) * (1.0 + 2.0**-20))
            limit = _limit(hr, row, scale_r, mq, bound)
            for c0 in range(0, tl, 64):
                ec = e[c0:c0 + 64]
                mc = mx[c0:c0 + 64]
                hits = 0
                for t in range(ec.shape[0]):
                    hits += ec[t] - mc[t] <= limit
                if hits == 0:
                    continue
                for c1 in range(0, ec.shape[0], 16):
                    ep = ec[c1:c1 + 16]
                    mp = mc[c1:c1 + 16]
                    hits = 0
                    for t in range(ep.shape[0]):
                        hits += ep[t] - mp[t] <= limit
                    if hits == 0:
                        continue
                    for t in range(ep.shape[0]):
                        if ep[t] - mp[t] <= limit:
                            i = t0 + c0 + c1 + t
                            if i == skip:
                                continue
                            r = pair_rdist(Q[q], X[i], metric, 1.0)
                            heap_push(hd, hr, hi, row, rdist_to_dist(r, metric, 1.0), r, i)
                            limit = _limit(hr, row, scale_r, mq, bound)


@numba.njit(cache=True)
def _brute32_block(XT32, m_x, X, Q32, m_q, Q, k, metric, scale_r, exclude_self, tile, q0, q1,
                   out_dist, out_ind):
    """Rows q0 .. q1-1 of :func:`brute32_knn`: one work item, owned by one thread."""
    hd = out_dist[q0:q1]
    hi = out_ind[q0:q1]
    hr = np.empty((q1 - q0, k))
    heap_init(hd, hr, hi)
    _brute32_rows(XT32, m_x, X, Q32, m_q, Q, metric, scale_r, exclude_self, tile, q0, 0,
                  XT32.shape[1], hd, hr, hi)
    for row in range(q1 - q0):
        heap_sort_row(hd, hr, hi, row)


@numba.njit(parallel=True, cache=True)
def brute32_knn(XT32, m_x, X, Q32, m_q, Q, k, metric, scale_r, exclude_self, tile,
                query_block, out_dist, out_ind):
    """k nearest training points of every query (Euclidean or Manhattan), parallel over
    blocks of queries.

    Parameters
    ----------
    XT32 : float32 array of shape (d, n)
        Training points, centred, scaled by a power of two, transposed.
    m_x : float32 array of shape (n,)
        Per-point error margin ``c N(x)``, rounded up.
    X : float64 array of shape (n, d)
        Training points (prepared, uncentred) for the exact re-measurement.
    Q32 : float32 array of shape (m, d)
        Queries, centred and scaled like the training points.
    m_q : float64 array of shape (m,)
        Per-query margin ``c N(q) + (d + 1) 2**-140``; +inf admits every point (queries
        whose float32 copy would overflow).
    Q : float64 array of shape (m, d)
        Queries (prepared) for the exact re-measurement.
    k, metric : int
        Number of neighbours and metric code (EUCLIDEAN or MANHATTAN).
    scale_r : float
        Factor from exact surrogate distances to the scaled units of the estimates (the
        scale squared for Euclidean, the scale for Manhattan).
    exclude_self, tile, query_block, out_dist, out_ind
        As for :func:`nearkit._kernels.brute.brute_knn`.
    """
    m = Q.shape[0]
    n_blocks = (m + query_block - 1) // query_block
    for b in numba.prange(n_blocks):
        q0 = b * query_block
        _brute32_block(XT32, m_x, X, Q32, m_q, Q, k, metric, scale_r, exclude_self, tile, q0,
                       min(m, q0 + query_block), out_dist, out_ind)


@numba.njit(cache=True)
def brute32_knn_serial(XT32, m_x, X, Q32, m_q, Q, k, metric, scale_r, exclude_self, tile,
                       query_block, out_dist, out_ind):
    """:func:`brute32_knn` on the calling thread only (small batches, single rows)."""
    m = Q.shape[0]
    for q0 in range(0, m, query_block):
        _brute32_block(XT32, m_x, X, Q32, m_q, Q, k, metric, scale_r, exclude_self, tile, q0,
                       min(m, q0 + query_block), out_dist, out_ind)


@numba.njit(parallel=True, cache=True)
def brute32_knn_split(XT32, m_x, X, Q32, m_q, Q, k, metric, scale_r, exclude_self, tile,
                      n_chunks, out_dist, out_ind):
    """Same result as :func:`brute32_knn`, parallel over chunks of the training set.

    For few queries against many training points: each chunk keeps its own heaps, which
    are merged by the full (distance, index) key at the end.
    """
    n = XT32.shape[1]
    m = Q.shape[0]
    chunk = (n + n_chunks - 1) // n_chunks
    cd, cr, ci = chunk_heaps(n_chunks, m, k)
    for c in numba.prange(n_chunks):
        heap_init(cd[c], cr[c], ci[c])
        _brute32_rows(XT32, m_x, X, Q32, m_q, Q, metric, scale_r, exclude_self, tile, 0,
                      c * chunk, min(n, (c + 1) * chunk), cd[c], cr[c], ci[c])
    merge_heaps(cd, cr, ci, out_dist, out_ind)
