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

Layout and order (what makes the filter selective).  The training points are cut into
spatially compact tiles (:func:`~nearkit._kernels.tiled.partition`: at the gaps of discrete
columns, then by median splits); queries are sorted by the tile they fall in.  A block of sorted queries first
measures its *home* tiles exactly (float64, SIMD over the tile's points), which puts near-final
k-th distances in the heaps before any GEMM, then runs the GEMM filter over the other tiles.

Pruning by bounding box.  Each tile keeps the bounding box of its float64 points.  A lower
bound of a query's distance to the box (:func:`~nearkit._kernels.tiled.box_bounds`) rules
the tile out for that query once it exceeds the query's (widened) k-th distance.  Per tile the
GEMM runs only over the block's rows still live, gathered into a smaller matrix, and tiles
go nearest first (by the bound summed over the block), so the k-th distances shrink early.
Measured on the test splits (k=5), besides each query's home tile: the GEMM covers 1.0% of
the (query, point) pairs on bank_churn, 28% on spotify_tracks and 2.7% on loan_approval
(with median-split tiles it was 42%, 62% and 72%), and 0.5, 14 and 7 points per query are
re-measured exactly.
"""

import numba
import numpy as np

from nearkit._kernels.brute import tile_rdist
from nearkit._kernels.distances import EUCLIDEAN, pair_rdist, prefilter_slack, widen
from nearkit._kernels.select import heap_init, heap_push, heap_sort_row, offer_tile
from nearkit._kernels.tiled import CHUNK, box_bounds

#: second-level pre-filter width inside a chunk that holds a candidate
SUB = 16


@numba.njit(nogil=True, cache=True)
def gemm_knn(tiles32, w32, XT, Xp, perm, tile_start, box_lo, box_hi, Q32, q_slack, scale2, Q,
             q_tile, self_pos, k, query_block, b0, b1, out_dist, out_ind):
    """k nearest neighbours (Euclidean) of the queries in blocks ``b0:b1`` of ``query_block``.

    Releases the GIL: the caller runs disjoint block ranges on several Python threads (a
    numba parallel loop around this kernel would cost seconds more to compile).

    Parameters
    ----------
    tiles32 : float32 array of shape (n_padded, d)
        Centred training points in float32, scaled by a power of two, in tile order; tile
        ``t`` is rows ``tile_start[t]:tile_start[t + 1]`` (widths are multiples of CHUNK,
        padding rows are zero).
    w32 : float32 array of shape (n_padded,)
        ``||x||^2 (1 - c)`` rounded down; padding holds +inf.
    XT : float64 array of shape (d, n_padded)
        Training points (prepared, uncentred) in tile order, transposed; padding is +inf.
    Xp : float64 array of shape (n_padded, d)
        The same points row by row, for single exact re-measurements.
    perm : int64 array of shape (n_padded,)
        Training index of each position; -1 for padding.
    tile_start : int64 array of shape (n_tiles + 1,)
    box_lo, box_hi : float64 arrays of shape (n_tiles, d)
        Bounding box of each tile's (prepared, uncentred) points.
    Q32 : float32 array of shape (m, d)
        Centred, scaled queries in float32 (sorted by tile).
    q_slack : float64 array of shape (m,)
        ``||q||^2 (c - 1)`` for each query: added to the scaled k-th distance to get the
        admission limit of the estimates (+inf admits every point: used for queries whose
        float32 copy overflowed).
    scale2 : float
        Square of the power-of-two factor of the float32 copies.
    Q : float64 array of shape (m, d)
        Queries (prepared, uncentred), sorted by tile.
    q_tile : int64 array of shape (m,)
        Home tile of each query (non-decreasing).
    self_pos : int64 array of shape (m,)
        Position of the query itself among the training points (``exclude_self``), else -1.
    k, query_block : int
    b0, b1 : int
        The range of query blocks to answer (rows ``b0 * query_block`` up to
        ``min(m, b1 * query_block)``).
    out_dist, out_ind : arrays of shape (m, k)
        Filled with the neighbours ordered by (distance, index).
    """
    m = Q.shape[0]
    max_width = np.max(tile_start[1:] - tile_start[:-1])
    for b in range(b0, b1):
        q0 = b * query_block
        _gemm_block(tiles32, w32, XT, Xp, perm, tile_start, box_lo, box_hi, Q32, q_slack,
                    scale2, Q, q_tile, self_pos, k, q0, min(m, q0 + query_block), max_width,
                    out_dist, out_ind)


@numba.njit(inline="always", cache=True)
def _gemm_block(tiles32, w32, XT, Xp, perm, tile_start, box_lo, box_hi, Q32, q_slack, scale2,
                Q, q_tile, self_pos, k, q0, q1, max_width, out_dist, out_ind):
    """Queries ``q0:q1`` (sorted by tile): home tiles exactly, then the GEMM filter over the
    other tiles, each for the rows its bounding box does not rule out."""
    n_tiles = tile_start.shape[0] - 1
    nb = q1 - q0
    hd = out_dist[q0:q1]
    hi = out_ind[q0:q1]
    hr = np.empty((nb, k))
    heap_init(hd, hr, hi)
    acc = np.empty(max_width)
    lanes = np.empty(64)
    for row in range(nb):  # each query's home tile, exactly (SIMD over the tile's points)
        q = q0 + row
        s0 = tile_start[q_tile[q]]
        width = tile_start[q_tile[q] + 1] - s0
        tile_rdist(XT, Q[q], s0, width, EUCLIDEAN, 2.0, acc)
        offer_tile(acc[:width], s0, perm, EUCLIDEAN, 2.0, self_pos[q], hd, hr, hi, row, lanes)
    lower = np.empty((n_tiles, nb))
    closeness = np.empty(n_tiles)
    box_bounds(Q[q0:q1], box_lo, box_hi, EUCLIDEAN, 2.0, lower, closeness)
    slack, tiny_r = prefilter_slack(EUCLIDEAN, 2.0)
    block32 = Q32[q0:q1]
    rows32 = np.empty_like(block32)
    live = np.empty(nb, dtype=np.int64)
    buf = np.empty(nb * max_width, dtype=np.float32)
    for tile in np.argsort(closeness):
        # the rows that still need this tile: not their home, and its box not beyond their
        # k-th distance (a lower bound, so pruning is exact; widened for distance ties)
        n_live = 0
        for row in range(nb):
            if (lower[tile, row] <= widen(hr[row, 0], slack, tiny_r)
                    and q_tile[q0 + row] != tile):
                live[n_live] = row
                n_live += 1
        if n_live == 0:
            continue
        if n_live == nb:
            rows = block32
        else:
            for i in range(n_live):
                rows32[i] = block32[live[i]]
            rows = rows32[:n_live]
        s0 = tile_start[tile]
        width = tile_start[tile + 1] - s0
        G = buf[:n_live * width].reshape((n_live, width))
        np.dot(rows, tiles32[s0:s0 + width].T, G)
        w = w32[s0:s0 + width]
        for i in range(n_live):
            row = live[i]
            q = q0 + row
            g = G[i]
            limit = np.float32(hr[row, 0] * scale2 + q_slack[q])
            hits = 0
            for t in range(width):
                hits += w[t] - np.float32(2.0) * g[t] <= limit
            if hits:
                _scan(w, g, s0, perm, Xp, Q[q], self_pos[q], row, hd, hr, hi, scale2,
                      q_slack[q])
    for row in range(nb):
        heap_sort_row(hd, hr, hi, row)


@numba.njit(cache=True)
def _scan(w, g, s0, perm, Xp, q, self_pos, row, hd, hr, hi, scale2, slack):
    """Re-measure exactly every point of the tile whose estimate passes the row's limit."""
    limit = np.float32(hr[row, 0] * scale2 + slack)
    for c0 in range(0, w.shape[0], CHUNK):
        # vectorised tests of a chunk, then of its sub-chunks, before the scalar loop
        # (slicing before indexing lets LLVM vectorise)
        wc = w[c0:c0 + CHUNK]
        gc = g[c0:c0 + CHUNK]
        hits = 0
        for t in range(CHUNK):
            hits += wc[t] - np.float32(2.0) * gc[t] <= limit
        if hits == 0:
            continue
        for c1 in range(c0, c0 + CHUNK, SUB):
            ws = w[c1:c1 + SUB]
            gs = g[c1:c1 + SUB]
            hits = 0
            for t in range(SUB):
                hits += ws[t] - np.float32(2.0) * gs[t] <= limit
            if hits == 0:
                continue
            for t in range(SUB):
                if ws[t] - np.float32(2.0) * gs[t] <= limit:
                    pos = s0 + c1 + t
                    idx = perm[pos]
                    if idx < 0 or pos == self_pos:
                        continue
                    r = pair_rdist(q, Xp[pos], EUCLIDEAN, 2.0)
                    heap_push(hd, hr, hi, row, np.sqrt(r), r, idx)
                    limit = np.float32(hr[row, 0] * scale2 + slack)
