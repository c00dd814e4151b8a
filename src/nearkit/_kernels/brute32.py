"""Brute force for sums of squares and of absolute differences with a float32 pre-filter and
an exact re-rank.

The same sweep as :mod:`nearkit._kernels.brute` (training data transposed, SIMD over training
points), but in float32 on centred copies scaled by a power of two: twice the lanes per
vector.  The float32 value ``E`` of a pair only *selects* candidates; each candidate is
re-measured exactly (the float64 definition of :mod:`nearkit._kernels.distances`) before it
can enter a heap, so results are those of float64 arithmetic.

Error bound.  With ``u = 2**-24`` and ``N`` the squared L2 norm (squares) or the L1 norm
(absolute differences) of a scaled centred float32 copy, rounding the copies, subtracting,
squaring and summing in float32 errs from the scaled exact surrogate ``D`` by at most
``(2 d + 8) u (N(q) + N(x))`` (squares) or ``(d + 2) u (N(q) + N(x))`` (absolute), plus
``d 2**-149`` per term where float32 underflows.  The kernels use ``c = 8 (d + 16) u``,
which also covers the float64 rounding of the exact value and the float32 comparisons:

    |E - D| <= m_x + m_q,   m_x = c N(x),   m_q = c N(q) + (d + 1) 2**-140

A point can beat the query's current k-th surrogate ``r_k`` (widened, see
:func:`~nearkit._kernels.distances.widen`) only if ``E - m_x <= r_k * scale + m_q``, and it
cannot be among the k best if ``E - m_x > B + 2 m_q`` where ``B`` bounds the tile's k-th
smallest ``E + m_x`` (:func:`~nearkit._kernels.select.kth_bound`).
"""

from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import NO_REFCOUNTS, load_lightly
from nearkit._kernels.brute import tile_rdist
from nearkit._kernels.distances import SAFE_HI, SAFE_LO, SQRT, exact_dist, pair_rdist
from nearkit._kernels.select import (
    LANES,
    Heap,
    _push,
    estimate_mask,
    heap_init,
    heap_sort_row,
    heap_threshold,
    kth_bound,
    lowest_bit,
)

#: the training side: float32 copies transposed (d, n), their margins ``m_x`` (n,), the
#: float64 points (n, d) for the re-measurement, and ``scale_r`` from exact surrogates to
#: the units of the estimates
Float32Points = namedtuple("Float32Points", ["XT32", "m_x", "X", "scale_r"])
#: the query side: float32 copies (m, d), margins ``m_q`` (m,), float64 queries (m, d)
Float32Queries = namedtuple("Float32Queries", ["Q32", "m_q", "Q"])


@numba.njit(inline="always", cache=True)
def _limit(heap, row, metric, scale_r, m_q, bound):
    """float32 admission limit of the estimates, rounded up (never excludes a candidate)."""
    top = heap_threshold(heap, row, metric)
    return min(np.float32((top * scale_r + m_q) * (1.0 + 2.0**-20)), bound)


@numba.njit(cache=True)
def _brute32_rows(points, queries, self_index, metric, tile, q0, p0, p1, heap):
    """Offer training points p0 .. p1-1 to the heap rows of queries q0, q0 + 1, ..."""
    est = np.empty(tile, dtype=np.float32)
    upper = np.empty(tile, dtype=np.float32)
    lanes = np.empty(LANES, dtype=np.float32)
    _estimate_rows(points, queries, self_index, metric, tile, q0, p0, p1, heap, est, upper,
                   lanes)


@numba.njit(cache=True, **NO_REFCOUNTS)
def _estimate_rows(points, queries, self_index, metric, tile, q0, p0, p1, heap, est, upper,
                   lanes):
    """:func:`_brute32_rows`' loops, given its scratch (no reference counts: see
    :data:`nearkit._kernels.NO_REFCOUNTS`)."""
    k = heap.dist.shape[1]
    XT32, m_x, X = points.XT32, points.m_x, points.X
    for t0 in range(p0, p1, tile):
        tl = min(tile, p1 - t0)
        mx = m_x[t0:t0 + tl]
        for row in range(heap.dist.shape[0]):
            q = q0 + row
            e = est[:tl]
            tile_rdist(XT32, queries.Q32[q], t0, tl, metric.kind, 1.0, e)
            up = upper[:tl]
            for t in range(tl):
                up[t] = e[t] + mx[t]
            skip = self_index[q]
            if t0 <= skip < t0 + tl:
                up[skip - t0] = np.inf  # the query itself never counts among the k
            mq = queries.m_q[q]
            bound = np.float32((kth_bound(up, k, lanes) + 2.0 * mq) * (1.0 + 2.0**-20))
            limit = _limit(heap, row, metric, points.scale_r, mq, bound)
            for c0 in range(0, tl, 64):
                ec = e[c0:c0 + 64]
                mc = mx[c0:c0 + 64]
                # the chunk's candidates as the bits of a mask, then measured and inserted
                # lowest bit first, with Euclidean's square root in the loop (as
                # select.offer_tile does, and why)
                mask = estimate_mask(ec, mc, limit)
                while mask:
                    t, mask = lowest_bit(mask)
                    i = t0 + c0 + t
                    if ec[t] - mc[t] > limit or i == skip:
                        continue
                    r = pair_rdist(queries.Q[q], X[i], metric)
                    if metric.correction == SQRT and SAFE_LO <= r <= SAFE_HI:
                        dist = np.sqrt(r)
                    else:
                        dist = exact_dist(r, queries.Q[q], X[i], metric)
                    _push(heap, row, dist, r, i)
                    limit = _limit(heap, row, metric, points.scale_r, mq, bound)


@numba.njit(nogil=True, cache=True)
def brute32_knn(points, queries, self_index, metric, tile, query_block, b0, b1, out):
    """k nearest training points of the queries in blocks ``b0:b1`` of ``query_block``
    (squares or absolute differences; see :func:`nearkit._kernels.brute.brute_knn` for the
    other arguments).

    Parameters
    ----------
    points : Float32Points
        ``XT32``: centred training points scaled by a power of two, float32, transposed;
        ``m_x``: per-point margin ``c N(x)`` rounded up; ``X``: the float64 points;
        ``scale_r``: factor from exact surrogates to the units of the estimates.
    queries : Float32Queries
        ``Q32``: queries centred and scaled like the points; ``m_q``: per-query margin
        (+inf admits every point: queries whose float32 copy would overflow); ``Q``: the
        float64 queries.
    """
    m = queries.Q.shape[0]
    for b in range(b0, b1):
        q0 = b * query_block
        q1 = min(m, q0 + query_block)
        heap = Heap(out.dist[q0:q1], out.rdist[q0:q1], out.ind[q0:q1])
        heap_init(heap)
        _brute32_rows(points, queries, self_index, metric, tile, q0, 0, points.X.shape[0],
                      heap)
        for row in range(q1 - q0):
            heap_sort_row(heap, row)


@numba.njit(nogil=True, cache=True)
def brute32_knn_chunks(points, queries, self_index, metric, tile, chunk, c0, c1, chunks):
    """:func:`brute32_knn` over training chunks ``c0:c1`` into per-chunk heaps (see
    :func:`nearkit._kernels.brute.brute_knn_chunks`)."""
    n = points.X.shape[0]
    for c in range(c0, c1):
        heap = Heap(chunks.dist[c], chunks.rdist[c], chunks.ind[c])
        heap_init(heap)
        _brute32_rows(points, queries, self_index, metric, tile, 0, c * chunk,
                      min(n, (c + 1) * chunk), heap)


load_lightly(globals())
