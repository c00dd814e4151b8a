"""Exact brute-force k-nearest neighbours, tiled and fused with top-k selection.

The training matrix is stored transposed, ``XT`` of shape (d, n), so that the innermost loop
runs over consecutive training points: one query against a tile of training points is a
SIMD-friendly sweep ``acc[t] += (q_j - XT[j, t])**2`` per feature.  Tiles are sized to stay
in the L2 cache while a block of queries sweeps them, and each tile's surrogate distances are
filtered at once against the query's current k-th best (early rejection), so the full
(m, n) distance matrix is never materialised: memory is O(tile + k) per thread.

Exactness: each surrogate is accumulated feature by feature in float64 in stored order, and
the distance of every point offered to a heap is the definition of
:mod:`nearkit._kernels.distances`; neighbours are kept by the key (distance, index).

Threads: the entry points release the GIL and answer a range of query blocks
(:func:`brute_knn`) or of training chunks (:func:`brute_knn_chunks`, for few queries
against many points); the caller runs disjoint ranges on Python threads.
"""

import numba
import numpy as np

from nearkit._kernels import NO_REFCOUNTS, load_lightly
from nearkit._kernels.distances import ABS, MAX, POWER, SQUARES
from nearkit._kernels.select import Heap, heap_init, heap_sort_row, offer_scratch, offer_tile


@numba.njit(inline="always", cache=True)
def _fold4(a, XT, q, j, t0, kind):
    """Fold features j .. j+3 into ``a`` (points t0 ..) in one pass, in feature order:
    ``(((a + f_j) + f_j+1) + f_j+2) + f_j+3``, the same roundings as four passes, with one
    load and store of ``a`` instead of four (measured 1.6x on pima_diabetes)."""
    tl = a.shape[0]
    q0, q1, q2, q3 = q[j], q[j + 1], q[j + 2], q[j + 3]
    r0 = XT[j, t0:t0 + tl]
    r1 = XT[j + 1, t0:t0 + tl]
    r2 = XT[j + 2, t0:t0 + tl]
    r3 = XT[j + 3, t0:t0 + tl]
    if kind == SQUARES:
        for t in range(tl):
            d0 = q0 - r0[t]
            d1 = q1 - r1[t]
            d2 = q2 - r2[t]
            d3 = q3 - r3[t]
            a[t] = a[t] + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
    elif kind == ABS:
        for t in range(tl):
            a[t] = (a[t] + abs(q0 - r0[t]) + abs(q1 - r1[t]) + abs(q2 - r2[t])
                    + abs(q3 - r3[t]))
    else:  # MAX (max is exact in any order)
        for t in range(tl):
            a[t] = max(a[t], abs(q0 - r0[t]), abs(q1 - r1[t]), abs(q2 - r2[t]),
                       abs(q3 - r3[t]))


@numba.njit(inline="always", cache=True)
def _fold_rest(a, XT, q, j, t0, kind):
    """Fold the last one to three features j .. d-1 into ``a`` in one pass, in feature order
    (as :func:`_fold4`: the same roundings as one pass each)."""
    tl = a.shape[0]
    rest = XT.shape[0] - j
    r0 = XT[j, t0:t0 + tl]
    q0 = q[j]
    if rest == 1:
        if kind == SQUARES:
            for t in range(tl):
                d0 = q0 - r0[t]
                a[t] = a[t] + d0 * d0
        elif kind == ABS:
            for t in range(tl):
                a[t] = a[t] + abs(q0 - r0[t])
        else:
            for t in range(tl):
                a[t] = max(a[t], abs(q0 - r0[t]))
        return
    r1 = XT[j + 1, t0:t0 + tl]
    q1 = q[j + 1]
    if rest == 2:
        if kind == SQUARES:
            for t in range(tl):
                d0 = q0 - r0[t]
                d1 = q1 - r1[t]
                a[t] = a[t] + d0 * d0 + d1 * d1
        elif kind == ABS:
            for t in range(tl):
                a[t] = a[t] + abs(q0 - r0[t]) + abs(q1 - r1[t])
        else:
            for t in range(tl):
                a[t] = max(a[t], abs(q0 - r0[t]), abs(q1 - r1[t]))
        return
    r2 = XT[j + 2, t0:t0 + tl]
    q2 = q[j + 2]
    if kind == SQUARES:
        for t in range(tl):
            d0 = q0 - r0[t]
            d1 = q1 - r1[t]
            d2 = q2 - r2[t]
            a[t] = a[t] + d0 * d0 + d1 * d1 + d2 * d2
    elif kind == ABS:
        for t in range(tl):
            a[t] = a[t] + abs(q0 - r0[t]) + abs(q1 - r1[t]) + abs(q2 - r2[t])
    else:
        for t in range(tl):
            a[t] = max(a[t], abs(q0 - r0[t]), abs(q1 - r1[t]), abs(q2 - r2[t]))


@numba.njit(inline="always", cache=True)
def _squares_first4(a, XT, q, t0):
    """``a`` = sums of squares over the first four features, in one pass that only writes."""
    tl = a.shape[0]
    q0, q1, q2, q3 = q[0], q[1], q[2], q[3]
    r0 = XT[0, t0:t0 + tl]
    r1 = XT[1, t0:t0 + tl]
    r2 = XT[2, t0:t0 + tl]
    r3 = XT[3, t0:t0 + tl]
    for t in range(tl):
        d0 = q0 - r0[t]
        d1 = q1 - r1[t]
        d2 = q2 - r2[t]
        d3 = q3 - r3[t]
        a[t] = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3


@numba.njit(inline="always", cache=True)
def _squares_small(a, XT, q, t0):
    """``a`` = sums of squares over one to three features, in one pass that only writes."""
    tl = a.shape[0]
    d = XT.shape[0]
    r0 = XT[0, t0:t0 + tl]
    q0 = q[0]
    if d == 1:
        for t in range(tl):
            d0 = q0 - r0[t]
            a[t] = d0 * d0
        return
    r1 = XT[1, t0:t0 + tl]
    q1 = q[1]
    if d == 2:
        for t in range(tl):
            d0 = q0 - r0[t]
            d1 = q1 - r1[t]
            a[t] = d0 * d0 + d1 * d1
        return
    r2 = XT[2, t0:t0 + tl]
    q2 = q[2]
    for t in range(tl):
        d0 = q0 - r0[t]
        d1 = q1 - r1[t]
        d2 = q2 - r2[t]
        a[t] = d0 * d0 + d1 * d1 + d2 * d2


@numba.njit(cache=True, **NO_REFCOUNTS)
def tile_rdist(XT, q, t0, tl, kind, p, acc):
    """acc[:tl] = surrogate distances from query ``q`` to training points t0 .. t0+tl-1.

    Works for float64 and float32 arrays alike (the float32 sweep of :mod:`brute32`).
    """
    d = XT.shape[0]
    a = acc[:tl]
    if kind == SQUARES and d > 0:
        # the first pass writes instead of adding to zeros (0 + x is x: the same values;
        # measured 1.7x on the distances of social_network_ads, 3 features)
        if d < 4:
            _squares_small(a, XT, q, t0)
            return
        _squares_first4(a, XT, q, t0)
        folded = 4
        while folded + 4 <= d:
            _fold4(a, XT, q, folded, t0, kind)
            folded += 4
        if folded < d:
            _fold_rest(a, XT, q, folded, t0, kind)
        return
    a[:] = 0.0
    # Specialised loops per kind so that each vectorises.  Rows are sliced first:
    # indexing ``XT[j][t0 + t]`` directly defeats LLVM's vectoriser (measured: 7x slower).
    folded = 0
    if kind != POWER:
        while folded + 4 <= d:
            _fold4(a, XT, q, folded, t0, kind)
            folded += 4
        if folded < d:
            _fold_rest(a, XT, q, folded, t0, kind)
        return
    for j in range(folded, d):
        qj = q[j]
        row = XT[j, t0:t0 + tl]
        if kind == SQUARES:
            for t in range(tl):
                diff = qj - row[t]
                a[t] += diff * diff
        elif kind == ABS:
            for t in range(tl):
                a[t] += abs(qj - row[t])
        elif kind == MAX:
            for t in range(tl):
                a[t] = max(a[t], abs(qj - row[t]))
        else:
            for t in range(tl):
                a[t] += abs(qj - row[t]) ** p


@numba.njit(cache=True)
def _brute_rows(XT, Q, self_index, q0, p0, p1, tile, metric, heap):
    """Offer training points p0 .. p1-1 to the heap rows of queries q0, q0 + 1, ..."""
    acc = np.empty(tile)
    lanes = np.empty(offer_scratch(tile))
    column = np.empty(XT.shape[0])
    no_perm = np.empty(0, dtype=np.int64)
    _offer_rows(XT, Q, self_index, q0, p0, p1, tile, metric, heap, acc, lanes, column,
                no_perm)


@numba.njit(cache=True, **NO_REFCOUNTS)
def _offer_rows(XT, Q, self_index, q0, p0, p1, tile, metric, heap, acc, lanes, column,
                no_perm):
    """:func:`_brute_rows`' loops, given its scratch: compiled without reference counts
    (the views of every query and chunk, see :data:`nearkit._kernels.NO_REFCOUNTS`)."""
    for t0 in range(p0, p1, tile):
        tl = min(tile, p1 - t0)
        for row in range(heap.dist.shape[0]):
            q = q0 + row
            tile_rdist(XT, Q[q], t0, tl, metric.kind, metric.p, acc)
            offer_tile(acc[:tl], t0, no_perm, self_index[q], Q[q], XT, metric, heap, row,
                       lanes, column)


@numba.njit(nogil=True, cache=True)
def brute_knn(XT, Q, self_index, metric, tile, query_block, b0, b1, out):
    """k nearest training points of the queries in blocks ``b0:b1`` of ``query_block``.

    Parameters
    ----------
    XT : float64 array of shape (d, n)
        Training points, transposed.
    Q : float64 array of shape (m, d)
        Queries.
    self_index : int64 array of shape (m,)
        Training index each query must not list (itself, for ``kneighbors(X=None)``), or -1.
    metric : KernelMetric
    tile, query_block : int
        Training points per tile; queries per block.
    b0, b1 : int
        The range of query blocks to answer.
    out : Heap of arrays of shape (m, k)
        Receives true distances and training indices, sorted by (distance, index).
    """
    m = Q.shape[0]
    for b in range(b0, b1):
        q0 = b * query_block
        q1 = min(m, q0 + query_block)
        heap = Heap(out.dist[q0:q1], out.rdist[q0:q1], out.ind[q0:q1])
        heap_init(heap)
        _brute_rows(XT, Q, self_index, q0, 0, XT.shape[1], tile, metric, heap)
        for row in range(q1 - q0):
            heap_sort_row(heap, row)


@numba.njit(nogil=True, cache=True)
def brute_knn_chunks(XT, Q, self_index, metric, tile, chunk, c0, c1, chunks):
    """Every query against training chunks ``c0:c1`` of ``chunk`` points, each into its own
    (unsorted) heaps ``chunks[c]``; :func:`~nearkit._kernels.select.merge_heaps` combines
    them.  For few queries against many training points."""
    n = XT.shape[1]
    for c in range(c0, c1):
        heap = Heap(chunks.dist[c], chunks.rdist[c], chunks.ind[c])
        heap_init(heap)
        _brute_rows(XT, Q, self_index, 0, c * chunk, min(n, (c + 1) * chunk), tile, metric,
                    heap)


load_lightly(globals())
