"""Print nearkit's predict speed-up against its peers, with 95% confidence intervals.

A quick look without the full study: the same protocol as ``nearkit bench`` (repeated
stratified splits, interleaved engines, warm-up, paired bootstrap), fewer engines, no
cross-validation and no report; ratios against the fastest peer of each dataset first.  Examples::

    python benchmarks/bench_speedup.py                       # bundled data, offline
    NEARKIT_DATA=../shared/datasets python benchmarks/bench_speedup.py \\
        --datasets bank_churn,loan_approval --engines nearkit-auto,sklearn-auto,faiss-flatl2
"""

from __future__ import annotations

import argparse

from nearkit.bench import summary
from nearkit.bench.protocol import BenchConfig, run_benchmark
from nearkit.bench.text import ratio_text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="iris,breast_cancer,wine")
    parser.add_argument("--engines", default="nearkit-auto,sklearn-auto,sklearn-brute,scipy-ckdtree")
    parser.add_argument("--baseline", default="sklearn-auto")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    config = BenchConfig(
        datasets=args.datasets.split(","), engines=args.engines.split(","),
        baseline=args.baseline, repeats=args.repeats, iterations=3, threads=[], sizes=[],
        first_call="none", latency_queries=5, cv=False,
    )
    results = run_benchmark(config)
    for (dataset, _), runs in summary.group_runs(results).items():
        peer = summary.fastest_peer(results, runs)
        for engine in summary.engines_of(results, runs):
            if engine == args.baseline:
                continue
            versus_peer = ("(it is the fastest peer)" if engine == peer else
                           f"vs the fastest peer {peer}: "
                           f"{ratio_text(summary.speedup(runs, engine, peer))}")
            res = summary.speedup(runs, engine, args.baseline)
            print(f"{dataset:>20}  {engine:<18} predict speed-up {versus_peer}; "
                  f"vs {args.baseline}: {ratio_text(res)}")


if __name__ == "__main__":
    main()
