"""Bounded max-heaps of neighbours keyed by (distance, index): the one top-k module.

A :class:`Heap` holds three arrays of shape (n_rows, k): ``dist``, ``rdist`` (the surrogate
of :mod:`nearkit._kernels.distances`, which filters use) and ``ind``.  Row ``r`` is the
current k best neighbours of one query as a max-heap whose root (column 0) is the worst of
them under the key (true distance, training index).  Empty slots hold
``(inf, inf, INDEX_SENTINEL)`` so that any real point, even at infinite distance, beats them.
Every engine keeps its neighbours here; :func:`heap_sort_row` turns a row into the sorted
answer.
"""

from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import load_lightly
from nearkit._kernels.distances import SAFE_HI, SAFE_LO, SQRT, exact_dist_column, widen

try:  # LLVM's count of trailing zero bits (one instruction), as a numba intrinsic
    from numba.cpython.unsafe.numbers import trailing_zeros
except ImportError:  # pragma: no cover - a numba without it: a loop
    trailing_zeros = None
if trailing_zeros is None or numba.config.DISABLE_JIT:
    @numba.njit(cache=True)
    def trailing_zeros(x):
        """Number of trailing zero bits of the non-zero uint64 ``x``."""
        n = 0
        while not (x >> np.uint64(n)) & np.uint64(1):
            n += 1
        return n

INDEX_SENTINEL = np.iinfo(np.int64).max

#: k-best lists of a block of queries (arrays of shape (n_rows, k)), or of several blocks
#: (shape (n_chunks, n_rows, k)) for :func:`merge_heaps`
Heap = namedtuple("Heap", ["dist", "rdist", "ind"])


def empty_heap(*shape):
    """An uninitialised :class:`Heap` of the given shape (allocated in Python)."""
    return Heap(np.empty(shape), np.empty(shape), np.empty(shape, dtype=np.int64))


@numba.njit(inline="always", cache=True)
def key_less(d1, i1, d2, i2):
    """True if (d1, i1) orders strictly before (d2, i2)."""
    return d1 < d2 or (d1 == d2 and i1 < i2)


@numba.njit(cache=True)
def heap_init(heap):
    heap.dist[:] = np.inf
    heap.rdist[:] = np.inf
    heap.ind[:] = INDEX_SENTINEL


@numba.njit(inline="always", cache=True)
def _sift_down(heap, row, d, r, i, end):
    """Place (d, r, i) at the root of heap ``row`` restricted to [0, end) and sift it down."""
    dist, rdist, ind = heap.dist, heap.rdist, heap.ind
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
def _push(heap, row, d, r, i):
    """:func:`heap_push`, inlined where candidates are many (:func:`offer_tile`)."""
    if key_less(d, i, heap.dist[row, 0], heap.ind[row, 0]):
        _sift_down(heap, row, d, r, i, heap.dist.shape[1])


@numba.njit(cache=True)
def heap_push(heap, row, d, r, i):
    """Offer (d, r, i) to heap ``row``; kept only if it beats the current worst."""
    _push(heap, row, d, r, i)


@numba.njit(cache=True)
def heap_sort_row(heap, row):
    """Sort heap ``row`` in place into ascending (distance, index) order."""
    dist, rdist, ind = heap.dist, heap.rdist, heap.ind
    for end in range(dist.shape[1] - 1, 0, -1):
        d, r, i = dist[row, end], rdist[row, end], ind[row, end]
        dist[row, end], rdist[row, end], ind[row, end] = dist[row, 0], rdist[row, 0], ind[row, 0]
        _sift_down(heap, row, d, r, i, end)


@numba.njit(cache=True)
def heap_threshold(heap, row, metric):
    """Largest surrogate that may still enter heap ``row`` (see
    :func:`~nearkit._kernels.distances.widen`)."""
    return widen(heap.rdist[row, 0], metric)


#: scratch lanes of :func:`kth_bound` (its most segments, and the most k it bounds)
LANES = 64


@numba.njit(inline="always", cache=True)
def _least(part):
    """The minimum of the non-empty array ``part``."""
    low = part[0]
    for t in range(1, part.shape[0]):
        low = min(low, part[t])
    return low


@numba.njit(inline="always", cache=True)
def _keep_smallest(best, count, k, low):
    """Offer ``low`` to ``best``, which holds, ascending, the ``min(count, k)`` smallest of
    the ``count`` values offered before it: after this, those of ``count + 1``."""
    j = min(count, k)
    if j == k:
        if low >= best[k - 1]:
            return  # (most offers, once k are held)
        j = k - 1
    while j > 0 and best[j - 1] > low:
        best[j] = best[j - 1]
        j -= 1
    best[j] = low


@numba.njit(inline="always", cache=True)
def _sorted_lane_minima(bits, k, lane_bits):
    """Core of :func:`kth_bound` on the values' bit patterns; False when there is no bound."""
    n = bits.shape[0]
    n_lanes = 16 if k <= 16 else LANES
    if k > LANES or n < n_lanes:
        return False
    seg = n // n_lanes
    for lane in range(n_lanes):
        _keep_smallest(lane_bits, lane, k, _least(bits[lane * seg:(lane + 1) * seg]))
    return True


@numba.njit(cache=True)
def kth_bound(values, k, lanes):
    """An upper bound on the k-th smallest of ``values`` (all >= +0.0 or +inf), in one pass.

    ``values`` is cut into L contiguous segments (L = 16 for k <= 16, 64 for k <= 64); their
    minima are L distinct entries, so when k <= L their k-th smallest is at least the k-th
    smallest value: an entry strictly above it has k entries strictly below it and can never
    be among the k best.  Non-negative floats order like their bit patterns as integers, and
    an integer minimum vectorises where a float one does not (measured 1.8x).  (8 segments
    for k <= 8 cost less per value on a 320-value tile, 1.08-1.09x on the whole small-table
    search when :func:`offer_tile` took its bound from here, but loosen the bound on long
    arrays: the 'projected' engine on 8,000 dense points measured 0.94-0.96x.  Offers now
    bound by chunk minima, and come here only for tiles with fewer 64-value chunks than k.)
    ``lanes`` is scratch of the values' dtype (float64 or float32) and length >= 64.
    Returns +inf when there is no bound (k > 64, or fewer than L values).
    """
    if values.itemsize == 4:
        found = _sorted_lane_minima(values.view(np.int32), k, lanes.view(np.int32))
    else:
        found = _sorted_lane_minima(values.view(np.int64), k, lanes.view(np.int64))
    if not found:
        return np.inf
    return lanes[k - 1]


#: values per chunk of :func:`offer_tile`: the bits of one uint64 mask
CHUNK_BITS = 64


@numba.njit(inline="always", cache=True)
def offer_scratch(width):
    """Length of the ``lanes`` scratch :func:`offer_tile` needs for tiles of up to ``width``
    values (the callers allocate it once): :data:`LANES`, then one per chunk."""
    return LANES + -(-width // CHUNK_BITS)


@numba.njit(inline="always", cache=True)
def _chunk_minima_bound(values, k, minima, lanes):
    """Fill ``minima`` with the minimum of each 64-value chunk of ``values`` (all >= +0.0 or
    +inf) and return an upper bound on their k-th smallest value: the k-th smallest of the
    chunk minima, which are distinct entries (see :func:`kth_bound`), or, with fewer chunks
    than k, :func:`kth_bound`'s (``lanes``: scratch of length :data:`LANES`, not
    overlapping ``minima``)."""
    bits = values.view(np.int64)
    low_bits = minima.view(np.int64)
    n = bits.shape[0]
    n_chunks = minima.shape[0]
    for c in range(n_chunks):
        low_bits[c] = _least(bits[c * CHUNK_BITS:min(n, (c + 1) * CHUNK_BITS)])
    if n_chunks < k:
        return kth_bound(values, k, lanes)
    if k > LANES:
        return np.inf
    best = lanes.view(np.int64)
    for c in range(n_chunks):
        _keep_smallest(best, c, k, low_bits[c])
    return lanes[k - 1]


@numba.njit(inline="always", cache=True)
def offer_tile(values, t0, perm, skip, q, XT, metric, heap, row, lanes, column):
    """Offer a tile's surrogates ``values`` (points at positions ``t0, t0 + 1, ...``, stored
    as the columns of ``XT``) to heap ``row`` of query ``q``.

    A point's index is its position, or ``perm[position]`` when ``perm`` is not empty (then
    increasing within the tile; ``-1`` marks padding, never offered).  The point at position
    ``skip`` (the query itself, with exclude_self) is never offered.  ``lanes`` (float64, of
    length :func:`offer_scratch` of the tile's width) and ``column`` (d) are scratch.  The
    heap's key (distance, index) is a total order, so the order of the offers does not
    change the result.
    """
    tl = values.shape[0]
    if t0 <= skip < t0 + tl:
        values[skip - t0] = np.inf
    # The minimum of each 64-value chunk, and from them a bound on the tile's k-th smallest:
    # points beyond it can never enter, which spares most heap pushes while the heap is
    # still filling (measured 2x on pima_diabetes), and a chunk whose minimum is beyond the
    # admission limit holds no candidate (measured on an Intel AVX-512 machine, one thread,
    # against a bound from 8 or 16 lanes and every chunk tested: the whole search 1.13x on
    # social_network_ads and 1.21x on pima_diabetes)
    n_chunks = -(-tl // CHUNK_BITS)
    minima = lanes[LANES:LANES + n_chunks]
    bound = _chunk_minima_bound(values, heap.dist.shape[1], minima, lanes)
    # filter against the widened surrogate, decide on the full key (see widen)
    top_r = widen(min(bound, heap.rdist[row, 0]), metric)
    for c in range(n_chunks):
        if minima[c] > top_r:
            continue
        c0 = c * CHUNK_BITS
        chunk = values[c0:min(tl, c0 + CHUNK_BITS)]
        # the chunk's candidates as the bits of a mask, in one vectorised pass, then taken
        # lowest bit first (measured on an Intel AVX-512 machine, one thread, against a
        # pre-test that counted the candidates and a second pass that listed them: the
        # whole search 1.27x on social_network_ads and 1.18x on pima_diabetes)
        mask = below_mask(chunk, top_r)
        while mask:
            t, mask = lowest_bit(mask)
            r = chunk[t]
            i = t0 + c0 + t
            if r > top_r or i == skip:
                continue
            idx = i if perm.shape[0] == 0 else perm[i]
            if idx < 0:
                continue
            # Euclidean's square root spelled out here, ahead of the general definition:
            # measured 1.24-1.27x on the whole search of pima_diabetes and
            # social_network_ads (one thread).  The same test at the top of the inlined
            # exact_dist_column, with or without the rest split into a second inlined
            # helper, and with its result assigned before the push, gained nothing (0.73x
            # and 0.80-0.83x of this form): keep it in the loop (brute32 repeats it)
            if metric.correction == SQRT and SAFE_LO <= r <= SAFE_HI:
                dist = np.sqrt(r)
            else:
                dist = exact_dist_column(r, q, XT, i, metric, column)
            _push(heap, row, dist, r, idx)
            top_r = widen(min(bound, heap.rdist[row, 0]), metric)


@numba.njit(inline="always", cache=True)
def below_mask(values, limit):
    """Bit ``t`` set where ``values[t] <= limit`` (at most 64 values), as a uint64: one
    pass that vectorises (compares, shifts and an OR reduction)."""
    mask = np.uint64(0)
    for t in range(values.shape[0]):
        mask |= np.uint64(values[t] <= limit) << np.uint64(t)
    return mask


@numba.njit(inline="always", cache=True)
def estimate_mask(a, b, limit):
    """:func:`below_mask` of the float32 sweep's estimates ``a[t] - b[t]`` (``e - m_x``; at
    most 64)."""
    mask = np.uint64(0)
    for t in range(a.shape[0]):
        mask |= np.uint64(a[t] - b[t] <= limit) << np.uint64(t)
    return mask


@numba.njit(inline="always", cache=True)
def lowest_bit(mask):
    """``(t, rest)``: the position of the lowest set bit of the non-zero uint64 ``mask``,
    and ``mask`` without it."""
    return np.int64(trailing_zeros(mask)), mask & (mask - np.uint64(1))


@numba.njit(cache=True)
def heapsort_pairs(vals, perm, lo, hi):
    """Sort ``vals[lo:hi+1]`` ascending in place, ``perm`` alongside (O(n log n) always;
    compiles in a fraction of the time of ``np.argsort``)."""
    n = hi - lo + 1
    for start in range(n // 2 - 1, -1, -1):
        _sift_pairs(vals, perm, lo, start, n)
    for end in range(n - 1, 0, -1):
        vals[lo], vals[lo + end] = vals[lo + end], vals[lo]
        perm[lo], perm[lo + end] = perm[lo + end], perm[lo]
        _sift_pairs(vals, perm, lo, 0, end)


@numba.njit(inline="always", cache=True)
def _sift_pairs(vals, perm, base, pos, size):
    """Max-heap sift-down of ``vals[base + pos]`` within ``vals[base:base+size]``."""
    v = vals[base + pos]
    w = perm[base + pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and vals[base + child] < vals[base + child + 1]:
            child += 1
        if v < vals[base + child]:
            vals[base + pos] = vals[base + child]
            perm[base + pos] = perm[base + child]
            pos = child
        else:
            break
    vals[base + pos] = v
    perm[base + pos] = w


@numba.njit(cache=True)
def order_of(values):
    """The indices that sort ``values`` ascending (a copy is sorted: ``values`` is kept)."""
    n = values.shape[0]
    order = np.arange(n)
    if n:
        heapsort_pairs(values.copy(), order, 0, n - 1)
    return order


@numba.njit(cache=True)
def merge_heaps(chunks, out):
    """Merge per-chunk heaps (a :class:`Heap` of shape (n_chunks, m, k)) into the sorted
    rows of ``out`` (shape (m, k))."""
    n_chunks, m, k = chunks.dist.shape
    heap_init(out)
    for row in range(m):
        for c in range(n_chunks):
            for j in range(k):
                heap_push(out, row, chunks.dist[c, row, j], chunks.rdist[c, row, j],
                          chunks.ind[c, row, j])
        heap_sort_row(out, row)


load_lightly(globals())
