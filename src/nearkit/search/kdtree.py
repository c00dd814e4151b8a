"""The 'kd_tree' engine: an exact k-d tree (median splits on the widest dimension, tight
boxes, leaves scanned eight points at a time with partial-distance early exit).

Valid for every surrogate kind (including Minkowski with 0 < p < 1: the box bound is a lower
bound of each coordinate term).  Wins where the data's intrinsic dimension is low; see
:mod:`nearkit._kernels.kdtree`.
"""

from __future__ import annotations

import numpy as np

from nearkit._kernels.distances import ABS, MAX, POWER, SQUARES
from nearkit._kernels.kdtree import KDTree, build_kdtree, query_kdtree
from nearkit._kernels.radius import kdtree_radius
from nearkit.search._index import Index, check_links, check_state
from nearkit.search._radius import join_blocks
from nearkit.search._threads import map_ranges, run_ranges

#: queries per work item (tree searches vary in cost: small items balance the threads)
_QUERY_BLOCK = 16


class KDTreeIndex(Index):
    """Exact k-d tree over the prepared training points (see the module docstring)."""

    name = "kd_tree"
    kinds = frozenset({SQUARES, ABS, MAX, POWER})
    leaf_size = 40  # measured best of 8-64 on 36000 x 27 (single thread)

    def _build(self, points, n_threads, layout=None):
        self._X = np.ascontiguousarray(points)
        self.n_features = self._X.shape[1]
        parts = build_kdtree(self._X, self.leaf_size)
        self._tree = KDTree(np.ascontiguousarray(self._X[parts[0]]), *parts)

    @property
    def data(self):
        return self._X

    def _kernel_path(self):
        return "kd_tree", (query_kdtree,)

    def _state(self):
        arrays, scalars = super()._state()
        arrays["X"] = self._X
        arrays.update(self._tree._asdict())
        return arrays, scalars

    def _set_state(self, arrays, scalars):
        super()._set_state(arrays, scalars)
        n = self.n_samples
        check_state(arrays, scalars, {
            "X": ("f8", (n, "d")), "X_perm": ("f8", (n, "d")), "perm": ("i8", (n,)),
            "node_start": ("i8", ("nodes",)), "node_end": ("i8", ("nodes",)),
            "node_lo": ("f8", ("nodes", "d")), "node_hi": ("f8", ("nodes", "d")),
            "left": ("i8", ("nodes",)), "right": ("i8", ("nodes",)),
        })
        n_nodes = len(arrays["left"])
        check_links("perm", arrays["perm"], 0, n)
        for name in ("node_start", "node_end"):
            check_links(name, arrays[name], 0, n + 1)
        left, right = arrays["left"], arrays["right"]
        check_links("left", left, -1, n_nodes)
        check_links("right", right, -1, n_nodes)
        # a node has both children or none, numbered after it (preorder): no cycles
        node = np.arange(n_nodes)
        if np.any(((left < 0) != (right < 0)) | ((left >= 0) & ((left <= node) | (right <= node)))):
            raise ValueError("Index arrays 'left' and 'right' do not describe a tree.")
        self._X = arrays["X"]
        self.n_features = self._X.shape[1]
        self._tree = KDTree(*(arrays[name] for name in KDTree._fields))

    def _search(self, points, self_index, k, n_threads, out):
        m = points.shape[0]
        run_ranges(query_kdtree, (self._tree, points, self_index, self.metric.kernel,
                                  _QUERY_BLOCK), -(-m // _QUERY_BLOCK),
                   n_threads if m >= 2 * _QUERY_BLOCK else 1, tail=(out,))

    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        m = points.shape[0]
        blocks = map_ranges(kdtree_radius, (self._tree, points, self_index, self.metric.kernel,
                                            r_limit, radius), m, n_threads,
                            tail=(max_pairs // max(1, min(n_threads, m)),))
        return join_blocks(blocks, max_pairs)
