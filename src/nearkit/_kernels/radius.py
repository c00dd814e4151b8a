"""Every training point within a radius: brute force, tiles and k-d tree.

A point belongs to query ``q``'s answer when its exact distance (the definition of
:mod:`nearkit._kernels.distances`) is at most ``radius``.  Surrogates are filtered first
against ``r_limit``, the widened surrogate of the radius (so the filter never drops a point
whose distance is within it), and only the survivors are measured exactly.

Answers are ragged: a block of queries gives ``offsets`` (rows + 1), and the distances and
indices of row ``i`` are ``dist[offsets[i]:offsets[i + 1]]``.  The buffers grow by doubling;
once a block holds more than ``max_pairs`` pairs the kernel stops and reports it, so a radius
that covers everything fails before it allocates what it cannot hold.  Rows come in the order
the engine visits points; the caller sorts them.
"""

import numba
import numpy as np

from nearkit._kernels import load_lightly
from nearkit._kernels.brute import tile_rdist
from nearkit._kernels.distances import accumulate, exact_dist, exact_dist_column
from nearkit._kernels.tiled import box_bounds

#: queries whose box bounds are computed at once
_BOX_ROWS = 256


@numba.njit(cache=True)
def _append(dist, ind, count, d, i):
    """Store pair (d, i) at ``count``, doubling the buffers when full; returns them."""
    if count == dist.shape[0]:
        grown_d = np.empty(2 * count)
        grown_i = np.empty(2 * count, dtype=np.int64)
        grown_d[:count] = dist
        grown_i[:count] = ind
        dist, ind = grown_d, grown_i
    dist[count] = d
    ind[count] = i
    return dist, ind


@numba.njit(cache=True)
def _collect_tile(values, t0, perm, skip, q, XT, metric, r_limit, radius, column, dist, ind,
                  count, max_pairs):
    """Append the points of a tile (surrogates ``values``, positions ``t0 ...``) within the
    radius; returns (dist, ind, count), count = -1 once over ``max_pairs``."""
    for c0 in range(0, values.shape[0], 64):
        chunk = values[c0:c0 + 64]
        hits = 0
        for t in range(chunk.shape[0]):
            hits += chunk[t] <= r_limit
        if hits == 0:
            continue
        for t in range(chunk.shape[0]):
            r = chunk[t]
            i = t0 + c0 + t
            if r > r_limit or i == skip:
                continue
            idx = i if perm.shape[0] == 0 else perm[i]
            if idx < 0:
                continue
            d = exact_dist_column(r, q, XT, i, metric, column)
            if d <= radius:
                if count >= max_pairs:
                    return dist, ind, -1
                dist, ind = _append(dist, ind, count, d, idx)
                count += 1
    return dist, ind, count


@numba.njit(nogil=True, cache=True)
def brute_radius(XT, Q, self_index, metric, r_limit, radius, tile, q0, q1, max_pairs):
    """Queries ``q0:q1`` against every training point (``XT`` transposed, (d, n)).

    Returns ``(offsets, dist, ind, complete)``; ``complete`` is False when the block went
    over ``max_pairs`` pairs (the arrays are then partial).
    """
    n = XT.shape[1]
    offsets = np.zeros(q1 - q0 + 1, dtype=np.int64)
    dist = np.empty(256)
    ind = np.empty(256, dtype=np.int64)
    acc = np.empty(tile)
    column = np.empty(XT.shape[0])
    no_perm = np.empty(0, dtype=np.int64)
    count = 0
    for row in range(q1 - q0):
        q = q0 + row
        for t0 in range(0, n, tile):
            tl = min(tile, n - t0)
            tile_rdist(XT, Q[q], t0, tl, metric.kind, metric.p, acc)
            dist, ind, count = _collect_tile(acc[:tl], t0, no_perm, self_index[q], Q[q], XT,
                                             metric, r_limit, radius, column, dist, ind, count,
                                             max_pairs)
            if count < 0:
                return offsets, dist, ind, False
        offsets[row + 1] = count
    return offsets, dist[:count], ind[:count], True


@numba.njit(nogil=True, cache=True)
def tiled_radius(tiles, queries, metric, r_limit, radius, q0, q1, max_pairs):
    """Queries ``q0:q1`` (a :class:`~nearkit._kernels.tiled.TileQueries`) against the tiles
    whose bounding box comes within the radius; see :func:`brute_radius`."""
    tile_start = tiles.tile_start
    n_tiles = tile_start.shape[0] - 1
    offsets = np.zeros(q1 - q0 + 1, dtype=np.int64)
    dist = np.empty(256)
    ind = np.empty(256, dtype=np.int64)
    acc = np.empty(np.max(tile_start[1:] - tile_start[:-1]))
    column = np.empty(tiles.XT.shape[0])
    closeness = np.empty(n_tiles)
    count = 0
    for b0 in range(q0, q1, _BOX_ROWS):
        b1 = min(q1, b0 + _BOX_ROWS)
        lower = np.empty((n_tiles, b1 - b0))
        box_bounds(queries.Q[b0:b1], tiles.box_lo, tiles.box_hi, metric, lower, closeness)
        for q in range(b0, b1):
            for tile in range(n_tiles):
                if lower[tile, q - b0] > r_limit:
                    continue
                s0 = tile_start[tile]
                width = tile_start[tile + 1] - s0
                tile_rdist(tiles.XT, queries.Q[q], s0, width, metric.kind, metric.p, acc)
                dist, ind, count = _collect_tile(acc[:width], s0, tiles.perm,
                                                 queries.self_pos[q], queries.Q[q], tiles.XT,
                                                 metric, r_limit, radius, column, dist, ind,
                                                 count, max_pairs)
                if count < 0:
                    return offsets, dist, ind, False
            offsets[q - q0 + 1] = count
    return offsets, dist[:count], ind[:count], True


@numba.njit(nogil=True, cache=True)
def kdtree_radius(tree, Q, self_index, metric, r_limit, radius, q0, q1, max_pairs):
    """Queries ``q0:q1`` against a :class:`~nearkit._kernels.kdtree.KDTree`: the nodes whose
    box comes within the radius; see :func:`brute_radius`."""
    offsets = np.zeros(q1 - q0 + 1, dtype=np.int64)
    dist = np.empty(256)
    ind = np.empty(256, dtype=np.int64)
    stack = np.empty(2 * 64 + 4, dtype=np.int64)
    count = 0
    for row in range(q1 - q0):
        q = Q[q0 + row]
        skip = self_index[q0 + row]
        top = 0
        if tree.perm.shape[0]:
            stack[0] = 0
            top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            bound = 0.0
            lo, hi = tree.node_lo[node], tree.node_hi[node]
            for j in range(q.shape[0]):
                gap = max(max(lo[j] - q[j], q[j] - hi[j]), 0.0)
                bound = accumulate(bound, gap, metric.kind, metric.p)
            if bound > r_limit:
                continue
            if tree.left[node] >= 0:
                stack[top] = tree.right[node]
                stack[top + 1] = tree.left[node]
                top += 2
                continue
            for i in range(tree.node_start[node], tree.node_end[node]):
                idx = tree.perm[i]
                if idx == skip:
                    continue
                x = tree.X_perm[i]
                r = 0.0
                for j in range(q.shape[0]):
                    r = accumulate(r, q[j] - x[j], metric.kind, metric.p)
                if r > r_limit:
                    continue
                d = exact_dist(r, q, x, metric)
                if d <= radius:
                    if count >= max_pairs:
                        return offsets, dist, ind, False
                    dist, ind = _append(dist, ind, count, d, idx)
                    count += 1
        offsets[row + 1] = count
    return offsets, dist[:count], ind[:count], True


load_lightly(globals())
