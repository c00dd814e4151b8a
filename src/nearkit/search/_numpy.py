"""Exact k-nearest neighbours in NumPy alone, for the first calls of a process.

Sums of squares (Euclidean, Mahalanobis and cosine after their preparation) first select
candidates from the float32 GEMM expansion ``||q||^2 + ||x||^2 - 2 q.x`` of centred copies
scaled by powers of two (BLAS), with the 'gemm' engine's rigorous error margin, and measure
only the candidates exactly; the other surrogates are measured for every pair.

numba compiles nearkit's kernels on first use; until an engine's kernels are loaded (from
numba's disk cache, or compiled in the background: :mod:`nearkit.search._warmup`), small
searches are answered here instead, with the same definition of the distance
(:mod:`nearkit._kernels.distances`: the surrogate summed feature by feature in float64, pairs
outside [2**-960, 2**960] measured again with scaled differences) and the same order
(distance, index), so the answer is identical.  Queries are processed in chunks of rows on
the thread pool (NumPy releases the GIL).  Minkowski with p other than 1, 2, inf is left to
the kernels: NumPy's vectorised power rounds differently from the C library's ``pow``.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple

import numpy as np

from nearkit._kernels.distances import (
    ABS,
    HALF,
    MAX,
    POWER,
    ROOT,
    SAFE_HI,
    SAFE_LO,
    SQRT,
    SQUARES,
)
from nearkit.search._float32 import float32_space, gemm_error, lowered_norms
from nearkit.search._threads import run_ranges, single_threaded_blas

#: distance-matrix entries computed at once per chunk of queries: the float32 GEMM's
#: chunks are large (BLAS is efficient on large blocks) but their 8 MiB of estimates stay
#: in the shared cache (2**21 against 2**22, median of five on two cores: spotify_tracks
#: 62-64 -> 56 ms, bank_churn 15.5-17 -> 13-14 ms, loan_approval level at 0.29 s; a first
#: predict in a new process, spotify_tracks about 104 -> 95 ms); those measured pair by
#: pair fit the caches (two float64 arrays of 2 MiB, reused feature after feature:
#: Manhattan on bank_churn, 500 x 8,000 x 13, 0.35 -> 0.15 s in a loop on two cores, where
#: 32 MiB temporaries had been allocated and faulted in afresh for every feature)
_CHUNK_ENTRIES = {"expansion": 1 << 21, "pairs": 1 << 18}

#: the training side of the float32 expansion, prepared once per search: ``side`` the
#: float32 rows ``[-2 x, w]`` (n, d + 1) with ``w = ||x||^2 (1 - c)`` rounded down,
#: ``max_norm`` the largest ``||x||^2``, ``c`` the error bound's factor, ``space`` the
#: copies' :class:`~nearkit.search._float32.Float32Space` and ``columns`` what
#: :func:`_kth_bound` reduces (:func:`_bound_columns`)
_Expansion = namedtuple("_Expansion", ["side", "max_norm", "c", "space", "columns"])


def supports(kernel):
    """Whether this module computes ``kernel``'s distances bit for bit."""
    return kernel.kind != POWER


def expansion_space(points, kernel):
    """The float32 space in which candidates among ``points`` come from the GEMM
    expansion, or None when every pair is measured (a surrogate other than sums of squares,
    or points whose scale is too far from 1 for float32:
    :func:`~nearkit.search._float32.float32_space`)."""
    return float32_space(points) if kernel.kind == SQUARES else None


#: ``space`` of :func:`kneighbors` not given: found from the points
_FIND = object()


def kneighbors(points, queries, self_index, k, kernel, n_threads, space=_FIND):
    """(distances, indices) of the k nearest rows of ``points`` to each query, ordered by
    (distance, index); row ``i`` never lists ``self_index[i]`` (when >= 0).  ``space``:
    the points' :func:`expansion_space`, when the caller has it."""
    m, n = queries.shape[0], points.shape[0]
    dist = np.empty((m, k))
    ind = np.empty((m, k), dtype=np.int64)
    if space is _FIND:
        space = expansion_space(points, kernel)
    expansion = None if space is None else _expansion(points, space, k)
    # (sums of squares whose scale is far from 1 are measured pair by pair, in its chunks)
    rows = max(1, _CHUNK_ENTRIES["pairs" if expansion is None else "expansion"] // max(1, n))
    n_chunks = -(-m // rows)
    # each thread's GEMM on one BLAS thread: BLAS's own threads on top of ours would
    # oversubscribe the cores (loan_approval 0.65 -> 0.40 s, bank_churn 32 -> 20 ms)
    limit = expansion is not None and n_threads > 1 and n_chunks > 1
    with single_threaded_blas() if limit else contextlib.nullcontext():
        run_ranges(_chunks, (points, queries, self_index, k, kernel, expansion, rows, dist,
                             ind), n_chunks, n_threads)
    return dist, ind


def _chunks(points, queries, self_index, k, kernel, expansion, rows, dist, ind, c0, c1):
    for q0 in range(c0 * rows, min(queries.shape[0], c1 * rows), rows):
        q1 = min(queries.shape[0], q0 + rows)
        if expansion is None:
            found = _nearest(points, queries[q0:q1], self_index[q0:q1], k, kernel)
        else:
            found = _nearest_by_expansion(points, queries[q0:q1], self_index[q0:q1], k,
                                          kernel, expansion)
        dist[q0:q1], ind[q0:q1] = found


def _nearest(points, queries, self_index, k, kernel):
    """Every pair measured, then the k smallest keys of each row."""
    D = distances(points, queries, kernel)
    excluded = np.flatnonzero(self_index >= 0)
    D[excluded, self_index[excluded]] = np.inf
    kth = np.partition(D, k - 1, axis=1)[:, k - 1:k]
    row, col = _row_col(D <= kth)
    return _first_k(row, col, D[row, col], self_index, k, queries.shape[0])


def _expansion(points, space, k):
    """The :class:`_Expansion` of the training points (copies in ``space``) for k."""
    n, d = points.shape
    c = gemm_error(d)
    copies = space.copies(points)
    norms = np.einsum("ij,ij->i", copies, copies, dtype=np.float64)
    side = np.empty((n, d + 1), dtype=np.float32)
    np.multiply(copies, np.float32(-2.0), out=side[:, :d])  # (exact: a power of two)
    side[:, d] = lowered_norms(norms, c)
    return _Expansion(side, norms.max(initial=0.0), c, space, _bound_columns(n, k))


def _nearest_by_expansion(points, queries, self_index, k, kernel, expansion):
    """Candidates from the float32 GEMM expansion with a rigorous margin, then only they
    are measured exactly.

    The filter of the 'gemm' engine (:mod:`nearkit._kernels.gemm`, whose error bound this
    reuses): in the float32 copies' units, ``L = w - 2 q.x`` with ``w = ||x||^2 (1 - c)``,
    ``c = 4 (d + 16) 2**-24``, computed by one GEMM of ``[q, 1]`` with ``[-2 x, w]``, errs
    by less than ``c (||q||^2 + ||x||^2) / 2``, so ``L + (1 - c) ||q||^2`` never exceeds a
    point's true surrogate and ``L + ||q||^2 + 2 c (||q||^2 + ||x||^2)`` is never below it.
    The k-th smallest of that upper estimate over any k distinct points (those
    :func:`_kth_bound` picks) bounds the k-th surrogate from above, and every point whose
    lower estimate is beyond the bound (widened for distance ties, as the kernels widen) is
    not a neighbour.  Half the memory traffic and GEMM time of float64 (loan_approval's
    9,000 x 36,000 x 27 in a loop: 1.45 -> 0.83 s; 0.40 s with each thread's BLAS on one
    thread, 0.30 s with the group minima of :func:`_kth_bound`).
    """
    d = points.shape[1]
    side, max_norm, c, space, columns = expansion
    Q32, q_norms, far = space.queries(queries)
    lhs = np.empty((len(queries), d + 1), dtype=np.float32)
    lhs[:, :d] = Q32
    lhs[:, d] = 1.0
    lower = lhs @ side.T
    excluded = np.flatnonzero(self_index >= 0)
    lower[excluded, self_index[excluded]] = np.inf
    kth = _kth_bound(lower, columns, k).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        upper = (kth + q_norms + 2.0 * c * (q_norms + max_norm)) * (1.0 + 1e-6) + 2.0**-100
        limit = np.nextafter((upper - (1.0 - c) * q_norms).astype(np.float32),
                             np.float32(np.inf))
    limit[far | np.isnan(limit)] = np.inf  # (far queries: every point a candidate)
    row, col = _row_col(lower <= limit[:, None])
    keys = pair_distances(points[col], queries[row], kernel)
    return _first_k(row, col, keys, self_index, k, queries.shape[0])


#: a row is reduced to the minima of this many interleaved groups of its columns before the
#: k-th is selected (spotify_tracks: 1.5 ms a chunk of 243 queries, and 5 candidates a
#: query, against 3.2 ms and 21 from the minima of groups of a 4,096-column sample)
_GROUPS = 256


def _kth_bound(lower, columns, k):
    """An upper bound of each row's k-th smallest entry of ``lower``: the k-th smallest of
    the ``columns``, or with ``columns`` None (see :func:`_bound_columns`) of the minima of
    :data:`_GROUPS` interleaved groups of every column (the first k of those minima are k
    distinct entries of the row).  Group ``g`` holds columns ``g, g + G, g + 2G, ...`` (the
    last ``n % G`` columns are left out), so each spans the whole row and an ordering of the
    training points cannot make one group hold all the near ones; one contiguous pass, no
    gather."""
    if columns is None:
        usable = lower.shape[1] - lower.shape[1] % _GROUPS
        part = lower[:, :usable].reshape(lower.shape[0], -1, _GROUPS).min(axis=1)
    else:
        part = lower[:, columns]
    return np.partition(part, k - 1, axis=1)[:, k - 1]


def _row_col(mask):
    """``np.nonzero`` of a 2-d boolean array, by a flat nonzero and a division (a tenth of
    the time on loan_approval's 116 x 36,000 chunks: 0.5 ms against 7.2 ms)."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def _bound_columns(n, k):
    """What :func:`_kth_bound` reduces in rows of ``n`` columns: None for the group minima
    of every column (k <= G / 4 and at least 4 G columns), else every column or, when there
    are many, a fixed sample of them (drawn once per search, only then)."""
    if k <= _GROUPS // 4 and n - n % _GROUPS >= 4 * _GROUPS:
        return None
    size = max(4096, 64 * k)
    if n <= size:
        return slice(None)
    return np.sort(np.random.default_rng(0).choice(n, size, replace=False))


def _first_k(row, col, keys, self_index, k, n_rows):
    """The first k candidates of each row by (distance, index), the query itself left out."""
    keep = col != self_index[row]
    row, col, keys = row[keep], col[keep], keys[keep]
    order = np.lexsort((col, keys, row))
    row, col, keys = row[order], col[order], keys[order]
    take = np.searchsorted(row, np.arange(n_rows))[:, None] + np.arange(k)
    return keys[take], col[take]


def pair_distances(A, B, kernel):
    """Distances of the pairs (A[i], B[i]) by the definition."""
    acc = np.zeros(len(A))
    diff = np.empty(len(A))
    for j in range(A.shape[1]):
        _fold(acc, np.subtract(B[:, j], A[:, j], out=diff), kernel.kind)
    return _by_definition(acc, kernel, lambda out: _scaled(B[out], A[out], kernel))


def distances(points, queries, kernel):
    """The (n_queries, n_points) matrix of distances by the definition."""
    acc = np.zeros((queries.shape[0], points.shape[0]))
    diff = np.empty_like(acc)
    for j in range(points.shape[1]):
        _fold(acc, np.subtract(queries[:, j, None], points[None, :, j], out=diff),
              kernel.kind)

    def rescaled(out):
        q, i = _row_col(out)
        return _scaled(queries[q], points[i], kernel)

    return _by_definition(acc, kernel, rescaled)


def _fold(acc, diff, kind):
    """Fold one feature's differences into the surrogates ``acc``, in place (``diff`` is
    overwritten)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if kind == SQUARES:
            np.multiply(diff, diff, out=diff)
        else:
            np.abs(diff, out=diff)
        if kind == MAX:
            np.maximum(acc, diff, out=acc)
        else:
            acc += diff


def _by_definition(acc, kernel, rescaled):
    """The distances of surrogates ``acc``: corrected, or ``rescaled(mask)`` for the
    entries outside the plain loop's range."""
    with np.errstate(over="ignore", invalid="ignore"):
        dist = _correct(acc, kernel.correction)
    if kernel.kind != MAX:
        out = ~((acc >= SAFE_LO) & (acc <= SAFE_HI))
        if out.any():
            dist[out] = rescaled(out)
    return dist


def _correct(r, correction):
    if correction == SQRT:
        return np.sqrt(r)
    if correction == HALF:
        return r * 0.5
    assert correction != ROOT
    return r


def _scaled(A, B, kernel):
    """:func:`nearkit._kernels.distances.scaled_dist` of the pairs (A[i], B[i])."""
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        diff = A - B
        big = np.max(np.abs(diff), axis=1, initial=0.0)
        halved = big == np.inf
        diff[halved] = 0.5 * A[halved] - 0.5 * B[halved]
        big = np.max(np.abs(diff), axis=1, initial=0.0)
        pre = np.where(big < 2.0**-900, 2.0**600, 1.0)
        s = np.ldexp(1.0, -np.frexp(big * pre)[1])
        acc = np.zeros(len(A))
        for j in range(A.shape[1]):
            v = (diff[:, j] * pre) * s
            acc = acc + np.abs(v) if kernel.kind == ABS else acc + v * v
        dist = _correct(acc, kernel.correction)
        if kernel.correction == HALF:
            dist = np.where(halved, 4.0, 1.0) * (dist / s / s / pre / pre)
        else:
            dist = np.where(halved, 2.0, 1.0) * (dist / s / pre)
    return np.where(big == 0.0, 0.0, dist)

