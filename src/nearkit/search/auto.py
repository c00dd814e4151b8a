"""``algorithm='auto'``: which engine searches a fitted training set, by a cost model.

Nothing is compiled or timed to choose (a fit never compiles an engine it does not use):
the shape and the metric give a first choice (:func:`choose_algorithm`), and on large
training sets :func:`select_index` estimates, in NumPy, how much of the training set the
tiles' bounding boxes leave to search (:func:`searched_fraction`), which decides between the
brute-force sweep, the 'tiled' engine and, in low dimension, the k-d tree.  Every engine
returns identical neighbours, so the choice only affects speed.
"""

from __future__ import annotations

import numpy as np

from nearkit._kernels.distances import ABS, MAX, POWER, SQUARES
from nearkit._kernels.tiled import partition

#: below this training size 'auto' keeps sums of squares on the brute engine (single rows
#: and small batches run serially there, and BLAS calls cost more than they save)
GEMM_MIN_SAMPLES = 2048
#: below this training size brute force is kept for every metric (too few tiles to prune)
MODEL_MIN_SAMPLES = 4096
#: cost of searching a pair-feature in the tiled engine relative to the brute-force sweep
#: (float32 for sums of squares and absolute differences, float64 otherwise); measured on
#: spotify_tracks, Manhattan, where the tiles leave 31% of the pairs and the tiled engine
#: took 2x the float32 sweep's time
TILED_RELATIVE_COST = {SQUARES: 6.5, ABS: 6.5, MAX: 3.2, POWER: 1.3}
#: the k-d tree is a rival up to this many (prepared) features: measured on real data the
#: tree lost at 8 features and 614 rows (pima) and at 13+ features (bank, spotify, loan); on
#: 100,000 Gaussian points it won up to 8 features
KD_TREE_MAX_FEATURES = 10
#: ... when the tiles' boxes leave at most this share of the pairs (its leaves of 40 points
#: prune finer than tiles of 384, at a higher cost per pair)
KD_TREE_MAX_FRACTION = 0.02
#: rows sampled for the estimate, and tiles each measures exactly to estimate its k-th
#: distance
SAMPLE_ROWS = 256
NEAREST_TILES = 8
#: sums of squares from this many (prepared) features are candidates for the 'projected'
#: engine, chosen when its principal-component bounds leave at most
#: :data:`PROJECTED_MAX_FRACTION` of the pairs to measure (on 784-feature digit images
#: about 7 of 8,000 points per query at k=5: 2.4x faster than the gemm engine)
PROJECTED_MIN_FEATURES = 64
PROJECTED_MAX_FRACTION = 0.02


def choose_algorithm(n_samples, metric):
    """The engine 'auto' starts from: the float32 GEMM engine for sums of squares (Euclidean,
    Mahalanobis, cosine) once the training set is big enough for BLAS to pay off, exact
    brute force otherwise."""
    if metric.kernel.kind == SQUARES and n_samples >= GEMM_MIN_SAMPLES:
        return "gemm"
    return "brute"


def searched_fraction(points, leaves, kernel, k=5, seed=0):
    """Estimated share of the (query, point) pairs a search over the tiles must measure.

    A sample of training rows stands for the queries: each measures exactly its home tile
    and the :data:`NEAREST_TILES` tiles nearest by box bound, whose k-th smallest surrogate
    bounds its k-th distance from above; every tile whose box bound is within it must be
    searched.  NumPy only (nothing is compiled); an overestimate, by the k-th distance.
    """
    n, d = points.shape
    lo = np.array([points[rows].min(axis=0) for rows in leaves])
    hi = np.array([points[rows].max(axis=0) for rows in leaves])
    sizes = np.array([len(rows) for rows in leaves])
    n_rows = int(min(SAMPLE_ROWS, max(8, 2e7 // max(1, len(leaves) * d))))
    sample = points[np.random.default_rng(seed).choice(n, min(n, n_rows), replace=False)]
    with np.errstate(over="ignore", invalid="ignore"):
        gaps = np.maximum(np.maximum(lo[None] - sample[:, None], sample[:, None] - hi[None]),
                          0.0)
        bounds = _fold(gaps, kernel)  # (rows, tiles)
        nearest = np.argsort(bounds, axis=1)[:, :NEAREST_TILES + 1]
        kth = np.empty(len(sample))
        for i, row in enumerate(sample):
            candidates = points[np.concatenate([leaves[t] for t in nearest[i]])]
            surrogates = _fold(np.abs(candidates - row), kernel)
            at = min(k, len(surrogates) - 1)  # (the row itself is at 0)
            kth[i] = np.partition(surrogates, at)[at]
        searched = (bounds <= kth[:, None]) @ sizes
    return float(searched.sum() / (len(sample) * n))


def projected_fraction(points, mean, basis, k=5, seed=0):
    """Estimated share of the pairs the principal-component bounds leave to measure: sample
    rows stand for the queries, their k-th distances come from the GEMM expansion (an
    estimate is all that is needed here)."""
    n = points.shape[0]
    rng = np.random.default_rng(seed)
    sample = points[rng.choice(n, min(n, 128), replace=False)] - mean
    centred = points - mean
    full = (np.einsum("ij,ij->i", sample, sample)[:, None]
            + np.einsum("ij,ij->i", centred, centred)[None, :] - 2.0 * sample @ centred.T)
    kth = np.partition(full, min(k, n - 1), axis=1)[:, min(k, n - 1)]  # (itself at 0)
    Zs, Z = sample @ basis, centred @ basis
    bound = (np.einsum("ij,ij->i", Zs, Zs)[:, None] + np.einsum("ij,ij->i", Z, Z)[None, :]
             - 2.0 * Zs @ Z.T)
    return float((bound <= kth[:, None]).mean())


def _fold(diffs, kernel):
    """Surrogates from (..., d) absolute differences (NumPy, for estimates only)."""
    if kernel.kind == SQUARES:
        return np.einsum("...j,...j->...", diffs, diffs)
    if kernel.kind == ABS:
        return diffs.sum(axis=-1)
    if kernel.kind == MAX:
        return diffs.max(axis=-1)
    return (diffs ** kernel.p).sum(axis=-1)


def select_index(algorithm, X, metric, n_threads=None):
    """Build the search index for ``algorithm`` on raw training points ``X``.

    With ``algorithm='auto'`` on at least :data:`MODEL_MIN_SAMPLES` rows, the training
    points are cut into tiles (:func:`~nearkit._kernels.tiled.partition`, NumPy) and the
    share ``f`` of pairs their boxes leave to search is estimated
    (:func:`searched_fraction`); the 'tiled' engine is chosen when ``f`` times its
    relative cost per pair (:data:`TILED_RELATIVE_COST`) beats the brute-force sweep, the
    k-d tree in low dimension when ``f`` is tiny, otherwise the shape's first choice
    (:func:`choose_algorithm`).  Sums of squares keep the 'gemm' engine, which prunes by the
    same boxes (above :data:`KD_TREE_MAX_FEATURES` features without cutting the tiles or
    estimating ``f``: no other engine is then a rival, and the engine cuts its tiles at its
    first kernel search), unless in high dimension the principal-component bounds of the
    'projected' engine leave few pairs to measure (:func:`projected_fraction`).
    """
    from nearkit.search import ENGINES
    from nearkit.search._space import prepare
    from nearkit.search._threads import resolve_n_jobs

    if algorithm != "auto":
        return ENGINES[algorithm](X, metric, n_threads=n_threads)
    n_samples = X.shape[0]
    name = choose_algorithm(n_samples, metric)
    kind = metric.kernel.kind
    if n_samples < MODEL_MIN_SAMPLES:
        return ENGINES[name](X, metric, n_threads=n_threads)
    threads = resolve_n_jobs(n_threads)
    points = prepare(metric, X, threads)
    d = points.shape[1]
    if kind == SQUARES and d >= PROJECTED_MIN_FEATURES:
        from nearkit.search.projected import principal_basis

        basis = principal_basis(points)
        if projected_fraction(points, *basis) <= PROJECTED_MAX_FRACTION:
            return ENGINES["projected"].on_prepared(points, metric, threads, layout=basis)
    # sums of squares above KD_TREE_MAX_FEATURES stay on the gemm engine, which prunes by the
    # same tiles, whatever the estimate says: it is not made (25 ms of a 34 ms fit on
    # bank_churn), nor the tiles cut here (the engine cuts them at its first kernel search)
    if kind == SQUARES and d > KD_TREE_MAX_FEATURES:
        return ENGINES[name].on_prepared(points, metric, threads)
    leaves, tree = partition(points, ENGINES["tiled"].tile)
    fraction = searched_fraction(points, leaves, metric.kernel)
    if d <= KD_TREE_MAX_FEATURES and fraction <= KD_TREE_MAX_FRACTION:
        name = "kd_tree"
    elif kind != SQUARES and fraction * TILED_RELATIVE_COST[kind] < 1.0:
        name = "tiled"
    layout = (leaves, tree) if name in ("tiled", "gemm") else None
    return ENGINES[name].on_prepared(points, metric, threads, layout=layout)
