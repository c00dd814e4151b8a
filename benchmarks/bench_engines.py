"""Issue 3's targets, measured against peers in one run.

Prints, for each target, nearkit beside its peers measured in the same process:

1. the five datasets (80/20 stratified split, seed 0, preprocessing fitted on the training
   split, k=5): nearkit ``predict`` vs the fastest of scikit-learn's brute, kd_tree, ball_tree
   and auto (n_jobs=-1), FAISS IndexFlatL2 + vote, and scipy cKDTree(workers=-1) + vote;
2. distance weights and the Manhattan metric vs scikit-learn with the same options;
3. a 784-feature set: effective throughput 2*n*m*d/time vs numpy's float32 GEMM peak;
4. single-row ``predict`` latency on pima_diabetes;
5. peak memory predicting 100,000 queries against 100,000 x 20 training points
   (in a child process);
6. exactness: neighbours and distances equal to a float64 reference, tie-aware, at full size;
plus ``algorithm='auto'`` against the fastest engine on synthetic shapes (uniform, Gaussian,
clustered, mixed discrete; 100 to 1,000,000 rows; 3 to 200 features), and the first-call
(JIT compile) cost, in a child process with an empty numba cache.

Usage::

    NEARKIT_DATA=../shared/datasets python benchmarks/bench_engines.py [--repeats 5] [--only 1,2]

Timings are medians over ``--repeats`` runs, engines interleaved within each run; a run of a
sub-50 ms predict times as many consecutive calls as fill about 50 ms (like ``timeit``), the
same for every engine.  The engine order rotates between runs, and each run starts after a
0.3 s pause so that the previous engine's spinning worker threads are gone.  Numbers on a
shared machine are noisy: compare the ratios, which come from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from nearkit import KNNClassifier
from nearkit.datasets import list_datasets, load_dataset, make_preprocessor

console = Console(width=200)
K = 5
#: seconds of idle before each timed engine run (see ``compare``)
PAUSE_S = 0.3


def vote(labels_of_neighbours, n_classes):
    """Uniform vote, ties to the smallest class (scikit-learn's rule)."""
    counts = np.zeros((labels_of_neighbours.shape[0], n_classes))
    rows = np.arange(labels_of_neighbours.shape[0])
    for i in range(labels_of_neighbours.shape[1]):
        counts[rows, labels_of_neighbours[:, i]] += 1
    return np.argmax(counts, axis=1)


def median_time(fn, repeats, number=1):
    """Median over ``repeats`` runs of the mean time of ``number`` consecutive calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return float(np.median(times))


def calls_per_run(fn, target_s=0.05):
    """Calls to time together so that a run lasts about ``target_s`` (timeit's autorange):
    one call of a sub-millisecond predict is mostly timer and cache noise."""
    start = time.perf_counter()
    fn()
    return max(1, int(target_s / max(time.perf_counter() - start, 1e-7)))


def split(name):
    data = load_dataset(name)
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.2, stratify=data.y, random_state=0)
    pre = make_preprocessor(name).fit(X_train)
    return (np.ascontiguousarray(pre.transform(X_train)), np.asarray(y_train),
            np.ascontiguousarray(pre.transform(X_test)))


def peers(X, y, k, weights="uniform", metric="euclidean"):
    """name -> predict callable for each peer, fitted (their fit is not timed here)."""
    out = {}
    for algorithm in ("brute", "kd_tree", "ball_tree", "auto"):
        model = KNeighborsClassifier(k, algorithm=algorithm, weights=weights, metric=metric,
                                     n_jobs=-1).fit(X, y)
        out[f"sklearn-{algorithm}"] = model.predict
    if weights == "uniform" and metric == "euclidean":
        classes, y_enc = np.unique(y, return_inverse=True)
        try:
            import faiss

            index = faiss.IndexFlatL2(X.shape[1])
            index.add(X.astype(np.float32))
            out["faiss-flatl2+vote"] = lambda Q: classes[vote(
                y_enc[index.search(np.ascontiguousarray(Q, dtype=np.float32), k)[1]],
                len(classes))]
        except ImportError:
            console.print("[yellow]faiss-cpu not installed: FAISS skipped "
                          "(pip install nearkit[faiss])")
        from scipy.spatial import cKDTree

        tree = cKDTree(X)
        out["ckdtree+vote"] = lambda Q: classes[vote(
            y_enc[np.atleast_2d(tree.query(Q, k, workers=-1)[1])], len(classes))]
    return out


def compare(X, y, Q, repeats, weights="uniform", metric="euclidean"):
    ours = KNNClassifier(K, weights=weights, metric=metric).fit(X, y)
    engines = {"nearkit": ours.predict, **peers(X, y, K, weights, metric)}
    for fn in engines.values():  # warm-up, not counted (compiles nearkit's kernels)
        fn(Q[:50])
    number = {name: calls_per_run(lambda fn=fn: fn(Q)) for name, fn in engines.items()}
    times = {name: [] for name in engines}
    names = list(engines)
    for run in range(repeats):
        # rotate the order, and pause before each engine: BLAS and OpenMP worker threads
        # busy-wait after a call (OpenBLAS ~0.1 s), taking a core from whoever runs next
        for name in names[run % len(names):] + names[:run % len(names)]:
            time.sleep(PAUSE_S)
            times[name].append(median_time(lambda fn=engines[name]: fn(Q), 1, number[name]))
    agree = {name: float(np.mean(fn(Q) == engines["nearkit"](Q))) for name, fn in
             engines.items()}
    return ours.algorithm_, {name: float(np.median(t)) for name, t in times.items()}, agree


def target_datasets(repeats, results):
    table = Table(title="1. predict on the five datasets (k=5, uniform, euclidean)")
    for col in ("dataset", "train x d", "queries", "nearkit (engine)", "best sklearn",
                "x vs sklearn", "faiss+vote", "x vs faiss", "ckdtree+vote", "x vs ckdtree",
                "same predictions as sklearn-brute"):
        table.add_column(col)
    for name in list_datasets():
        X, y, Q = split(name)
        engine, t, agree = compare(X, y, Q, repeats)
        best = min((v, k) for k, v in t.items() if k.startswith("sklearn"))
        row = {"dataset": name, "n_train": X.shape[0], "d": X.shape[1], "n_queries": len(Q),
               "engine": engine, "times_s": t, "best_sklearn": best[1],
               "speedup_vs_sklearn": best[0] / t["nearkit"]}
        results["datasets"].append(row)
        table.add_row(
            name, f"{X.shape[0]} x {X.shape[1]}", str(len(Q)),
            f"{t['nearkit'] * 1e3:.2f} ms ({engine})",
            f"{best[0] * 1e3:.2f} ms ({best[1][8:]})", f"{best[0] / t['nearkit']:.2f}",
            f"{t.get('faiss-flatl2+vote', np.nan) * 1e3:.2f} ms",
            f"{t.get('faiss-flatl2+vote', np.nan) / t['nearkit']:.2f}",
            f"{t['ckdtree+vote'] * 1e3:.2f} ms", f"{t['ckdtree+vote'] / t['nearkit']:.2f}",
            f"{agree['sklearn-brute']:.4f}")
    console.print(table)


def target_options(repeats, results):
    table = Table(title="2. other options vs scikit-learn with the same options")
    for col in ("dataset", "option", "nearkit", "best sklearn", "x vs sklearn"):
        table.add_column(col)
    for name in ("bank_churn", "spotify_tracks", "loan_approval"):
        X, y, Q = split(name)
        for label, kw in (("weights=distance", {"weights": "distance"}),
                          ("metric=manhattan", {"metric": "manhattan"})):
            engine, t, _ = compare(X, y, Q, repeats, **kw)
            best = min((v, k) for k, v in t.items() if k.startswith("sklearn"))
            results["options"].append({"dataset": name, "option": label, "times_s": t,
                                       "speedup_vs_sklearn": best[0] / t["nearkit"]})
            table.add_row(name, label, f"{t['nearkit'] * 1e3:.1f} ms ({engine})",
                          f"{best[0] * 1e3:.1f} ms ({best[1][8:]})",
                          f"{best[0] / t['nearkit']:.2f}")
    console.print(table)


def target_throughput(repeats, results):
    rng = np.random.default_rng(0)
    n, m, d = 8000, 2000, 784
    X = rng.random((n, d))
    Q = rng.random((m, d))
    y = rng.integers(0, 10, n)
    A = rng.random((4096, 4096), dtype=np.float32)
    A @ A
    gemm_s = median_time(lambda: A @ A, repeats)
    peak = 2 * 4096**3 / gemm_s
    model = KNNClassifier(K).fit(X, y)
    model.predict(Q[:10])
    t = median_time(lambda: model.predict(Q), repeats)
    ours = 2 * n * m * d / t
    results["throughput"] = {"gemm_peak_flops": peak, "nearkit_flops": ours,
                             "fraction": ours / peak, "predict_s": t, "engine": model.algorithm_}
    console.print(f"3. 784 features ({n} x {m}): nearkit {t * 1e3:.1f} ms = {ours / 1e9:.1f} "
                  f"GFLOP/s effective ({model.algorithm_}); numpy float32 GEMM peak "
                  f"{peak / 1e9:.1f} GFLOP/s; fraction {ours / peak:.2%} (target >= 50%)")


def row_latencies_us(model, Q, calls):
    """Wall time of ``calls`` single-row predicts, cycling through the rows of ``Q``."""
    model.predict(Q[:1])  # warm-up (compiles nearkit's kernels)
    times = np.empty(calls)
    for i in range(calls):
        row = Q[i % len(Q): i % len(Q) + 1]
        start = time.perf_counter()
        model.predict(row)
        times[i] = time.perf_counter() - start
    return times * 1e6


def target_latency(results):
    X, y, Q = split("pima_diabetes")
    times = row_latencies_us(KNNClassifier(K).fit(X, y), Q, 5000)
    peer_p50 = float(np.median(row_latencies_us(KNeighborsClassifier(K).fit(X, y), Q, 500)))
    results["latency_us"] = {"p50": float(np.median(times)),
                             "p99": float(np.percentile(times, 99)), "sklearn_p50": peer_p50}
    console.print(f"4. single-row predict, pima_diabetes: p50 {np.median(times):.1f} us, "
                  f"p99 {np.percentile(times, 99):.1f} us (target p50 <= 50 us); "
                  f"scikit-learn p50 {peer_p50:.0f} us")


MEMORY_CHILD = r"""
import sys, json, numpy as np
from nearkit import KNNClassifier
def status_mib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
def rss_mib():
    return status_mib('VmRSS')
rng = np.random.default_rng(0)
X = rng.random((100_000, 20)); Q = rng.random((100_000, 20)); y = rng.integers(0, 2, 100_000)
# compile every kernel first (LLVM's memory is a one-time cost, not the search's)
for algorithm in ("brute", "gemm", "kd_tree"):
    KNNClassifier(5, algorithm=algorithm).fit(X[:5000], y[:5000]).predict(Q[:100])
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # reset the peak (VmHWM) to the current RSS: compiling was higher
base = rss_mib()
model = KNNClassifier(5).fit(X, y)
fitted = rss_mib()
model.predict(Q)
peak = status_mib('VmHWM')  # ru_maxrss is not reset by clear_refs
print(json.dumps({"base_mib": base, "fitted_mib": fitted, "peak_mib": peak,
                  "above_inputs_mib": peak - base, "index_mib": fitted - base,
                  "engine": model.algorithm_}))
"""


def target_memory(results):
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD], capture_output=True, text=True,
                         check=True)
    mem = json.loads(out.stdout.strip().splitlines()[-1])
    results["memory"] = mem
    console.print(f"5. memory, 100,000 queries vs 100,000 x 20: peak RSS {mem['peak_mib']:.0f} "
                  f"MiB, {mem['above_inputs_mib']:.0f} MiB above the inputs ({mem['engine']}; "
                  f"the fitted index holds {mem['index_mib']:.0f} MiB of it) "
                  "(target <= 256 MiB)")


def reference_knn(X, Q, k, metric="euclidean", chunk=256):
    """Float64 reference, feature by feature, in chunks of queries: (dist, ind)."""
    dist = np.empty((len(Q), k))
    ind = np.empty((len(Q), k), dtype=np.int64)
    for start in range(0, len(Q), chunk):
        block = Q[start:start + chunk]
        acc = np.zeros((len(block), len(X)))
        for j in range(X.shape[1]):
            diff = block[:, j][:, None] - X[:, j][None, :]
            acc += diff * diff if metric == "euclidean" else np.abs(diff)
        full = np.sqrt(acc) if metric == "euclidean" else acc
        order = np.argsort(full, axis=1, kind="stable")[:, :k]  # stable: lower index first
        ind[start:start + chunk] = order
        dist[start:start + chunk] = np.take_along_axis(full, order, axis=1)
    return dist, ind


def target_exactness(results):
    table = Table(title="6. exactness at full size vs the float64 reference")
    for col in ("dataset", "metric", "engine", "rows with identical neighbours",
                "max |distance difference|"):
        table.add_column(col)
    for name in list_datasets():
        X, y, Q = split(name)
        for metric in ("euclidean", "manhattan"):
            ref_d, ref_i = reference_knn(X, Q, K, metric)
            for algorithm in ("auto", "brute", "gemm", "kd_tree", "tiled"):
                try:
                    model = KNNClassifier(K, metric=metric, algorithm=algorithm).fit(X, y)
                except ValueError:
                    continue
                d, i = model.kneighbors(Q)
                same = float(np.mean(np.all(i == ref_i, axis=1)))
                err = float(np.abs(d - ref_d).max())
                results["exactness"].append({"dataset": name, "metric": metric,
                                             "engine": model.algorithm_, "identical_rows": same,
                                             "max_abs_diff": err})
                table.add_row(name, metric, f"{algorithm} -> {model.algorithm_}",
                              f"{same:.4%}", f"{err:.3g}")
    console.print(table)


def _shapes():
    """(label, metric, X, Q) of the synthetic shapes ``algorithm='auto'`` is checked on."""
    rng = np.random.default_rng(0)

    def mixed(n):  # one-hot, binary and ordinal columns beside continuous ones (like bank)
        group = rng.integers(0, 3, n)
        return np.column_stack([np.eye(3)[group], rng.integers(0, 2, (n, 2)),
                                rng.integers(0, 5, (n, 2)), rng.standard_normal((n, 5))])

    blobs = rng.standard_normal((20, 8)) * 5
    shapes = [("uniform", 100, 3), ("uniform", 10_000, 3), ("uniform", 1_000_000, 3),
              ("gaussian", 10_000, 20), ("gaussian", 200_000, 20), ("uniform", 10_000, 200),
              ("clustered", 100_000, 8), ("mixed discrete", 100_000, 12)]
    for kind, n, d in shapes:
        total = n + 1000
        if kind == "uniform":
            data = rng.random((total, d))
        elif kind == "gaussian":
            data = rng.standard_normal((total, d))
        elif kind == "clustered":
            data = blobs[rng.integers(0, len(blobs), total)] + rng.standard_normal((total, d))
        else:
            data = mixed(total)
        for metric in ("euclidean", "manhattan"):
            yield f"{kind} {n:,} x {d}", metric, data[:n], data[n:]


def target_auto(results):
    """Is 'auto' close to the fastest engine on shapes it was not tuned on?"""
    table = Table(title="auto on synthetic shapes (1,000 queries, k=5): chosen engine vs the "
                        "fastest, median of 3 predicts")
    for col in ("shape", "metric", "auto ->", "auto", "fastest engine", "auto / fastest"):
        table.add_column(col)
    results["auto"] = []
    for label, metric, X, Q in _shapes():
        y = np.arange(len(X)) % 2
        times = {}
        for algorithm in ("auto", "brute", "gemm", "kd_tree", "tiled"):
            if algorithm == "gemm" and metric != "euclidean":
                continue
            model = KNNClassifier(K, metric=metric, algorithm=algorithm).fit(X, y)
            model.predict(Q[:10])
            times[algorithm] = median_time(lambda m=model, q=Q: m.predict(q), 3)
            if algorithm == "auto":
                chosen = model.algorithm_
        best = min((t, a) for a, t in times.items() if a != "auto")
        ratio = times["auto"] / best[0]
        results["auto"].append({"shape": label, "metric": metric, "chosen": chosen,
                                "times_s": times, "auto_over_fastest": ratio})
        table.add_row(label, metric, chosen, f"{times['auto'] * 1e3:.1f} ms",
                      f"{best[1]} {best[0] * 1e3:.1f} ms", f"{ratio:.2f}")
    console.print(table)


COMPILE_CHILD = r"""
import sys, time, json, numpy as np
t0 = time.perf_counter()
from nearkit import KNNClassifier
t1 = time.perf_counter()
rng = np.random.default_rng(0)
X = rng.random((5000, 20)); y = rng.integers(0, 2, 5000); Q = rng.random((2000, 20))
out = {"import_s": t1 - t0}
for algorithm in ("brute", "gemm", "kd_tree", "tiled"):
    t2 = time.perf_counter(); model = KNNClassifier(5, algorithm=algorithm).fit(X, y)
    t3 = time.perf_counter(); model.predict(Q); t4 = time.perf_counter(); model.predict(Q)
    t5 = time.perf_counter()
    out[algorithm] = {"fit_s": t3 - t2, "first_predict_s": t4 - t3, "second_predict_s": t5 - t4}
print(json.dumps(out))
"""


def target_compile(results):
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold cache", "warm cache"):
            run = subprocess.run([sys.executable, "-c", COMPILE_CHILD], capture_output=True,
                                 text=True, check=True, env=env)
            out[label] = json.loads(run.stdout.strip().splitlines()[-1])
    results["compile"] = out
    for label, r in out.items():
        engines = ", ".join(
            f"{name}: fit {e['fit_s']:.2f} s + first predict {e['first_predict_s']:.2f} s, "
            f"next predict {e['second_predict_s'] * 1e3:.1f} ms"
            for name, e in r.items() if name != "import_s")
        console.print(f"JIT, {label}: import {r['import_s'] * 1e3:.0f} ms; {engines}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="1,2,3,4,5,6,auto,jit",
                        help="comma-separated targets to run (1-6, auto, jit)")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results = {"datasets": [], "options": [], "exactness": []}
    steps = [("1", lambda: target_datasets(args.repeats, results)),
             ("2", lambda: target_options(args.repeats, results)),
             ("3", lambda: target_throughput(args.repeats, results)),
             ("4", lambda: target_latency(results)),
             ("5", lambda: target_memory(results)),
             ("6", lambda: target_exactness(results)),
             ("auto", lambda: target_auto(results)),
             ("jit", lambda: target_compile(results))]
    for key, step in steps:
        if key in only:
            step()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
