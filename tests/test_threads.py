"""One threading model for every engine: Python threads over kernels that release the GIL.

Safe under ``fork()`` (no OpenMP runtime to abort or hang the child), under concurrent
searches, and leaving BLAS's thread count as it found it.
"""

from __future__ import annotations

import multiprocessing
import sys
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
