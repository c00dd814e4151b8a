"""The first calls of a process: the NumPy engine's answers are the kernels' answers, and
the kernels take over once a background compile has filled numba's cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from reference import reference_kneighbors

from nearkit import KNNClassifier, NearestNeighbors
from nearkit.metrics import METRICS, resolve_metric
from nearkit.search import _numpy, _warmup
from nearkit.search._space import prepare

METRICS_IN_NUMPY = [name for name, spec in METRICS.items()
                    if name != "mahalanobis" and _numpy.supports(
                        resolve_metric(name, 2, None, np.ones((2, 1))).kernel)]


def _data(scale, rng):
    X = rng.integers(1, 4, size=(700, 4)) + rng.normal(size=(700, 4)) * (rng.random(700) < 0.5)[:, None]
    X[400:450] = X[:50]  # duplicates
    Q = np.vstack([rng.integers(1, 4, size=(30, 4)).astype(float), X[:10]])
    return X * scale, Q * scale


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e200, 1e-100, 1e100])
@pytest.mark.parametrize("metric", METRICS_IN_NUMPY)
def test_numpy_engine_equals_reference(metric, scale):
    X, Q = _data(scale, np.random.default_rng(0))
    resolved = resolve_metric(metric, 2, None, X)
    points, queries = prepare(resolved, X, 1), prepare(resolved, Q, 1)
    for k in (1, 6, 20):
        dist, ind = _numpy.kneighbors(points, queries, np.full(len(Q), -1), k, resolved.kernel, 2)
        ref_dist, ref_ind = reference_kneighbors(X, Q, k, metric)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)
    dist, ind = _numpy.kneighbors(points, points[:60], np.arange(60), 5, resolved.kernel, 2)
    ref_dist, ref_ind = reference_kneighbors(X, X, 5, metric, exclude_self=True)
    np.testing.assert_array_equal(ind, ref_ind[:60])
    np.testing.assert_array_equal(dist, ref_dist[:60])


@pytest.mark.parametrize("scale", [1.0, 1e-300])
@pytest.mark.parametrize("metric", METRICS_IN_NUMPY)
def test_numpy_engine_in_many_chunks_on_threads(metric, scale, monkeypatch):
    """Queries cut into chunks of a few rows, on two threads (the scratch arrays of one
    chunk reused feature after feature): the same answer as the reference."""
    monkeypatch.setattr(_numpy, "_CHUNK_ENTRIES", {"expansion": 2048, "pairs": 2048})
    X, Q = _data(scale, np.random.default_rng(2))
    resolved = resolve_metric(metric, 2, None, X)
    points, queries = prepare(resolved, X, 1), prepare(resolved, Q, 1)
    dist, ind = _numpy.kneighbors(points, queries, np.full(len(Q), -1), 6, resolved.kernel, 2)
    ref_dist, ref_ind = reference_kneighbors(X, Q, 6, metric)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


def test_numpy_engine_far_and_mixed_queries():
    """The float32 expansion's filter with queries whose copies overflow float32 (every
    point a candidate), queries at the data, between duplicates and far from the centre."""
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(size=(500, 6)), rng.normal(size=(100, 6)) * 1e-7,
                   np.repeat(rng.normal(size=(20, 6)), 5, axis=0)]) + 3.0
    Q = np.vstack([X[::37], X[::41] + 1e-9, rng.normal(size=(20, 6)) * 50,
                   np.full((2, 6), 1e45), np.full((2, 6), -1e300)])
    resolved = resolve_metric("euclidean", 2, None, X)
    assert _numpy.float32_space(X) is not None  # (the float32 path)
    for k in (1, 7, 33):
        dist, ind = _numpy.kneighbors(X, Q, np.full(len(Q), -1), k, resolved.kernel, 2)
        ref_dist, ref_ind = reference_kneighbors(X, Q, k)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.parametrize("n", [1100, 6000])
@pytest.mark.parametrize("order", ["shuffled", "sorted"])
def test_numpy_engine_bound_from_group_minima(order, n):
    """From 1,024 points the k-th bound comes from the minima of 256 interleaved groups of
    a row's columns (k <= 64; the k-th of a column sample beyond): exact either way, with
    columns left over (1,100 = 4 x 256 + 76), for queries and leave-one-out, also when the
    training rows are sorted, which puts the near points of a query side by side."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 6, size=(n, 3)) + rng.normal(size=(n, 3)) * (rng.random(n) < 0.7)[:, None]
    X[n // 2:n // 2 + 100] = X[:100]  # duplicates
    if order == "sorted":
        X = X[np.lexsort(X.T[::-1])]
    Q = np.vstack([X[::n // 20], rng.normal(size=(10, 3)) * 3])
    resolved = resolve_metric("euclidean", 2, None, X)
    for k in (1, 5, 64, 65):
        dist, ind = _numpy.kneighbors(X, Q, np.full(len(Q), -1), k, resolved.kernel, 2)
        ref_dist, ref_ind = reference_kneighbors(X, Q, k)
        np.testing.assert_array_equal(ind, ref_ind)
        np.testing.assert_array_equal(dist, ref_dist)
    dist, ind = _numpy.kneighbors(X, X, np.arange(n), 5, resolved.kernel, 2)
    ref_dist, ref_ind = reference_kneighbors(X, X, 5, exclude_self=True)
    np.testing.assert_array_equal(ind, ref_ind)
    np.testing.assert_array_equal(dist, ref_dist)


@pytest.mark.parametrize("algorithm", ["brute", "gemm", "tiled", "kd_tree"])
def test_estimators_answer_from_numpy_while_kernels_load(algorithm, monkeypatch):
    """With the kernels taken as not live and nothing loaded, the estimator's answers are
    the NumPy engine's, identical to the kernels'."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5))
    y = rng.integers(0, 3, 3000)
    Q = rng.normal(size=(200, 5))
    model = KNNClassifier(7, algorithm=algorithm, weights="distance").fit(X, y)
    expected = model.predict_proba(Q), model.kneighbors(n_neighbors=4)
    monkeypatch.setenv("NEARKIT_JIT", "background")
    monkeypatch.setattr(_warmup, "live", lambda kernels: False)
    monkeypatch.setattr(_warmup, "_cached", lambda kernel: False)  # compile, not load
    monkeypatch.setattr(_warmup, "start", lambda *args: None)
    monkeypatch.setattr(model._index, "_kernels_live", False)  # as in a fresh process
    calls = []
    original = _numpy.kneighbors
    monkeypatch.setattr(_numpy, "kneighbors", lambda *a: calls.append(1) or original(*a))
    np.testing.assert_array_equal(model.predict_proba(Q), expected[0])
    for got, want in zip(model.kneighbors(n_neighbors=4), expected[1]):
        np.testing.assert_array_equal(got, want)
    assert len(calls) == 2


@pytest.mark.parametrize("algorithm", ["brute", "gemm"])
def test_numpy_limits_follow_the_path_the_answer_takes(algorithm, monkeypatch):
    """Euclidean distances of points whose scale is too far from 1 for float32 are measured
    pair by pair (a hundred times slower than the float32 expansion): a search of that size
    waits for the kernels, where the same search at scale 1 is answered by NumPy."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 10))
    monkeypatch.setenv("NEARKIT_JIT", "background")
    monkeypatch.setattr(_warmup, "live", lambda kernels: False)
    monkeypatch.setattr(_warmup, "_cached", lambda kernel: True)  # load, not compile
    # 5,000 queries x 2,000 points x 10 features = 1e8 pair-features: above the limit of
    # pairs measured one by one, below the expansion's
    m = int(1e8 / (2000 * 10))
    assert _warmup.NUMPY_MAX_WORK_CACHED["pairs"] < 1e8 <= _warmup.NUMPY_MAX_WORK_CACHED[
        "expansion"]
    for limits in (_warmup.NUMPY_MAX_WORK, _warmup.NUMPY_MAX_WORK_CACHED):
        assert limits["pairs"] <= limits["expansion"]  # (numpy_answers relies on it)
    answers = {}
    for scale in (1.0, 2.0**500):
        index = NearestNeighbors(algorithm=algorithm).fit(X * scale)._index
        index._kernels_live = False
        answers[scale] = index._answer_with_numpy(m), index._numpy_space is None
    assert answers == {1.0: (True, False), 2.0**500: (False, True)}


def test_the_disk_cache_is_read_only_where_it_changes_the_answer(monkeypatch):
    """Within the limits for cached kernels (the smaller) NumPy answers whether or not the
    cache holds them, so its indexes are not read; beyond, it decides between loading and
    compiling."""
    monkeypatch.setenv("NEARKIT_JIT", "background")
    reads, cached = [], {"now": True}
    monkeypatch.setattr(_warmup, "_cached", lambda kernel: reads.append(kernel) or cached["now"])
    small, large = _warmup.NUMPY_MAX_WORK_CACHED, _warmup.NUMPY_MAX_WORK
    for name in ("pairs", "expansion"):
        assert small[name] <= large[name]  # (numpy_answers relies on it)
    kernels, by_expansion, pair_by_pair = (object(),), lambda: True, lambda: False
    assert _warmup.numpy_answers(kernels, small["expansion"], by_expansion)
    assert _warmup.numpy_answers(kernels, small["pairs"], pair_by_pair)
    assert not _warmup.numpy_answers(kernels, 2 * small["pairs"], pair_by_pair)
    assert reads == list(kernels)  # only the last: beyond the cached limits, and cached
    beyond = 2 * small["expansion"]
    assert beyond <= large["expansion"]
    assert not _warmup.numpy_answers(kernels, beyond, by_expansion)  # cached: wait for them
    cached["now"] = False
    assert _warmup.numpy_answers(kernels, beyond, by_expansion)  # compiling: NumPy answers
    assert not _warmup.numpy_answers(kernels, 2 * large["expansion"], by_expansion)


def test_minkowski_always_waits_for_the_kernels():
    """NumPy's vectorised power rounds unlike the C library's pow: not its to answer."""
    kernel = resolve_metric("minkowski", 3, None, np.ones((2, 1))).kernel
    assert not _numpy.supports(kernel)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths in the child's script")
def test_a_cold_process_answers_at_once_then_hands_over(tmp_path):
    """A fresh process with an empty numba cache: the first predict compiles nothing and
    returns at once; a child compiles the kernels into the cache, a thread loads them, and
    later predicts run on the kernels, with the same answers."""
    script = textwrap.dedent("""
        import time
        import numpy as np
        from nearkit import KNNClassifier
        from nearkit._kernels.brute import brute_knn
        from nearkit.search import _warmup

        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(500, 6)), rng.integers(0, 2, 500)
        model = KNNClassifier(5).fit(X, y)
        start = time.perf_counter()
        first = model.predict_proba(X[:100])
        print("first", time.perf_counter() - start, len(brute_knn.signatures))
        for thread in list(_warmup._loading.values()):
            thread.join(timeout=300)
        print("live", _warmup.live((brute_knn,)))
        print("same", bool((model.predict_proba(X[:100]) == first).all()))
    """)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NEARKIT_JIT": "background"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout.split("\n")
    first = out[0].split()
    assert float(first[1]) < 2.0 and first[2] == "0"  # answered without compiling
    assert out[1] == "live True" and out[2] == "same True"
    assert any(tmp_path.rglob("*.nbi"))  # the child filled the cache


@pytest.mark.filterwarnings("ignore:'nearkit._compile' found in sys.modules")  # runpy's
def test_the_compile_child_searches_with_the_kernels(monkeypatch):
    """``python -m nearkit._compile PATH`` runs as ``__main__``, a second copy of the module:
    its searches must still wait for the kernels (answered by NumPy they would compile
    nothing and start another child, and that one another)."""
    import runpy

    import nearkit._compile as compile_module

    seen = []
    monkeypatch.setitem(compile_module.PATHS, "probe", lambda: seen.append(_warmup.waits()))
    monkeypatch.setattr(sys, "argv", ["nearkit._compile", "probe"])
    monkeypatch.setattr(os, "nice", lambda increment: 0)  # not this test process's priority
    monkeypatch.setenv("NEARKIT_JIT", "background")
    runpy.run_module("nearkit._compile", run_name="__main__")
    assert seen == [True]


# -- one compile at a time per cache ------------------------------------------------------------

fcntl = pytest.importorskip("fcntl") if sys.platform != "win32" else None
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the compile lock is flock's")


def _lock_is_free(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


_HOLD_LOCK = textwrap.dedent("""
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
""")


@posix_only
def test_a_process_waits_for_another_compile_then_loads(tmp_path, monkeypatch):
    """While another process holds the cache's compile lock, the warm-up starts no compile
    of its own; when the holder is done (the kernels now cached) it only loads them."""
    import threading

    import nearkit._compile as compile_module

    lock = str(tmp_path / _warmup.LOCK_NAME)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, lock], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cached = {"now": False}
        children, loads = [], []
        monkeypatch.setattr(_warmup, "_cached", lambda kernel: cached["now"])
        monkeypatch.setattr(_warmup, "lock_path", lambda kernels: lock)
        monkeypatch.setattr(_warmup, "compile_in_child", lambda *args: children.append(args))
        monkeypatch.setattr(compile_module, "compile_path", loads.append)
        thread = threading.Thread(target=_warmup._make_live, args=("brute", (object(),)))
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and not children and not loads  # waiting for the holder
        cached["now"] = True  # the holder compiled them
    finally:
        holder.communicate("done\n", timeout=30)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert children == [] and loads == ["brute"]


@posix_only
def test_the_compile_child_holds_the_lock_beyond_its_parent(tmp_path, monkeypatch):
    """The child inherits the locked descriptor: the lock outlives the parent's hold (a
    short script that exits while its child compiles), until the child exits."""
    lock = str(tmp_path / _warmup.LOCK_NAME)
    seen = {}

    def fake_run(cmd, **kwargs):
        seen.update(cmd=cmd, **kwargs)
        # stands for the compile child: it keeps the inherited descriptor open for a while
        seen["child"] = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                         stdin=subprocess.PIPE, pass_fds=kwargs["pass_fds"])

    monkeypatch.setattr(_warmup.subprocess, "run", fake_run)
    with _warmup.compile_lock(lock) as fd:
        assert fd is not None and not _lock_is_free(lock)
        _warmup.compile_in_child("gemm", fd)
    try:
        assert seen["cmd"][1:] == ["-m", "nearkit._compile", "gemm"]
        assert seen["env"]["NEARKIT_JIT"] == "wait" and seen["pass_fds"] == (fd,)
        assert not _lock_is_free(lock)  # the parent let go, the child still holds it
    finally:
        seen["child"].communicate(b"", timeout=30)
    assert _lock_is_free(lock)


@posix_only
def test_a_forked_worker_does_not_keep_the_compile_lock(tmp_path):
    lock = str(tmp_path / _warmup.LOCK_NAME)
    read, write = os.pipe()
    ready_read, ready_write = os.pipe()
    with _warmup.compile_lock(lock):
        pid = os.fork()
        if pid == 0:  # a long-lived worker, forked while the lock was held
            os.write(ready_write, b"r")  # (the fork hooks have run)
            os.read(read, 1)
            os._exit(0)
    os.read(ready_read, 1)
    os.close(ready_read)
    os.close(ready_write)
    try:
        assert _lock_is_free(lock)
    finally:
        os.close(read)
        os.write(write, b"x")
        os.close(write)
        os.waitpid(pid, 0)


@posix_only
def test_the_lock_wait_is_bounded(tmp_path):
    lock = str(tmp_path / _warmup.LOCK_NAME)
    with _warmup.compile_lock(lock) as held:
        assert held is not None
        with _warmup.compile_lock(lock, wait_s=0.2) as other:
            assert other is None  # gave up: compiles without the lock rather than hang


@posix_only
def test_an_uncached_path_is_compiled_once_under_the_lock(tmp_path, monkeypatch):
    import nearkit._compile as compile_module

    lock = str(tmp_path / _warmup.LOCK_NAME)
    children, loads = [], []
    monkeypatch.setattr(_warmup, "_cached", lambda kernel: False)
    monkeypatch.setattr(_warmup, "lock_path", lambda kernels: lock)
    monkeypatch.setattr(_warmup, "compile_in_child",
                        lambda path, fd: children.append((path, _lock_is_free(lock), fd)))
    monkeypatch.setattr(compile_module, "compile_path", loads.append)
    _warmup._make_live("gemm", (object(),))
    assert len(children) == 1 and loads == ["gemm"]
    path, free, fd = children[0]
    assert path == "gemm" and not free and isinstance(fd, int)  # started under the lock
    assert _lock_is_free(lock)


def test_every_cached_kernel_loads_lightly():
    """Every dispatcher of the kernel modules skips numba's full refresh when it loads from
    the disk cache (:func:`nearkit._kernels.load_lightly`)."""
    from nearkit._compile import _kernels

    found = _kernels()
    assert len(found) > 20
    for name, dispatcher in found:
        assert "load_overload" in vars(dispatcher._cache), name


def test_the_cache_stamp_covers_every_kernel_module(tmp_path):
    """A kernel's disk-cache stamp holds every module of the kernel package, so an edit to
    a helper inlined from another module (``select.offer_tile``) invalidates the cached
    kernels that inline it; numba's own stamp (the kernel's file alone) had kept them."""
    from nearkit import _kernels
    from nearkit._compile import _kernels as kernel_list

    package = _kernels.package_stamp(os.path.dirname(_kernels.__file__))
    assert {"brute.py", "distances.py", "select.py"} <= {name for name, *_ in package}
    for name, dispatcher in kernel_list():
        own, stamped = dispatcher._cache._cache_file._source_stamp
        assert stamped == package, name
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")
    (tmp_path / "notes.txt").write_text("")
    before = _kernels.package_stamp.__wrapped__(str(tmp_path))
    assert [name for name, *_ in before] == ["a.py", "b.py"]
    (tmp_path / "b.py").write_text("y = 22\n")
    assert _kernels.package_stamp.__wrapped__(str(tmp_path)) != before
    assert _kernels.package_stamp.__wrapped__(str(tmp_path / "missing")) == ()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths in the child's script")
def test_a_warm_process_loads_the_kernels_without_numbas_refresh(tmp_path):
    """A new process whose numba cache holds the kernels: they load without numba's typing
    and lowering tables (no registry installed) and without importing the modules of
    numba's implementations they were built from (their environments' globals), and
    answer as the kernels of this process do; a kernel the cache lacks still compiles,
    with the tables numba then loads, and the loaded kernels answer the same after it.
    numba's runtime functions come from the cache too (:mod:`nearkit._kernels._runtime`)."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from numba.core.registry import cpu_target
        from nearkit import KNNClassifier
        from nearkit._kernels.brute import brute_knn
        from nearkit._kernels.gemm import gemm_knn

        numba_modules = ("numba.np.arrayobj", "numba.np.npyimpl", "numba.np.linalg",
                         "numba.cpython.unicode")
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(500, 6)), rng.integers(0, 2, 500)
        Q = X[:100]
        brute = KNNClassifier(5, algorithm="brute").fit(X, y)
        gemm = KNNClassifier(5, algorithm="gemm").fit(X, y)
        proba = brute.predict_proba(Q), gemm.predict_proba(Q)
        print(len(brute_knn.signatures), len(gemm_knn.signatures),
              len(cpu_target.target_context._registries),
              sorted(set(numba_modules) & set(sys.modules)))
        np.save({path!r}, np.stack(proba))

        import numba
        @numba.njit
        def twice(a):
            return 2 * a
        print(twice(np.ones(3)).sum(), len(cpu_target.target_context._registries) > 0,
              "numba.np.npyimpl" in sys.modules)
        again = brute.predict_proba(Q), gemm.predict_proba(Q)
        print(all(np.array_equal(a, b) for a, b in zip(proba, again)))
        from nearkit._kernels import _runtime
        print(_runtime.source)
    """)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(500, 6)), rng.integers(0, 2, 500)
    # answered by the kernels here, which puts them in the cache the child reads
    expected = np.stack([KNNClassifier(5, algorithm=algorithm).fit(X, y).predict_proba(X[:100])
                         for algorithm in ("brute", "gemm")])
    path = str(tmp_path / "proba.npy")
    runs = [subprocess.run([sys.executable, "-c", script.format(path=path)],
                           env={**os.environ, "NEARKIT_JIT": "wait"}, capture_output=True,
                           text=True, timeout=600, check=True).stdout.split("\n")
            for _ in range(2)]
    for out in runs:
        assert out[0] == "1 1 0 []"  # the kernels loaded: no registry, no module of numba's
        assert out[1] == "6.0 True True"  # a compile afterwards refreshes and works
        assert out[2] == "True"  # and the loaded kernels still answer the same
        np.testing.assert_array_equal(np.load(path), expected)
    # numba's runtime functions: compiled into the cache by the first (unless there already)
    # and loaded from it by the second
    assert runs[0][3] in ("compiled", "cache") and runs[1][3] == "cache"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths in the child's script")
def test_a_search_that_waits_loads_the_kernels_while_it_cuts_the_tiles(tmp_path):
    """A warm process whose first 'gemm' search is too large for NumPy: the kernels start
    loading on a background thread, by their cached signatures (no tiny searches, which
    would wait for the build lock the tile cut holds), before the search cuts its tiles;
    the answer is the reference's."""
    script = textwrap.dedent("""
        import numpy as np
        import nearkit._compile as compile_module
        from nearkit import NearestNeighbors
        from nearkit.search import _warmup

        _warmup.NUMPY_MAX_WORK_CACHED.update(expansion=0, pairs=0)  # NumPy declines

        def searched(name):
            raise AssertionError(f"kernel path {{name}} loaded by searches")

        compile_module.compile_path = searched
        loaded, load_cached = [], _warmup._load_cached
        _warmup._load_cached = lambda kernels: loaded.append(load_cached(kernels)) or loaded[-1]
        rng = np.random.default_rng(3)
        X = rng.integers(0, 6, size=(3000, 5)) + rng.normal(size=(3000, 5)) * 0.01
        model = NearestNeighbors(n_neighbors=5, algorithm="gemm").fit(X)
        dist, ind = model.kneighbors(X[:200] + 0.5)
        loader = _warmup._loading.get("gemm")
        _warmup.wait()
        print(loader is not None, loaded, model.algorithm_)
        np.savez({path!r}, dist=dist, ind=ind)
    """)
    rng = np.random.default_rng(3)
    X = rng.integers(0, 6, size=(3000, 5)) + rng.normal(size=(3000, 5)) * 0.01
    # answered by the kernels here, which puts them in the cache the child reads
    NearestNeighbors(n_neighbors=5, algorithm="gemm").fit(X).kneighbors(X[:20])
    path = str(tmp_path / "found.npz")
    out = subprocess.run([sys.executable, "-c", script.format(path=path)],
                         env={**os.environ, "NEARKIT_JIT": "background"}, capture_output=True,
                         text=True, timeout=600, check=True).stdout.split("\n")
    assert out[0] == "True [True] gemm"
    ref_dist, ref_ind = reference_kneighbors(X, X[:200] + 0.5, 5)
    with np.load(path) as found:
        np.testing.assert_array_equal(found["ind"], ref_ind)
        np.testing.assert_array_equal(found["dist"], ref_dist)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths in the child's script")
def test_numba_disable_jit_runs_the_kernels_as_python(tmp_path):
    """``NUMBA_DISABLE_JIT=1`` (numba's debugging switch) makes the kernels plain Python
    functions: they are live at once (no dispatcher to compile or load) and answer as the
    compiled ones do.  It had raised AttributeError ('function' object has no attribute
    'overloads')."""
    script = textwrap.dedent("""
        import numpy as np
        from nearkit import NearestNeighbors

        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 4))
        X[100:110] = X[:10]
        found = []
        for algorithm in ("brute", "gemm", "tiled", "kd_tree"):
            model = NearestNeighbors(n_neighbors=4, algorithm=algorithm).fit(X)
            found += [*model.kneighbors(X[:12]), *model.kneighbors()]
        np.savez({path!r}, *found)
    """)
    path = str(tmp_path / "found.npz")
    subprocess.run([sys.executable, "-c", script.format(path=path)],
                   env={**os.environ, "NUMBA_DISABLE_JIT": "1"}, capture_output=True,
                   text=True, timeout=600, check=True)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    X[100:110] = X[:10]
    with np.load(path) as found:
        got = [found[f"arr_{i}"] for i in range(len(found.files))]
    assert len(got) == 16
    for i, algorithm in enumerate(("brute", "gemm", "tiled", "kd_tree")):
        model = NearestNeighbors(n_neighbors=4, algorithm=algorithm).fit(X)
        for have, want in zip(got[4 * i:4 * i + 4], [*model.kneighbors(X[:12]),
                                                     *model.kneighbors()]):
            np.testing.assert_array_equal(have, want)


@pytest.mark.parametrize("frozen, executable", [(True, sys.executable), (False, "")])
def test_no_compile_child_from_a_frozen_application(frozen, executable, monkeypatch):
    """A frozen application's ``sys.executable`` is the application: starting it with
    ``-m nearkit._compile`` would start the application again.  Nor is there a child
    without an executable.  The caller compiles instead."""
    started = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: started.append(args))
    monkeypatch.setattr(sys, "frozen", frozen, raising=False)
    monkeypatch.setattr(sys, "executable", executable)
    _warmup.compile_in_child("brute")
    assert started == []
    monkeypatch.setattr(sys, "frozen", False, raising=False)
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    _warmup.compile_in_child("brute")
    assert len(started) == 1 and started[0][0][:3] == ["/usr/bin/python3", "-m", "nearkit._compile"]


def test_the_runtime_file_round_trips_and_rejects_what_it_did_not_write(tmp_path):
    """:mod:`nearkit._kernels._runtime`'s cache file: read back as written, for its key
    only; a damaged, truncated or foreign file reads as missing (then compiled and
    rewritten), and a folder that cannot be written leaves no file and raises nothing."""
    from nearkit._kernels import _runtime

    path = str(tmp_path / "cache" / _runtime.FILE_NAME)
    key = ["0.1", "0.2", ["x86_64-unknown-linux-gnu", "znver3", "+avx2"]]
    state = ("nrt", "object", (b"object-code", b"bitcode"))
    assert _runtime._read(path, key) is None  # missing
    _runtime._write(path, key, state)
    assert _runtime._read(path, key) == state
    assert _runtime._read(path, [*key[:2], ["other", "cpu", ""]]) is None
    if hasattr(os, "fchmod"):
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    data = (tmp_path / "cache" / _runtime.FILE_NAME).read_bytes()
    for damaged in (data[:-1], data[:-1] + b"X", b"not json\n" + data, b""):
        with open(path, "wb") as file:
            file.write(damaged)
        assert _runtime._read(path, key) is None
    blocked = tmp_path / "a file"
    blocked.write_text("")
    _runtime._write(str(blocked / _runtime.FILE_NAME), key, state)  # not a folder: no-op
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [_runtime.FILE_NAME]
