"""Engine adapters, the shared vote and the harness's tie-aware neighbour check."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from nearkit.bench.engines import (
    ENGINES,
    FaissEngine,
    engine_unavailable,
    make_engine,
    parse_engine_name,
)
from nearkit.bench.exactness import check_neighbors, reference_kth_distances
from nearkit.bench.measure import PeakMemory, limit_threads
from nearkit.bench.vote import vote
from nearkit.metrics import METRICS

PEERS = ["faiss-flatl2", "scipy-ckdtree", "numpy-textbook", "sklearn-brute", "sklearn-kd_tree",
         "sklearn-ball_tree", "sklearn-auto", "sklearnex-brute", "sklearnex-auto",
         "usearch-exact"]
#: the optional peers added for issue 14, with the metrics they search besides Euclidean
NEW_PEERS = {"sklearnex-brute": ["manhattan", "cosine"], "sklearnex-auto": ["manhattan", "cosine"],
             "usearch-exact": ["cosine"]}


def _available(name):
    return engine_unavailable(name) is None


@pytest.fixture(scope="module")
def continuous():
    rng = np.random.default_rng(5)
    return rng.normal(size=(400, 5)), rng.integers(0, 3, 400), rng.normal(size=(80, 5))


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("k", [1, 4])
def test_peers_predict_like_scikit_learn(name, k, continuous):
    """Uniform vote, ties (even k) to the smallest label, proba = vote proportions."""
    if not _available(name):
        pytest.skip(f"{name} not installed")
    X, y, Q = continuous
    engine = make_engine(name, n_neighbors=k).fit(X, y)
    ref = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(X, y)
    np.testing.assert_array_equal(engine.predict(Q), ref.predict(Q))
    np.testing.assert_allclose(engine.predict_proba(Q), ref.predict_proba(Q))
    dist, ind = engine.kneighbors(Q, k)
    assert dist.shape == ind.shape == (len(Q), k)
    check = check_neighbors(X, Q, dist, ind, k)
    assert check["n_wrong"] == 0
    assert check["n_exact"] + check["n_near_tie"] == len(Q)


@pytest.mark.parametrize("name", list(NEW_PEERS))
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_new_peers_predict_like_scikit_learn_for_their_metrics(name, weights, continuous):
    """No tie crosses the k-th neighbour in continuous random data, so scikit-learn's
    predictions and vote proportions are the reference."""
    if not _available(name):
        pytest.skip(f"{name}: {engine_unavailable(name)}")
    X, y, Q = continuous
    for metric in ["euclidean", *NEW_PEERS[name]]:
        kth = reference_kth_distances(X, Q, 6, metric)
        assert np.all(kth[:, 4] < kth[:, 5] * (1 - 1e-9)), "a tie crosses the 5th neighbour"
        engine = make_engine(name, n_neighbors=5, weights=weights, metric=metric)
        assert engine.unsupported() is None
        engine.fit(X, y)
        ref = KNeighborsClassifier(n_neighbors=5, weights=weights, metric=metric,
                                   algorithm="brute").fit(X, y)
        np.testing.assert_array_equal(engine.predict(Q), ref.predict(Q))
        np.testing.assert_allclose(engine.predict_proba(Q), ref.predict_proba(Q), rtol=1e-6)
        check = check_neighbors(X, Q, *engine.kneighbors(Q, 5), 5, metric)
        assert check["n_exact"] == len(Q), (metric, check["examples"])
    assert make_engine(name, metric="mahalanobis").unsupported()
    assert make_engine(name, weights="dudani").unsupported()


def test_a_missing_optional_peer_is_skipped_with_a_note(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("usearch", "sklearnex") else real(name, *a))
    assert "usearch is not installed" in engine_unavailable("usearch-exact")
    assert "sklearnex is not installed" in engine_unavailable("sklearnex-auto[1t]")


def test_metric_names_come_from_the_metric_table():
    for name, spec in ENGINES.items():
        names = spec.cls.metric_names(**spec.options)
        assert names and names <= set(METRICS), name
    assert make_engine("nearkit-auto").metric_names() == set(METRICS)
    assert make_engine("nearkit-auto", metric="cosine").unsupported() is None
    assert make_engine("sklearn-brute", metric="cosine").unsupported() is None
    assert make_engine("sklearn-kd_tree", metric="cosine").unsupported()
    assert make_engine("nearkit-gemm", metric="manhattan").unsupported()


def test_cosine_check_against_nearkit(continuous):
    X, y, Q = continuous
    engine = make_engine("nearkit-auto", n_neighbors=4, metric="cosine").fit(X, y)
    check = check_neighbors(X, Q, *engine.kneighbors(Q, 4), 4, "cosine")
    assert check["n_exact"] == len(Q) and check["max_reported_distance_error"] < 1e-9


@pytest.mark.parametrize("name", ["numpy-textbook", "scipy-ckdtree", "sklearn-brute"])
@pytest.mark.parametrize("metric", ["manhattan", "chebyshev", "minkowski"])
def test_other_metrics_are_exact(name, metric, continuous):
    X, y, Q = continuous
    engine = make_engine(name, n_neighbors=3, metric=metric, p=3.0).fit(X, y)
    dist, ind = engine.kneighbors(Q, 3)
    check = check_neighbors(X, Q, dist, ind, 3, metric, 3.0)
    assert check["n_exact"] == len(Q), check["examples"]


def test_nearkit_engine_uses_the_public_estimator(continuous):
    import nearkit

    X, y, Q = continuous
    engine = make_engine("nearkit-auto", n_neighbors=5).fit(X, y)
    assert isinstance(engine.estimator_, nearkit.KNNClassifier)
    ref = KNeighborsClassifier(n_neighbors=5).fit(X, y)
    np.testing.assert_array_equal(engine.predict(Q), ref.predict(Q))
    assert check_neighbors(X, Q, *engine.kneighbors(Q, 5), 5)["n_exact"] == len(Q)


def test_nearkit_engine_fit_includes_what_gemm_builds_at_its_first_search():
    """Timed fits compare what each engine builds before it can answer: the gemm engine's
    tiles (cut at its first search) are cut inside the adapter's fit, unless the first-call
    measurements ask for fit as a user meets it."""
    from nearkit.bench.firstcall import _as_user_meets_it

    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(3000, 12)), rng.integers(0, 2, 3000)
    engine = make_engine("nearkit-gemm", n_neighbors=5).fit(X, y)
    assert engine.estimator_._index._gtiles is not None
    engine = _as_user_meets_it(make_engine("nearkit-gemm", n_neighbors=5)).fit(X, y)
    assert engine.estimator_._index._gtiles is None
    assert make_engine("nearkit-gemm", n_neighbors=5).complete_index_at_fit  # (per engine)


def test_first_call_children_meet_the_default_jit_setting(monkeypatch, tmp_path):
    """A fresh process measured for first calls runs as a user's would: NEARKIT_JIT=wait,
    which the timing runs set, is not passed on (it made cold first predicts wait for
    their compile, 20-36 s)."""
    from nearkit.bench.firstcall import _run_child

    monkeypatch.setenv("NEARKIT_JIT", "wait")
    code = "import json, os; print(json.dumps({'jit': os.environ.get('NEARKIT_JIT')}))"
    record = _run_child({}, tmp_path, code)
    assert record["status"] == "ok" and record["jit"] is None


def test_grid_ties_are_not_mismatches():
    rng = np.random.default_rng(2)
    X = rng.integers(0, 3, size=(150, 3)).astype(float)
    y = rng.integers(0, 2, size=150)
    Q = rng.integers(0, 3, size=(40, 3)).astype(float)
    for name in ("scipy-ckdtree", "numpy-textbook", "sklearn-kd_tree"):
        engine = make_engine(name, n_neighbors=7).fit(X, y)
        check = check_neighbors(X, Q, *engine.kneighbors(Q, 7), 7)
        assert check["n_exact"] == len(Q), (name, check["examples"])


def test_check_detects_wrong_duplicate_and_near_tie_neighbours():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    Q = rng.normal(size=(3, 3))
    ref = reference_kth_distances(X, Q, 2)
    order = np.argsort(((X[None] - Q[:, None]) ** 2).sum(-1), axis=1)
    ind = order[:, :2].copy()
    ind[0] = ind[0, ::-1]  # same set, other order: still exact
    ind[1, 1] = order[1, 10]  # a farther point
    ind[2, 1] = ind[2, 0]  # a duplicate
    dist = np.sqrt(((X[ind] - Q[:, None]) ** 2).sum(-1))
    check = check_neighbors(X, Q, dist, ind, 2, reference=ref)
    assert (check["n_exact"], check["n_wrong"]) == (1, 2)
    assert [e["query"] for e in check["examples"]] == [1, 2]
    # a point at a near-tie (distance equal to 1e-6 relative) is reported as such
    X2 = np.array([[0.0], [1.0], [1.0 + 1e-6], [5.0]])
    check = check_neighbors(X2, np.array([[0.0]]), np.array([[0.0, 1.0]]),
                            np.array([[0, 2]]), 2)
    assert (check["n_near_tie"], check["n_wrong"]) == (1, 0)


def test_vote_distance_weights_and_zero_distances():
    dist = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 4.0]])
    ind = np.array([[0, 1, 2], [0, 1, 2]])
    proba, labels = vote(dist, ind, np.array([1, 0, 0]), 2, "distance")
    np.testing.assert_allclose(proba[0], [0.0, 1.0])  # only the exact match counts
    np.testing.assert_allclose(proba[1], [0.75 / 1.75, 1.0 / 1.75])
    np.testing.assert_array_equal(labels, [1, 1])
    _, tie = vote(dist[:, :2], ind[:, :2], np.array([1, 0, 0]), 2, "uniform")
    np.testing.assert_array_equal(tie, [0, 0])  # 1-1 ties go to the smallest class


def test_engine_names_and_settings():
    assert parse_engine_name("sklearn-auto[2t]") == ("sklearn-auto", 2)
    with pytest.raises(ValueError, match="unknown engine"):
        parse_engine_name("annoy")
    assert make_engine("nearkit-auto[1t]").n_threads == 1
    assert FaissEngine(metric="manhattan").unsupported() == "metric='manhattan' is not supported"
    assert make_engine("scipy-ckdtree", weights="gaussian").unsupported()
    assert make_engine("scipy-ckdtree", metric="minkowski", p=0.5).unsupported()
    assert make_engine("nearkit-auto", weights="dudani").unsupported() is None
    assert engine_unavailable("nearkit-auto") is None
    assert engine_unavailable("sklearn-kd_tree[1t]") is None


def test_measurement_helpers():
    with PeakMemory() as peak:
        block = np.ones(5_000_000)
        block[::4096] = 2.0
    assert peak.bytes >= 30_000_000
    assert peak.method in ("vmhwm", "tracemalloc")
    import numba

    before = numba.get_num_threads()
    with limit_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


def test_the_target_script_runs_the_dense_and_latency_targets(tmp_path):
    """``benchmarks/bench_engines.py --quick`` (a smoke run, not a measurement) completes the
    dense-data and single-row targets and the kernel diagnostic, and writes their records
    (the dense target had stopped on a changed return value)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_engines.py"
    out = tmp_path / "targets.json"
    done = subprocess.run([sys.executable, str(script), "--only", "2,latency,kernel", "--quick",
                           "--repeats", "1", "--json", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["dense"]["times_s"]["nearkit-auto"] > 0
    assert results["dense"]["agreement_with_nearkit"]["nearkit-auto"] == 1.0
    if "faiss-flatl2" in results["dense"]["times_s"]:
        assert len(results["dense"]["speedup_per_run"]) == 1
    assert results["latency_us"]["p50"] > 0
    assert set(results["kernel_us"]) == {"social_network_ads", "pima_diabetes"}
    assert min(results["kernel_us"].values()) > 0


def test_the_target_script_takes_a_subset_of_peers(capsys):
    """``--peers`` races nearkit against the named peers only; an unknown name is refused
    with the list of those it knows."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import bench_engines
    finally:
        sys.path.pop(0)
    args = bench_engines.parse_args(["--only", "1", "--peers", "faiss-flatl2,scipy-ckdtree"])
    assert args.peers == ("faiss-flatl2", "scipy-ckdtree")
    assert bench_engines.parse_args([]).peers == bench_engines.PEERS
    with pytest.raises(SystemExit):
        bench_engines.parse_args(["--peers", "faiss-ivf"])
    assert "--peers: unknown ['faiss-ivf']" in capsys.readouterr().err
