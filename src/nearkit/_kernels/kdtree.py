"""An exact k-d tree: build and k-nearest-neighbour query kernels.

The tree returns exactly what brute force returns with the definition of
:mod:`nearkit._kernels.distances`, neighbours ordered by the key (true distance, training
index).

Layout (all arrays C-contiguous, float64 / int64), from :func:`build_kdtree`:

* ``perm`` (n,): training indices in leaf order; the query wants ``X_perm = X[perm]`` (a
  contiguous copy) so that a leaf is a contiguous block of rows.
* ``node_start``, ``node_end`` (n_nodes,): the slice ``perm[start:end]`` a node covers.
* ``node_lo``, ``node_hi`` (n_nodes, d): tight bounding box of the node's points.
* ``left``, ``right`` (n_nodes,): child node ids, ``-1`` for a leaf.  Nodes are numbered in
  preorder: node 0 is the root, a left child is its parent + 1.

Exactness notes
---------------
A tree visits points in no particular index order, and two different surrogates can give
the same distance.  A point is therefore only *prefiltered* on its surrogate, against
:func:`~nearkit._kernels.distances.widen` of the current k-th surrogate, and candidates that
pass are compared on the full key (distance, index) in the shared heap
(:mod:`nearkit._kernels.select`).

Node pruning uses a lower bound of the surrogate over the node's box, accumulated from the
per-feature gaps in the same feature order with the same :func:`accumulate`: floating-point
subtraction, products and sums are monotone, so the bound never exceeds the surrogate of a
point in the box, and a node is pruned only when no point in it could pass the prefilter.
(``** p`` from libm is monotone up to its last-bit error, which the slack absorbs.)
"""

from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import load_lightly
from nearkit._kernels.distances import POWER, accumulate, exact_dist, widen
from nearkit._kernels.select import Heap, heap_init, heap_push, heap_sort_row, heapsort_pairs

__all__ = ["KDTree", "build_kdtree", "query_kdtree", "kdtree_depth"]

_BLOCK = 8  # points whose surrogates a leaf scan accumulates side by side

#: a built tree (see the module docstring): the points in leaf order ``X_perm`` and the
#: arrays of :func:`build_kdtree`
KDTree = namedtuple("KDTree", ["X_perm", "perm", "node_start", "node_end", "node_lo",
                               "node_hi", "left", "right"])


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
            heapsort_pairs(vals, perm, lo, hi)
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


@numba.njit(nogil=True, cache=True)
def build_kdtree(X, leaf_size):
    """Build a median-split k-d tree over the rows of ``X`` (n, d) float64.

    Each internal node splits its points at the median of its widest dimension (the
    dimension of largest bounding-box extent); leaves hold at most ``leaf_size`` points
    (values below 1 are treated as 1).  Built depth first on the calling thread (the GIL is
    released).

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
    if n_nodes:
        node_start[0] = 0
        node_end[0] = n
        _build_subtree(X, perm, vals, leaf_size, 0, node_start, node_end, node_lo, node_hi,
                       left, right)
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
def _box_rdist(q, lo, hi, metric, bound):
    """Lower bound of the surrogate between ``q`` and any point of the box [lo, hi].

    Accumulated in feature order with :func:`accumulate` from the per-feature gaps (zero
    inside the slab), so it never exceeds the surrogate of a point in the box; stops early
    once above ``bound`` (partial sums only grow).
    """
    kind, p = metric.kind, metric.p
    acc = 0.0
    if kind != POWER:
        # branch free: adding a zero gap leaves the sum unchanged
        for j in range(q.shape[0]):
            qj = q[j]
            g = max(max(lo[j] - qj, qj - hi[j]), 0.0)
            acc = accumulate(acc, g, kind, p)
            if acc > bound:
                return acc
        return acc
    for j in range(q.shape[0]):  # Minkowski: skip the costly 0 ** p
        qj = q[j]
        if qj < lo[j]:
            acc = accumulate(acc, lo[j] - qj, kind, p)
        elif qj > hi[j]:
            acc = accumulate(acc, qj - hi[j], kind, p)
        else:
            continue
        if acc > bound:
            return acc
    return acc


@numba.njit(inline="always", cache=True)
def _offer(tree, i, r, q, self_index, metric, heap, row, thresh):
    """Offer leaf-order point ``i`` (surrogate ``r``, already <= ``thresh``); returns the
    new threshold."""
    idx = tree.perm[i]
    if idx == self_index:
        return thresh
    heap_push(heap, row, exact_dist(r, q, tree.X_perm[i], metric), r, idx)
    return widen(heap.rdist[row, 0], metric)


@numba.njit(inline="always", cache=True)
def _scan_leaf_scalar(tree, s, e, q, self_index, metric, heap, row, thresh):
    """Offer the points ``s:e`` one at a time, each surrogate abandoned once above
    ``thresh``.  Returns the updated threshold."""
    X_perm = tree.X_perm
    d = q.shape[0]
    for i in range(s, e):
        pt = X_perm[i]
        acc = 0.0
        for j in range(d):
            acc = accumulate(acc, q[j] - pt[j], metric.kind, metric.p)
            if acc > thresh:
                break
        if acc <= thresh:
            thresh = _offer(tree, i, acc, q, self_index, metric, heap, row, thresh)
    return thresh


@numba.njit(inline="always", cache=True)
def _scan_leaf_block(tree, s, e, q, self_index, metric, heap, row, thresh, buf):
    """Like :func:`_scan_leaf_scalar`, but ``_BLOCK`` points at a time: their surrogates
    are accumulated side by side (independent dependency chains), and the block is
    abandoned once all of them are above ``thresh`` (tested every 4 features).  Each
    surrogate is still the sequential sum over features, bit for bit."""
    X_perm = tree.X_perm
    kind, p = metric.kind, metric.p
    d = q.shape[0]
    i = s
    while i + _BLOCK <= e:
        for t in range(_BLOCK):
            buf[t] = 0.0
        for j in range(d):
            qj = q[j]
            for t in range(_BLOCK):
                buf[t] = accumulate(buf[t], qj - X_perm[i + t, j], kind, p)
            if (j & 3) == 3:  # test every 4 features: fewer, better predicted branches
                mn = buf[0]
                for t in range(1, _BLOCK):
                    mn = min(mn, buf[t])
                if mn > thresh:
                    break
        for t in range(_BLOCK):
            if buf[t] <= thresh:
                thresh = _offer(tree, i + t, buf[t], q, self_index, metric, heap, row, thresh)
        i += _BLOCK
    return _scan_leaf_scalar(tree, i, e, q, self_index, metric, heap, row, thresh)


@numba.njit(cache=True)
def _query_one(tree, q, self_index, metric, heap, row, stack_node, stack_bound, buf):
    """Depth-first search for one query, nearer child first, into heap ``row``."""
    node_lo, node_hi, left, right = tree.node_lo, tree.node_hi, tree.left, tree.right
    thresh = widen(heap.rdist[row, 0], metric)
    stack_node[0] = 0
    stack_bound[0] = _box_rdist(q, node_lo[0], node_hi[0], metric, np.inf)
    top = 1
    while top > 0:
        top -= 1
        node = stack_node[top]
        if stack_bound[top] > thresh:
            continue
        lc = left[node]
        if lc < 0:
            s, e = tree.node_start[node], tree.node_end[node]
            if metric.kind == POWER:  # the pow calls dominate: keep per-point early exit
                thresh = _scan_leaf_scalar(tree, s, e, q, self_index, metric, heap, row,
                                           thresh)
            else:
                thresh = _scan_leaf_block(tree, s, e, q, self_index, metric, heap, row,
                                          thresh, buf)
            continue
        rc = right[node]
        bl = _box_rdist(q, node_lo[lc], node_hi[lc], metric, thresh)
        br = _box_rdist(q, node_lo[rc], node_hi[rc], metric, thresh)
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


@numba.njit(nogil=True, cache=True)
def query_kdtree(tree, Q, self_index, metric, query_block, b0, b1, out):
    """Exact k nearest training rows of the queries in blocks ``b0:b1`` of ``query_block``.

    Releases the GIL: the caller runs disjoint block ranges on several Python threads.

    Parameters
    ----------
    tree : KDTree
    Q : float64 array of shape (m, d)
    self_index : int64 array of shape (m,)
        Training index each query must not list (itself, for ``kneighbors(X=None)``), or -1.
    metric : KernelMetric
    query_block, b0, b1 : int
    out : Heap of arrays of shape (m, k)
        Filled with true distances and training indices ordered by (distance, index).
    """
    m = Q.shape[0]
    if tree.perm.shape[0] == 0:
        return
    # at most one pending sibling per level, plus the node being expanded
    stack_size = kdtree_depth(tree.left, tree.right) + 2
    stack_node = np.empty(stack_size, dtype=np.int64)
    stack_bound = np.empty(stack_size, dtype=np.float64)
    buf = np.empty(_BLOCK, dtype=np.float64)
    for b in range(b0, b1):
        q0 = b * query_block
        q1 = min(m, q0 + query_block)
        heap = Heap(out.dist[q0:q1], out.rdist[q0:q1], out.ind[q0:q1])
        heap_init(heap)
        for row in range(q1 - q0):
            _query_one(tree, Q[q0 + row], self_index[q0 + row], metric, heap, row,
                       stack_node, stack_bound, buf)
            heap_sort_row(heap, row)


load_lightly(globals())
