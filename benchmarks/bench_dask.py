"""Throughput of nearkit on Dask against single-process nearkit, on the same cores.

Fits one training set of ``--n-train`` rows (a synthetic look-alike of a real dataset, or a
seeded Gaussian mixture), then times ``predict`` on ``--n-queries`` queries:

- single process: ``KNNClassifier(n_jobs=t)`` for t = 1 and 2 threads;
- ``ShardedKNNClassifier`` on a ``LocalCluster`` of 1 and 2 worker processes with 1 thread
  each (one shard per worker);
- ``ParallelPredictor`` (query-parallel: the whole model on every worker), same clusters.

Overhead is Dask time over single-process time on the same number of cores (``t``
workers against ``t`` threads): 1.00 means no overhead.  Fit time, data transfer and
numba compilation are excluded from the throughput (a warm-up query runs first) and
reported separately.  Every Dask prediction is checked against the single-process one.

Run: ``python benchmarks/bench_dask.py`` (about 10 minutes on 2 cores at the defaults).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
import warnings

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import nearkit
from nearkit import KNNClassifier
from nearkit.dask import ParallelPredictor, ShardedKNNClassifier

log = logging.getLogger("bench_dask")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=1_000_000, help="training rows")
    parser.add_argument("--n-queries", type=int, default=20_000, help="query rows")
    parser.add_argument("--data", default="spotify_tracks",
                        help="dataset to imitate with nearkit.datasets.make_like, or "
                             "'gaussian' for a seeded Gaussian mixture (default: %(default)s)")
    parser.add_argument("--n-features", type=int, default=20,
                        help="features of the 'gaussian' data (a look-alike keeps its "
                             "dataset's features)")
    parser.add_argument("--n-neighbors", type=int, default=5)
    parser.add_argument("--algorithm", default="auto", help="nearkit search engine")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="cluster sizes to time (worker processes, 1 thread each)")
    parser.add_argument("--modes", nargs="+", choices=["sharded", "parallel"],
                        default=["sharded", "parallel"])
    parser.add_argument("--no-malloc-trim", action="store_true",
                        help="start workers without the MALLOC_TRIM_THRESHOLD_ that Dask's "
                             "nanny sets by default (it makes glibc return every large freed "
                             "block to the OS, which slows kernels that allocate per tile)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_data(args):
    """(X, y, Q, description): training rows, labels and queries from one generator."""
    if args.data != "gaussian":
        try:
            from nearkit.datasets import make_like
        except ImportError:
            log.warning("nearkit.datasets is missing: using --data gaussian")
        else:
            train = make_like(args.data, n_samples=args.n_train, random_state=args.seed)
            queries = make_like(args.data, n_samples=args.n_queries, random_state=args.seed + 1)
            X = np.ascontiguousarray(train.X, dtype=np.float64)
            Q = np.ascontiguousarray(queries.X, dtype=np.float64)
            return X, np.asarray(train.y), Q, f"make_like({args.data!r}): {train.info['generator']}"
    rng = np.random.default_rng(args.seed)
    centres = rng.normal(scale=2.0, size=(3, args.n_features))
    y = rng.integers(0, 3, size=args.n_train)
    X = centres[y] + rng.normal(size=(args.n_train, args.n_features))
    Q = centres[rng.integers(0, 3, size=args.n_queries)] + rng.normal(
        size=(args.n_queries, args.n_features))
    return X, y, Q, f"seeded Gaussian mixture (3 classes, seed {args.seed})"


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def bench_single(X, y, Q, args, threads):
    model = KNNClassifier(args.n_neighbors, algorithm=args.algorithm, n_jobs=threads)
    _, fit_time = timed(lambda: model.fit(X, y))
    model.predict(Q[:8])  # compile
    predicted, seconds = timed(lambda: model.predict(Q))
    return predicted, seconds, fit_time


def worker_environment(args):
    """Dask config for the environment of the worker processes the nanny spawns."""
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    if args.no_malloc_trim:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {"distributed.nanny.pre-spawn-environ": environ}


def bench_cluster(X, y, Q, args, n_workers, mode):
    with (
        dask.config.set(worker_environment(args)),
        LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                     host="127.0.0.1", dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        if mode == "sharded":
            rows = -(-X.shape[0] // n_workers)  # one shard per worker
            model = ShardedKNNClassifier(args.n_neighbors, algorithm=args.algorithm).fit(
                da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows))
        else:
            single = KNNClassifier(args.n_neighbors, algorithm=args.algorithm).fit(X, y)
            model = ParallelPredictor(single, client=client)
        model.predict(Q[:8])  # every worker: receive its data, compile the kernels
        setup_time = time.perf_counter() - start
        predicted, seconds = timed(lambda: model.predict(Q))
    return predicted, seconds, setup_time


def main(argv=None):
    args = parse_args(argv)
    # the training rows travel inside the graph on purpose (fit time is not measured)
    warnings.filterwarnings("ignore", message="Sending large graph")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log.info("generating data")
    X, y, Q, description = make_data(args)
    m = Q.shape[0]
    print(f"nearkit {nearkit.__version__} on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; data: {description}")
    print(f"train {X.shape[0]:,} x {X.shape[1]}, queries {m:,}, k={args.n_neighbors}, "
          f"algorithm={args.algorithm!r}")
    environ = worker_environment(args)["distributed.nanny.pre-spawn-environ"]
    print("worker environment: " + " ".join(f"{key}={value}" for key, value in environ.items()))
    print("load average at start: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    print(f"{'setup':<34} {'cores':>5} {'seconds':>9} {'queries/s':>11} {'overhead':>9} "
          f"{'fit/setup s':>12}")

    single = {}
    for threads in sorted(set(args.workers)):
        log.info("single process, %d thread(s)", threads)
        predicted, seconds, fit_time = bench_single(X, y, Q, args, threads)
        single[threads] = (predicted, seconds)
        print(f"{'single-process KNNClassifier':<34} {threads:>5} {seconds:>9.2f} "
              f"{m / seconds:>11,.0f} {'1.00':>9} {fit_time:>12.2f}")
    reference = single[min(single)][0]
    for mode in args.modes:
        label = ("ShardedKNNClassifier" if mode == "sharded"
                 else "ParallelPredictor") + " ({} worker{})"
        for n_workers in args.workers:
            log.info("%s, %d worker(s)", mode, n_workers)
            predicted, seconds, setup_time = bench_cluster(X, y, Q, args, n_workers, mode)
            if not np.array_equal(predicted, reference):
                raise AssertionError(f"{mode} with {n_workers} workers predicted differently "
                                     "from single-process nearkit")
            overhead = seconds / single[n_workers][1]
            name = label.format(n_workers, "s" if n_workers > 1 else "")
            print(f"{name:<34} {n_workers:>5} {seconds:>9.2f} {m / seconds:>11,.0f} "
                  f"{overhead:>9.2f} {setup_time:>12.2f}")
    print("overhead = Dask seconds / single-process seconds on the same number of cores; "
          "every Dask prediction equals the single-process one.")
    print("load average at end: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))


if __name__ == "__main__":
    main()
