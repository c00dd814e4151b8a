"""An exact k-d tree: build and k-nearest-neighbour query kernels.

The tree returns exactly what brute force returns with the definition of
:mod:`nearkit._kernels.distances`: distances are ``rdist_to_dist(pair_rdist(q, x))`` bit for
bit, and neighbours are ordered by the key (true distance, training index).

Layout (all arrays C-contiguous, float64 / int64), from :func:`build_kdtree`:

* ``perm`` (n,): training indices in leaf order; the query wants ``X_perm = X[perm]`` (a
  contiguous copy) so that a leaf is a contiguous block of rows.
* ``node_start``, ``node_end`` (n_nodes,): the slice ``perm[start:end]`` a node covers.
* ``node_lo``, ``node_hi`` (n_nodes, d): tight bounding box of the node's points.
* ``left``, ``right`` (n_nodes,): child node ids, ``-1`` for a leaf.  Nodes are numbered in
  preorder: node 0 is the root, a left child is its parent + 1.

Exactness notes
---------------
Two different surrogates can round to the same true distance (``sqrt``, ``** (1/p)``), and a
tree visits points in no particular index order.  A point is therefore only *prefiltered* on
its surrogate, against ``top_rdist * (1 + slack)`` (the surrogate of the current k-th key plus
a relative slack far larger than the rounding of the conversion: 1e-12, times p for
Minkowski with p > 1; zero for Manhattan and Chebyshev whose distance is the surrogate), and
candidates that pass are compared on the full key ``(dist, index)``.  Where the distance or
the surrogate would be subnormal a relative slack means nothing, so the threshold is floored
at ``tiny_r``; while the k-th distance is ``inf`` nothing is filtered.

Node pruning uses a lower bound of the surrogate over the node's box, accumulated from the
per-feature gaps in the same feature order with the same :func:`accumulate`: floating-point
subtraction, products and sums are monotone, so the bound never exceeds the surrogate of a
point in the box, and a node is pruned only when no point in it could pass the prefilter.
(``** p`` from libm is monotone up to its last-bit error, which the slack absorbs.)
"""

import numba
import numpy as np

from nearkit._kernels.distances import (
    MINKOWSKI,
    accumulate,
    prefilter_slack,
    rdist_to_dist,
    widen,
)

__all__ = ["build_kdtree", "query_kdtree", "kdtree_depth"]

_NO_INDEX = np.iinfo(np.int64).max  # heap sentinel: loses every (dist, index) comparison
_N_CHUNKS = 256  # per-query scratch is allocated once per chunk of strided queries
_BLOCK = 8  # points whose surrogates a leaf scan accumulates side by side


# --------------------------------------------------------------------------- build


@numba.njit(cache=True)
def _count_nodes(n, leaf_size):
    """Exact number of nodes of the median-split tree over ``n`` points.

    At every level the node sizes take at most two consecutive values (``floor`` and
    ``ceil`` of ``n / 2**level``), so the levels are walked with two (size, count) pairs.
    """
    total = 0
    sa = n  # the smaller size of the level (or the only one)
    ca = 1
    cb = 0  # nodes of size sa + 1
    while ca + cb > 0:
        total += ca + cb
        # children of the nodes that split, as counts of sizes h and h + 1
        h = (sa if sa > leaf_size else sa + 1) // 2
        ch = 0
        ch1 = 0
        if sa > leaf_size:
            if sa % 2 == 0:
                ch += 2 * ca
            else:
                ch += ca
                ch1 += ca
        sb = sa + 1
        if cb > 0 and sb > leaf_size:
            if sb // 2 == h:
                if sb % 2 == 0:
                    ch += 2 * cb
                else:
                    ch += cb
                    ch1 += cb
            else:  # sa odd and split, so sb is even with halves h + 1
                ch1 += 2 * cb
        if ch == 0 and ch1 > 0:
            sa = h + 1
            ca = ch1
            cb = 0
        else:
            sa = h
            ca = ch
            cb = ch1
    return total


@numba.njit(cache=True)
def _heapsort(vals, perm, lo, hi):
    """Sort ``vals[lo:hi+1]`` ascending in place, ``perm`` alongside (O(n log n) always)."""
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
def _select(vals, perm, lo, hi, kth, max_rounds):
    """Partially sort ``vals[lo:hi+1]`` (and ``perm`` alongside) so that position ``kth``
    holds its order statistic, smaller-or-equal values before it, larger-or-equal after.

    Quickselect with a median-of-three pivot and Hoare partitioning (which splits runs of
    equal values evenly, so heavy duplication stays O(n) on average).  Should the
    partitioning degenerate (more than ``max_rounds`` rounds), the remaining range is
    sorted instead, which bounds the worst case by O(n log n).
    """
    rounds = 0
    while hi > lo:
        rounds += 1
        if rounds > max_rounds:
            _heapsort(vals, perm, lo, hi)
            return
        mid = (lo + hi) // 2
        # median of three into vals[mid]
        if vals[mid] < vals[lo]:
            vals[mid], vals[lo] = vals[lo], vals[mid]
            perm[mid], perm[lo] = perm[lo], perm[mid]
        if vals[hi] < vals[lo]:
            vals[hi], vals[lo] = vals[lo], vals[hi]
            perm[hi], perm[lo] = perm[lo], perm[hi]
        if vals[hi] < vals[mid]:
            vals[hi], vals[mid] = vals[mid], vals[hi]
            perm[hi], perm[mid] = perm[mid], perm[hi]
        pivot = vals[mid]
        i = lo
        j = hi
        while i <= j:
            while vals[i] < pivot:
                i += 1
            while vals[j] > pivot:
                j -= 1
            if i <= j:
                vals[i], vals[j] = vals[j], vals[i]
                perm[i], perm[j] = perm[j], perm[i]
                i += 1
                j -= 1
        # now vals[lo..j] <= pivot <= vals[i..hi], and j < i
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            return


@numba.njit(cache=True)
def _build_node(X, perm, vals, leaf_size, node, node_start, node_end, node_lo, node_hi,
                left, right):
    """Fill the box of ``node`` and, if it is not a leaf, split it and set up its children.

    Node ids are in preorder: the left child is ``node + 1`` and the right child follows
    the whole left subtree.  Returns False for a leaf.
    """
    d = X.shape[1]
    s = node_start[node]
    e = node_end[node]
    lo = node_lo[node]
    hi = node_hi[node]
    for j in range(d):
        lo[j] = np.inf
        hi[j] = -np.inf
    for i in range(s, e):
        row = X[perm[i]]
        for j in range(d):
            v = row[j]
            if v < lo[j]:
                lo[j] = v
            if v > hi[j]:
                hi[j] = v
    if e - s <= leaf_size:
        left[node] = -1
        right[node] = -1
        return False
    dim = 0
    widest = -1.0
    for j in range(d):
        w = hi[j] - lo[j]
        if w > widest:
            widest = w
            dim = j
    for i in range(s, e):
        vals[i] = X[perm[i], dim]
    mid = s + (e - s) // 2
    max_rounds = 16
    size = e - s
    while size > 1:
        max_rounds += 2
        size >>= 1
    _select(vals, perm, s, e - 1, mid, max_rounds)
    lc = node + 1
    rc = lc + _count_nodes(mid - s, leaf_size)
    left[node] = lc
    right[node] = rc
    node_start[lc] = s
    node_end[lc] = mid
    node_start[rc] = mid
    node_end[rc] = e
    return True


@numba.njit(cache=True)
def _build_subtree(X, perm, vals, leaf_size, root, node_start, node_end, node_lo, node_hi,
                   left, right):
    """Build the subtree below ``root`` (whose start/end are set) depth first."""
    stack = np.empty(2 * 64 + 4, dtype=np.int64)  # median splits: depth < 64
    stack[0] = root
    top = 1
    while top > 0:
        top -= 1
        node = stack[top]
        if _build_node(X, perm, vals, leaf_size, node, node_start, node_end, node_lo,
                       node_hi, left, right):
            stack[top] = right[node]
            stack[top + 1] = left[node]
            top += 2


_TOP_LEVELS = 4  # levels built breadth first before the subtrees below go parallel


@numba.njit(cache=True, parallel=True)
def build_kdtree(X, leaf_size):
    """Build a median-split k-d tree over the rows of ``X`` (n, d) float64.

    Each internal node splits its points at the median of its widest dimension (the
    dimension of largest bounding-box extent); leaves hold at most ``leaf_size`` points
    (values below 1 are treated as 1).  The top levels are built breadth first (the nodes
    of a level in parallel), then the independent subtrees in parallel; the result does
    not depend on the thread count.

    Returns ``(perm, node_start, node_end, node_lo, node_hi, left, right)``; see the module
    docstring.
    """
    n = X.shape[0]
    d = X.shape[1]
    if leaf_size < 1:
        leaf_size = 1
    n_nodes = _count_nodes(n, leaf_size)
    perm = np.arange(n).astype(np.int64)
    node_start = np.empty(n_nodes, dtype=np.int64)
    node_end = np.empty(n_nodes, dtype=np.int64)
    node_lo = np.empty((n_nodes, d), dtype=np.float64)
    node_hi = np.empty((n_nodes, d), dtype=np.float64)
    left = np.empty(n_nodes, dtype=np.int64)
    right = np.empty(n_nodes, dtype=np.int64)
    vals = np.empty(n, dtype=np.float64)
    node_start[0] = 0
    node_end[0] = n

    # breadth first over the top levels, the nodes of a level in parallel
    frontier = np.zeros(1, dtype=np.int64)
    for _ in range(_TOP_LEVELS):
        split = np.zeros(frontier.shape[0], dtype=np.bool_)
        for a in numba.prange(frontier.shape[0]):
            split[a] = _build_node(X, perm, vals, leaf_size, frontier[a], node_start,
                                   node_end, node_lo, node_hi, left, right)
        nxt = np.empty(2 * frontier.shape[0], dtype=np.int64)
        n_next = 0
        for a in range(frontier.shape[0]):
            if split[a]:
                nxt[n_next] = left[frontier[a]]
                nxt[n_next + 1] = right[frontier[a]]
                n_next += 2
        frontier = nxt[:n_next]
    # then the independent subtrees below, depth first, in parallel
    for a in numba.prange(frontier.shape[0]):
        _build_subtree(X, perm, vals, leaf_size, frontier[a], node_start, node_end,
                       node_lo, node_hi, left, right)
    return perm, node_start, node_end, node_lo, node_hi, left, right


@numba.njit(cache=True)
def kdtree_depth(left, right):
    """Number of levels of the tree (1 for a single leaf)."""
    n_nodes = left.shape[0]
    depth = np.ones(n_nodes, dtype=np.int64)
    best = 1 if n_nodes > 0 else 0
    for i in range(n_nodes):
        if left[i] >= 0:
            depth[left[i]] = depth[i] + 1
            depth[right[i]] = depth[i] + 1
            if depth[i] + 1 > best:
                best = depth[i] + 1
    return best


# --------------------------------------------------------------------------- query


@numba.njit(inline="always", cache=True)
def _box_rdist(q, lo, hi, metric, p, bound):
    """Lower bound of the surrogate between ``q`` and any point of the box [lo, hi].

    Accumulated in feature order with :func:`accumulate` from the per-feature gaps (zero
    inside the slab), so it never exceeds the surrogate of a point in the box; stops early
    once above ``bound`` (partial sums only grow).
    """
    acc = 0.0
    if metric != MINKOWSKI:
        # branch free: adding a zero gap leaves the sum unchanged
        for j in range(q.shape[0]):
            qj = q[j]
            g = max(max(lo[j] - qj, qj - hi[j]), 0.0)
            acc = accumulate(acc, g, metric, p)
            if acc > bound:
                return acc
        return acc
    for j in range(q.shape[0]):  # Minkowski: skip the costly 0 ** p
        qj = q[j]
        if qj < lo[j]:
            acc = accumulate(acc, lo[j] - qj, metric, p)
        elif qj > hi[j]:
            acc = accumulate(acc, qj - hi[j], metric, p)
        else:
            continue
        if acc > bound:
            return acc
    return acc


@numba.njit(inline="always", cache=True)
def _key_less(d1, i1, d2, i2):
    return d1 < d2 or (d1 == d2 and i1 < i2)


@numba.njit(inline="always", cache=True)
def _sift_down(hd, hr, hi, start, size):
    """Restore the max-heap (keyed by (dist, index)) below ``start`` within ``size``."""
    pos = start
    d0 = hd[pos]
    r0 = hr[pos]
    i0 = hi[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        other = child + 1
        if other < size and _key_less(hd[child], hi[child], hd[other], hi[other]):
            child = other
        if _key_less(d0, i0, hd[child], hi[child]):
            hd[pos] = hd[child]
            hr[pos] = hr[child]
            hi[pos] = hi[child]
            pos = child
        else:
            break
    hd[pos] = d0
    hr[pos] = r0
    hi[pos] = i0


@numba.njit(inline="always", cache=True)
def _threshold(top_d, top_r, slack, tiny_r):
    """Largest surrogate that could still give a key below the current k-th key."""
    if top_d == np.inf or top_r == np.inf:
        return np.inf
    return widen(top_r, slack, tiny_r)


@numba.njit(cache=True)
def _push(r, idx, k, metric, p, slack, tiny_r, hd, hr, hi, thresh):
    """Offer a candidate that passed the surrogate prefilter; return the new threshold."""
    dist = rdist_to_dist(r, metric, p)
    if _key_less(dist, idx, hd[0], hi[0]):
        hd[0] = dist
        hr[0] = r
        hi[0] = idx
        _sift_down(hd, hr, hi, 0, k)
        return _threshold(hd[0], hr[0], slack, tiny_r)
    return thresh


@numba.njit(inline="always", cache=True)
def _scan_leaf_scalar(X_perm, perm, s, e, q, qi, k, metric, p, exclude_self, slack, tiny_r,
                      hd, hr, hi, thresh):
    """Offer the points ``s:e`` one at a time, each surrogate abandoned once above
    ``thresh``.  Returns the updated threshold."""
    d = q.shape[0]
    for i in range(s, e):
        row = X_perm[i]
        acc = 0.0
        for j in range(d):
            acc = accumulate(acc, q[j] - row[j], metric, p)
            if acc > thresh:
                break
        if acc <= thresh and not (exclude_self and perm[i] == qi):
            thresh = _push(acc, perm[i], k, metric, p, slack, tiny_r, hd, hr, hi, thresh)
    return thresh


@numba.njit(inline="always", cache=True)
def _scan_leaf_block(X_perm, perm, s, e, q, qi, k, metric, p, exclude_self, slack, tiny_r,
                     hd, hr, hi, thresh, buf):
    """Like :func:`_scan_leaf_scalar`, but ``_BLOCK`` points at a time: their surrogates
    are accumulated side by side (independent dependency chains), and the block is
    abandoned once all of them are above ``thresh`` (tested every 4 features).  Each
    surrogate is still the sequential sum over features, bit for bit."""
    d = q.shape[0]
    i = s
    while i + _BLOCK <= e:
        for t in range(_BLOCK):
            buf[t] = 0.0
        for j in range(d):
            qj = q[j]
            for t in range(_BLOCK):
                buf[t] = accumulate(buf[t], qj - X_perm[i + t, j], metric, p)
            if (j & 3) == 3:  # test every 4 features: fewer, better predicted branches
                mn = buf[0]
                for t in range(1, _BLOCK):
                    mn = min(mn, buf[t])
                if mn > thresh:
                    break
        for t in range(_BLOCK):
            r = buf[t]
            if r <= thresh and not (exclude_self and perm[i + t] == qi):
                thresh = _push(r, perm[i + t], k, metric, p, slack, tiny_r, hd, hr, hi, thresh)
        i += _BLOCK
    return _scan_leaf_scalar(X_perm, perm, i, e, q, qi, k, metric, p, exclude_self, slack,
                             tiny_r, hd, hr, hi, thresh)


@numba.njit(cache=True)
def _query_one(X_perm, perm, node_start, node_end, node_lo, node_hi, left, right,
               q, qi, k, metric, p, exclude_self, slack, tiny_r,
               hd, hr, hi, stack_node, stack_bound, out_dist_row, out_ind_row, buf):
    """Depth-first search for one query, nearer child first; writes one output row."""
    for t in range(k):
        hd[t] = np.inf
        hr[t] = np.inf
        hi[t] = _NO_INDEX
    thresh = np.inf

    stack_node[0] = 0
    stack_bound[0] = _box_rdist(q, node_lo[0], node_hi[0], metric, p, np.inf)
    top = 1
    while top > 0:
        top -= 1
        node = stack_node[top]
        if stack_bound[top] > thresh:
            continue
        lc = left[node]
        if lc < 0:
            if metric == MINKOWSKI:  # the pow calls dominate: keep per-point early exit
                thresh = _scan_leaf_scalar(X_perm, perm, node_start[node], node_end[node], q,
                                           qi, k, metric, p, exclude_self, slack, tiny_r,
                                           hd, hr, hi, thresh)
            else:
                thresh = _scan_leaf_block(X_perm, perm, node_start[node], node_end[node], q,
                                          qi, k, metric, p, exclude_self, slack, tiny_r,
                                          hd, hr, hi, thresh, buf)
            continue
        rc = right[node]
        bl = _box_rdist(q, node_lo[lc], node_hi[lc], metric, p, thresh)
        br = _box_rdist(q, node_lo[rc], node_hi[rc], metric, p, thresh)
        # push the farther child first so that the nearer one is visited first
        near, far, b_near, b_far = (lc, rc, bl, br) if bl <= br else (rc, lc, br, bl)
        if b_far <= thresh:
            stack_node[top] = far
            stack_bound[top] = b_far
            top += 1
        if b_near <= thresh:
            stack_node[top] = near
            stack_bound[top] = b_near
            top += 1

    # in-place heapsort: ascending by (dist, index)
    for end in range(k - 1, 0, -1):
        hd[0], hd[end] = hd[end], hd[0]
        hr[0], hr[end] = hr[end], hr[0]
        hi[0], hi[end] = hi[end], hi[0]
        _sift_down(hd, hr, hi, 0, end)
    for t in range(k):
        if hi[t] == _NO_INDEX:
            out_dist_row[t] = np.inf
            out_ind_row[t] = -1
        else:
            out_dist_row[t] = hd[t]
            out_ind_row[t] = hi[t]


@numba.njit(cache=True, parallel=True)
def query_kdtree(X_perm, perm, node_start, node_end, node_lo, node_hi, left, right,
                 Q, k, metric, p, exclude_self, out_dist, out_ind):
    """Exact k nearest training rows of every row of ``Q``.

    Writes ``out_dist`` (m, k) true distances and ``out_ind`` (m, k) original training
    indices, ordered by (distance, index).  With ``exclude_self`` row i of ``Q`` must be
    training row i, and training row i is never its own neighbour.  If fewer than ``k``
    candidates exist the tail is filled with ``inf`` / ``-1``.
    """
    m = Q.shape[0]
    if k <= 0 or m == 0:
        return
    slack, tiny_r = prefilter_slack(metric, p)
    # at most one pending sibling per level, plus the node being expanded
    stack_size = kdtree_depth(left, right) + 2
    # a fixed number of chunks (numba.get_num_threads() inside the kernel would defeat the
    # on-disk cache); prange hands each thread a contiguous block of chunks
    n_chunks = min(m, _N_CHUNKS)
    for c in numba.prange(n_chunks):
        hd = np.empty(k, dtype=np.float64)
        hr = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        stack_node = np.empty(stack_size, dtype=np.int64)
        stack_bound = np.empty(stack_size, dtype=np.float64)
        buf = np.empty(_BLOCK, dtype=np.float64)
        # strided assignment balances uneven query costs under static scheduling
        for qi in range(c, m, n_chunks):
            _query_one(X_perm, perm, node_start, node_end, node_lo, node_hi, left, right,
                       Q[qi], qi, k, metric, p, exclude_self, slack, tiny_r,
                       hd, hr, hi, stack_node, stack_bound, out_dist[qi], out_ind[qi], buf)
