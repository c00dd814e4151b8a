"""Sums of squares (Euclidean, Mahalanobis, cosine) by float32 GEMM expansion, re-ranked exactly.

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
The bound splits into a per-point and a per-query term, so the test per (query, point) is

    w[x] - 2 q.x <= top_rdist[q] - ||q||^2 + c ||q||^2,   w[x] = ||x||^2 - c ||x||^2

and the GEMM evaluates its left side itself: each point carries ``w[x] / 2`` as one more
coordinate and each query is stored negated with a 1 after it, so the product of the
extended rows is ``g = w[x] / 2 - q.x`` (a sum of d + 1 float32 terms: the bound above holds
for it, and halving and negating are exact), and the test is the one comparison
``g <= limit / 2``.  (Measured on one thread against a GEMM of
the d coordinates followed by ``w - 2 g``: 1.05x on spotify_tracks, 1.02-1.03x on
bank_churn and loan_approval.)

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
Measured on the test splits (k=5), besides each query's home tile, with tiles of 384
points: the GEMM covers 0.7% of the (query, point) pairs on bank_churn, 27% on
spotify_tracks (19 tiles per query) and 2.9% on loan_approval.  With tiles of 256: 1.0%,
25% (24 tiles) and 2.7%; 28% on spotify_tracks when continuous nodes were cut on their
widest range rather than their widest middle half; 42%, 62% and 72% with median-split
tiles.  Then 0.5, 14 and 7 points per query were re-measured exactly.
"""

from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import NO_REFCOUNTS, load_lightly
from nearkit._kernels.distances import exact_dist, pair_rdist, widen
from nearkit._kernels.select import (
    Heap,
    below_mask,
    heap_init,
    heap_push,
    heap_sort_row,
    lowest_bit,
    offer_scratch,
    order_of,
)
from nearkit._kernels.tiled import CHUNK, box_bounds, home_tiles

#: the float32 side of the tiles: ``tiles32`` (n_padded, d + 1), the centred points scaled by
#: a power of two (padding rows zero) and last ``w / 2``, where ``w`` is ``||x||^2 (1 - c)``
#: rounded down (padding the largest float32); ``Xp`` (n_padded, d) the float64 points row by row for
#: re-measurement; ``scale2`` the square of the power-of-two factor
GemmTiles = namedtuple("GemmTiles", ["tiles32", "Xp", "scale2"])
#: the float32 side of the sorted queries: ``Q32`` (m, d + 1) centred, scaled and negated,
#: last 1;
#: ``q_slack`` (m,) ``||q||^2 (c - 1)`` (+inf admits every point: queries whose float32 copy
#: overflowed)
GemmQueries = namedtuple("GemmQueries", ["Q32", "q_slack"])


@numba.njit(nogil=True, cache=True)
def gemm_knn(tiles, gtiles, queries, gqueries, metric, query_block, b0, b1, out):
    """k nearest neighbours (sums of squares) of the queries in blocks ``b0:b1``.

    Releases the GIL: the caller runs disjoint block ranges on several Python threads (a
    numba parallel loop around this kernel would cost seconds more to compile).

    Parameters
    ----------
    tiles : Tiles
        The float64 tiles (:mod:`nearkit._kernels.tiled`).
    gtiles : GemmTiles
    queries : TileQueries
        Queries sorted by home tile.
    gqueries : GemmQueries
    metric : KernelMetric
        A metric of kind SQUARES.
    query_block, b0, b1 : int
        Queries per block, and the range of blocks to answer.
    out : Heap of arrays of shape (m, k)
        Filled with the neighbours ordered by (distance, index).
    """
    m = queries.Q.shape[0]
    max_width = np.max(tiles.tile_start[1:] - tiles.tile_start[:-1])
    for b in range(b0, b1):
        q0 = b * query_block
        q1 = min(m, q0 + query_block)
        heap = Heap(out.dist[q0:q1], out.rdist[q0:q1], out.ind[q0:q1])
        _gemm_block(tiles, gtiles, queries, gqueries, metric, q0, max_width, heap)


@numba.njit(cache=True)
def _gemm_block(tiles, gtiles, queries, gqueries, metric, q0, max_width, heap):
    """Queries ``q0:q0 + nb`` (sorted by tile): home tiles exactly, then the GEMM filter over
    the other tiles, each for the rows its bounding box does not rule out."""
    tile_start = tiles.tile_start
    n_tiles = tile_start.shape[0] - 1
    nb = heap.dist.shape[0]
    heap_init(heap)
    acc = np.empty(max_width)
    lanes = np.empty(offer_scratch(max_width))
    column = np.empty(tiles.XT.shape[0])
    home_tiles(tiles, queries, q0, metric, heap, acc, lanes, column)
    lower = np.empty((n_tiles, nb))
    closeness = np.empty(n_tiles)
    box_bounds(queries.Q[q0:q0 + nb], tiles.box_lo, tiles.box_hi, metric, lower, closeness)
    block32 = gqueries.Q32[q0:q0 + nb]
    rows32 = np.empty_like(block32)
    live = np.empty(nb, dtype=np.int64)
    buf = np.empty(nb * max_width, dtype=np.float32)
    for tile in order_of(closeness):
        # the rows that still need this tile: not their home, and its box not beyond their
        # k-th distance (a lower bound, so pruning is exact; widened for distance ties)
        n_live = 0
        for row in range(nb):
            if (lower[tile, row] <= widen(heap.rdist[row, 0], metric)
                    and queries.q_tile[q0 + row] != tile):
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
        np.dot(rows, gtiles.tiles32[s0:s0 + width].T, G)
        for i in range(n_live):
            row = live[i]
            g = G[i]
            half = _half_limit(heap, row, metric, gtiles.scale2, gqueries.q_slack[q0 + row])
            hits = 0
            for t in range(width):
                hits += g[t] <= half
            if hits:
                _scan(g, s0, tiles.perm, gtiles, queries, gqueries, q0 + row, metric, heap,
                      row)
    for row in range(nb):
        heap_sort_row(heap, row)


@numba.njit(inline="always", cache=True)
def _half_limit(heap, row, metric, scale2, slack):
    """float32 admission limit of the GEMM's ``g = w / 2 - q.x`` for heap ``row``: half the
    limit of ``w - 2 q.x`` (where halving rounds, it can only admit more)."""
    return np.float32(0.5) * np.float32(widen(heap.rdist[row, 0], metric) * scale2 + slack)


@numba.njit(cache=True, **NO_REFCOUNTS)
def _scan(g, s0, perm, gtiles, queries, gqueries, q, metric, heap, row):
    """Re-measure exactly every point of the tile whose estimate passes the row's limit."""
    slack = gqueries.q_slack[q]
    self_pos = queries.self_pos[q]
    query = queries.Q[q]
    Xp = gtiles.Xp
    half = _half_limit(heap, row, metric, gtiles.scale2, slack)
    for c0 in range(0, g.shape[0], CHUNK):
        # the chunk's candidates as the bits of a mask, then re-measured lowest bit first
        # (as select.offer_tile does; slicing before indexing lets LLVM vectorise)
        gc = g[c0:c0 + CHUNK]
        mask = below_mask(gc, half)
        while mask:
            t, mask = lowest_bit(mask)
            if gc[t] > half:
                continue
            pos = s0 + c0 + t
            idx = perm[pos]
            if idx < 0 or pos == self_pos:
                continue
            r = pair_rdist(query, Xp[pos], metric)
            heap_push(heap, row, exact_dist(r, query, Xp[pos], metric), r, idx)
            half = _half_limit(heap, row, metric, gtiles.scale2, slack)

load_lightly(globals())
