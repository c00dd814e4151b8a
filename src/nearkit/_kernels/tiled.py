"""Training points in spatially compact tiles, searched exactly with box pruning.

:func:`partition` cuts the training rows into tiles of at most a few hundred points, first at
the empty gaps of discrete columns, then by median splits; each tile keeps the bounding box
of its points.  :func:`box_bounds` gives, for a block of queries, a lower bound of each
query's surrogate distance to every point of each tile: the per-feature gaps to the box are
folded in feature order with the same :func:`~nearkit._kernels.distances.accumulate` as the
exact distance, and floating-point subtraction, powers and sums are monotone, so the bound
never exceeds the surrogate of a point in the box.  A tile whose bound is above a query's
(widened) k-th surrogate cannot hold one of its neighbours and is skipped for it.

:func:`tiled_knn` is the exact engine built on this for every metric of the Minkowski
family: each query measures its own (home) tile first, then the other tiles nearest first,
each only while its bound can still beat the query's k-th distance.  The float32 GEMM
engine (:mod:`nearkit._kernels.gemm`) uses the same tiles and bounds for Euclidean.
"""

from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import NO_REFCOUNTS, load_lightly
from nearkit._kernels.brute import tile_rdist
from nearkit._kernels.distances import accumulate, widen
from nearkit._kernels.select import (
    Heap,
    heap_init,
    heap_sort_row,
    offer_scratch,
    offer_tile,
    order_of,
)

#: training points in tile order: ``XT`` (d, n_padded) transposed, padding columns +inf;
#: ``perm`` (n_padded,) training index of each position (increasing within a tile, -1 for
#: padding); ``tile_start`` (n_tiles + 1,): tile ``t`` is positions
#: ``tile_start[t]:tile_start[t + 1]``; ``box_lo``, ``box_hi`` (n_tiles, d): bounding boxes
Tiles = namedtuple("Tiles", ["XT", "perm", "tile_start", "box_lo", "box_hi"])
#: queries sorted by home tile: ``Q`` (m, d), ``q_tile`` (m,) non-decreasing home tiles,
#: ``self_pos`` (m,) position of the query itself among the training points (exclude_self)
#: or -1
TileQueries = namedtuple("TileQueries", ["Q", "q_tile", "self_pos"])

#: tile widths are multiples of this (the vectorised pre-filters test this many points at once)
CHUNK = 64

#: :func:`partition` cuts at a gap at least this many times the mean spacing of the values
#: (measured: 20-60 all keep Gaussian and uniform data tiled as by median splits, whose
#: largest gaps are about 10 spacings, and catch the gaps of the real datasets)
GAP_RATIO = 30.0
#: :func:`partition` looks for gaps in a sample of this many to twice as many rows of a node
#: (all rows of a smaller node).  Measured on the benchmark's splits, median of nine steady
#: predicts (k=5), 128 against 512: loan_approval 30.0 -> 19.2 ms, spotify_tracks 15.4 ->
#: 13.6 ms, bank_churn level (64, 96, 192: slower on loan_approval, within a ms on
#: spotify_tracks); Manhattan on two other splits of loan_approval 56.5 -> 40.3 and
#: 60.9 -> 30.6 ms; the cut itself 35 -> 12 ms on loan_approval (a new process's first
#: predict waits for it).  The share of pairs the boxes leave, estimated by
#: :func:`nearkit.search.auto.searched_fraction`: 3.3% -> 1.2% on loan_approval, 28% -> 26%
#: on spotify_tracks, 4.3% on bank_churn either way
GAP_SAMPLE = 128


def partition(X, tile):
    """Cut the rows of ``X`` into spatially compact tiles of at most ``tile`` points.

    Each node is split where its points leave a wide empty gap: on a sample of the node
    (:data:`GAP_SAMPLE` rows or more), sorted per feature, the largest difference between
    consecutive values within the middle half, kept if it is at least :data:`GAP_RATIO`
    times the mean spacing there; of the features with such a gap, the widest gap wins,
    and the left part is every point at or below the value before it.  Real tabular data is
    full of such gaps (one-hot and other discrete columns), and a tile that lies on one side
    of them has a bounding box that rules it out for every query on the other side: measured
    with the final k-th distances (gap samples of 512 rows then, tiles of 256; see
    :data:`GAP_SAMPLE` for samples of 128), the tiles' boxes leave 3.7% of the (query,
    point) pairs to search on bank_churn, 32% on spotify_tracks and 3.5% on loan_approval,
    against 41%, 62% and 72% for median splits on the widest feature.  Where no feature shows a gap
    (continuous data) the node is cut at the median of the feature whose middle half (in
    the sample) is widest instead, the left part rounded up to a multiple of :data:`CHUNK`:
    on spotify_tracks, whose standardised features have long tails, tiles of 256 then leave
    27.8% of the (query, point) pairs (padding counted) against 31.6% for the feature of the
    widest range (the other figures here are from that rule).  Leaves come out in
    depth-first order, so tiles with close numbers are close in space.

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
        sample = np.sort(X[rows[:: max(1, count // GAP_SAMPLE)]], axis=0)
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
            # the feature whose middle half is widest (where the node's mass spreads; a
            # range would follow one far outlier), or the widest one when no middle half
            # has width
            spread = span if (span > 0).any() else sample[-1] - sample[0]
            dim = int(np.argmax(spread))
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


@numba.njit(cache=True)
def box_bounds(Q, box_lo, box_hi, metric, lower, closeness):
    """``lower[t, i]``: a lower bound of the surrogate distance from query ``i`` to every
    point of tile ``t``'s box; ``closeness[t]``: its sum over the queries (a tile order).

    The per-feature gaps are folded in feature order like
    :func:`~nearkit._kernels.distances.pair_rdist`, and rounding is monotone, so the bound
    never exceeds the surrogate of a point in the box.
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
                bound[i] = accumulate(bound[i], gap, metric.kind, metric.p)
        total = 0.0
        for i in range(nb):
            total += bound[i]
        closeness[tile] = total


@numba.njit(cache=True, **NO_REFCOUNTS)
def home_tiles(tiles, queries, q0, metric, heap, acc, lanes, column):
    """Each query of the block measures its own (home) tile exactly: near-final k-th
    distances before any other tile is searched."""
    for row in range(heap.dist.shape[0]):
        q = q0 + row
        s0 = tiles.tile_start[queries.q_tile[q]]
        width = tiles.tile_start[queries.q_tile[q] + 1] - s0
        tile_rdist(tiles.XT, queries.Q[q], s0, width, metric.kind, metric.p, acc)
        offer_tile(acc[:width], s0, tiles.perm, queries.self_pos[q], queries.Q[q], tiles.XT,
                   metric, heap, row, lanes, column)


@numba.njit(nogil=True, cache=True)
def tiled_knn(tiles, queries, metric, query_block, b0, b1, out):
    """Exact k nearest neighbours of the queries in blocks ``b0:b1`` of ``query_block``.

    Releases the GIL: the caller runs disjoint block ranges on several Python threads.

    Parameters
    ----------
    tiles : Tiles
    queries : TileQueries
    metric : KernelMetric
    query_block, b0, b1 : int
        Queries per block, and the range of blocks to answer.
    out : Heap of arrays of shape (m, k)
        Filled with the neighbours ordered by (distance, index).
    """
    m = queries.Q.shape[0]
    tile_start = tiles.tile_start
    n_tiles = tile_start.shape[0] - 1
    acc = np.empty(np.max(tile_start[1:] - tile_start[:-1]))
    lanes = np.empty(offer_scratch(acc.shape[0]))
    column = np.empty(tiles.XT.shape[0])
    for b in range(b0, b1):
        q0 = b * query_block
        nb = min(m, q0 + query_block) - q0
        heap = Heap(out.dist[q0:q0 + nb], out.rdist[q0:q0 + nb], out.ind[q0:q0 + nb])
        heap_init(heap)
        lower = np.empty((n_tiles, nb))
        closeness = np.empty(n_tiles)
        box_bounds(queries.Q[q0:q0 + nb], tiles.box_lo, tiles.box_hi, metric, lower,
                   closeness)
        home_tiles(tiles, queries, q0, metric, heap, acc, lanes, column)
        _other_tiles(tiles, queries, q0, metric, heap, lower, order_of(closeness), acc, lanes,
                     column)
        for row in range(nb):
            heap_sort_row(heap, row)


@numba.njit(cache=True, **NO_REFCOUNTS)
def _other_tiles(tiles, queries, q0, metric, heap, lower, order, acc, lanes, column):
    """The block's queries measure the tiles in ``order``, each only where its box's bound
    ``lower`` can still beat the query's k-th distance (no reference counts: see
    :data:`nearkit._kernels.NO_REFCOUNTS`)."""
    tile_start = tiles.tile_start
    for tile in order:
        s0 = tile_start[tile]
        width = tile_start[tile + 1] - s0
        for row in range(heap.dist.shape[0]):
            q = q0 + row
            if (queries.q_tile[q] == tile
                    or lower[tile, row] > widen(heap.rdist[row, 0], metric)):
                continue
            tile_rdist(tiles.XT, queries.Q[q], s0, width, metric.kind, metric.p, acc)
            offer_tile(acc[:width], s0, tiles.perm, queries.self_pos[q], queries.Q[q],
                       tiles.XT, metric, heap, row, lanes, column)


load_lightly(globals())
