"""Engine-level properties: every code path exact, thread safety, lazy compilation."""

from __future__ import annotations

import functools
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from reference import reference_kneighbors

from nearkit import KNNClassifier
from nearkit.search import ENGINES, SERIAL_WORK, VALID_METRICS


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
def test_few_queries_many_points_split_path(algorithm):
    """Few queries against a large training set split the training set across threads."""
    rng = np.random.default_rng(5)
    X = rng.integers(0, 4, size=(200_000, 3)).astype(float)  # heavy exact ties
    Q = rng.integers(0, 4, size=(3, 3)).astype(float)
    assert len(Q) * X.size >= SERIAL_WORK
    model = KNNClassifier(15, algorithm=algorithm, n_jobs=2).fit(X, np.arange(len(X)) % 3)
    dist, ind = model.kneighbors(Q)
    ref_dist, ref_ind = reference_kneighbors(X, Q, 15)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
def test_parallel_batches_with_ties(algorithm):
    """Large batches (parallel path) on tie-heavy data, including kneighbors(X=None)."""
    rng = np.random.default_rng(6)
    X = rng.integers(0, 3, size=(3000, 4)).astype(float)
    Q = rng.integers(0, 3, size=(700, 4)).astype(float)
    model = KNNClassifier(5, algorithm=algorithm).fit(X, np.arange(len(X)) % 2)
    dist, ind = model.kneighbors(Q)
    ref_dist, ref_ind = reference_kneighbors(X, Q, 5)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)
    ind = model.kneighbors(return_distance=False)
    np.testing.assert_array_equal(ind, reference_kneighbors(X, X, 5, exclude_self=True)[1])


def test_concurrent_predicts_equal_serial():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5000, 8))
    y = rng.integers(0, 3, 5000)
    batches = [rng.normal(size=(int(size), 8)) for size in rng.integers(1, 600, size=24)]
    models = [KNNClassifier(7, algorithm=a).fit(X, y) for a in sorted(ENGINES)]
    expected = [[m.predict_proba(b) for b in batches] for m in models]
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [[pool.submit(m.predict_proba, b) for b in batches] for m in models]
        for model_futures, model_expected in zip(futures, expected):
            for future, proba in zip(model_futures, model_expected):
                np.testing.assert_array_equal(future.result(), proba)


def test_import_compiles_nothing():
    code = ("import nearkit, nearkit.search as s, nearkit._kernels.brute as b, "
            "nearkit._kernels.gemm as g, nearkit._kernels.tiled as t, "
            "nearkit._kernels.kdtree as kd\n"
            "print(len(b.brute_knn.signatures) + len(b.brute_knn_chunks.signatures) "
            "+ len(g.gemm_knn.signatures) + len(t.tiled_knn.signatures) "
            "+ len(kd.query_kdtree.signatures))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "0"


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
def test_mahalanobis_does_not_depend_on_batch(algorithm):
    """A query gets the same bits alone or inside a batch (whitening avoids BLAS)."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 20)) @ rng.normal(size=(20, 20))
    Q = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
    model = KNNClassifier(5, metric="mahalanobis", algorithm=algorithm).fit(X, np.arange(3000) % 2)
    batch_dist, batch_ind = model.kneighbors(Q)
    for i in (0, 17, 299):
        dist, ind = model.kneighbors(Q[i:i + 1])
        np.testing.assert_array_equal(dist[0], batch_dist[i])
        np.testing.assert_array_equal(ind[0], batch_ind[i])


@pytest.mark.parametrize("metric,algorithm", [("euclidean", "brute"), ("manhattan", "brute"),
                                              ("euclidean", "gemm")])
@pytest.mark.parametrize("scale", [1.0, 1e-120, 1e120, 1e-300, 1e300])
def test_float32_filters_exact_at_any_scale(metric, algorithm, scale):
    """The float32 pre-filters (gemm; brute on >= 2048 points) keep float64 results: far
    queries (float32 overflow), exact duplicates, ties, k beyond the lane bound, and data so
    small or large that float64 squares underflow or overflow (float64 fallback)."""
    rng = np.random.default_rng(9)
    noisy = (rng.random(2600) < 0.5)[:, None]  # half the points on a grid: heavy ties
    X = rng.integers(0, 4, size=(2600, 5)) + rng.normal(size=(2600, 5)) * noisy
    Q = rng.integers(0, 4, size=(60, 5)).astype(float)
    Q[:10] = X[:10]  # exact matches
    Q[10:13] *= 1e30 if scale < 1e200 else 1e5  # far outside the training range
    X, Q = X * scale, Q * scale
    model = KNNClassifier(5, metric=metric, algorithm=algorithm).fit(X, np.arange(len(X)) % 3)
    for k in (1, 5, 70):
        with np.errstate(over="ignore"):
            ref_dist, ref_ind = reference_kneighbors(X, Q, k, metric)
        dist, ind = model.kneighbors(Q, n_neighbors=k)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)
    with np.errstate(over="ignore"):
        ref_ind = reference_kneighbors(X, X[:300], 5, metric, exclude_self=True)[1]
    np.testing.assert_array_equal(model.kneighbors(return_distance=False)[:300], ref_ind)


def _near_duplicates(rng):
    base = rng.normal(size=(300, 5))
    X = np.concatenate([base + rng.normal(size=base.shape) * 1e-9 * j for j in range(1, 10)])
    return X, base[:100] + rng.normal(size=(100, 5)) * 1e-9


def _sphere(rng):
    """Points spread over a sphere whose radii differ by 1e-9, queried from its centre: the
    nearest are in every tile, and float32 resolves none of them."""
    X = rng.normal(size=(3000, 5))
    X *= ((1 + 1e-9 * rng.random(3000)) / np.linalg.norm(X, axis=1))[:, None]
    return X + 10.0, 10.0 + rng.normal(size=(20, 5)) * 1e-12


@pytest.mark.parametrize("make", [_near_duplicates, _sphere])
@pytest.mark.parametrize("metric,algorithm", [("euclidean", "brute"), ("manhattan", "brute"),
                                              ("euclidean", "gemm")])
def test_float32_filters_exact_on_near_ties(metric, algorithm, make):
    """Distances 1e-9 apart look equal in float32: only the error margin keeps the float64
    order (without it, about half of these rows come out wrong)."""
    X, Q = make(np.random.default_rng(10))
    model = KNNClassifier(5, metric=metric, algorithm=algorithm).fit(X, np.arange(len(X)) % 2)
    dist, ind = model.kneighbors(Q)
    ref_dist, ref_ind = reference_kneighbors(X, Q, 5, metric)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@pytest.mark.parametrize("n", [64, 300, 4096])
@pytest.mark.parametrize("metric,tail", [("euclidean", 2.0**-26), ("minkowski", 2.0**-17.4)])
def test_distinct_surrogates_with_equal_distances(algorithm, n, metric, tail):
    """Point 0's surrogate is one ulp above the others' (1 + 2**-52 against 1), yet its
    distance (sqrt, or cube root for p=3) rounds to the same 1.0, so on index it comes first.
    A filter that compares surrogates without slack drops it (brute and gemm did, through
    the tile's k-th bound)."""
    if metric not in VALID_METRICS[algorithm]:
        pytest.skip(f"{algorithm} does not search {metric}")
    X = np.zeros((n, 2))
    X[:, 0] = 1.0
    X[0, 1] = tail
    Q = np.zeros((3, 2))
    p = 3.0 if metric == "minkowski" else 2.0
    model = KNNClassifier(3, metric=metric, p=p, algorithm=algorithm).fit(X, np.arange(n) % 2)
    dist, ind = model.kneighbors(Q)
    ref_dist, ref_ind = reference_kneighbors(X, Q, 3, metric, p=p)
    assert ref_ind[0, 0] == 0 and ref_dist[0, 0] == 1.0  # the construction is what it says
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def _mixed_columns(rng, n):
    """Two one-hot columns, a 5-level ordinal and three continuous ones (like bank_churn)."""
    group = rng.integers(0, 2, n)
    return np.column_stack([group, 1 - group, rng.integers(0, 5, n),
                            rng.standard_normal((n, 3))]).astype(float)


def test_partition_cuts_at_gaps_and_median_otherwise():
    from nearkit._kernels.tiled import partition

    rng = np.random.default_rng(3)
    X = _mixed_columns(rng, 6000)
    leaves, _ = partition(X, 256)
    assert sum(map(len, leaves)) == len(X) and len(np.unique(np.concatenate(leaves))) == len(X)
    assert all(len(rows) <= 256 for rows in leaves)
    # discrete columns are cut first: no tile mixes two values of them
    for rows in leaves:
        assert np.ptp(X[rows, 0]) == 0 and np.ptp(X[rows, 2]) == 0
    # continuous data has no gap: median splits, tiles of 256 (multiples of 64)
    leaves, _ = partition(rng.standard_normal((4096, 5)), 256)
    assert sorted(set(map(len, leaves))) == [256]


def test_partition_splits_where_the_mass_spreads_not_at_an_outlier():
    """Without gaps, a node is cut on the feature whose middle half is widest: a feature
    with one far outlier has the widest range but is never cut here."""
    from nearkit._kernels.tiled import partition

    rng = np.random.default_rng(5)
    X = rng.standard_normal((1024, 3)) * [1.0, 2.0, 0.1]
    X[0, 2] = 50.0  # widest range, narrowest middle half
    _, (dims, _, _, _) = partition(X, 256)
    assert 1 in dims and 2 not in dims
    # every middle half empty (a column of one repeated value and a few others): the range
    X = np.zeros((600, 2))
    X[:3, 1] = [1.0, 2.0, 3.0]
    leaves, (dims, _, _, _) = partition(X, 256)
    assert dims[0] == 1 and sorted(np.concatenate(leaves)) == list(range(600))


@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("algorithm,metric,p", [
    ("gemm", "euclidean", 2.0), ("tiled", "euclidean", 2.0), ("tiled", "manhattan", 1.0),
    ("tiled", "chebyshev", 2.0), ("tiled", "minkowski", 3.0), ("tiled", "minkowski", 0.5)])
def test_tiles_exact_on_mixed_discrete_data(exclude_self, algorithm, metric, p):
    """Tiles cut at the discrete columns' gaps prune most of the search; the result is
    still the float64 reference's, ties between duplicated rows included."""
    rng = np.random.default_rng(4)
    # (the reference's Minkowski powers are Python calls: fewer rows keep it fast)
    X = _mixed_columns(rng, 1200 if metric == "minkowski" else 5000)
    X[:, 3:] = np.round(X[:, 3:], 1)  # many exact duplicates and equal distances
    model = KNNClassifier(7, algorithm=algorithm, metric=metric, p=p)
    model.fit(X, rng.integers(0, 3, len(X)))
    Q = None if exclude_self else _mixed_columns(rng, 700)
    dist, ind = model.kneighbors(Q)
    ref_dist, ref_ind = reference_kneighbors(X, X if exclude_self else Q, 7, metric, p=p,
                                             exclude_self=exclude_self)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_gemm_cuts_its_tiles_at_the_first_search_that_needs_them(tmp_path):
    """A gemm fit keeps the prepared points; the first kernel search (or a save) cuts the
    tiles, once, and the answers are the reference's before and after, from concurrent
    first searches too, and from a model file written before any search."""
    import nearkit

    rng = np.random.default_rng(12)
    X = _mixed_columns(rng, 4000)
    X[:, 3:] = np.round(X[:, 3:], 1)  # duplicates and equal distances
    y = rng.integers(0, 3, len(X))
    Q = _mixed_columns(rng, 500)
    ref = reference_kneighbors(X, Q, 6)
    ref_self = reference_kneighbors(X, X, 6, exclude_self=True)

    def fresh():
        model = KNNClassifier(6, algorithm="gemm", n_jobs=2).fit(X, y)
        assert model._index._gtiles is None and model._index._points is not None
        return model

    model = fresh()
    np.testing.assert_array_equal(model._index.data, X)  # (the points, uncut)
    for got, want in zip(model.kneighbors(Q), ref):
        np.testing.assert_array_equal(got, want)
    index = model._index
    assert index._gtiles is not None and index._points is None
    np.testing.assert_array_equal(index.data, X)  # (gathered back from the tiles)
    for got, want in zip(model.kneighbors(), ref_self):
        np.testing.assert_array_equal(got, want)

    model = fresh()  # leave-one-out first: the queries are the uncut points
    for got, want in zip(model.kneighbors(), ref_self):
        np.testing.assert_array_equal(got, want)

    for _ in range(3):  # (searches that read a layout half-filled by another failed 5 of 6)
        model = fresh()
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = list(pool.map(model.kneighbors, [Q] * 8))
        for dist, ind in found:
            np.testing.assert_array_equal(ind, ref[1])
            np.testing.assert_array_equal(dist, ref[0])

    model = fresh()
    nearkit.save(model, tmp_path / "fresh.nearkit")
    loaded = nearkit.load(tmp_path / "fresh.nearkit")
    for got, want in zip(loaded.kneighbors(Q), ref):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
def test_gemm_threads_work_in_a_forked_child():
    """The gemm engine's worker threads belong to the process that started them: a child
    forked after a multi-threaded predict must start its own instead of waiting forever."""
    import multiprocessing

    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 6))
    model = KNNClassifier(3, algorithm="gemm", n_jobs=2).fit(X, rng.integers(0, 2, 3000))
    Q = rng.normal(size=(400, 6))
    expected = model.predict_proba(Q)  # starts the pool in this process
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(model.predict_proba, (Q,)).get(timeout=120)
    np.testing.assert_array_equal(got, expected)


def _blobs(rng, n, d, n_centres, spread):
    centres = rng.normal(size=(n_centres, d)) * spread
    return centres[rng.integers(0, n_centres, n)] + rng.normal(size=(n, d))


@pytest.mark.parametrize("case, metric, expected", [
    ("uniform 5000 x 12", "manhattan", "brute"),    # the tiles' boxes prune nothing
    ("blobs 6000 x 12", "manhattan", "tiled"),      # separated clusters: boxes prune
    ("uniform 40000 x 2", "euclidean", "kd_tree"),  # low dimension, tiny searched share
    ("blobs 6000 x 12", "euclidean", "gemm"),       # sums of squares above 10 features
    ("uniform 1000 x 12", "manhattan", "brute"),    # too small to model
])
def test_auto_choices(case, metric, expected, monkeypatch):
    """The cost model of algorithm='auto' (fits only: nothing is compiled to choose)."""
    import nearkit.search.auto as auto

    rng = np.random.default_rng(0)
    n, d = (int(v) for v in case.split()[1::2])
    X = rng.random((n, d)) if case.startswith("uniform") else _blobs(rng, n, d, 20, 100.0)
    if expected == "gemm":  # the estimate could not change the choice: neither it is made
        monkeypatch.setattr(auto, "searched_fraction", None)  # nor the tiles cut to make it
        monkeypatch.setattr(auto, "partition", None)
    assert KNNClassifier(algorithm="auto", metric=metric).fit(X, np.arange(n) % 2).algorithm_ \
        == expected


@pytest.mark.parametrize("n", [300, 3000])  # the float64 sweep, and the float32 one
def test_serial_searches_call_the_kernel_entry_point(n):
    """After two dispatched serial searches, an index calls the kernel's compiled entry point
    directly (skipping numba's argument typing) for plain queries, with the same answers;
    pickling drops the entry points (they are the process's); a forked child uses them."""
    import pickle

    from nearkit._kernels.brute import brute_knn
    from nearkit._kernels.brute32 import brute32_knn

    rng = np.random.default_rng(8)
    X = rng.integers(0, 5, size=(n, 4)).astype(float)  # ties at the k-th distance
    Q = rng.integers(0, 5, size=(9, 4)).astype(float)
    model = KNNClassifier(6, algorithm="brute", n_jobs=1).fit(X, np.arange(n) % 3)
    kernel = brute32_knn if n >= 2048 else brute_knn
    ref_dist, ref_ind = reference_kneighbors(X, Q, 6)
    for _ in range(3):  # dispatched twice (the second finds the entry point), then called
        dist, ind = model.kneighbors(Q)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)
        assert list(model._index._entries) == [kernel]
    assert type(model._index._entries[kernel]).__name__ == "builtin_function_or_method"
    for row in range(len(Q)):  # single rows, and each checked
        np.testing.assert_array_equal(model.kneighbors(Q[row:row + 1])[1], ref_ind[row:row + 1])
    copied = pickle.loads(pickle.dumps(model))
    assert copied._index._entries is None
    np.testing.assert_array_equal(copied.kneighbors(Q)[1], ref_ind)
    if sys.platform != "win32":  # a forked child calls the entry points it inherited
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(model.kneighbors, (Q,)).get(timeout=120)
        np.testing.assert_array_equal(got[1], ref_ind)
        np.testing.assert_array_equal(got[0], ref_dist)


def _unaligned(a):
    """A C-ordered copy of ``a`` at an odd address (unaligned for float64)."""
    out = np.ndarray(a.shape, a.dtype, np.zeros(a.nbytes + 1, np.uint8).data, offset=1)
    out[...] = a
    return out


def test_direct_calls_only_plain_queries():
    """Queries whose numba type differs (read-only, unaligned, float32, F order, 1-D) are
    dispatched, never passed to the entry point found for plain ones."""
    import numba

    from nearkit.search import _direct

    @numba.njit
    def total(points, out):
        out[0] = points.sum()

    plain = np.arange(6.0).reshape(2, 3)
    readonly = plain.copy()
    readonly.setflags(write=False)
    unaligned = _unaligned(plain)
    assert _direct.plain(plain)
    for other in (readonly, unaligned, plain.astype(np.float32), np.asfortranarray(plain.T),
                  plain.ravel()):
        assert not _direct.plain(other)
    entries, out = {}, np.zeros(1)
    _direct.call(entries, total, (readonly, out), readonly)
    assert entries == {} and out[0] == 15.0
    _direct.call(entries, total, (plain, out), plain)  # dispatched, nothing looked up
    assert entries[total] is _direct._CALLED_ONCE
    _direct.call(entries, total, (plain, out), plain)  # dispatched, the entry point found
    entry = entries[total]
    assert entry is total.overloads[(numba.typeof(plain), numba.typeof(out))].entry_point
    _direct.call(entries, total, (plain * 2, out), plain * 2)
    assert out[0] == 30.0 and entries == {total: entry}
    _direct.call(entries, total, (readonly * 0, out), readonly * 0)  # (plain, writeable)
    assert out[0] == 0.0
    ro = readonly.copy()
    ro.setflags(write=False)
    _direct.call(entries, total, (ro, out), ro)  # dispatched
    assert out[0] == 15.0 and entries == {total: entry}


def _signature_counts():
    """Compiled signatures of every kernel, by name."""
    from nearkit._compile import _kernels

    return {name: len(kernel.signatures) for name, kernel in _kernels()}


@pytest.mark.parametrize("algorithm,metric", [
    ("brute", "euclidean"), ("brute", "chebyshev"), ("gemm", "euclidean"),
    ("tiled", "manhattan"), ("kd_tree", "euclidean"), ("projected", "euclidean"),
    ("brute", "cosine"), ("kd_tree", "mahalanobis")])
def test_read_only_and_unaligned_arrays_take_no_new_kernel_signature(algorithm, metric):
    """Read-only and unaligned training points and queries (memory maps, buffers) reach the
    kernels as copies: numba types such arrays apart, and each kernel they reached took a
    second signature, compiled on the spot (seconds in a new environment)."""
    from nearkit import NearestNeighbors

    rng = np.random.default_rng(9)
    X = rng.integers(0, 6, size=(3000, 6)).astype(float)  # ties at the k-th distance
    Q = rng.integers(0, 6, size=(40, 6)).astype(float)
    make = functools.partial(NearestNeighbors, n_neighbors=5, algorithm=algorithm,
                             metric=metric)
    model = make().fit(X)
    expected = [*model.kneighbors(Q), *model.kneighbors(Q[:1]), *model.kneighbors()]
    counts = _signature_counts()
    read_only_X, read_only_Q = X.copy(), Q.copy()
    read_only_X.setflags(write=False)
    read_only_Q.setflags(write=False)
    for train, queries in ((read_only_X, read_only_Q), (_unaligned(X), _unaligned(Q))):
        assert not (train.flags.writeable and train.flags.aligned)
        other = make().fit(train)
        got = [*other.kneighbors(queries), *model.kneighbors(queries[:1]),
               *other.kneighbors()]
        for have, want in zip(got, expected):
            np.testing.assert_array_equal(have, want)
    assert _signature_counts() == counts


def test_candidate_masks_and_lane_bounds():
    """The helpers every engine filters with: ``below_mask`` sets exactly the bits of the
    values at or below the limit (up to 64, bit 63 included), ``lowest_bit`` takes them
    lowest first, and ``kth_bound`` is never below the k-th smallest value for every lane
    count (16, 64) and length (no bound with fewer values than lanes)."""
    from nearkit._kernels.select import below_mask, kth_bound, lowest_bit

    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 31, 63, 64):
        values = rng.integers(0, 4, size=n).astype(float)  # ties at the limit
        for limit in (-1.0, 0.0, 1.0, 3.0):
            mask = below_mask(values, limit)  # (numba returns a uint64 as a Python int)
            listed = []
            while mask:
                t, mask = lowest_bit(np.uint64(mask))
                listed.append(t)
            assert listed == list(np.flatnonzero(values <= limit))
    lanes = np.empty(64)
    for n in (7, 8, 15, 16, 63, 64, 65, 320, 1000):
        values = rng.integers(0, 50, size=n).astype(float)
        for k in (1, 5, 8, 9, 16, 17, 64, 65):
            bound = kth_bound(values, k, lanes)
            if k > n or k > 64:
                assert bound == np.inf
            else:
                assert bound >= np.sort(values)[k - 1]
                assert (bound == np.inf) == (n < (16 if k <= 16 else 64))


def test_per_query_loops_are_compiled_without_reference_counts():
    """The loops that take a view per query and per chunk are compiled without numba's
    reference counts (``nearkit._kernels.NO_REFCOUNTS``: the atomic increments and
    decrements were 20% of the small tables' search), and still answer exactly: every
    engine whose loops they are, with and without excluding each point itself."""
    import numba

    from nearkit._kernels import NO_REFCOUNTS, brute, brute32, gemm, projected, tiled
    from nearkit.search.brute import FLOAT32_MIN_SAMPLES

    assert NO_REFCOUNTS == {"_nrt": False}  # the option exists in the numba installed
    loops = (brute.tile_rdist, brute._offer_rows, brute32._estimate_rows, tiled.home_tiles,
             tiled._other_tiles, gemm._scan, projected._search_row)
    if isinstance(brute.tile_rdist, numba.core.dispatcher.Dispatcher):
        assert all(loop.targetoptions.get("_nrt") is False for loop in loops)
    rng = np.random.default_rng(13)
    n = max(3000, FLOAT32_MIN_SAMPLES)  # the brute engine's float32 sweep from here
    X = np.round(rng.normal(size=(n, 6)), 1)  # ties
    Q = np.round(rng.normal(size=(30, 6)), 1)
    for algorithm in ("brute", "tiled", "gemm", "projected"):
        for train in (X[:200], X):
            model = KNNClassifier(7, algorithm=algorithm).fit(train, np.arange(len(train)) % 2)
            for queries in (Q, None):
                dist, ind = model.kneighbors(queries)
                ref_dist, ref_ind = reference_kneighbors(
                    train, train if queries is None else queries, 7,
                    exclude_self=queries is None)
                np.testing.assert_array_equal(ind, ref_ind, err_msg=algorithm)
                np.testing.assert_array_equal(dist, ref_dist, err_msg=algorithm)


@pytest.mark.parametrize("algorithm", ["brute", "tiled", "gemm"])
def test_every_k_across_the_chunk_minima_bound(algorithm):
    """The offers' bound comes from the 64-value chunk minima when a tile has at least k
    chunks, from lane minima when it has fewer, and there is none beyond k = 64: every k
    around those limits, on tie-heavy data, equals the reference."""
    rng = np.random.default_rng(12)
    X = rng.integers(0, 5, size=(1000, 3)).astype(float)
    Q = rng.integers(0, 5, size=(40, 3)).astype(float)
    for n in (300, 1000):
        for k in (1, 5, 8, 9, 16, 17, 64, 65, 100):
            model = KNNClassifier(k, algorithm=algorithm).fit(X[:n], np.arange(n) % 2)
            dist, ind = model.kneighbors(Q)
            ref_dist, ref_ind = reference_kneighbors(X[:n], Q, k)
            np.testing.assert_array_equal(ind, ref_ind)
            np.testing.assert_array_equal(dist, ref_dist)
