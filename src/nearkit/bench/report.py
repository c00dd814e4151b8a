"""``report.md``: tables with confidence intervals and a few findings, from results alone.

The text depends only on the content of ``results.json`` (no clock, no machine query), so
``nearkit report DIR`` rebuilds the same bytes.
"""

from __future__ import annotations

from nearkit.bench import summary
from nearkit.bench.findings import findings
from nearkit.bench.text import DASH, mean_ci, median_text, num, ratio_text, table


def _check_text(check):
    n = check["n_checked"]
    if n == 0:
        return DASH
    parts = [f"{check['n_exact']}/{n} exact"]
    if check["n_near_tie"]:
        parts.append(f"{check['n_near_tie']} near-tie")
    if check["n_wrong"]:
        parts.append(f"**{check['n_wrong']} wrong**")
    return ", ".join(parts)


CAPPED_MARK = "†"
CAPPED_NOTE = (f"{CAPPED_MARK} scored on the first test rows of each split only (a query-capped "
               "engine), so not directly comparable; McNemar's test pairs the same rows.")


def _capped(row, runs):
    return row["samples"]["n_queries"] is not None and row["samples"]["n_queries"] < runs[0]["n_test"]


def _algorithm(row):
    algorithm = row["samples"]["info"].get("algorithm_")
    return algorithm or DASH


def summary_rows(results):
    """Rows of the summary table: one per dataset, setting and engine (also used by the CLI)."""
    baseline = results["config"]["baseline"]
    groups = summary.group_runs(results)
    several = len({key for _, key in groups}) > 1
    rows = []
    for (dataset, key), runs in groups.items():
        for row in summary.engine_table(results, runs, baseline):
            cells = {"dataset": dataset + (f" ({summary.setting_label(key)})" if several else ""),
                     "engine": row["engine"]}
            if row["status"] != "ok" and not row["samples"]["repeats"]:
                cells.update(status=f"{row['status']}: {row['note']}")
                rows.append(cells)
                continue
            quality = row["quality"]
            mark = CAPPED_MARK if _capped(row, runs) else ""
            cells.update(
                status="ok",
                algorithm=_algorithm(row),
                fit_ms=num(row["fit"]["median"]["median"] * 1e3),
                predict_us=num(row["predict_pq"]["median"]["median"] * 1e6),
                speedup_peer=_peer_text(row),
                speedup=ratio_text(row["speedup_predict"]),
                accuracy=(num(quality["accuracy"]["mean"], 4) + mark
                          if "accuracy" in quality else DASH),
                roc_auc=(num(quality["roc_auc"]["mean"], 4) + mark
                         if "roc_auc" in quality else DASH),
                neighbours=_check_text(row["samples"]["check"]),
            )
            rows.append(cells)
    return rows


def _peer_text(row):
    """Predict speed-up against the fastest peer, naming it (``'fastest peer'`` on its row)."""
    peer = row.get("fastest_peer")
    if peer is None:
        return DASH
    if row["engine"] == peer:
        return "fastest peer"
    return f"{ratio_text(row['speedup_peer_predict'])} vs {peer}"


SUMMARY_COLUMNS = (
    ("dataset", "Dataset"), ("engine", "Engine"), ("algorithm", "Algorithm"),
    ("fit_ms", "Fit ms (median)"), ("predict_us", "Predict µs/query (median)"),
    ("speedup_peer", "Predict speed-up vs the fastest peer [95% CI]"),
    ("speedup", "Predict speed-up vs {baseline} [95% CI]"), ("accuracy", "Accuracy (mean)"),
    ("roc_auc", "ROC-AUC (mean)"), ("neighbours", "Neighbours checked"),
)


def summary_header(results, keys=None):
    """Column titles of the summary table (all columns, or those in ``keys``)."""
    return [title.format(baseline=results["config"]["baseline"])
            for key, title in SUMMARY_COLUMNS if keys is None or key in keys]


def summary_cells(cells, keys=None, max_note=None):
    """Cells of one summary row; an engine that did not run shows why, in the third column."""
    keys = [key for key, _ in SUMMARY_COLUMNS if keys is None or key in keys]
    if cells.get("status", "ok") != "ok":
        note = cells["status"]
        if max_note and len(note) > max_note:
            note = note[: max_note - 1] + "…"
        return [cells["dataset"], cells["engine"], note] + [DASH] * (len(keys) - 3)
    return [cells[key] for key in keys]


def _header(results):
    env = results["environment"]
    commit = (env.get("nearkit_git_commit") or "unknown")[:10]
    dirty = " (with uncommitted changes)" if env.get("nearkit_git_dirty") else ""
    libs = env.get("libraries", {})
    memory = env.get("memory_bytes")
    cores = env.get("usable_cores") or env.get("logical_cores") or 1
    load = env.get("load_average_start")
    load_text = ""
    if load:
        load_text = f" Load average (1 min) {load[0]:.2f} at the start on {cores} cores"
        end = env.get("load_average_end")
        load_text += f", {end[0]:.2f} at the end." if end else "."
        if load[0] > 0.5 * cores:
            load_text += (" Other processes were competing for the CPU when the run started: "
                          "expect noisy timings, and multi-threaded engines to suffer most.")
    return "\n".join([
        "# nearkit benchmark report",
        "",
        f"Run started {env['started_utc']} on {env.get('cpu_model')} "
        f"({env.get('logical_cores')} logical cores"
        + (f", {memory / 2**30:.0f} GiB" if memory else "") + "), "
        f"Python {env['python']}, nearkit {libs.get('nearkit')} (commit {commit}{dirty})."
        + load_text,
        "",
        f"Command: `{' '.join(env.get('command_line') or [])}`",
    ])


def _caps(results):
    capped = [f"{name}: {entry['max_queries']}" for name, entry in results["engines"].items()
              if entry["max_queries"] is not None and entry["threads"] is None]
    if not capped:
        return ""
    return ("; an engine with a query cap is timed and scored on the first test rows only ("
            + ", ".join(capped) + ")")


def _method(results):
    c = results["config"]
    return "\n".join([
        "## Method",
        "",
        f"- Splits: {c['repeats']} repeated stratified shuffle splits per dataset (seed {c['seed']}): "
        f"{c['train_size']:.0%} of the rows for training, at most {c['max_test']:,} test rows; "
        "the dataset's preprocessor (imputation where needed, standardisation) is fitted on each "
        "training split only.",
        f"- Timing: `time.perf_counter` around each call; per repeat {c['iterations']} fits and "
        f"{c['iterations']} predicts of the whole test split per engine and "
        f"{c['latency_queries']} single-row predicts (latency), the engines visited in an order "
        "shuffled per repeat (interleaved, so drift hits all alike). A warm-up of every code path "
        "precedes the first repeat and is not counted. First calls (JIT compilation) are timed "
        "apart, in fresh processes. Predict times are per query" + _caps(results) + ".",
        "- Statistics: means with Student t 95% intervals over repeat means; medians with "
        "percentile-bootstrap intervals over all samples (`scipy.stats.bootstrap`); speed-ups "
        "are ratios of mean times (the other engine's over this one's, above 1 = faster) with "
        "a two-level paired bootstrap over repeats then iterations (Kalibera and Jones, 2013), "
        "first against the fastest peer of each dataset (the engine not written by nearkit, "
        "thread-limited variants included, with the smallest mean predict time per query), then "
        f"against the baseline `{c['baseline']}`; "
        "accuracy differences use McNemar's exact binomial test on the discordant predictions, "
        "pooled over repeats.",
        f"- Quality: `sklearn.metrics` on each test split; binary problems score class 1, F-beta "
        f"uses beta = {c['beta']:g}; ROC-AUC from `predict_proba` (the vote proportions).",
        f"- Correctness: the first {c['check_queries']} test rows of every repeat; the harness "
        "recomputes the float64 distance of every returned neighbour and compares the sorted "
        "distances with an exact brute-force reference (ties may come in any order). "
        "`near-tie` means agreement to 1e-4 relative only (e.g. float32 arithmetic), `wrong` "
        "anything else.",
        "- Memory: growth of the peak resident set size during a fresh fit and predict (first "
        "repeat); on Linux the peak is reset through `/proc/self/clear_refs`.",
    ])


def _environment(results):
    env = results["environment"]
    rows = [[name, version or "not installed"] for name, version in env["libraries"].items()]
    pools = ", ".join(
        f"{p.get('internal_api')}×{p.get('num_threads')}" for p in env.get("thread_pools", [])
    )
    extra = [["numba threads / layer", f"{env.get('numba_threads')} / {env.get('numba_threading_layer')}"],
             ["thread pools", pools or DASH], ["OS", env.get("os", DASH)]]
    return "## Environment\n\n" + table(["Software", "Version"], rows + extra)


def _engines(results):
    rows = []
    for name, entry in results["engines"].items():
        threads = "all cores" if entry["threads"] is None else f"{entry['threads']}"
        status = "available" if entry["available"] else f"skipped: {entry['note']}"
        rows.append([name, entry["description"], threads, status])
    return "## Engines\n\n" + table(["Engine", "What", "Threads", "Status"], rows)


def _geometry_text(name, info):
    geo = info["geometry"]
    return (
        f"Geometry (first split): {geo['n_features']} features after preprocessing, intrinsic "
        f"dimension ≈ {num(geo['twonn'], 2)} (TwoNN) / {num(geo['levina_bickel'], 2)} "
        f"(Levina-Bickel); relative contrast (d_max − d_min)/d_min of query distances: median "
        f"{num(geo['relative_contrast_median'])} (IQR {num(geo['relative_contrast_q25'])}–"
        f"{num(geo['relative_contrast_q75'])})."
    )


def _dataset_section(results, dataset, groups, baseline):
    info = results["datasets"][dataset]
    lines = [f"## Dataset `{dataset}`", ""]
    if "error" in info:
        return "\n".join(lines + [f"Not run: {info['error']}"])
    lines += ["```text", info["description"].strip(), "```", "",
              f"{info['n_rows']:,} rows; {info['n_train']:,} training and {info['n_test']:,} "
              "test rows per split.", "", _geometry_text(dataset, info)]
    for (name, key), runs in groups.items():
        if name != dataset:
            continue
        rows = summary.engine_table(results, runs, baseline)
        ok = [r for r in rows if r["samples"]["repeats"]]
        lines += ["", f"### Timing ({summary.setting_label(key)}, {len(runs)} repeats)", "",
                  table(["Engine", "Fit ms mean [95% CI]", "Fit ms median [95% CI]",
                         "Predict µs/query mean [95% CI]", "Predict µs/query median [95% CI]",
                         "Latency p50 / p99 ms", "Peak memory MiB"],
                        [[r["engine"], mean_ci(r["fit"]["mean"], 1e3),
                          median_text(r["fit"]["median"], 1e3),
                          mean_ci(r["predict_pq"]["mean"], 1e6),
                          median_text(r["predict_pq"]["median"], 1e6),
                          f"{num(r['latency_p50'] * 1e3)} / {num(r['latency_p99'] * 1e3)}",
                          num(r["samples"]["memory"]["bytes"] / 2**20)
                          if r["samples"]["memory"] else DASH] for r in ok])]
        peer = rows[0]["fastest_peer"] if rows and ok else None
        if peer is not None:
            lines += ["", f"### Speed-up against the fastest peer, `{peer}`", "",
                      table(["Engine", "Predict speed-up [95% CI]", "Fit speed-up [95% CI]"],
                            [[r["engine"], ratio_text(r["speedup_peer_predict"]),
                              ratio_text(r["speedup_peer_fit"])] for r in ok if r["engine"] != peer])]
        lines += ["", f"### Speed-up against `{baseline}`", "",
                  table(["Engine", "Predict speed-up [95% CI]", "Fit speed-up [95% CI]"],
                        [[r["engine"], ratio_text(r["speedup_predict"]),
                          ratio_text(r["speedup_fit"])] for r in ok])]
        lines += ["", "### Quality (mean [95% CI] over repeats)", "",
                  table(["Engine", "Accuracy", "Precision", "Recall", "F1", "F-beta", "ROC-AUC",
                         f"McNemar vs {baseline}: b / c, p"],
                        [[r["engine"] + (CAPPED_MARK if _capped(r, runs) else "")]
                         + [mean_ci(r["quality"][m], 1.0, 4) if m in r["quality"]
                            else DASH for m in ("accuracy", "precision", "recall",
                                                "f1", "fbeta", "roc_auc")]
                         + [_mcnemar_text(r["mcnemar"])] for r in ok])]
        lines += ["", "Confusion matrices, summed over repeats (rows: true class, columns: "
                  "predicted class):", "",
                  table(["Engine", "Confusion matrix"],
                        [[r["engine"], str(r["samples"]["confusion"].tolist())] for r in ok])]
        lines += ["", "### Neighbours against the exact reference", "",
                  table(["Engine", "Checked", "Exact", "Near-tie", "Wrong",
                         "Max reported-distance error", "First mismatches"],
                        [[r["engine"], r["samples"]["check"]["n_checked"],
                          r["samples"]["check"]["n_exact"], r["samples"]["check"]["n_near_tie"],
                          r["samples"]["check"]["n_wrong"],
                          num(r["samples"]["check"]["max_reported_distance_error"], 2),
                          _examples(r["samples"]["check"]["examples"])] for r in ok])]
        not_run = [r for r in rows if not r["samples"]["repeats"]]
        if not_run:
            lines += ["", "Not run: " + "; ".join(f"{r['engine']} ({r['status']}: {r['note']})"
                                                 for r in not_run) + "."]
    return "\n".join(lines)


def _mcnemar_text(res):
    if res is None:
        return DASH
    return f"{res['b']} / {res['c']}, p = {num(res['p_value'], 2)}"


def _examples(examples):
    if not examples:
        return DASH
    return "; ".join(
        f"repeat {e['repeat']} query {e['query']} ({e['kind']}): got {[num(d, 6) for d in e['returned_distances']]}, "
        f"exact {[num(d, 6) for d in e['reference_distances']]}".replace("'", "")
        for e in examples
    )


def _threads_section(results, groups):
    rows = []
    for (dataset, _key), runs in groups.items():
        for base, variant, n_threads in summary.thread_pairs(results):
            res = summary.speedup(runs, base, variant)  # variant time / all-cores time
            if res is None:
                continue
            cores = results["environment"].get("usable_cores") or results["environment"].get(
                "logical_cores")
            rows.append([dataset, base, f"{n_threads} vs {cores}", ratio_text(res)])
    if not rows:
        return ""
    return ("## Thread scaling\n\nPredict speed-up of all cores over a thread-limited run of the "
            "same engine (paired by repeat); below 1, the thread-limited run was faster.\n\n"
            + table(["Dataset", "Engine", "Threads", "All-cores speed-up [95% CI]"], rows))


def _cv_section(results):
    records = results.get("cv", [])
    if not records:
        return ""
    ok = [r for r in records if r["status"] == "ok"]
    lines = ["## Cross-validated k and weights", ""]
    if ok:
        first = ok[0]
        lines += [
            "`KNNClassifierCV` on the training split of each dataset's first repeat (the rows "
            f"the timed runs train on): k = {first['ks'][0]}..{max(r['ks'][-1] for r in ok)} × "
            f"{', '.join(first['weights'])} (Gaussian with sigma = d_k), {first['folds']}-fold "
            f"stratified cross-validation (shuffled, seed {results['config']['seed']}), "
            f"{first['scoring']}; one neighbour search per fold. The best (k, weights) is "
            "`GridSearchCV`'s choice: the first best mean score in candidate order.", "",
            table(["Dataset", "Best k", "Best weights", "CV accuracy mean (sd over folds)",
                   "Search s"],
                  [[r["dataset"], r["best_params"]["n_neighbors"], r["best_params"]["weights"],
                    f"{num(r['best_score'], 4)} ({num(_best_std(r), 2)})", num(r["search_s"])]
                   for r in ok])]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["", "Not cross-validated: " + "; ".join(f"`{r['dataset']}` ({r['note']})"
                                                         for r in failed) + "."]
    for r in ok:
        best = r["best_params"]
        rows = []
        for i, k in enumerate(r["ks"]):
            cells = [k]
            for weights in r["weights"]:
                text = num(r["mean_test_score"][weights][i], 4)
                cells.append(f"**{text}**" if (k, weights) == (best["n_neighbors"],
                                                               best["weights"]) else text)
            rows.append(cells)
        lines += ["", f"### `{r['dataset']}`: cross-validated accuracy against k "
                      "(mean over folds; the best in bold)", "",
                  table(["k", *r["weights"]], rows)]
    return "\n".join(lines)


def _best_std(record):
    best = record["best_params"]
    return record["std_test_score"][best["weights"]][record["ks"].index(best["n_neighbors"])]


def _first_call_section(results):
    records = results.get("first_call", [])
    if not records:
        return ""
    rows = []
    for r in records:
        if r["status"] != "ok":
            rows.append([r["engine"], r["cache"], f"error: {r['note']}", DASH, DASH, DASH, DASH])
            continue
        rows.append([r["engine"], r["cache"], num(r["first_fit_s"] * 1e3),
                     num(r["first_predict_s"] * 1e3), num(r["steady_fit_s"] * 1e3),
                     num(r["steady_predict_s"] * 1e3),
                     num((r["first_fit_s"] + r["first_predict_s"] - r["steady_fit_s"]
                          - r["steady_predict_s"]) * 1e3)])
    first = records[0]
    return (f"## First call (JIT compilation)\n\nEach engine in a fresh process, synthetic data "
            f"{first['n_train']:,} × {first['n_features']} with {first['n_queries']} queries; "
            "`cold` = empty numba cache, `warm` = a second process reusing the cache.\n\n"
            + table(["Engine", "Cache", "First fit ms", "First predict ms", "Steady fit ms",
                     "Steady predict ms", "First-call overhead ms"], rows))


def _scaling_section(results):
    data = summary.scaling_table(results)
    if not data:
        return ""
    sizes = sorted({n for per in data.values() for n in per})
    first = results["scaling"][0]
    rows = [[engine] + [num(per[n]["predict"] * 1e3) if n in per else DASH for n in sizes]
            for engine, per in data.items()]
    return (f"## Time versus training-set size\n\nSynthetic look-alikes of "
            f"`{results['config']['scaling_like']}` (`{first['dataset']}`), "
            f"{first['n_queries']:,} queries; median predict time in ms.\n\n"
            + table(["Engine"] + [f"n = {n:,}" for n in sizes], rows))


def _profile_section(results):
    records = [r for r in results.get("profiles", []) if r["status"] == "ok"]
    if not records:
        return ""
    lines = ["## Profile", "", "Where nearkit's predict time goes (first split of each dataset): "
             "`kneighbors` is validation + search, the rest of `predict` is weights and vote; "
             "phases from cProfile group the callees of the estimator's methods by module.", ""]
    rows = []
    for r in records:
        if "phases" in r:
            ph = r["phases"]
            total = sum(ph[p] for p in ("validation", "search", "weights and vote", "other")) or 1
            rows.append([r["dataset"], r["engine"], num(r["predict_s"] * 1e3),
                         num(r["kneighbors_s"] * 1e3),
                         num(max(r["predict_s"] - r["kneighbors_s"], 0.0) * 1e3)]
                        + [f"{100 * ph[p] / total:.0f}%" for p in ("validation", "search",
                                                                   "weights and vote", "other")])
    if rows:
        lines.append(table(["Dataset", "Engine", "predict ms", "kneighbors ms",
                            "predict − kneighbors ms", "validation", "search",
                            "weights and vote", "other"], rows))
    lines += ["", "Top functions by own time (cProfile, one predict):", ""]
    for r in records:
        top = r["top_functions"][:5]
        lines.append(f"- `{r['dataset']}` / {r['engine']}: " + "; ".join(
            f"`{f['function']}` {num(f['tottime_s'] * 1e3)} ms" for f in top))
    return "\n".join(lines)


def render_report(results, figures=()):
    """The whole ``report.md`` text.

    Parameters
    ----------
    results : dict
        Content of ``results.json``.
    figures : sequence of str
        File names of the PNG figures, linked at the end.

    Returns
    -------
    str
    """
    groups = summary.group_runs(results)
    baseline = results["config"]["baseline"]
    summary_table = table(summary_header(results),
                          [summary_cells(c, max_note=100) for c in summary_rows(results)])
    if CAPPED_MARK in summary_table:
        summary_table += "\n\n" + CAPPED_NOTE
    parts = [_header(results),
             "## Summary\n\n" + summary_table,
             "## Findings\n\n" + "\n".join(f"- {s}" for s in findings(results)),
             _method(results)]
    for dataset in results["datasets"]:
        parts.append(_dataset_section(results, dataset, groups, baseline))
    parts += [_cv_section(results), _threads_section(results, groups), _first_call_section(results),
              _scaling_section(results), _profile_section(results)]
    if figures:
        parts.append("## Figures\n\n" + "\n\n".join(f"![{f}]({f})" for f in figures))
    parts += [_engines(results), _environment(results)]
    return "\n\n".join(p for p in parts if p) + "\n"

