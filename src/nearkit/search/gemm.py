"""The 'gemm' engine: sums of squares by float32 GEMM expansion with an exact re-rank.

Candidates are selected from ``||q||^2 + ||x||^2 - 2 q.x`` in float32 (BLAS) with a rigorous
error margin and re-measured exactly, so results equal the other engines' (see
:mod:`nearkit._kernels.gemm`).  The training points are stored in the tiles of the 'tiled'
engine (cut at the gaps of discrete columns first), and a tile is searched only for the
queries its bounding box does not rule out.  Euclidean, and Mahalanobis and cosine (whose
prepared points are searched by sums of squares).
"""

from __future__ import annotations

import numpy as np

from nearkit._kernels.distances import SQUARES
from nearkit._kernels.gemm import GemmQueries, GemmTiles, gemm_knn
from nearkit.search._float32 import float32_space
from nearkit.search.brute import BruteForceIndex
from nearkit.search.tiled import TileLayout


class GemmIndex(TileLayout):
    """Sums of squares by float32 GEMM expansion with an exact float64 re-rank.

    Data whose scale is too far from 1 for float32 estimates is searched by the float64
    brute-force engine instead (same results).
    """

    name = "gemm"
    kinds = frozenset({SQUARES})
    calls_blas = True

    def _build(self, points, n_threads, layout=None):
        X = np.ascontiguousarray(points)
        self._space = float32_space(X)
        self._fallback = None
        if self._space is None:  # float64 search (see float32_space)
            self._fallback = BruteForceIndex.on_prepared(X, self.metric, n_threads)
            return
        valid = self._layout(X, layout)
        self._c = 4.0 * (self.n_features + 16) * 2.0**-24
        tiles32 = np.zeros((len(valid), self.n_features), dtype=np.float32)
        tiles32[valid] = self._space.copies(self._Xp[valid])
        norms = np.einsum("ij,ij->i", tiles32, tiles32, dtype=np.float64)
        w = np.full(len(valid), np.inf)
        w[valid] = norms[valid] * (1.0 - self._c)
        w32 = np.nextafter(w.astype(np.float32), np.float32(-np.inf))
        self._gtiles = GemmTiles(tiles32, w32, self._Xp, self._space.scale**2)

    @property
    def data(self):
        return self._fallback.data if self._fallback is not None else super().data

    def _search(self, points, self_index, k, n_threads, out):
        if self._fallback is not None:
            self._fallback._search(points, self_index, k, n_threads, out)
        else:
            super()._search(points, self_index, k, n_threads, out)

    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        owner = super() if self._fallback is None else self._fallback
        return owner._radius(points, self_index, r_limit, radius, n_threads, max_pairs)

    def _kernel(self, queries):
        Q32, norms, far = self._space.queries(queries.Q)
        q_slack = norms * (self._c - 1.0)
        q_slack[far] = np.inf
        return gemm_knn, (self._tiles, self._gtiles, queries, GemmQueries(Q32, q_slack),
                          self.metric.kernel)
