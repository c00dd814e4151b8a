"""Search engines: exact k-nearest-neighbour indexes behind one interface.

An engine is built from prepared training data (float64, C order, already mapped by the
metric's :meth:`~nearkit.metrics.ResolvedMetric.prepare`) and answers
``query(Q, k, exclude_self=False, n_threads=None) -> (distances, indices)`` with arrays of
shape (n_queries, k), neighbours ordered by (true distance, training index).  Engines are
found through :data:`ENGINES`; ``algorithm='auto'`` is resolved by :func:`choose_algorithm`.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from nearkit._kernels.brute import brute_knn, brute_knn_serial, brute_knn_split
from nearkit._kernels.brute32 import brute32_knn, brute32_knn_serial, brute32_knn_split
from nearkit._kernels.distances import EUCLIDEAN, MANHATTAN
from nearkit._kernels.gemm import gemm_knn
from nearkit._kernels.kdtree import build_kdtree, query_kdtree
from nearkit._kernels.tiled import CHUNK, assign_tiles, partition, tiled_knn


def available_threads():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def resolve_n_jobs(n_jobs):
    """Thread count for ``n_jobs`` (None or -1: all cores; -2: all but one; ...)."""
    n_cores = min(available_threads(), numba.config.NUMBA_NUM_THREADS)
    if n_jobs is None:
        return n_cores
    if n_jobs < 0:
        return max(1, n_cores + 1 + n_jobs)
    return min(n_jobs, n_cores)


# numba's 'workqueue' threading layer aborts the process when two Python threads launch
# parallel kernels at once; 'omp' and 'tbb' are safe.  The layer is only known after the
# first parallel launch, so every launch holds this lock until then, and keeps holding it
# for the lifetime of the process if the layer turns out to be workqueue.
_launch_lock = threading.Lock()
_layer_is_safe = False


@contextmanager
def kernel_threads(n_threads):
    """Run parallel kernels on ``n_threads`` threads of the calling Python thread."""
    global _layer_is_safe
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        if _layer_is_safe:
            yield
        else:
            with _launch_lock:
                yield
                _layer_is_safe = numba.threading_layer() in ("omp", "tbb")
    finally:
        numba.set_num_threads(previous)


_blas_controller = None
_pool = None
_pool_pid = None
_pool_lock = threading.Lock()


def _thread_pool():
    """Worker threads shared by every call (kernels that release the GIL run on them).

    A forked child inherits the pool object but not its threads, so each process makes its
    own.
    """
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                       thread_name_prefix="nearkit")
            _pool_pid = os.getpid()
        return _pool


def blas_threads(n_threads):
    """Context manager limiting BLAS to ``n_threads`` threads.

    Inside our parallel kernels it is 1: the kernels own the threads, and each calls BLAS on
    its own block.
    """
    global _blas_controller
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()  # inspecting the libraries takes ~2 ms
    return _blas_controller.limit(limits=n_threads, user_api="blas")


# Below this many pair-feature operations a query batch runs on one thread.  Measured on
# pima_diabetes (154 x 614 x 8 = 756k): 0.17 ms on one thread, 0.09 ms median on two, but on
# a shared machine one call in ~50 then waits 3-8 ms for a descheduled worker (a time slice),
# which doubles the mean; one thread is the predictable choice at this size.
SERIAL_WORK = 1_000_000


class _Engine:
    """What every engine shares: the query contract and the prepared training data."""

    name = ""

    @property
    def data(self):
        """The prepared training points, shape (n_samples, n_features), C order."""
        return self._X

    def query(self, Q, k, *, exclude_self=False, n_threads=None):
        """(distances, indices) of the k nearest training points of each row of ``Q``.

        Both arrays have shape (n_queries, k); rows are ordered by (distance, index).
        With ``exclude_self``, ``Q`` is the training data and row i never lists itself.
        """
        dist = np.empty((Q.shape[0], k))
        ind = np.empty((Q.shape[0], k), dtype=np.int64)
        if Q.shape[0]:
            self._search(Q, k, exclude_self, resolve_n_jobs(n_threads), dist, ind)
        return dist, ind


def power_of_two_scale(centred):
    """Power of two ``s`` with ``max |centred * s| <= 1``, or None when ``s`` is outside
    [2**-400, 2**400]: data that far from 1 has float64 squares that underflow or overflow,
    which the relative float32 error bounds do not cover, so it is searched in float64."""
    scale = np.ldexp(1.0, -int(np.frexp(np.abs(centred).max(initial=0.0))[1]))
    return scale if 2.0**-400 <= scale <= 2.0**400 else None


def float32_queries(Q, center, scale):
    """Centred, scaled float32 copies of the queries, their squared norms (float64), and a
    mask of the queries too far out for float32 (norm or dot products could overflow: the
    kernels admit every point for them, and their copy is zeroed)."""
    with np.errstate(over="ignore", invalid="ignore"):
        Q32 = ((Q - center) * scale).astype(np.float32)
        norms = np.einsum("ij,ij->i", Q32, Q32, dtype=np.float64)
    far = ~(norms <= 2.0**100)
    Q32[far] = 0.0
    return Q32, norms, far


#: training size from which Euclidean and Manhattan brute force sweep float32 copies: below
#: it, preparing the float32 queries costs about what the faster sweep saves (measured on
#: pima_diabetes, 614 points: 0.165 ms either way; social_network_ads, 320: 0.10 vs 0.05 ms)
FLOAT32_MIN_SAMPLES = 2048


class BruteForceIndex(_Engine):
    """Exact brute force: cache-sized tiles of training points, fused with top-k selection.

    Euclidean and Manhattan on at least :data:`FLOAT32_MIN_SAMPLES` points sweep float32
    copies (twice the SIMD lanes) and re-measure every candidate exactly in float64
    (:mod:`nearkit._kernels.brute32`); the other metrics, small sets and data whose scale is
    far from 1 sweep the float64 values directly (:mod:`nearkit._kernels.brute`).  Both give
    the float64 result.

    Parameters
    ----------
    X : float64 ndarray of shape (n_samples, n_features)
        Prepared training data.
    metric_code : int
        Kernel metric code.
    p : float
        Minkowski exponent.
    """

    name = "brute"

    def __init__(self, X, metric_code, p):
        X = np.ascontiguousarray(X, dtype=np.float64)
        self.n_samples, self.n_features = X.shape
        self.metric_code = int(metric_code)
        self.p = float(p)
        self._X = X
        # a tile of the transposed training data (n_features x tile doubles) stays in L2
        self.tile = int(min(4096, max(256, (32768 // max(1, self.n_features)) // 64 * 64)))
        self._XT32 = None
        if self.metric_code in (EUCLIDEAN, MANHATTAN) and self.n_samples >= FLOAT32_MIN_SAMPLES:
            self._center = X.mean(axis=0)
            centred = X - self._center
            self._scale = power_of_two_scale(centred)
            if self._scale is not None:
                self._c = 8.0 * (self.n_features + 16) * 2.0**-24
                scaled = (centred * self._scale).astype(np.float32)
                self._XT32 = np.ascontiguousarray(scaled.T)
                norms = np.einsum("ij,ij->i", scaled, scaled, dtype=np.float64)
                self._m_x = self._margins(scaled, norms).astype(np.float32)
                self._m_x = np.nextafter(self._m_x, np.float32(np.inf))
        if self._XT32 is None:
            self._XT = np.ascontiguousarray(X.T)

    def _margins(self, scaled32, squared_norms):
        """``c N(x)`` per row of a scaled float32 array (float64), given its squared norms."""
        if self.metric_code == EUCLIDEAN:
            return self._c * squared_norms
        return self._c * np.abs(scaled32).sum(axis=1, dtype=np.float64)

    def _search(self, Q, k, exclude_self, n_threads, dist, ind):
        m = Q.shape[0]
        if self._XT32 is not None:
            Q32, norms, far = float32_queries(Q, self._center, self._scale)
            m_q = self._margins(Q32, norms) + (self.n_features + 1) * 2.0**-140
            m_q[far] = np.inf
            scale_r = self._scale**2 if self.metric_code == EUCLIDEAN else self._scale
            args = (self._XT32, self._m_x, self._X, Q32, m_q, Q, k, self.metric_code, scale_r,
                    exclude_self, self.tile)
            serial_kernel, split_kernel, kernel = brute32_knn_serial, brute32_knn_split, brute32_knn
        else:
            args = (self._XT, Q, k, self.metric_code, self.p, exclude_self, self.tile)
            serial_kernel, split_kernel, kernel = brute_knn_serial, brute_knn_split, brute_knn
        if n_threads == 1 or m * self.n_samples * self.n_features < SERIAL_WORK:
            serial_kernel(*args, 64, dist, ind)
            return
        with kernel_threads(n_threads):
            if m < 4 * n_threads and self.n_samples >= 4 * self.tile:
                split_kernel(*args, 4 * n_threads, dist, ind)
            else:
                kernel(*args, int(min(64, max(1, -(-m // (4 * n_threads))))), dist, ind)


def _run_blocks(kernel, args, n_blocks, n_threads, dist, ind):
    """``kernel(*args, b0, b1, dist, ind)`` over query blocks 0 .. n_blocks-1, split into
    contiguous ranges on ``n_threads`` threads (the kernels release the GIL; the calling
    thread takes the first range)."""
    if n_threads == 1 or n_blocks == 1:
        kernel(*args, 0, n_blocks, dist, ind)
        return
    bounds = np.linspace(0, n_blocks, min(n_threads, n_blocks) + 1).astype(int)
    jobs = [_thread_pool().submit(kernel, *args, b0, b1, dist, ind)
            for b0, b1 in zip(bounds[1:-1], bounds[2:])]
    kernel(*args, bounds[0], bounds[1], dist, ind)
    for job in jobs:
        job.result()


class _TiledLayout(_Engine):
    """Training points in the tiles of :func:`~nearkit._kernels.tiled.partition`, each tile
    padded to a multiple of CHUNK, with the tiles' bounding boxes (shared by the 'tiled'
    and 'gemm' engines)."""

    #: points per tile (measured on bank_churn, spotify_tracks and loan_approval: 256 beat
    #: 512-2048 by 10-30% for gemm; a query block's G buffer then stays in L2)
    tile = 256
    #: most queries per block
    max_query_block = 256
    #: whether the kernel calls BLAS (then limited to one thread per kernel thread)
    calls_blas = False

    def _layout(self, X):
        self.n_samples, self.n_features = X.shape
        leaves, self._tree = partition(X, self.tile)
        widths = [-(-len(rows) // CHUNK) * CHUNK for rows in leaves]
        self._tile_start = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        self._perm = np.full(self._tile_start[-1], -1, dtype=np.int64)
        for start, rows in zip(self._tile_start, leaves):
            self._perm[start:start + len(rows)] = rows
        valid = self._perm >= 0
        self._position = np.empty(self.n_samples, dtype=np.int64)  # inverse of _perm
        self._position[self._perm[valid]] = np.flatnonzero(valid)
        self._Xp = np.zeros((len(self._perm), self.n_features))
        self._Xp[valid] = X[self._perm[valid]]
        self._XT = np.ascontiguousarray(self._Xp.T)
        self._XT[:, ~valid] = np.inf  # padding is never near anything
        self._box_lo = np.array([X[rows].min(axis=0) for rows in leaves])
        self._box_hi = np.array([X[rows].max(axis=0) for rows in leaves])
        return valid

    @property
    def data(self):
        """The prepared training points, shape (n_samples, n_features), C order."""
        return self._Xp[self._position]

    def _search(self, Q, k, exclude_self, n_threads, dist, ind):
        """Queries sorted by home tile, in blocks over threads (:func:`_run_blocks`) through
        the kernel and arguments of :meth:`_kernel`, results put back in query order."""
        m = Q.shape[0]
        q_tile = np.empty(m, dtype=np.int64)
        assign_tiles(Q, *self._tree, q_tile)
        order = np.argsort(q_tile, kind="stable")
        self_pos = self._position[order] if exclude_self else np.full(m, -1, dtype=np.int64)
        block = int(min(self.max_query_block, max(16, -(-m // (4 * n_threads)))))
        kernel, args = self._kernel(Q[order], q_tile[order], self_pos, k, block)
        sorted_dist = np.empty_like(dist)
        sorted_ind = np.empty_like(ind)
        # a kernel that calls BLAS does so per block, on one thread each
        with blas_threads(1) if self.calls_blas else nullcontext():
            _run_blocks(kernel, args, -(-m // block), n_threads, sorted_dist, sorted_ind)
        dist[order] = sorted_dist
        ind[order] = sorted_ind

    def _kernel(self, Qs, q_tile, self_pos, k, block):
        """(kernel, leading arguments) for sorted queries ``Qs``; the kernel takes the block
        range and the output arrays after them."""
        raise NotImplementedError


class TiledIndex(_TiledLayout):
    """Exact float64 search over gap-cut tiles with bounding-box pruning, any Minkowski metric.

    Each query measures its own tile, then only the tiles whose box could still hold a point
    within its k-th distance (see :mod:`nearkit._kernels.tiled`).  Wins on data with discrete
    columns (one-hot, ordinal), where the tiles' boxes rule out most of the training set.
    """

    name = "tiled"

    def __init__(self, X, metric_code, p):
        X = np.ascontiguousarray(X, dtype=np.float64)
        self.metric_code = int(metric_code)
        self.p = float(p)
        self._layout(X)

    def _kernel(self, Qs, q_tile, self_pos, k, block):
        return tiled_knn, (self._XT, self._perm, self._tile_start, self._box_lo, self._box_hi,
                           Qs, q_tile, self_pos, k, self.metric_code, self.p, block)


class GemmIndex(_TiledLayout):
    """Euclidean search by float32 GEMM expansion with an exact float64 re-rank.

    Candidates are selected from ``||q||^2 + ||x||^2 - 2 q.x`` in float32 (BLAS) with a
    rigorous error margin and re-measured exactly, so results equal :class:`BruteForceIndex`
    (see :mod:`nearkit._kernels.gemm`).  The training points are stored in the tiles of
    :class:`TiledIndex` (cut at the gaps of discrete columns first), and a tile is searched
    only for the queries its bounding box does not rule out.  Queries are processed sorted
    by tile, in blocks spread over threads.  Euclidean only (Mahalanobis arrives whitened).
    """

    name = "gemm"
    calls_blas = True

    def __init__(self, X, metric_code, p):
        if metric_code != EUCLIDEAN:
            raise ValueError("The 'gemm' engine supports the Euclidean and Mahalanobis metrics "
                             "only; use 'tiled', 'brute' or 'kd_tree' for the others.")
        X = np.ascontiguousarray(X, dtype=np.float64)
        self.metric_code = EUCLIDEAN
        self.p = 2.0
        valid = self._layout(X)
        self._center = X.mean(axis=0)
        centred = self._Xp[valid] - self._center
        # a power of two keeps the float32 copies away from overflow and underflow exactly
        self._scale = power_of_two_scale(centred)
        self._fallback = None
        if self._scale is None:  # float64 search (see power_of_two_scale)
            self._fallback = BruteForceIndex(X, EUCLIDEAN, 2.0)
            return
        self._c = 4.0 * (self.n_features + 16) * 2.0**-24
        self._tiles32 = np.zeros((len(self._perm), self.n_features), dtype=np.float32)
        self._tiles32[valid] = centred * self._scale
        norms = np.einsum("ij,ij->i", self._tiles32, self._tiles32, dtype=np.float64)
        w = np.full(len(self._perm), np.inf)
        w[valid] = norms[valid] * (1.0 - self._c)
        self._w32 = np.nextafter(w.astype(np.float32), np.float32(-np.inf))

    def _search(self, Q, k, exclude_self, n_threads, dist, ind):
        if self._fallback is not None:
            self._fallback._search(Q, k, exclude_self, n_threads, dist, ind)
        else:
            super()._search(Q, k, exclude_self, n_threads, dist, ind)

    def _kernel(self, Qs, q_tile, self_pos, k, block):
        Q32, norms, far = float32_queries(Qs, self._center, self._scale)
        q_slack = norms * (self._c - 1.0)
        q_slack[far] = np.inf
        return gemm_knn, (self._tiles32, self._w32, self._XT, self._Xp, self._perm,
                          self._tile_start, self._box_lo, self._box_hi, Q32, q_slack,
                          self._scale**2, Qs, q_tile, self_pos, k, block)


class KDTreeIndex(_Engine):
    """Exact k-d tree (median splits on the widest dimension, tight boxes, leaf scans).

    Valid for every metric of the Minkowski family (including 0 < p < 1: the box bound is
    a lower bound of each coordinate term) and for Mahalanobis after whitening.  Wins where
    the data's intrinsic dimension is low; see :mod:`nearkit._kernels.kdtree`.
    """

    name = "kd_tree"
    leaf_size = 40  # measured best of 8-64 on 36000 x 27 (single thread)

    def __init__(self, X, metric_code, p, *, n_threads=None):
        self.n_samples, self.n_features = X.shape
        self.metric_code = int(metric_code)
        self.p = float(p)
        self._X = np.ascontiguousarray(X, dtype=np.float64)
        with kernel_threads(resolve_n_jobs(n_threads)):
            self._tree = build_kdtree(self._X, self.leaf_size)
        self._X_perm = np.ascontiguousarray(self._X[self._tree[0]])

    def _search(self, Q, k, exclude_self, n_threads, dist, ind):
        with kernel_threads(1 if Q.shape[0] < 16 else n_threads):
            query_kdtree(self._X_perm, *self._tree, Q, k, self.metric_code, self.p,
                         exclude_self, dist, ind)


#: below this training size 'auto' keeps Euclidean on the brute engine (single rows and small
#: batches run serially there, and BLAS calls cost more than they save)
GEMM_MIN_SAMPLES = 2048

#: engine name -> class; every class has the constructor (X, metric_code, p) and ``query``
ENGINES = {
    "brute": BruteForceIndex,
    "gemm": GemmIndex,
    "kd_tree": KDTreeIndex,
    "tiled": TiledIndex,
}


def choose_algorithm(algorithm, n_samples, n_features, metric):
    """The engine for ``algorithm`` from the data's shape alone ('auto': before calibration).

    Euclidean (and whitened Mahalanobis) goes to the float32 GEMM engine once the training
    set is big enough for BLAS to pay off; everything else to exact brute force (which
    :func:`select_index` may then time against the 'tiled' engine and a k-d tree).
    """
    if algorithm != "auto":
        if algorithm not in ENGINES:
            raise ValueError(f"Unknown algorithm {algorithm!r}; expected 'auto' or one of "
                             f"{sorted(ENGINES)}.")
        return algorithm
    if metric.code == EUCLIDEAN and n_samples >= GEMM_MIN_SAMPLES:
        return "gemm"
    return "brute"


#: 'auto' calibrates rivals against the shape-based choice only on enough points, and a k-d
#: tree only in low dimension: measured on real data the tree lost at 8 features and 614 rows
#: (pima) and at 13+ features (bank, spotify, loan); on 100,000 Gaussian points it won up to
#: 8 features.
CALIBRATE_MAX_FEATURES = 10
CALIBRATE_MIN_SAMPLES = 4096
#: the calibration sample: at most this many training rows, fewer on large sets so that one
#: candidate answers them in about 2e7 pair-features (brute force with a Minkowski power
#: spends ~10 ns per pair-feature; 256 rows of loan_approval took it 2.5 s)
CALIBRATION_QUERIES = 256
CALIBRATION_WORK = 2e7


def _cpu_seconds(index, Q, k):
    start = time.thread_time()
    index.query(Q, k, n_threads=1)
    return time.thread_time() - start


def select_index(algorithm, X, metric, n_threads=None):
    """Build the search index for ``algorithm`` on prepared training data ``X``.

    With ``algorithm='auto'`` the engine comes from :func:`choose_algorithm`, except on large
    training sets, where rivals are built and every candidate answers the same sample of
    training rows (single-threaded, CPU time, after a warm-up call); the fastest is kept.
    The rivals: the 'tiled' engine for metrics other than Euclidean (it wins where discrete
    columns cut the data into separable tiles, and loses to the float32 brute-force sweep on
    continuous data), and a k-d tree in low dimension.  Every engine returns identical
    neighbours, so the choice only affects speed.
    """
    n_samples, n_features = X.shape
    name = choose_algorithm(algorithm, n_samples, n_features, metric)
    index = build_index(name, X, metric, n_threads)
    if algorithm != "auto" or n_samples < CALIBRATE_MIN_SAMPLES:
        return index
    rivals = []
    if metric.code != EUCLIDEAN:  # (gemm already searches the tiles)
        rivals.append("tiled")
    if n_features <= CALIBRATE_MAX_FEATURES:
        rivals.append("kd_tree")
    if not rivals:
        return index
    candidates = [index] + [build_index(rival, X, metric, n_threads) for rival in rivals]
    n_rows = int(np.clip(CALIBRATION_WORK / (n_samples * n_features), 32, CALIBRATION_QUERIES))
    rows = np.random.default_rng(0).choice(n_samples, n_rows, replace=False)
    sample = np.ascontiguousarray(X[np.sort(rows)])
    k = min(5, n_samples)
    for candidate in candidates:
        candidate.query(sample[:8], k, n_threads=1)  # compile / warm caches
    return min(candidates, key=lambda candidate: _cpu_seconds(candidate, sample, k))


def build_index(algorithm, X, metric, n_threads=None):
    """Build the engine named ``algorithm`` on prepared data ``X`` for a resolved metric."""
    if algorithm == "kd_tree":
        return KDTreeIndex(X, metric.code, metric.p, n_threads=n_threads)
    return ENGINES[algorithm](X, metric.code, metric.p)
