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
from nearkit._kernels.tiled import assign_tiles
from nearkit.search._float32 import Float32Space, float32_space, gemm_error, lowered_norms
from nearkit.search._index import check_state
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
    #: until :meth:`_finish_build` cuts the tiles: the prepared points, and their partition
    #: when 'auto' cut them to choose (None once the tiles exist)
    _points = _layout_given = None
    #: the tiles' float32 copies (:class:`~nearkit._kernels.gemm.GemmTiles`; None until cut)
    _gtiles = None

    def _build(self, points, n_threads, layout=None):
        X = np.ascontiguousarray(points)
        self._space = float32_space(X)
        self._fallback = None
        self.n_features = X.shape[1]
        if self._space is None:  # float64 search (see float32_space)
            self._fallback = BruteForceIndex.on_prepared(X, self.metric, n_threads)
            return
        # The tiles are cut by the first kernel search (:meth:`_finish_build`), not here:
        # the first searches of a process are answered from the points by NumPy while the
        # kernels load, and a fit followed by one predict may never need them.  Measured in
        # new processes with a warm cache, median of seven, fit + first predict:
        # spotify_tracks 0.129 -> 0.089 s (fit 34 -> 11 ms), bank_churn 0.054 -> 0.043 s;
        # loan_approval, whose first search waits for the kernels and cuts the tiles then,
        # 0.259 -> 0.232 s (fit 97 -> 20 ms)
        self._points, self._layout_given = X, layout
        self._built = False

    def _finish_build(self):
        """Cut the tiles and make their float32 copies (under :meth:`_complete`)."""
        padding = self._layout(self._points, self._layout_given)
        self._c = gemm_error(self.n_features)
        d = self.n_features
        tiles32 = np.empty((self._Xp.shape[0], d + 1), dtype=np.float32)
        self._space.copies(self._Xp, out=tiles32[:, :d])
        tiles32[padding, :d] = 0.0
        norms = np.einsum("ij,ij->i", tiles32[:, :d], tiles32[:, :d], dtype=np.float64)
        norms[padding] = np.inf  # (padding: never a candidate)
        tiles32[:, d] = np.float32(0.5) * lowered_norms(norms, self._c)
        self._gtiles = GemmTiles(tiles32, self._Xp, self._space.scale**2)
        self._points = self._layout_given = None

    @property
    def data(self):
        if self._fallback is not None:
            return self._fallback.data
        points = self._points  # (read once: a search on another thread may be cutting tiles)
        return points if points is not None else super().data

    @property
    def _numpy_space(self):
        return self._space  # float32_space of the same points, found at build (None: fallback)

    def _state(self):
        if self._fallback is not None:  # the float64 brute-force index, under "fallback."
            arrays, scalars = self._fallback._state()
            return ({f"fallback.{name}": array for name, array in arrays.items()},
                    {"fallback": scalars})
        arrays, scalars = super()._state()
        # the tiles' float32 points and their lowered norms w (kept as their own arrays;
        # the kernel's last column is w / 2, and halving and doubling are exact)
        extended = self._gtiles.tiles32
        arrays.update(tiles32=np.ascontiguousarray(extended[:, :-1]),
                      w32=np.float32(2.0) * extended[:, -1], center=self._space.center)
        scalars.update(s0=self._space.s0, s1=self._space.s1, c=self._c,
                       scale2=self._gtiles.scale2)
        return arrays, scalars

    def _set_state(self, arrays, scalars):
        if "fallback" in scalars:
            self._space = None
            inner = {name.removeprefix("fallback."): array for name, array in arrays.items()}
            if len(inner) != len(arrays) or not isinstance(scalars["fallback"], dict):
                raise ValueError("The index state mixes a float64 fallback with tiles.")
            self._fallback = BruteForceIndex._from_state(self.metric, inner,
                                                         scalars["fallback"])
            self.n_samples = self._fallback.n_samples
            self.n_features = self._fallback.n_features
            return
        super()._set_state(arrays, scalars, extra={
            "tiles32": ("f4", ("padded", "d")), "w32": ("f4", ("padded",)),
            "center": ("f8", ("d",))})
        check_state({}, scalars, {}, dict.fromkeys(("s0", "s1", "c", "scale2"), float))
        self._fallback = None
        self._space = Float32Space(scalars["s0"], arrays["center"], scalars["s1"])
        self._c = scalars["c"]
        self._gtiles = GemmTiles(np.column_stack([arrays["tiles32"],
                                                  np.float32(0.5) * arrays["w32"]]),
                                 self._Xp, scalars["scale2"])

    def _search(self, points, self_index, k, n_threads, out):
        if self._fallback is not None:
            self._fallback._search(points, self_index, k, n_threads, out)
        else:
            super()._search(points, self_index, k, n_threads, out)

    def _kernel_path(self):
        if self._fallback is not None:
            return self._fallback._kernel_path()
        return "gemm", (gemm_knn, assign_tiles)

    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        owner = super() if self._fallback is None else self._fallback
        return owner._radius(points, self_index, r_limit, radius, n_threads, max_pairs)

    def _kernel(self, queries):
        Q32, norms, far = self._space.queries(queries.Q)
        q_slack = norms * (self._c - 1.0)
        q_slack[far] = np.inf
        extended = np.ones((Q32.shape[0], Q32.shape[1] + 1), dtype=np.float32)
        # -q, then the 1 that multiplies the tiles' last column, w / 2 (negating is exact)
        np.negative(Q32, out=extended[:, :-1])
        return gemm_knn, (self._tiles, self._gtiles, queries, GemmQueries(extended, q_slack),
                          self.metric.kernel)
