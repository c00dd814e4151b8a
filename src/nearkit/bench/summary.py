"""From raw results to the numbers tables show: samples per engine, CIs, speed-ups, tests.

Everything here reads ``results.json`` content only (never the machine), so a report rebuilt
from the file is the same.  Units: seconds throughout; predict times are per query.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from nearkit.bench.results import QUALITY_MEASURES
from nearkit.bench.stats import mcnemar, median_ci, percentiles, speedup_ci, t_interval


def setting_key(run):
    """The setting of a run: ``(n_neighbors, weights, metric, p)``."""
    return (run["n_neighbors"], run["weights"], run["metric"], run["p"])


def setting_label(key):
    """Human form of a setting, e.g. ``'k=5, uniform, euclidean'``."""
    k, weights, metric, p = key
    metric = f"minkowski p={p:g}" if metric == "minkowski" else metric
    return f"k={k}, {weights}, {metric}"


def group_runs(results):
    """Runs by ``(dataset, setting)``, in the stored order, each list ordered by repeat."""
    groups = defaultdict(list)
    for run in results["runs"]:
        groups[(run["dataset"], setting_key(run))].append(run)
    return {key: sorted(runs, key=lambda r: r["repeat"]) for key, runs in groups.items()}


def engines_of(results, runs):
    """Engines of a group of runs, in the order of the ``engines`` table of the results."""
    seen = {name for run in runs for name in run["engines"]}
    return [name for name in results["engines"] if name in seen]


def engine_samples(runs, engine):
    """Every stored sample of one engine across the repeats of a group.

    Returns
    -------
    dict
        ``status`` and ``note`` (``'ok'``, or the status and note of the first repeat where
        it did not run: an engine that failed in some repeats keeps the samples of the others),
        ``fit`` and ``predict_pq`` (lists per repeat), ``latency`` (pooled), ``memory``,
        ``quality`` (lists per measure, one value per repeat), ``confusion`` (summed),
        ``check`` (summed counts), ``info`` and ``n_queries``.
    """
    out = {"status": "ok", "note": None, "fit": [], "predict_pq": [], "latency": [],
           "memory": None, "quality": {m: [] for m in QUALITY_MEASURES}, "confusion": None,
           "check": {"n_checked": 0, "n_exact": 0, "n_near_tie": 0, "n_wrong": 0,
                     "max_reported_distance_error": None, "examples": []},
           "info": {}, "n_queries": None, "repeats": []}
    for run in runs:
        record = run["engines"].get(engine)
        if record is None or record["status"] != "ok":
            if record is not None and out["status"] == "ok":
                out["status"], out["note"] = record["status"], record["note"]
            continue
        out["repeats"].append(run["repeat"])
        n = record["n_queries"]
        out["n_queries"] = n
        out["fit"].append(record["fit_s"])
        out["predict_pq"].append([t / n for t in record["predict_s"]])
        out["latency"].extend(record["latency_s"])
        out["memory"] = out["memory"] or record.get("memory")
        out["info"] = out["info"] or record.get("info", {})
        for measure in QUALITY_MEASURES:
            value = record["quality"].get(measure)
            if value is not None:
                out["quality"][measure].append(value)
        matrix = np.asarray(record["quality"]["confusion_matrix"])
        out["confusion"] = matrix if out["confusion"] is None else out["confusion"] + matrix
        check = record["check"]
        for key in ("n_checked", "n_exact", "n_near_tie", "n_wrong"):
            out["check"][key] += check[key]
        err = check.get("max_reported_distance_error")
        if err is not None:
            prev = out["check"]["max_reported_distance_error"]
            out["check"]["max_reported_distance_error"] = err if prev is None else max(prev, err)
        for example in check["examples"]:
            if len(out["check"]["examples"]) < 3:
                out["check"]["examples"].append({"repeat": run["repeat"], **example})
    return out


def time_stats(per_repeat):
    """Mean (t-interval over repeat means) and median (bootstrap over all samples)."""
    flat = [t for values in per_repeat for t in values]
    return {
        "mean": t_interval([np.mean(values) for values in per_repeat if values]),
        "median": median_ci(flat),
    }


def paired(runs, engine, baseline, measure):
    """Samples of two engines on the repeats where both ran, as lists per repeat."""
    a, b = [], []
    for run in runs:
        ra, rb = run["engines"].get(engine), run["engines"].get(baseline)
        if ra is None or rb is None or ra["status"] != "ok" or rb["status"] != "ok":
            continue
        if measure == "predict_pq":
            a.append([t / ra["n_queries"] for t in ra["predict_s"]])
            b.append([t / rb["n_queries"] for t in rb["predict_s"]])
        else:
            a.append(ra[measure])
            b.append(rb[measure])
    return a, b


def speedup(runs, engine, baseline, measure="predict_pq"):
    """Speed-up of ``engine`` over ``baseline`` with its paired bootstrap CI (or None)."""
    a, b = paired(runs, engine, baseline, measure)
    if not a:
        return None
    return speedup_ci(b, a)


def mcnemar_against(runs, engine, baseline):
    """McNemar's test of ``engine`` against ``baseline``, pooled over repeats (or None).

    Queries are paired within each repeat; when one engine was timed on fewer queries (a
    capped engine), only the queries both predicted are compared.
    """
    correct_a, correct_b = [], []
    for run in runs:
        ra, rb = run["engines"].get(engine), run["engines"].get(baseline)
        if ra is None or rb is None or ra["status"] != "ok" or rb["status"] != "ok":
            continue
        n = min(len(ra["y_pred"]), len(rb["y_pred"]))
        truth = np.asarray(run["y_true"][:n])
        correct_a.append(np.asarray(ra["y_pred"][:n]) == truth)
        correct_b.append(np.asarray(rb["y_pred"][:n]) == truth)
    if not correct_a:
        return None
    result = mcnemar(np.concatenate(correct_a), np.concatenate(correct_b))
    result["n"] = int(sum(len(c) for c in correct_a))
    return result


def fastest_peer(results, runs):
    """The fastest peer of a group of runs, or None when no peer ran.

    A peer is any engine not written by nearkit (family other than ``'nearkit'``; its
    thread-limited variants included); the fastest has the smallest mean over repeats of the
    mean predict time per query.  It is the fairest single yardstick: scikit-learn's
    ``n_jobs=-1`` baseline pays thread start-up on tiny tables, where a one-thread run or a
    search-only peer is faster.
    """
    best = None
    for engine in engines_of(results, runs):
        if results["engines"][engine]["family"] == "nearkit":
            continue
        per_repeat = [np.mean(values) for values in engine_samples(runs, engine)["predict_pq"]
                      if values]
        if per_repeat and (best is None or np.mean(per_repeat) < best[0]):
            best = (float(np.mean(per_repeat)), engine)
    return None if best is None else best[1]


def engine_table(results, runs, baseline):
    """One row of aggregated statistics per engine of a group of runs.

    Each row holds speed-ups against ``baseline`` and against the group's
    :func:`fastest_peer` (``speedup_peer_predict``, ``speedup_peer_fit``; None for the peer
    itself), and the peer's name as ``fastest_peer``.
    """
    rows = []
    peer = fastest_peer(results, runs)
    for engine in engines_of(results, runs):
        samples = engine_samples(runs, engine)
        row = {"engine": engine, "status": samples["status"], "note": samples["note"],
               "samples": samples}
        if samples["repeats"]:
            row["fit"] = time_stats(samples["fit"])
            row["predict_pq"] = time_stats(samples["predict_pq"])
            row["latency_p50"], row["latency_p99"] = percentiles(samples["latency"])
            row["quality"] = {m: t_interval(v) for m, v in samples["quality"].items() if v}
            row["speedup_predict"] = speedup(runs, engine, baseline, "predict_pq")
            row["speedup_fit"] = speedup(runs, engine, baseline, "fit_s")
            row["fastest_peer"] = peer
            beside = peer is not None and engine != peer
            row["speedup_peer_predict"] = speedup(runs, engine, peer) if beside else None
            row["speedup_peer_fit"] = speedup(runs, engine, peer, "fit_s") if beside else None
            row["mcnemar"] = None if engine == baseline else mcnemar_against(runs, engine, baseline)
        rows.append(row)
    return rows


def thread_pairs(results):
    """(engine at all cores, the same engine limited to N threads) pairs present in results."""
    pairs = []
    for name, entry in results["engines"].items():
        if entry["threads"] is not None and entry["base"] in results["engines"]:
            pairs.append((entry["base"], name, entry["threads"]))
    return pairs


def scaling_table(results):
    """Median fit and predict times by engine and training-set size."""
    table = defaultdict(dict)
    for record in results.get("scaling", []):
        if record["status"] == "ok" and record["predict_s"]:
            table[record["engine"]][record["n_train"]] = {
                "fit": float(np.median(record["fit_s"])),
                "predict": float(np.median(record["predict_s"])),
                "n_queries": record["n_queries"],
            }
    return dict(table)
