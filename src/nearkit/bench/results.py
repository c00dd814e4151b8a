"""Storage of a run: ``results.json`` (raw, with the environment) and ``results.csv`` (tidy).

Everything a table or plot shows is derived from ``results.json``; :func:`write_outputs`
always builds the report from the file as written (after a JSON round trip), so
``nearkit report DIR`` reproduces ``report.md`` byte for byte.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

#: version 2 added ``cv`` (the cross-validated k and weights); version 1 files still read
SCHEMA_VERSION = 2
#: versions :func:`~nearkit.bench.schema.validate_results` accepts
READABLE_VERSIONS = (1, 2)
CSV_COLUMNS = (
    "section", "dataset", "n_neighbors", "weights", "metric", "p", "repeat", "engine",
    "threads", "detail", "measure", "iteration", "value",
)
QUALITY_MEASURES = (
    "accuracy", "balanced_accuracy", "precision", "recall", "f1", "fbeta", "roc_auc",
)


def jsonable(obj):
    """A copy of ``obj`` made of JSON types only (NaN and infinities become None).

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({1: np.float64("nan"), "a": (np.int64(2), np.array([0.5]))})
    {'1': None, 'a': [2, [0.5]]}
    """
    if isinstance(obj, dict):
        return {str(key): jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def write_json(results, path):
    """Write ``results`` to ``path`` (UTF-8, NaN-free JSON)."""
    text = json.dumps(jsonable(results), indent=1, allow_nan=False, ensure_ascii=False)
    Path(path).write_text(text + "\n", encoding="utf-8")


def load_results(path):
    """Read a ``results.json`` (a file or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))


def tidy_rows(results):
    """One dict per stored number, with the columns :data:`CSV_COLUMNS`."""
    rows = []

    def add(section, measure, value, iteration="", **keys):
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(keys, section=section, measure=measure, iteration=iteration, value=value)
        rows.append(row)

    for run in results["runs"]:
        base = {k: run[k] for k in ("dataset", "n_neighbors", "weights", "metric", "p", "repeat")}
        for engine, record in sorted(run["engines"].items()):
            keys = {**base, "engine": engine,
                    "threads": "" if record.get("threads") is None else record["threads"]}
            if record["status"] != "ok":
                add("run", "status", record["status"], detail=record.get("note") or "", **keys)
                continue
            for measure in ("fit_s", "predict_s", "latency_s"):
                for i, value in enumerate(record.get(measure, [])):
                    add("run", measure, value, i, **keys)
            n_queries = record.get("n_queries") or 0
            for i, value in enumerate(record.get("predict_s", [])):
                add("run", "predict_per_query_s", value / n_queries if n_queries else "", i, **keys)
            add("run", "n_queries", n_queries, **keys)
            if record.get("memory"):
                add("run", "peak_memory_bytes", record["memory"]["bytes"],
                    detail=record["memory"]["method"], **keys)
            for measure in QUALITY_MEASURES:
                value = record.get("quality", {}).get(measure)
                add("run", measure, "" if value is None else value, **keys)
            check = record.get("check", {})
            for measure in ("n_checked", "n_exact", "n_near_tie", "n_wrong"):
                add("run", f"neighbors_{measure}", check.get(measure, ""), **keys)
    for record in results.get("first_call", []):
        for measure in ("first_fit_s", "first_predict_s", "steady_fit_s", "steady_predict_s"):
            if measure in record:
                add("first_call", measure, record[measure], engine=record["engine"],
                    detail=f"cache={record['cache']}")
    for record in results.get("scaling", []):
        for measure in ("fit_s", "predict_s"):
            for i, value in enumerate(record.get(measure, [])):
                add("scaling", measure, value, i, dataset=record["dataset"],
                    engine=record["engine"], detail=f"n_train={record['n_train']}")
    for record in results.get("cv", []):
        if record["status"] != "ok":
            add("cv", "status", record["status"], dataset=record["dataset"],
                detail=record["note"] or "")
            continue
        for weights in record["weights"]:
            for i, k in enumerate(record["ks"]):
                for measure in ("mean_test_score", "std_test_score"):
                    add("cv", measure, record[measure][weights][i], dataset=record["dataset"],
                        n_neighbors=k, weights=weights, detail=f"{record['folds']}-fold")
        add("cv", "search_s", record["search_s"], dataset=record["dataset"])
    for record in results.get("profiles", []):
        for measure in ("predict_s", "kneighbors_s"):
            if measure in record:
                add("profile", measure, record[measure], dataset=record["dataset"],
                    engine=record["engine"])
        for phase, seconds in (record.get("phases") or {}).items():
            if phase != "callees":
                add("profile", "phase_s", seconds, dataset=record["dataset"],
                    engine=record["engine"], detail=phase)
    return rows


def write_csv(results, path):
    """Write the tidy rows of ``results`` to ``path``."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(tidy_rows(results))


def build_outputs(out_dir):
    """(Re)build ``results.csv``, ``report.md`` and the PNG plots from ``results.json``.

    Parameters
    ----------
    out_dir : str or Path
        Folder holding ``results.json``.

    Returns
    -------
    list of Path
        The files written.
    """
    from nearkit.bench.plots import write_plots
    from nearkit.bench.report import render_report
    from nearkit.bench.schema import validate_results

    out_dir = Path(out_dir)
    results = load_results(out_dir)
    validate_results(results)
    write_csv(results, out_dir / "results.csv")
    report = out_dir / "report.md"
    plots = write_plots(results, out_dir)
    report.write_text(render_report(results, [p.name for p in plots]), encoding="utf-8")
    return [out_dir / "results.json", out_dir / "results.csv", report, *plots]


def write_outputs(results, out_dir):
    """Write ``results.json`` then build every other output from it.

    Parameters
    ----------
    results : dict
        Output of :func:`nearkit.bench.protocol.run_benchmark`.
    out_dir : str or Path
        Folder, created if missing.

    Returns
    -------
    list of Path
        The files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(results, out_dir / "results.json")
    return build_outputs(out_dir)
