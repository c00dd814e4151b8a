"""``algorithm='auto'``: which engine searches a fitted training set.

The shape and the metric give a first choice (:func:`choose_algorithm`); on large training
sets :func:`select_index` then times the rivals that can win there on a sample of training
rows and keeps the fastest.  Every engine returns identical neighbours, so the choice only
affects speed.
"""

from __future__ import annotations

import time

import numpy as np

from nearkit._kernels.distances import SQUARES

#: below this training size 'auto' keeps sums of squares on the brute engine (single rows
#: and small batches run serially there, and BLAS calls cost more than they save)
GEMM_MIN_SAMPLES = 2048

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


def choose_algorithm(n_samples, metric):
    """The engine 'auto' starts from: the float32 GEMM engine for sums of squares (Euclidean,
    Mahalanobis, cosine) once the training set is big enough for BLAS to pay off, exact
    brute force otherwise (which :func:`select_index` may then time against the 'tiled'
    engine and a k-d tree)."""
    if metric.kernel.kind == SQUARES and n_samples >= GEMM_MIN_SAMPLES:
        return "gemm"
    return "brute"


def _cpu_seconds(index, Q, k):
    start = time.thread_time()
    index.query(Q, k, n_threads=1)
    return time.thread_time() - start


def select_index(algorithm, X, metric, n_threads=None):
    """Build the search index for ``algorithm`` on raw training points ``X``.

    With ``algorithm='auto'`` the engine comes from :func:`choose_algorithm`, except on large
    training sets, where rivals are built and every candidate answers the same sample of
    training rows (single-threaded, CPU time, after a warm-up call); the fastest is kept.
    The rivals: the 'tiled' engine for other surrogates than sums of squares (it wins where
    discrete columns cut the data into separable tiles, and loses to the float32 brute-force
    sweep on continuous data), and a k-d tree in low dimension.
    """
    from nearkit.search import ENGINES

    if algorithm != "auto":
        return ENGINES[algorithm](X, metric, n_threads=n_threads)
    n_samples, n_features = X.shape
    index = ENGINES[choose_algorithm(n_samples, metric)](X, metric, n_threads=n_threads)
    if n_samples < CALIBRATE_MIN_SAMPLES:
        return index
    rivals = []
    if metric.kernel.kind != SQUARES:  # (gemm already searches the tiles)
        rivals.append("tiled")
    if index.data.shape[1] <= CALIBRATE_MAX_FEATURES:
        rivals.append("kd_tree")
    if not rivals:
        return index
    candidates = [index] + [ENGINES[rival](X, metric, n_threads=n_threads) for rival in rivals]
    n_rows = int(np.clip(CALIBRATION_WORK / (n_samples * n_features), 32, CALIBRATION_QUERIES))
    rows = np.random.default_rng(0).choice(n_samples, n_rows, replace=False)
    sample = np.ascontiguousarray(X[np.sort(rows)])
    k = min(5, n_samples)
    for candidate in candidates:
        candidate.query(sample[:8], k, n_threads=1)  # compile / warm caches
    return min(candidates, key=lambda candidate: _cpu_seconds(candidate, sample, k))
