"""The 'brute' engine: exact brute force over cache-sized tiles, fused with top-k selection.

Sums of squares and of absolute differences on at least :data:`FLOAT32_MIN_SAMPLES` points
sweep float32 copies (twice the SIMD lanes) and re-measure every candidate exactly
(:mod:`nearkit._kernels.brute32`); the other metrics, small sets and data whose scale is far
from 1 sweep the float64 values directly (:mod:`nearkit._kernels.brute`).  Both give the
exact result.  Threads run over query blocks, or over training chunks when queries are few;
small batches run on the calling thread.
"""

from __future__ import annotations

import numpy as np

from nearkit._kernels.brute import brute_knn, brute_knn_chunks
from nearkit._kernels.brute32 import (
    Float32Points,
    Float32Queries,
    brute32_knn,
    brute32_knn_chunks,
)
from nearkit._kernels.distances import ABS, MAX, POWER, SQUARES
from nearkit._kernels.radius import brute_radius
from nearkit._kernels.select import empty_heap, merge_heaps
from nearkit.search import _direct as direct
from nearkit.search._float32 import Float32Space, float32_space
from nearkit.search._index import Index, check_state
from nearkit.search._radius import join_blocks
from nearkit.search._threads import SERIAL_WORK, map_ranges, run_ranges

#: training size from which sums of squares and of absolute differences sweep float32
#: copies: below it, preparing the float32 queries costs about what the faster sweep saves
#: (measured on pima_diabetes, 614 points: 0.165 ms either way; social_network_ads, 320:
#: 0.10 vs 0.05 ms; again after both sweeps' candidate listing, AVX-512 machine, predict:
#: 183 vs 137 us and 72 vs 50 us for the float32 sweep against the float64 one)
FLOAT32_MIN_SAMPLES = 2048


class BruteForceIndex(Index):
    """Exact brute force: cache-sized tiles of training points, fused with top-k selection.

    See the module docstring; every surrogate kind is supported.
    """

    name = "brute"
    kinds = frozenset({SQUARES, ABS, MAX, POWER})

    def _build(self, points, n_threads, layout=None):
        X = np.ascontiguousarray(points)
        self._X = X
        self.n_features = X.shape[1]
        # a tile of the transposed training data (n_features x tile doubles) stays in L2
        self.tile = int(min(4096, max(256, (32768 // max(1, self.n_features)) // 64 * 64)))
        self._points32 = None
        kind = self.metric.kernel.kind
        if kind in (SQUARES, ABS) and X.shape[0] >= FLOAT32_MIN_SAMPLES:
            self._space = float32_space(X)
            if self._space is not None:
                self._c = 8.0 * (self.n_features + 16) * 2.0**-24
                scaled = self._space.copies(X)
                norms = np.einsum("ij,ij->i", scaled, scaled, dtype=np.float64)
                m_x = np.nextafter(self._margins(scaled, norms).astype(np.float32),
                                   np.float32(np.inf))
                scale = self._space.scale
                self._points32 = Float32Points(np.ascontiguousarray(scaled.T), m_x, X,
                                               scale * scale if kind == SQUARES else scale)
        self._XT = np.ascontiguousarray(X.T) if self._points32 is None else None

    @property
    def data(self):
        return self._X

    def _kernel_path(self):
        if self._points32 is not None:
            return "brute32", (brute32_knn,)
        return "brute", (brute_knn,)

    def _state(self):
        arrays, scalars = super()._state()
        arrays["X"] = self._X
        if self._XT is not None:
            arrays["XT"] = self._XT
        scalars.update(tile=self.tile, float32=self._points32 is not None)
        if self._points32 is not None:
            arrays.update(XT32=self._points32.XT32, m_x=self._points32.m_x,
                          center=self._space.center)
            scalars.update(s0=self._space.s0, s1=self._space.s1, c=self._c,
                           scale_r=self._points32.scale_r)
        return arrays, scalars

    def _set_state(self, arrays, scalars):
        super()._set_state(arrays, scalars)
        float32 = scalars.get("float32") is True
        expected = {"X": ("f8", (self.n_samples, "d"))}
        if float32:
            expected.update(XT32=("f4", ("d", self.n_samples)), m_x=("f4", (self.n_samples,)),
                            center=("f8", ("d",)))
        if "XT" in arrays or not float32:
            expected["XT"] = ("f8", ("d", self.n_samples))
        check_state(arrays, scalars, expected,
                    {"tile": int, **dict.fromkeys(("s0", "s1", "c", "scale_r") if float32
                                                  else (), float)})
        self._X = arrays["X"]
        self._XT = arrays.get("XT")
        self.n_features = self._X.shape[1]
        self.tile = scalars["tile"]
        self._points32 = self._space = None
        if float32:
            self._space = Float32Space(scalars["s0"], arrays["center"], scalars["s1"])
            self._c = scalars["c"]
            self._points32 = Float32Points(arrays["XT32"], arrays["m_x"], self._X,
                                           scalars["scale_r"])

    def _margins(self, scaled32, squared_norms):
        """``c N(x)`` per row of a scaled float32 array (float64), given its squared norms."""
        if self.metric.kernel.kind == SQUARES:
            return self._c * squared_norms
        return self._c * np.abs(scaled32).sum(axis=1, dtype=np.float64)

    def _search(self, points, self_index, k, n_threads, out):
        m = points.shape[0]
        metric = self.metric.kernel
        if self._points32 is not None:
            Q32, norms, far = self._space.queries(points)
            m_q = self._margins(Q32, norms) + (self.n_features + 1) * 2.0**-140
            m_q[far] = np.inf
            args = (self._points32, Float32Queries(Q32, m_q, points), self_index, metric,
                    self.tile)
            kernel, chunk_kernel = brute32_knn, brute32_knn_chunks
        else:
            args = (self._XT, points, self_index, metric, self.tile)
            kernel, chunk_kernel = brute_knn, brute_knn_chunks
        if n_threads == 1 or m * self.n_samples * self.n_features < SERIAL_WORK:
            direct.call(self._direct_entries(), kernel, (*args, 64, 0, -(-m // 64), out),
                        points)
        elif m < 4 * n_threads and self.n_samples >= 4 * self.tile:
            n_chunks = 4 * n_threads
            chunks = empty_heap(n_chunks, m, k)
            run_ranges(chunk_kernel, (*args, -(-self.n_samples // n_chunks)), n_chunks,
                       n_threads, tail=(chunks,))
            merge_heaps(chunks, out)
        else:
            block = int(min(64, max(1, -(-m // (4 * n_threads)))))
            run_ranges(kernel, (*args, block), -(-m // block), n_threads, tail=(out,))

    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        if self._XT is None:  # the float32 sweep keeps no float64 transpose until needed
            self._XT = np.ascontiguousarray(self._X.T)
        m = points.shape[0]
        threads = n_threads if m * self.n_samples * self.n_features >= SERIAL_WORK else 1
        blocks = map_ranges(brute_radius, (self._XT, points, self_index, self.metric.kernel,
                                           r_limit, radius, self.tile), m, threads,
                            tail=(max_pairs // max(1, min(threads, m)),))
        return join_blocks(blocks, max_pairs)
