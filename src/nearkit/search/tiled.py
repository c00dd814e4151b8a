"""The 'tiled' engine, and the tile layout it shares with the 'gemm' engine.

Training points are cut into the gap-cut tiles of :func:`~nearkit._kernels.tiled.partition`,
each padded to a multiple of CHUNK, with the tiles' bounding boxes.  Queries are sorted by
the tile they fall in and answered in blocks spread over threads; results go back in query
order.  The 'tiled' engine searches the tiles exactly in float64 for every surrogate kind:
each query measures its own tile, then only the tiles whose box could still hold a point
within its k-th distance, nearest first.  It wins on data with discrete columns (one-hot,
ordinal), where the boxes rule out most of the training set.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from nearkit._kernels.distances import ABS, MAX, POWER, SQUARES
from nearkit._kernels.radius import tiled_radius
from nearkit._kernels.select import empty_heap
from nearkit._kernels.tiled import (
    CHUNK,
    TileQueries,
    Tiles,
    assign_tiles,
    partition,
    tiled_knn,
)
from nearkit.search._index import Index, check_links, check_state
from nearkit.search._radius import join_blocks, reorder_rows
from nearkit.search._threads import claim_items, map_ranges, single_threaded_blas


class TileLayout(Index):
    """Training points in tiles (shared by the 'tiled' and 'gemm' engines)."""

    #: points per tile (measured on bank_churn, spotify_tracks and loan_approval: 256 beat
    #: 512-2048 by 10-30% for gemm, before its GEMM evaluated the whole estimate and its
    #: threads claimed blocks; then, predict, median of 15 interleaved, two runs: 384 against
    #: 256 1.07-1.09x on bank_churn, 1.06x on loan_approval, 1.02-1.03x on spotify_tracks
    #: (level in four pairs of alternating processes; 448-640 no better), and the tiled
    #: engine with Manhattan 1.13-1.22x; a query block's G buffer, 256 x 384 float32, stays
    #: in L2)
    tile = 384
    #: most queries per block
    max_query_block = 256
    #: whether the kernel calls BLAS (then limited to one thread per kernel thread)
    calls_blas = False

    def _layout(self, X, layout=None):
        """Cut ``X`` into tiles (or take ``layout``, its ``partition``); returns the padding
        positions (increasing)."""
        self.n_features = X.shape[1]
        leaves, self._tree = partition(X, self.tile) if layout is None else layout
        sizes = np.fromiter(map(len, leaves), dtype=np.int64, count=len(leaves))
        tile_start = np.zeros(len(leaves) + 1, dtype=np.int64)
        np.cumsum(-(-sizes // CHUNK) * CHUNK, out=tile_start[1:])
        perm = np.full(tile_start[-1], -1, dtype=np.int64)
        self._position = np.empty(X.shape[0], dtype=np.int64)  # inverse of perm
        for start, rows in zip(tile_start.tolist(), leaves):
            perm[start:start + len(rows)] = rows
            self._position[rows] = np.arange(start, start + len(rows))
        # gathers by index, not by mask (with the float32 copies written in place, the gemm
        # engine's deferred build on loan_approval, steady, medians of nine in three pairs of
        # alternating processes: 24.7-30.0 -> 14.2-22.3 ms)
        padding = np.flatnonzero(perm < 0)
        self._Xp = X.take(np.maximum(perm, 0), axis=0)
        self._Xp[padding] = 0.0
        XT = np.ascontiguousarray(self._Xp.T)
        # the boxes by one pass along each feature's row: every tile holds a point, its
        # padding after them set to what the reduction never keeps (1.3 ms on loan_approval
        # against 8 ms for a minimum and a maximum per leaf)
        XT[:, padding] = -np.inf
        box_hi = np.maximum.reduceat(XT, tile_start[:-1], axis=1).T
        XT[:, padding] = np.inf  # padding is never near anything
        box_lo = np.minimum.reduceat(XT, tile_start[:-1], axis=1).T
        self._tiles = Tiles(XT, perm, tile_start, np.ascontiguousarray(box_lo),
                            np.ascontiguousarray(box_hi))
        return padding

    @property
    def data(self):
        return self._Xp[self._position]

    def _state(self):
        arrays, scalars = super()._state()
        arrays.update(Xp=self._Xp, position=self._position, **self._tiles._asdict())
        arrays.update(zip(("tree_dim", "tree_value", "tree_left", "tree_right"), self._tree))
        return arrays, scalars

    def _set_state(self, arrays, scalars, extra=None):
        """Restore the tiles; ``extra`` adds the expected dtypes and shapes of a subclass's
        arrays (with the lengths 'padded', 'tiles', 'd' of the layout)."""
        super()._set_state(arrays, scalars)
        n = self.n_samples
        tree = ("tree_dim", "tree_value", "tree_left", "tree_right")
        sizes = check_state(arrays, scalars, {
            "Xp": ("f8", ("padded", "d")), "position": ("i8", (n,)),
            "XT": ("f8", ("d", "padded")), "perm": ("i8", ("padded",)),
            "tile_start": ("i8", ("starts",)), "box_lo": ("f8", ("tiles", "d")),
            "box_hi": ("f8", ("tiles", "d")),
            **{name: ("f8" if name == "tree_value" else "i8", ("nodes",)) for name in tree},
            **(extra or {}),
        })
        n_tiles, n_nodes = sizes["tiles"], sizes["nodes"]
        starts = arrays["tile_start"]
        if (len(starts) != n_tiles + 1 or starts[0] != 0 or starts[-1] != sizes["padded"]
                or np.any(np.diff(starts) < 0)):
            raise ValueError("Index array 'tile_start' does not cut the padded points into "
                             f"{n_tiles} tiles.")
        check_links("perm", arrays["perm"], -1, n)
        check_links("position", arrays["position"], 0, sizes["padded"])
        check_links("tree_dim", arrays["tree_dim"], 0, sizes["d"])
        node = np.arange(n_nodes)
        for name in ("tree_left", "tree_right"):  # a leaf -t - 1, or a node after this one
            links = arrays[name]
            check_links(name, links, -n_tiles, n_nodes)
            if np.any((links >= 0) & (links <= node)):
                raise ValueError(f"Index array {name!r} does not describe a tree.")
        self.n_features = sizes["d"]
        self._Xp, self._position = arrays["Xp"], arrays["position"]
        self._tiles = Tiles(*(arrays[name] for name in Tiles._fields))
        self._tree = tuple(arrays[name] for name in tree)

    def _sorted_queries(self, points, self_index):
        """The queries sorted by home tile (:class:`TileQueries`), and that order."""
        q_tile = np.empty(points.shape[0], dtype=np.int64)
        assign_tiles(points, *self._tree, q_tile)
        order = np.argsort(q_tile, kind="stable")
        self_index = self_index[order]
        self_pos = np.where(self_index >= 0, self._position[np.maximum(self_index, 0)], -1)
        return TileQueries(points[order], q_tile[order], self_pos), order

    def _search(self, points, self_index, k, n_threads, out):
        """Queries sorted by home tile, in blocks the threads claim one at a time (blocks in
        dense regions cost more: see :func:`~nearkit.search._threads.claim_items`), through
        the kernel and arguments of :meth:`_kernel`, results put back in query order."""
        m = points.shape[0]
        queries, order = self._sorted_queries(points, self_index)
        block = int(min(self.max_query_block, max(16, -(-m // (4 * n_threads)))))
        kernel, args = self._kernel(queries)
        ordered = empty_heap(m, k)
        # a kernel that calls BLAS does so per block, on one thread each
        with single_threaded_blas() if self.calls_blas else nullcontext():
            claim_items(kernel, (*args, block), -(-m // block), n_threads, tail=(ordered,))
        out.dist[order] = ordered.dist
        out.ind[order] = ordered.ind

    def _kernel(self, queries):
        """(kernel, leading arguments) for the sorted ``queries``; the kernel takes the
        block size, the block range and the output heap after them."""
        raise NotImplementedError

    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        m = points.shape[0]
        queries, order = self._sorted_queries(points, self_index)
        blocks = map_ranges(tiled_radius, (self._tiles, queries, self.metric.kernel, r_limit,
                                           radius), m, n_threads,
                            tail=(max_pairs // max(1, min(n_threads, m)),))
        return reorder_rows(*join_blocks(blocks, max_pairs), order)


class TiledIndex(TileLayout):
    """Exact float64 search over gap-cut tiles with bounding-box pruning, every metric.

    See the module docstring and :mod:`nearkit._kernels.tiled`.
    """

    name = "tiled"
    kinds = frozenset({SQUARES, ABS, MAX, POWER})

    def _build(self, points, n_threads, layout=None):
        self._layout(np.ascontiguousarray(points), layout)

    def _kernel(self, queries):
        return tiled_knn, (self._tiles, queries, self.metric.kernel)

    def _kernel_path(self):
        return "tiled", (tiled_knn, assign_tiles)
