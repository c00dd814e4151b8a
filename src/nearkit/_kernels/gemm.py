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

Layout and order (what makes the filter selective).  The training points are cut into tiles
by a median-split tree (:func:`partition`), so a tile is a compact region of space; queries
are sorted by the tile they fall in (:func:`assign_tiles`).  A block of sorted queries first
measures its *home* tiles exactly (float64, SIMD over the tile's points), which puts near-final
k-th distances in the heaps before any GEMM, then runs the GEMM filter over the other tiles.

Pruning by bounding box.  Each tile keeps the bounding box of its float64 points.  A lower
bound of a query's distance to the box, summed in feature order like the exact distance
(rounding is monotone, so it never exceeds the distance of a point in the box), rules the
tile out for that query once it exceeds the query's (widened) k-th distance.  Per tile the
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

#: tile widths are multiples of this (the vectorised pre-filter tests this many points at once)
CHUNK = 64
#: second-level pre-filter width inside a chunk that holds a candidate
SUB = 16
#: :func:`partition` cuts at a gap at least this many times the mean spacing of the values
#: (measured: 20-60 all keep Gaussian and uniform data tiled as by median splits, whose
#: largest gaps are about 10 spacings, and catch the gaps of the real datasets)
GAP_RATIO = 30.0


def partition(X, tile):
    """Cut the rows of ``X`` into spatially compact tiles of at most ``tile`` points.

    Each node is split where its points leave a wide empty gap: on a sample of the node
    (about 1,024 rows), sorted per feature, the largest difference between consecutive
    values within the middle half, kept if it is at least :data:`GAP_RATIO` times the mean
    spacing there; of the features with such a gap, the widest gap wins, and the left part
    is every point at or below the value before it.  Real tabular data is full of such gaps
    (one-hot and other discrete columns), and a tile that lies on one side of them has a
    bounding box that rules it out for every query on the other side: measured with the
    final k-th distances, the tiles' boxes leave 3.7% of the (query, point) pairs to search
    on bank_churn, 31% on spotify_tracks and 3.5% on loan_approval, against 41%, 62% and 72%
    for median splits on the widest feature.  Where no feature shows a gap (continuous
    data) the node is cut at the median of its widest feature instead, the left part
    rounded up to a multiple of :data:`CHUNK`.  Leaves come out in depth-first order,
    so tiles with close numbers are close in space.

    Returns
    -------
    leaves : list of int64 arrays
        Row numbers of each tile (increasing), in tile order.
    tree : tuple of arrays (dim, value, left, right)
        Internal nodes for :func:`assign_tiles`: a point goes left when
        ``x[dim] <= value``; a child ``c < 0`` is the leaf ``-c - 1``.
    """
    dims, values, lefts, rights = [], [], [], []
    leaves = []

    def split(rows):
        count = len(rows)
        if count <= tile:
            leaves.append(rows)
            return -len(leaves)
        sample = np.sort(X[rows[:: max(1, count // 1024)]], axis=0)
        quarter = len(sample) // 4
        middle = sample[quarter:len(sample) - quarter]
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: no gap found
            gaps = middle[1:] - middle[:-1]
            at = np.argmax(gaps, axis=0)
            gap = gaps[at, np.arange(X.shape[1])]
            span = middle[-1] - middle[0]
            # a gap is real when it is many times the mean spacing of the middle values
            # (about ln(n) for continuous noise; the sample size for a two-valued feature)
            real = (gap * len(middle) >= GAP_RATIO * span) & (span > 0)
        if real.any():
            dim = int(np.argmax(np.where(real, gap, -1.0)))
            value = float(middle[at[dim], dim])
            goes_left = X[rows, dim] <= value
            left, right = rows[goes_left], rows[~goes_left]
        else:
            dim = int(np.argmax(sample[-1] - sample[0]))
            column = X[rows, dim]
            n_left = -(-(count // 2) // CHUNK) * CHUNK
            order = np.argpartition(column, n_left - 1)
            value = float(column[order[n_left - 1]])
            left, right = np.sort(rows[order[:n_left]]), np.sort(rows[order[n_left:]])
        node = len(dims)
        dims.append(int(dim))
        values.append(value)
        lefts.append(0)
        rights.append(0)
        lefts[node] = split(left)
        rights[node] = split(right)
        return node

    split(np.arange(X.shape[0], dtype=np.int64))
    tree = (np.array(dims, dtype=np.int64), np.array(values, dtype=np.float64),
            np.array(lefts, dtype=np.int64), np.array(rights, dtype=np.int64))
    return leaves, tree


@numba.njit(cache=True)
def assign_tiles(Q, dim, value, left, right, out):
    """Tile of each query: the leaf of :func:`partition`'s tree it falls in."""
    for i in range(Q.shape[0]):
        node = 0 if dim.shape[0] else -1
        while node >= 0:
            node = left[node] if Q[i, dim[node]] <= value[node] else right[node]
        out[i] = -node - 1


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
    _box_bounds(Q[q0:q1], box_lo, box_hi, lower, closeness)
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
def _box_bounds(Q, box_lo, box_hi, lower, closeness):
    """``lower[t, i]``: a lower bound of the squared distance from query ``i`` to every point
    of tile ``t``'s box; ``closeness[t]``: its sum over the queries (the tile order).

    The per-feature gaps are summed in feature order like :func:`pair_rdist`, and rounding
    is monotone, so the bound never exceeds the exact surrogate of a point in the box.
    """
    nb, d = Q.shape
    QT = np.empty((d, nb))  # features outermost: the inner loop runs over queries (SIMD)
    for i in range(nb):
        for j in range(d):
            QT[j, i] = Q[i, j]
    lower[:] = 0.0
    for tile in range(lower.shape[0]):
        bound = lower[tile]
        for j in range(d):
            lo = box_lo[tile, j]
            hi = box_hi[tile, j]
            qj = QT[j]
            for i in range(nb):
                gap = max(max(lo - qj[i], qj[i] - hi), 0.0)
                bound[i] += gap * gap
        total = 0.0
        for i in range(nb):
            total += bound[i]
        closeness[tile] = total


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
