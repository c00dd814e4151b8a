"""One threading model for every engine: Python threads over kernels that release the GIL.

Safe under ``fork()`` (no OpenMP runtime to abort or hang the child), under concurrent
searches, and leaving BLAS's thread count as it found it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from nearkit import KNNClassifier, NearestNeighbors
from nearkit.search import ENGINES

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")

RNG = np.random.default_rng(11)
X = RNG.normal(size=(5000, 8))
Y = RNG.integers(0, 3, size=5000)
Q = RNG.normal(size=(2000, 8))


CONFIGS = [pytest.param({"algorithm": algorithm}, id=algorithm) for algorithm in sorted(ENGINES)]
CONFIGS += [pytest.param({"metric": "mahalanobis"}, id="mahalanobis"),
            pytest.param({"metric": "cosine", "algorithm": "brute"}, id="cosine"),
            pytest.param({"metric": "manhattan", "algorithm": "brute"}, id="manhattan-brute32")]


@pytest.mark.parametrize("params", CONFIGS)
def test_a_forked_child_predicts_after_a_threaded_predict(params):
    """A child forked after a multi-threaded search predicts the same, within a timeout
    (GNU OpenMP used to terminate such a child, or leave ``Pool.map`` hanging)."""
    model = KNNClassifier(5, n_jobs=2, **params).fit(X, Y)
    expected = model.predict_proba(Q)  # threads started in this process
    with multiprocessing.get_context("fork").Pool(2) as pool:
        parts = pool.map_async(model.predict_proba, np.array_split(Q, 4)).get(timeout=120)
    np.testing.assert_array_equal(np.concatenate(parts), expected)


def test_concurrent_searches_leave_blas_threads_as_they_were():
    """Overlapping BLAS limits from concurrent gemm searches used to leave OpenBLAS on one
    thread after every search had returned."""
    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    model = KNNClassifier(5, algorithm="gemm", n_jobs=2).fit(X, Y)
    batches = [Q[i::8] for i in range(8)]
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(model.predict_proba, batches))
        assert blas_threads() == before


def test_the_blas_controller_finds_the_libraries_threadpoolctl_finds(tmp_path, monkeypatch):
    """The controller that skips resolving libraries no thread pool can be (10-12 ms of a
    process's first gemm search) holds the same libraries as threadpoolctl's own, keeps a
    link whatever its name, and falls back to threadpoolctl's own when its internals move."""
    import threadpoolctl

    from nearkit.search import _threads

    def found(controller):
        return sorted((lib["filepath"], lib["user_api"]) for lib in controller.info())

    ours = _threads.blas_controller()
    assert type(ours) is not threadpoolctl.ThreadpoolController  # (the lean one is tested)
    assert found(ours) == found(threadpoolctl.ThreadpoolController())
    assert any(api == "blas" for _, api in found(ours))  # numpy's BLAS is loaded

    prefixes = ("libopenblas", "libgomp")
    plain = tmp_path / "libz.so.1"
    plain.write_bytes(b"")
    link = tmp_path / "libblas.so.3"
    link.symlink_to(plain)
    assert _threads.may_hold_pool("/usr/lib/libopenblas.so.0", prefixes)
    assert _threads.may_hold_pool("/usr/lib/LIBGOMP.so.1", prefixes)
    assert not _threads.may_hold_pool(os.fspath(plain), prefixes)
    assert _threads.may_hold_pool(os.fspath(link), prefixes)  # its target decides

    monkeypatch.delattr(threadpoolctl, "_ALL_CONTROLLERS")
    fallback = _threads.blas_controller()
    assert type(fallback) is threadpoolctl.ThreadpoolController
    assert found(fallback) == found(ours)


def test_concurrent_radius_and_k_searches_equal_serial():
    model = NearestNeighbors(n_neighbors=7, radius=1.5, n_jobs=2).fit(X)
    expected_k = model.kneighbors(Q[:300])
    expected_r = model.radius_neighbors_graph(Q[:300], mode="distance", sort_results=True)
    with ThreadPoolExecutor(max_workers=6) as pool:
        ks = [pool.submit(model.kneighbors, Q[:300]) for _ in range(6)]
        rs = [pool.submit(model.radius_neighbors_graph, Q[:300], mode="distance",
                          sort_results=True) for _ in range(6)]
        for future in ks:
            for got, want in zip(future.result(), expected_k):
                np.testing.assert_array_equal(got, want)
        for future in rs:
            assert (future.result() != expected_r).nnz == 0


@pytest.mark.parametrize("algorithm", ["brute", "gemm", "kd_tree"])
def test_a_shut_down_pool_leaves_the_work_to_the_calling_thread(algorithm, monkeypatch):
    """Once the interpreter has begun to exit, ``concurrent.futures`` pools refuse new
    work; a search made then runs every range on the calling thread, with the same answer."""
    from nearkit.search import _threads

    model = NearestNeighbors(n_neighbors=6, algorithm=algorithm, n_jobs=2).fit(X)
    expected = model.kneighbors(Q)
    refusing = ThreadPoolExecutor(max_workers=1)
    refusing.shutdown()
    monkeypatch.setattr(_threads, "thread_pool", lambda: refusing)
    for got, want in zip(model.kneighbors(Q), expected):
        np.testing.assert_array_equal(got, want)


def test_a_search_in_an_atexit_function_answers():
    """``atexit`` functions run after ``concurrent.futures`` has shut its pools down (a
    multi-threaded search there had raised 'cannot schedule new futures after shutdown')."""
    import subprocess
    import textwrap

    script = textwrap.dedent("""
        import atexit
        import numpy as np
        from nearkit import KNNClassifier

        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(5000, 6)), rng.integers(0, 2, 5000)
        model = KNNClassifier(5, n_jobs=2).fit(X, y)
        expected = model.predict(X[:2000])
        atexit.register(lambda: print("same", bool((model.predict(X[:2000]) == expected).all())))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip() == "same True"


def _compile_in_child(queue):
    import numba

    queue.put(numba.njit(lambda x: x + 1)(41))


def test_a_fork_during_a_kernel_load_leaves_the_child_able_to_compile():
    """A thread holds numba's compiler lock (as the kernels' warm-up thread does while it
    loads them) when another forks: the fork waits for it, and the child can compile and
    load kernels (it had inherited the lock held by a thread it does not have, and hung)."""
    import threading
    import time

    from numba.core.compiler_lock import global_compiler_lock

    taken = threading.Event()

    def hold():
        with global_compiler_lock:
            taken.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    taken.wait()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_compile_in_child, args=(queue,))
    child.start()  # forks while the holder has the lock
    child.join(timeout=60)
    holder.join()
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0 and queue.get(timeout=5) == 42


def test_claimed_items_are_each_run_once_and_a_failure_stops_the_others():
    """:func:`claim_items` calls the kernel once per item, over every thread, and an error
    in one call is raised in the caller while the other threads stop claiming."""
    from nearkit.search._threads import claim_items

    calls = []

    def kernel(scale, i0, i1, out):
        calls.extend(range(i0, i1))
        out[i0:i1] = scale * np.arange(i0, i1)

    out = np.zeros(40)
    claim_items(kernel, (3.0,), 40, 2, tail=(out,))
    assert sorted(calls) == list(range(40))
    np.testing.assert_array_equal(out, 3.0 * np.arange(40))
    calls.clear()
    claim_items(kernel, (1.0,), 0, 2, tail=(out,))  # no items: nothing runs
    assert calls == []

    def failing(i0, i1):
        calls.append(i0)
        if i0 == 3:
            raise ValueError("item 3")
        time.sleep(0.001)  # (releases the GIL: the failing thread records its failure)

    calls.clear()
    with pytest.raises(ValueError, match="item 3"):
        claim_items(failing, (), 200, 2)
    assert len(calls) < 50
