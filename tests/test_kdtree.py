"""The k-d tree kernels against brute force, bit for bit.

The oracle is ``tests/reference.py::reference_kneighbors`` (NumPy, libm ``pow`` for
Minkowski), ordered by ``np.lexsort((index, distance))``: bit-exact for every metric.
"""

import os
import sys

import numpy as np
import pytest

try:
    from reference import reference_kneighbors
except ImportError:  # pragma: no cover - tests/ not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from reference import reference_kneighbors

from nearkit._kernels.distances import (
    ABS,
    IDENTITY,
    MAX,
    POWER,
    ROOT,
    SQRT,
    SQUARES,
    KernelMetric,
)
from nearkit._kernels.kdtree import KDTree, _select, build_kdtree, kdtree_depth, query_kdtree
from nearkit._kernels.select import empty_heap
from nearkit.search._threads import run_ranges

EUCLIDEAN = KernelMetric(SQUARES, SQRT, 2.0)
MANHATTAN = KernelMetric(ABS, IDENTITY, 1.0)
METRICS = [
    (EUCLIDEAN, "euclidean", 2.0),
    (MANHATTAN, "manhattan", 1.0),
    (KernelMetric(MAX, IDENTITY, np.inf), "chebyshev", np.inf),
    (KernelMetric(POWER, ROOT, 0.5), "minkowski", 0.5),
    (KernelMetric(POWER, ROOT, 1.5), "minkowski", 1.5),
    (KernelMetric(POWER, ROOT, 3.0), "minkowski", 3.0),
]
METRIC_IDS = [f"{name}-p{p}" for _, name, p in METRICS]
KS = (1, 3, 5, 15)
LEAF_SIZES = (1, 8, 40)


def _brute(X, Q, k, name, p, exclude_self=False):
    return reference_kneighbors(X, Q, k, name, p, exclude_self=exclude_self)


def _tree(X, leaf_size):
    X = np.ascontiguousarray(X, dtype=np.float64)
    parts = build_kdtree(X, leaf_size)
    return KDTree(np.ascontiguousarray(X[parts[0]]), *parts)


def _query(tree, Q, k, metric, exclude_self=False, n_threads=1, block=16):
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    m = Q.shape[0]
    self_index = np.arange(m) if exclude_self else np.full(m, -1, dtype=np.int64)
    out = empty_heap(m, k)
    run_ranges(query_kdtree, (tree, Q, self_index, metric, block), -(-m // block), n_threads,
               tail=(out,))
    return out.dist, out.ind


def _check(X, Q, metric, name, p, ks=KS, leaf_sizes=LEAF_SIZES, exclude_self=False):
    X = np.ascontiguousarray(X, dtype=np.float64)
    Q = np.ascontiguousarray(Q, dtype=np.float64)
    n_avail = X.shape[0] - (1 if exclude_self else 0)
    ks = [k for k in ks if k <= n_avail]
    assert ks
    kmax = max(ks)
    bd, bi = _brute(X, Q, kmax, name, p, exclude_self)
    for leaf_size in leaf_sizes:
        tree = _tree(X, leaf_size)
        for k in ks:
            td, ti = _query(tree, Q, k, metric, exclude_self)
            err = f"leaf_size={leaf_size} k={k}"
            np.testing.assert_array_equal(ti, bi[:, :k], err_msg=err)
            np.testing.assert_array_equal(td, bd[:, :k], err_msg=err)


# --------------------------------------------------------------------------- datasets


def _gaussian():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 5)), rng.normal(size=(70, 5))


def _ties():
    """Integer features on a tiny grid, duplicated rows, queries on the grid and off it."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 3, size=(120, 3)).astype(np.float64)
    X = np.concatenate([base, base[rng.integers(0, 120, size=80)], np.ones((20, 3))])
    X = X[rng.permutation(X.shape[0])]
    Q = np.concatenate([
        rng.integers(0, 3, size=(40, 3)).astype(np.float64),
        rng.integers(0, 5, size=(20, 3)) * 0.5,
        X[:10],
    ])
    return X, Q


def _ulp_cloud():
    """Points a few ulps apart: distinct surrogates often round to one true distance."""
    rng = np.random.default_rng(2)
    eps = np.finfo(np.float64).eps
    X = 1.0 + rng.integers(-4, 5, size=(250, 3)) * eps
    X[rng.integers(0, 250, size=50)] *= -1.0
    Q = np.concatenate([np.zeros((5, 3)), 1.0 + rng.integers(-4, 5, size=(20, 3)) * eps * 8])
    return X, Q


def _d1():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.integers(0, 20, size=150) * 0.25, rng.normal(size=50)])[:, None]
    Q = np.concatenate([rng.integers(-2, 22, size=40) * 0.25, rng.normal(size=20)])[:, None]
    return X, Q


def _k_eq_n():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 3, size=(15, 2)).astype(np.float64)
    Q = np.concatenate([rng.normal(size=(10, 2)), X[:5]])
    return X, Q


DATASETS = {
    "gaussian": _gaussian,
    "ties": _ties,
    "ulp_cloud": _ulp_cloud,
    "d1": _d1,
    "k_eq_n": _k_eq_n,
}


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize(("metric", "name", "p"), METRICS, ids=METRIC_IDS)
def test_matches_brute_force(dataset, metric, name, p):
    X, Q = DATASETS[dataset]()
    _check(X, Q, metric, name, p)


@pytest.mark.parametrize("dataset", ["gaussian", "ties", "d1"])
@pytest.mark.parametrize(("metric", "name", "p"), METRICS, ids=METRIC_IDS)
def test_exclude_self(dataset, metric, name, p):
    X, _ = DATASETS[dataset]()
    _check(X, X, metric, name, p, exclude_self=True)


def test_exclude_self_all_duplicates():
    X = np.ones((16, 2))
    _check(X, X, EUCLIDEAN, "euclidean", 2.0, ks=(1, 5, 15), exclude_self=True)


def test_sqrt_rounding_ties_prefer_lower_index():
    """(2, 3e-8) has a larger surrogate than (2, 0) but the same distance (2.0) from 0."""
    a = 3e-8
    assert 2.0**2 + a * a > 4.0 and np.sqrt(2.0**2 + a * a) == 2.0
    rng = np.random.default_rng(5)
    far = rng.uniform(2.5, 9.0, size=(40, 2)) * rng.choice([-1.0, 1.0], size=(40, 2))
    # the lower indices hold the larger surrogates; the exact 2s sit at higher indices
    X = np.concatenate([
        [[2.0, a], [-2.0, -a], [a, 2.0]],
        far,
        [[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [1.0, 0.0]],
    ])
    Q = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    _check(X, Q, EUCLIDEAN, "euclidean", 2.0, ks=(1, 2, 3, 5, 7))
    for leaf_size in (1, 2, 40):
        tree = _tree(X, leaf_size)
        dist, ind = _query(tree, Q[:1], 7, EUCLIDEAN)
        np.testing.assert_array_equal(ind[0], [46, 0, 1, 2, 43, 44, 45])
        np.testing.assert_array_equal(dist[0], [1.0] + [2.0] * 6)


def test_all_identical_rows():
    X = np.full((100, 3), 0.5)
    Q = np.array([[0.5, 0.5, 0.5], [1.0, 0.0, 2.0]])
    for metric, name, p in METRICS:
        _check(X, Q, metric, name, p)


def test_far_queries():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 4))
    Q = rng.normal(size=(20, 4)) * 50.0
    for metric, name, p in METRICS:
        _check(X, Q, metric, name, p, ks=(1, 5), leaf_sizes=(1, 8))


@pytest.mark.parametrize("leaf_size", [0, 1, 3, 8, 40, 1000])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 257])
def test_build_invariants(n, leaf_size):
    rng = np.random.default_rng(n + leaf_size)
    X = np.concatenate([rng.normal(size=(n, 3)), np.zeros((n, 1))], axis=1)
    X[: n // 3] = X[0]  # duplicated rows
    perm, start, end, lo, hi, left, right = build_kdtree(X, leaf_size)
    for arr in (perm, start, end, lo, hi, left, right):
        assert arr.flags.c_contiguous
    assert perm.dtype == np.int64 and lo.dtype == np.float64
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    assert start[0] == 0 and end[0] == n
    leaf_points = 0
    for node in range(start.shape[0]):
        pts = X[perm[start[node]:end[node]]]
        np.testing.assert_array_equal(lo[node], pts.min(axis=0))
        np.testing.assert_array_equal(hi[node], pts.max(axis=0))
        if left[node] < 0:
            assert right[node] < 0
            assert end[node] - start[node] <= max(leaf_size, 1)
            leaf_points += end[node] - start[node]
        else:
            lc, rc = left[node], right[node]
            assert node < lc and node < rc
            assert start[lc] == start[node] and end[lc] == start[rc] and end[rc] == end[node]
            assert abs((end[lc] - start[lc]) - (end[rc] - start[rc])) <= 1
    assert leaf_points == n
    assert kdtree_depth(left, right) <= int(np.ceil(np.log2(max(n, 1)))) + 1


@pytest.mark.parametrize("max_rounds", [0, 1, 3, 100])
def test_select(max_rounds):
    """Quickselect, and its sort fallback once the round budget is spent."""
    rng = np.random.default_rng(max_rounds)
    for vals0 in (rng.normal(size=101), rng.integers(0, 3, size=64) * 1.0, np.arange(50.0),
                  np.arange(50.0)[::-1].copy(), np.ones(9)):
        n = vals0.shape[0]
        for lo, hi in ((0, n - 1), (3, n - 2)):
            for kth in (lo, (lo + hi) // 2, hi):
                vals = vals0.copy()
                perm = np.arange(n, dtype=np.int64)
                _select(vals, perm, lo, hi, kth, max_rounds)
                np.testing.assert_array_equal(vals, vals0[perm])
                np.testing.assert_array_equal(np.sort(perm[lo:hi + 1]), np.arange(lo, hi + 1))
                assert vals[kth] == np.sort(vals0[lo:hi + 1])[kth - lo]
                assert np.all(vals[lo:kth] <= vals[kth]) and np.all(vals[kth:hi + 1] >= vals[kth])


@pytest.mark.parametrize(("metric", "name", "p"), METRICS, ids=METRIC_IDS)
def test_threads_match_the_reference(metric, name, p):
    """Query blocks on two threads against the brute-force oracle, many more queries than
    blocks, exclude_self included."""
    rng = np.random.default_rng(8)
    X = np.concatenate([rng.normal(size=(400, 3)), rng.integers(0, 3, size=(200, 3)) * 1.0])
    Q = np.concatenate([rng.normal(size=(500, 3)), X[:100]])
    tree = _tree(X, 8)
    for k in (1, 7):
        td, ti = _query(tree, Q, k, metric, n_threads=2, block=7)
        bd, bi = _brute(X, Q, k, name, p)
        np.testing.assert_array_equal(ti, bi)
        np.testing.assert_array_equal(td, bd)
        td, ti = _query(tree, X, k, metric, exclude_self=True, n_threads=2, block=7)
        bd, bi = _brute(X, X, k, name, p, exclude_self=True)
        np.testing.assert_array_equal(ti, bi)
        np.testing.assert_array_equal(td, bd)


def test_random_shapes_property():
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
    @hypothesis.given(
        n=st.integers(1, 40),
        d=st.integers(1, 4),
        m=st.integers(1, 8),
        leaf_size=st.integers(1, 12),
        metric_i=st.integers(0, len(METRICS) - 1),
        grid=st.sampled_from([2, 3, 5, 0]),
        seed=st.integers(0, 2**32 - 1),
        data=st.data(),
    )
    def prop(n, d, m, leaf_size, metric_i, grid, seed, data):
        rng = np.random.default_rng(seed)
        if grid:
            X = rng.integers(0, grid, size=(n, d)).astype(np.float64)
            Q = rng.integers(-1, grid + 1, size=(m, d)).astype(np.float64)
        else:
            X = rng.normal(size=(n, d))
            Q = rng.normal(size=(m, d))
        k = data.draw(st.integers(1, n))
        metric, name, p = METRICS[metric_i]
        tree = _tree(X, leaf_size)
        td, ti = _query(tree, Q, k, metric)
        bd, bi = _brute(X, Q, k, name, p)
        np.testing.assert_array_equal(ti, bi)
        np.testing.assert_array_equal(td, bd)
        if n > 1:
            k = min(k, n - 1)
            td, ti = _query(tree, X, k, metric, exclude_self=True)
            bd, bi = _brute(X, X, k, name, p, exclude_self=True)
            np.testing.assert_array_equal(ti, bi)
            np.testing.assert_array_equal(td, bd)

    prop()
