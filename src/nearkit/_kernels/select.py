"""Bounded max-heaps of neighbours keyed by (distance, index), one row per query.

Row ``r`` of the arrays ``dist``, ``rdist``, ``ind`` holds the current k best neighbours of
one query as a max-heap whose root (column 0) is the worst of them under the key
(true distance, training index).  Empty slots hold ``(inf, inf, INDEX_SENTINEL)`` so that
any real point, even at infinite distance, beats them.
"""

import numba
import numpy as np

from nearkit._kernels.distances import prefilter_slack, rdist_to_dist, widen

INDEX_SENTINEL = np.iinfo(np.int64).max


@numba.njit(inline="always", cache=True)
def key_less(d1, i1, d2, i2):
    """True if (d1, i1) orders strictly before (d2, i2)."""
    return d1 < d2 or (d1 == d2 and i1 < i2)


@numba.njit(cache=True)
def heap_init(dist, rdist, ind):
    dist[:] = np.inf
    rdist[:] = np.inf
    ind[:] = INDEX_SENTINEL


@numba.njit(inline="always", cache=True)
def _sift_down(dist, rdist, ind, row, d, r, i, end):
    """Place (d, r, i) at the root of heap ``row`` restricted to [0, end) and sift it down."""
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= end:
            break
        right = left + 1
        child = left
        if right < end and key_less(dist[row, left], ind[row, left],
                                    dist[row, right], ind[row, right]):
            child = right
        if key_less(d, i, dist[row, child], ind[row, child]):
            dist[row, pos] = dist[row, child]
            rdist[row, pos] = rdist[row, child]
            ind[row, pos] = ind[row, child]
            pos = child
        else:
            break
    dist[row, pos] = d
    rdist[row, pos] = r
    ind[row, pos] = i


@numba.njit(inline="always", cache=True)
def heap_push(dist, rdist, ind, row, d, r, i):
    """Offer (d, r, i) to heap ``row``; kept only if it beats the current worst."""
    if key_less(d, i, dist[row, 0], ind[row, 0]):
        _sift_down(dist, rdist, ind, row, d, r, i, dist.shape[1])


@numba.njit(inline="always", cache=True)
def heap_sort_row(dist, rdist, ind, row):
    """Sort heap ``row`` in place into ascending (distance, index) order."""
    for end in range(dist.shape[1] - 1, 0, -1):
        d, r, i = dist[row, end], rdist[row, end], ind[row, end]
        dist[row, end], rdist[row, end], ind[row, end] = dist[row, 0], rdist[row, 0], ind[row, 0]
        _sift_down(dist, rdist, ind, row, d, r, i, end)


@numba.njit(inline="always", cache=True)
def _sorted_lane_minima(bits, k, lane_bits):
    """Core of :func:`kth_bound` on the values' bit patterns; False when there is no bound."""
    n = bits.shape[0]
    n_lanes = 16 if k <= 16 else 64
    if k > 64 or n < n_lanes:
        return False
    seg = n // n_lanes
    for lane in range(n_lanes):
        part = bits[lane * seg:(lane + 1) * seg]
        low = part[0]
        for t in range(1, seg):
            low = min(low, part[t])
        # insertion into the sorted lane minima
        j = lane
        while j > 0 and lane_bits[j - 1] > low:
            lane_bits[j] = lane_bits[j - 1]
            j -= 1
        lane_bits[j] = low
    return True


@numba.njit(inline="always", cache=True)
def kth_bound(values, k, lanes):
    """An upper bound on the k-th smallest of ``values`` (all >= +0.0 or +inf), in one pass.

    ``values`` is cut into L contiguous segments (L = 16 for k <= 16, 64 for k <= 64); their
    minima are L distinct entries, so when k <= L their k-th smallest is at least the k-th
    smallest value: an entry strictly above it has k entries strictly below it and can never
    be among the k best.  Non-negative floats order like their bit patterns as integers, and
    an integer minimum vectorises where a float one does not (measured 1.8x).  ``lanes`` is
    scratch of the values' dtype (float64 or float32) and length >= 64.  Returns +inf when
    there is no bound (k > 64, or fewer than L values).
    """
    if values.itemsize == 4:
        found = _sorted_lane_minima(values.view(np.int32), k, lanes.view(np.int32))
    else:
        found = _sorted_lane_minima(values.view(np.int64), k, lanes.view(np.int64))
    if not found:
        return np.inf
    return lanes[k - 1]


@numba.njit(cache=True)
def offer_tile(values, t0, perm, metric, p, skip, hd, hr, hi, row, lanes):
    """Offer a tile's surrogates ``values`` (points at positions ``t0, t0 + 1, ...``) to
    heap ``row``, visiting them in position order.

    A point's index is its position, or ``perm[position]`` when ``perm`` is given (then
    increasing within the tile; ``-1`` marks padding, never offered).  The point at position
    ``skip`` (the query itself, with exclude_self) is never offered.
    """
    tl = values.shape[0]
    if t0 <= skip < t0 + tl:
        values[skip - t0] = np.inf
    # Points beyond the tile's k-th smallest can never enter: bounding it first spares most
    # heap pushes while the heap is still filling (measured 2x on pima_diabetes).
    bound = kth_bound(values, hd.shape[1], lanes)
    # a surrogate a little above the k-th can tie its distance and win on index
    # (see prefilter_slack): filter against the widened surrogate, decide on the full key
    slack, tiny_r = prefilter_slack(metric, p)
    top_r = widen(min(bound, hr[row, 0]), slack, tiny_r)
    for c0 in range(0, tl, 64):
        chunk = values[c0:min(tl, c0 + 64)]
        # vectorised pre-tests, of the chunk then of its 16-point pieces: most chunks hold
        # no candidate, and a candidate's piece is found without a 64-step scalar loop
        hits = 0
        for t in range(chunk.shape[0]):
            hits += chunk[t] <= top_r
        if hits == 0:
            continue
        for c1 in range(0, chunk.shape[0], 16):
            piece = chunk[c1:c1 + 16]
            hits = 0
            for t in range(piece.shape[0]):
                hits += piece[t] <= top_r
            if hits == 0:
                continue
            for t in range(piece.shape[0]):
                r = piece[t]
                i = t0 + c0 + c1 + t
                if r > top_r or i == skip:
                    continue
                idx = i if perm is None else perm[i]
                if idx < 0:
                    continue
                heap_push(hd, hr, hi, row, rdist_to_dist(r, metric, p), r, idx)
                top_r = widen(min(bound, hr[row, 0]), slack, tiny_r)


@numba.njit(cache=True)
def merge_heaps(cd, cr, ci, out_dist, out_ind):
    """Merge per-chunk heaps (n_chunks, m, k) into sorted rows of ``out_dist``/``out_ind``."""
    n_chunks, m, k = cd.shape
    hr = np.empty((m, k))
    heap_init(out_dist, hr, out_ind)
    for row in range(m):
        for c in range(n_chunks):
            for j in range(k):
                heap_push(out_dist, hr, out_ind, row, cd[c, row, j], cr[c, row, j],
                          ci[c, row, j])
        heap_sort_row(out_dist, hr, out_ind, row)


@numba.njit(inline="always", cache=True)
def chunk_heaps(n_chunks, m, k):
    """Uninitialised heaps (dist, rdist, ind), one set of m rows per training chunk."""
    return (np.empty((n_chunks, m, k)), np.empty((n_chunks, m, k)),
            np.empty((n_chunks, m, k), dtype=np.int64))
