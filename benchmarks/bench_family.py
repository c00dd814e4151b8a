"""Issue 12's targets: each estimator of the family against its peer, from one run.

For each of the five datasets (80/20 stratified split, seed 0, the dataset's preprocessor
fitted on the training split, as ``bench_engines.py`` does), k=5:

- ``nn``: :class:`nearkit.NearestNeighbors` ``kneighbors(test)`` vs scikit-learn's
  ``NearestNeighbors(n_jobs=-1)``, the fastest of brute, kd_tree, ball_tree and auto
  (target >= 5x);
- ``regressor``: :class:`nearkit.KNNRegressor` ``predict(test)`` vs scikit-learn's
  ``KNeighborsRegressor(n_jobs=-1)``, fastest algorithm (target >= 5x).  The target is a
  numeric column of the dataset (:data:`TARGETS`), removed from the features before the
  preprocessor is fitted; rows where it is missing are dropped;
- ``imputer``: :class:`nearkit.KNNImputer` vs scikit-learn's ``KNNImputer``: ``transform`` of
  the scaled test split with 10% of its cells removed at random (seed 0), both fitted on the
  training split (fit only stores the rows; target >= 10x);
- ``outliers``: :class:`nearkit.KNNOutlierDetector` vs PyOD's ``KNN(n_jobs=-1)`` (fastest
  algorithm): ``fit`` on the training split, which scores every training point (target
  >= 5x).

Fits are not timed except the outlier detectors' (their fit is the work).  Timings are
medians over ``--repeats`` runs with every contender timed in each run
(:func:`nearkit.bench.measure.race`: the order rotating between runs, a pause before each
timed call so that the previous contender's spinning worker threads are gone, and a sub-50 ms
call timed as many consecutive calls as fill about 50 ms).  Numbers on a shared machine
are noisy: compare the ratios, which come from the same run.

Results are checked, never trusted: neighbour sets against scikit-learn's where no distance
tie crosses the k-th neighbour (rows whose k-th and (k+1)-th reference distances differ by
more than 1e-9, relative; scikit-learn breaks such ties by scan order), and nearkit's
neighbours against an independent float64 reference (:mod:`nearkit.bench.exactness`,
tie-aware); predictions on those clear rows, imputed cells whose row has no tie at its k-th
donor (exact nan-Euclidean distances), and outlier scores to 1e-9 (where PyOD's score is off
the float64 reference and nearkit's is on it, nearkit's counts as identical and the table says
so); outlier labels away from the threshold (a score equal to it is an inlier, and a peer's
rounding can move it).

Usage::

    NEARKIT_DATA=../shared/datasets python benchmarks/bench_family.py [--repeats 5]
        [--datasets bank_churn,pima_diabetes] [--only nn,regressor,imputer,outliers]
        [--quick] [--json out.json]

``--quick`` runs small subsets (2,000 training rows, 500 queries) once: a check that the
script runs, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
from bench_engines import QUICK_TEST, QUICK_TRAIN, console, fastest, split
from rich.table import Table
from sklearn.impute import KNNImputer as SKLearnKNNImputer
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neighbors import NearestNeighbors as SKLearnNearestNeighbors

from nearkit import KNNImputer, KNNOutlierDetector, KNNRegressor, NearestNeighbors
from nearkit.bench.exactness import check_neighbors, reference_kth_distances
from nearkit.bench.measure import race
from nearkit.datasets import list_datasets, load_dataset, make_preprocessor

K = 5
#: the regression target of each dataset: a numeric column, removed from the features
TARGETS = {
    "bank_churn": "Balance",
    "loan_approval": "loan_amnt",
    "spotify_tracks": "tempo",
    "pima_diabetes": "Glucose",
    "social_network_ads": "EstimatedSalary",
}
#: speed-up wanted over the peer, per estimator
GOALS = {"nn": 5.0, "regressor": 5.0, "imputer": 10.0, "outliers": 5.0}
SKLEARN_ALGORITHMS = ("brute", "kd_tree", "ball_tree", "auto")
#: share of the test cells removed for the imputer, and the agreement tolerance
MISSING_SHARE = 0.1
RTOL = 1e-9


# -- data ----------------------------------------------------------------------------------------

def subset(X_train, X_test, quick, *others):
    """The splits, cut to the --quick sizes; ``others`` follow the training rows."""
    if not quick:
        return (X_train, X_test, *others)
    return (X_train[:QUICK_TRAIN], X_test[:QUICK_TEST], *(o[:QUICK_TRAIN] for o in others))


def regression_split(name):
    """(X_train, y_train, X_test, y_test) with the target column removed from the features,
    the same rows as :func:`bench_engines.split` (rows with a missing target dropped)."""
    data = load_dataset(name)
    target = TARGETS[name]
    X_train, X_test, _, _ = train_test_split(data.X, data.y, test_size=0.2, stratify=data.y,
                                             random_state=0)
    X_train, X_test = (part[part[target].notna()] for part in (X_train, X_test))
    y_train, y_test = (part[target].to_numpy(np.float64) for part in (X_train, X_test))
    X_train, X_test = (part.drop(columns=[target]) for part in (X_train, X_test))
    pre = make_preprocessor(name).fit(X_train)
    return (np.ascontiguousarray(pre.transform(X_train), dtype=np.float64), y_train,
            np.ascontiguousarray(pre.transform(X_test), dtype=np.float64), y_test)


def with_missing(X, share=MISSING_SHARE, seed=0):
    """A copy of ``X`` with ``share`` of its cells set to NaN at random."""
    X = np.array(X, dtype=np.float64)
    X[np.random.default_rng(seed).random(X.shape) < share] = np.nan
    return X


def clear_rows(reference, k=K, margin=RTOL):
    """Rows whose k-th and (k+1)-th reference distances differ by more than ``margin``
    (relative): there the neighbour set does not depend on how ties are broken."""
    return reference[:, k - 1] < reference[:, k] * (1 - margin)


def nan_euclidean_kth(X, Q, k, chunk_elements=20_000_000):
    """The k smallest nan-Euclidean distances (scikit-learn's definition: over the coordinates
    both rows have, scaled by n_features / their count) from each row of ``Q`` to the rows of
    ``X``, summed directly in float64, ascending; rows sharing no coordinate are at inf."""
    out = np.empty((len(Q), k))
    chunk = max(1, chunk_elements // max(1, X.shape[0] * X.shape[1]))
    for start in range(0, len(Q), chunk):
        diff = Q[start:start + chunk, None, :] - X[None, :, :]
        present = ~np.isnan(diff)
        squares = np.where(present, diff * diff, 0.0).sum(axis=2)
        count = present.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.sqrt(squares * X.shape[1] / count)
        dist[count == 0] = np.inf
        out[start:start + chunk] = np.sort(np.partition(dist, k - 1, axis=1)[:, :k], axis=1)
    return out


# -- the four comparisons ------------------------------------------------------------------------

def bench_nn(X, Q, repeats):
    ours = NearestNeighbors(n_neighbors=K).fit(X)
    peers = {f"sklearn-{a}": SKLearnNearestNeighbors(n_neighbors=K, algorithm=a, n_jobs=-1)
             .fit(X) for a in SKLEARN_ALGORITHMS}
    contenders = {"nearkit": ours.kneighbors,
                  **{name: peer.kneighbors for name, peer in peers.items()}}
    medians, samples = race(contenders, Q, repeats)
    best_t, best = fastest(medians, "sklearn")
    dist, ind = ours.kneighbors(Q)
    _, peer_ind = peers[best].kneighbors(Q)
    reference = reference_kth_distances(X, Q, K + 1)
    clear = clear_rows(reference)
    same = np.all(np.sort(ind, axis=1) == np.sort(peer_ind, axis=1), axis=1)[clear]
    exact = check_neighbors(X, Q, dist, ind, K, reference=reference[:, :K])
    identical = bool(same.all() and exact["n_exact"] == len(Q))
    detail = (f"{same.mean():.2%} of {clear.sum()} clear rows same as {best[8:]}; "
              f"{exact['n_exact']}/{len(Q)} exact vs reference")
    return ours.algorithm_, medians, samples, best_t, best, identical, detail


def bench_regressor(X, y, Q, repeats):
    ours = KNNRegressor(K).fit(X, y)
    peers = {f"sklearn-{a}": KNeighborsRegressor(K, algorithm=a, n_jobs=-1).fit(X, y)
             for a in SKLEARN_ALGORITHMS}
    contenders = {"nearkit": ours.predict, **{name: peer.predict for name, peer in peers.items()}}
    medians, samples = race(contenders, Q, repeats)
    best_t, best = fastest(medians, "sklearn")
    close = np.isclose(ours.predict(Q), peers[best].predict(Q), rtol=RTOL, atol=0)
    clear = clear_rows(reference_kth_distances(X, Q, K + 1))
    identical = bool(close[clear].all())
    detail = (f"{close[clear].mean():.2%} of {clear.sum()} clear rows equal to {best[8:]} "
              f"({close.mean():.2%} of all rows)")
    return ours.algorithm_, medians, samples, best_t, best, identical, detail


def bench_imputer(X, Q, repeats):
    Q_missing = with_missing(Q)
    ours = KNNImputer(n_neighbors=K).fit(X)
    peer = SKLearnKNNImputer(n_neighbors=K).fit(X)
    contenders = {"nearkit": ours.transform, "sklearn": peer.transform}
    medians, samples = race(contenders, Q_missing, repeats)
    missing = np.isnan(Q_missing)
    ours_out, peer_out = ours.transform(Q_missing), peer.transform(Q_missing)
    close = np.isclose(ours_out, peer_out, rtol=RTOL, atol=RTOL) | ~missing
    # the training rows are complete, so every one is a donor for every cell; a cell's donors
    # are unambiguous where no tie crosses a row's k-th distance.  scikit-learn's distances
    # come from a matrix-product expansion (errors near 1e-8 at distance 0), hence the margin
    clear = clear_rows(nan_euclidean_kth(X, Q_missing, K + 1), margin=1e-6)[:, None] & missing
    identical = bool(close[clear].all())
    detail = (f"{close[clear].mean():.2%} of {clear.sum()} cells clear of ties equal "
              f"({close[missing].mean():.2%} of all {missing.sum()} imputed cells)")
    return "nan_euclidean", medians, samples, medians["sklearn"], "sklearn", identical, detail


def bench_outliers(X, repeats):
    from pyod.models.knn import KNN

    # PyOD 2 warns that ``algorithm`` is deprecated, but still passes it to scikit-learn
    warnings.filterwarnings("ignore", message="algorithm parameter is deprecated",
                            category=FutureWarning)

    contenders = {"nearkit": lambda rows: KNNOutlierDetector(K).fit(rows),
                  **{f"pyod-{a}": lambda rows, a=a: KNN(n_neighbors=K, algorithm=a,
                                                       n_jobs=-1).fit(rows)
                     for a in SKLEARN_ALGORITHMS}}
    medians, samples = race(contenders, X, repeats)
    best_t, best = fastest(medians, "pyod")
    ours, peer = contenders["nearkit"](X), contenders[best](X)
    close = np.isclose(ours.decision_scores_, peer.decision_scores_, rtol=RTOL, atol=0)
    # where the two differ, the float64 reference decides (scikit-learn's brute force expands
    # squares and loses digits between near-duplicates: spotify_tracks row 7501 scores
    # 1.3270682357e-4 there, 1.3270682269e-4 in the reference and in nearkit)
    disagree = np.flatnonzero(~close)
    peer_off = 0
    if disagree.size:
        kth = reference_kth_distances(X, X[disagree], K + 1)[:, K]  # (each row itself at 0)
        ours_exact = np.isclose(ours.decision_scores_[disagree], kth, rtol=1e-12, atol=0)
        peer_off = int(ours_exact.sum())
        close[disagree[ours_exact]] = True
    same_labels = ours.fit_predict(X) == np.where(peer.labels_ == 1, -1, 1)
    # a score equal to the threshold is an inlier; a peer's rounding can put an equal score a
    # few ulps above it, so labels are compared away from the threshold
    away = ~np.isclose(ours.decision_scores_, ours.threshold_, rtol=RTOL, atol=0)
    identical = bool(close.all() and same_labels[away].all()
                     and np.isclose(ours.threshold_, peer.threshold_, rtol=RTOL, atol=0))
    detail = (f"{close.mean():.2%} of {len(X)} scores equal to {best[5:]}"
              + (f" or, at {peer_off} where {best[5:]} is off the float64 reference, to it"
                 if peer_off else "") + "; labels: "
              f"{same_labels[away].mean():.2%} away from the threshold, "
              f"{same_labels[~away].sum()}/{(~away).sum()} at it")
    return ours.algorithm_, medians, samples, best_t, best, identical, detail


ESTIMATORS = {
    "nn": ("NearestNeighbors.kneighbors(test) vs scikit-learn NearestNeighbors", "queries"),
    "regressor": ("KNNRegressor.predict(test) vs scikit-learn KNeighborsRegressor", "queries"),
    "imputer": ("KNNImputer.transform(test, 10% missing) vs scikit-learn KNNImputer",
                "queries"),
    "outliers": ("KNNOutlierDetector.fit(train) vs PyOD KNN.fit", "scored"),
}


def run_one(key, name, quick, repeats):
    """(row for the table, record for --json) of one estimator on one dataset."""
    if key == "regressor":
        X, y, Q, _ = regression_split(name)
        X, Q, y = subset(X, Q, quick, y)
        result = bench_regressor(X, y, Q, repeats)
        shape, n_queries = X.shape, len(Q)
    else:
        X, _, Q = split(name)
        X, Q = subset(X, Q, quick)
        shape, n_queries = X.shape, (len(X) if key == "outliers" else len(Q))
        result = {"nn": lambda: bench_nn(X, Q, repeats),
                  "imputer": lambda: bench_imputer(X, Q, repeats),
                  "outliers": lambda: bench_outliers(X, repeats)}[key]()
    engine, medians, samples, best_t, best, identical, detail = result
    ratio = best_t / medians["nearkit"]
    record = {"estimator": key, "dataset": name, "n_train": shape[0], "n_features": shape[1],
              "n_queries": n_queries, "engine": engine, "times_s": medians, "samples_s": samples,
              "best_peer": best, "speedup": ratio, "goal": GOALS[key],
              "goal_met": ratio >= GOALS[key], "identical": identical, "detail": detail}
    row = (name, f"{shape[0]} x {shape[1]}", str(n_queries),
           f"{medians['nearkit'] * 1e3:.2f} ms ({engine})", f"{best_t * 1e3:.2f} ms ({best})",
           f"{ratio:.2f}x", f">= {GOALS[key]:g}x: " + ("met" if ratio >= GOALS[key] else "NOT met"),
           "yes" if identical else "NO", detail)
    return row, record


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--datasets", default=",".join(list_datasets()),
                        help="comma-separated datasets (default: the five)")
    parser.add_argument("--only", default=",".join(ESTIMATORS),
                        help=f"comma-separated estimators among {', '.join(ESTIMATORS)}")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_TRAIN} training rows, {QUICK_TEST} queries, 1 repeat: "
                             "checks that the script runs (not a measurement)")
    parser.add_argument("--json", help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    # every option checked before any work
    args.datasets = [d for d in args.datasets.split(",") if d]
    unknown = sorted(set(args.datasets) - set(list_datasets()))
    if unknown or not args.datasets:
        parser.error(f"--datasets: unknown {unknown}; choose among {', '.join(list_datasets())}")
    args.only = [o for o in args.only.split(",") if o]
    unknown = sorted(set(args.only) - set(ESTIMATORS))
    if unknown or not args.only:
        parser.error(f"--only: unknown {unknown}; choose among {', '.join(ESTIMATORS)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; got {args.repeats}")
    if args.quick:
        args.repeats = 1
    if args.json:
        with open(args.json, "a"):  # writable, before the run rather than after it
            pass
    return args


def main(argv=None):
    args = parse_args(argv)
    if "outliers" in args.only:
        try:
            import pyod  # noqa: F401
        except ImportError:
            console.print("[yellow]PyOD not installed: outliers skipped (pip install pyod)")
            args.only.remove("outliers")
    records = []
    for key in args.only:
        title, queries = ESTIMATORS[key]
        table = Table(title=f"{title} (k={K}{', --quick: not a measurement' if args.quick else ''})")
        for col in ("dataset", "train x d", queries, "nearkit (engine)", "fastest peer",
                    "speed-up", "target", "identical", "agreement"):
            table.add_column(col)
        for name in args.datasets:
            row, record = run_one(key, name, args.quick, args.repeats)
            table.add_row(*row)
            records.append(record)
        console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"quick": args.quick, "repeats": args.repeats, "results": records}, f,
                      indent=1)


if __name__ == "__main__":
    main()
