"""The 'projected' engine: high-dimensional sums of squares pruned by principal components.

The top principal directions of the training points give every pair a lower bound of its
distance (an orthonormal projection never lengthens a vector); on data of low intrinsic
dimension (images, embeddings) it is tight, and each query measures in full only the few
points whose bound is within its k-th distance (:mod:`nearkit._kernels.projected`).
Euclidean, and Mahalanobis and cosine (searched by sums of squares after their
preparation).  Data whose scale is far from 1, or more than 64 neighbours, go to the brute
force engine instead (same results).
"""

from __future__ import annotations

import numpy as np

from nearkit._kernels.distances import SQUARES
from nearkit._kernels.projected import ProjectedPoints, ProjectedQueries, projected_knn
from nearkit.search._float32 import float32_space
from nearkit.search._index import Index, check_state
from nearkit.search._threads import run_ranges, single_threaded_blas
from nearkit.search.brute import BruteForceIndex

#: principal directions kept (measured on 784-feature digit images: 32 leave about 7
#: candidates per query at k=5, 16 leave 15)
COMPONENTS = 32
#: training rows the directions are learned from
BASIS_ROWS = 4096
#: query-block entries (queries x training points) of the bound matrix per thread
BLOCK_ENTRIES = 1 << 20
#: most neighbours the first pass's bound (a k-th of lane minima) serves
MAX_K = 64


def principal_basis(points, rows=BASIS_ROWS, components=COMPONENTS, seed=0):
    """(mean, orthonormal basis (d, r)) of the top principal directions of a sample."""
    n, d = points.shape
    sample = points if n <= rows else points[np.sort(
        np.random.default_rng(seed).choice(n, rows, replace=False))]
    mean = points.mean(axis=0)
    centred = sample - mean
    eigval, eigvec = np.linalg.eigh(centred.T @ centred)
    return mean, np.ascontiguousarray(eigvec[:, ::-1][:, :min(components, d)])


class ProjectedIndex(Index):
    """Exact search pruned by principal-component lower bounds (see the module docstring)."""

    name = "projected"
    kinds = frozenset({SQUARES})

    def _build(self, points, n_threads, layout=None):
        X = np.ascontiguousarray(points)
        self._X = X
        self.n_features = X.shape[1]
        self._brute = None
        # data with squares out of range is measured by the brute engine
        self._projects = float32_space(X) is not None
        if self._projects:  # (``layout``: the basis when 'auto' computed it to choose)
            self._mean, self._basis = principal_basis(X) if layout is None else layout
            self._points = ProjectedPoints(X, *self._project(X))
            self._set_margins()

    def _set_margins(self):
        r = self._basis.shape[1]
        # the expansion's rounding (r terms), and the centring's, the projection's and the
        # basis's departure from orthonormality, relative to the centred norms (generous)
        self._c = 4.0 * (r + 8) * 2.0**-53
        self._kappa = (self.n_features + r + 16) * 2.0**-50

    def _brute_force(self):
        """The brute-force engine over the same points, for what projection does not serve
        (built once, when first needed)."""
        if self._brute is None:
            self._brute = BruteForceIndex.on_prepared(self._X, self.metric, None)
        return self._brute

    def _state(self):
        arrays, scalars = super()._state()
        arrays["X"] = self._X
        if self._projects:
            arrays.update(mean=self._mean, basis=self._basis, Z=self._points.Z,
                          z2=self._points.z2, w_norm=self._points.w_norm)
        return arrays, scalars

    def _set_state(self, arrays, scalars):
        super()._set_state(arrays, scalars)
        n = self.n_samples
        expected = {"X": ("f8", (n, "d"))}
        if "basis" in arrays:
            expected.update(mean=("f8", ("d",)), basis=("f8", ("d", "r")),
                            Z=("f8", (n, "r")), z2=("f8", (n,)), w_norm=("f8", (n,)))
        check_state(arrays, scalars, expected)
        self._X = arrays["X"]
        self.n_features = self._X.shape[1]
        self._brute = None
        self._projects = "basis" in arrays
        if self._projects:
            self._mean, self._basis = arrays["mean"], arrays["basis"]
            self._points = ProjectedPoints(self._X, arrays["Z"], arrays["z2"],
                                           arrays["w_norm"])
            self._set_margins()

    def _project(self, X):
        centred = X - self._mean
        Z = np.ascontiguousarray(centred @ self._basis)
        return Z, np.einsum("ij,ij->i", Z, Z), np.sqrt(np.einsum("ij,ij->i", centred, centred))

    @property
    def data(self):
        return self._X

    def _kernel_path(self):
        if not self._projects:
            return self._brute_force()._kernel_path()
        return "projected", (projected_knn,)

    def _search(self, points, self_index, k, n_threads, out):
        queries = None
        if self._projects and k <= MAX_K:
            with np.errstate(over="ignore", invalid="ignore"):
                queries = ProjectedQueries(points, *self._project(points))
        # queries far beyond the data's range (or many neighbours): brute force
        if queries is None or not np.isfinite(queries.w_norm).all():
            self._brute_force()._search(points, self_index, k, n_threads, out)
            return
        m = points.shape[0]
        block = int(max(1, min(64, BLOCK_ENTRIES // self.n_samples, -(-m // n_threads))))
        with single_threaded_blas():  # each thread calls BLAS on its own block
            run_ranges(projected_knn, (self._points, queries, self_index, self.metric.kernel,
                                       self._c, self._kappa, block), -(-m // block),
                       n_threads, tail=(out,))

    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        return self._brute_force()._radius(points, self_index, r_limit, radius, n_threads,
                                           max_pairs)
