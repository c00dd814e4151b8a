"""Model selection in one neighbour pass against GridSearchCV, measured in one run.

For each of the five datasets (preprocessed as the benchmark does: the dataset's
preprocessor, here fitted on all rows since only time is measured), the grid
k = 1..30 x {uniform, distance, dudani, gaussian} under 5-fold stratified CV is searched by

- ``KNNClassifierCV`` (one search per fold),
- ``GridSearchCV(KNNClassifier())`` (a fit and a search per candidate and fold),
- ``GridSearchCV(KNeighborsClassifier(n_jobs=-1))`` (scikit-learn's two schemes, Dudani and
  Gaussian as callables).

It prints the times, the ratios (targets: >= 20x GridSearchCV over nearkit, >= 100x over
scikit-learn where its search takes over a second) and whether the mean test scores of
``KNNClassifierCV`` equal those of ``GridSearchCV(KNNClassifier())`` exactly.

Usage::

    NEARKIT_DATA=../shared/datasets python benchmarks/bench_cv.py [--datasets a,b]
        [--repeats 3] [--max-k 30] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from nearkit import KNNClassifier, KNNClassifierCV
from nearkit.bench.measure import settle, timed
from nearkit.datasets import list_datasets, load_dataset, make_preprocessor
from nearkit.weights import compute_weights

console = Console(width=200)
SCHEMES = ["uniform", "distance", "dudani", "gaussian"]


#: Dudani's and the Gaussian weights (sigma = d_k) as callables for scikit-learn: nearkit's
#: own definitions (nearkit.weights)
dudani = functools.partial(compute_weights, weights="dudani")
gaussian = functools.partial(compute_weights, weights="gaussian")


def data(name, max_rows=None):
    dataset = load_dataset(name)
    X = np.ascontiguousarray(make_preprocessor(name).fit_transform(dataset.X))
    return X[:max_rows], dataset.y[:max_rows]


def fit_seconds(search, X, y):
    """Seconds one ``search.fit(X, y)`` takes."""
    return timed(search.fit, X, y)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(list_datasets()))
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of KNNClassifierCV (the GridSearchCV runs are one each)")
    parser.add_argument("--max-k", type=int, default=30)
    parser.add_argument("--quick", action="store_true",
                        help="2,000 rows per dataset and k up to 10 (checks the script runs)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    max_k = 10 if args.quick else args.max_k
    ks = list(range(1, max_k + 1))
    table = Table(title=f"k = 1..{max_k} x {len(SCHEMES)} schemes x 5-fold stratified CV")
    for column in ("dataset", "rows x d", "KNNClassifierCV", "GridSearchCV(nearkit)", "x",
                   "GridSearchCV(sklearn)", "x", "same scores", "best (k, weights)"):
        table.add_column(column)
    results = []
    for name in args.datasets.split(","):
        X, y = data(name, 2000 if args.quick else None)
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        ours = KNNClassifierCV(n_neighbors=ks, weights=SCHEMES, cv=cv)
        ours.fit(X, y)  # compiles or loads the kernels (not counted)
        settle()  # ... and lets the background load finish: it holds the GIL while it runs
        t_ours = min(fit_seconds(ours, X, y) for _ in range(args.repeats))
        grid = GridSearchCV(KNNClassifier(), ours.param_grid_, cv=cv)
        t_grid = fit_seconds(grid, X, y)
        peer_grid = {"n_neighbors": ks, "weights": ["uniform", "distance", dudani, gaussian]}
        t_sk = fit_seconds(GridSearchCV(KNeighborsClassifier(n_jobs=-1), peer_grid, cv=cv),
                           X, y)
        same = bool(np.array_equal(ours.cv_results_["mean_test_score"],
                                   grid.cv_results_["mean_test_score"]))
        best = ours.best_params_
        results.append({"dataset": name, "rows": X.shape[0], "features": X.shape[1],
                        "knnclassifiercv_s": t_ours, "gridsearch_nearkit_s": t_grid,
                        "gridsearch_sklearn_s": t_sk, "same_scores": same,
                        "best_params": {k: str(v) for k, v in best.items()}})
        table.add_row(name, f"{X.shape[0]} x {X.shape[1]}", f"{t_ours:.2f} s",
                      f"{t_grid:.1f} s", f"{t_grid / t_ours:.0f}", f"{t_sk:.1f} s",
                      f"{t_sk / t_ours:.0f}", str(same),
                      f"({best['n_neighbors']}, {best['weights']})")
        console.print(f"{name}: done", highlight=False)
    console.print(table)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
