"""PNG figures from stored results (matplotlib, Agg backend).

- ``speedup.png``: predict speed-up of each engine, per dataset, against the fastest peer of
  the dataset (left) and against the baseline (right), with the paired-bootstrap 95%
  interval as whiskers (log scale, 1 = as fast);
- ``accuracy.png``: mean accuracy per dataset and engine with t-interval whiskers;
- ``scaling.png``: fit and predict time against training-set size (log-log);
- ``cv.png``: cross-validated accuracy against k, one line per weighting scheme, one panel
  per dataset, the best (k, weights) starred;
- ``roc_<dataset>.png``: ROC curves of each engine, pooled over repeats (multiclass:
  micro-averaged one-vs-rest), for the first setting of each dataset.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402
from sklearn.metrics import auc  # noqa: E402

from nearkit.bench import summary  # noqa: E402
from nearkit.bench.quality import roc_points  # noqa: E402

_METADATA = {"Software": None}  # no version stamp: the same results give the same file


def _finite(x):
    return x is not None and math.isfinite(x)


def _colors(results):
    """One fixed colour per engine, the same in every figure."""
    cmap = plt.get_cmap("tab20")
    return {engine: cmap(i % 20) for i, engine in enumerate(results["engines"])}


def _grouped_bars(ax, groups, engines, values, lows, highs, colors):
    width = 0.8 / max(1, len(engines))
    for j, engine in enumerate(engines):
        xs, ys, err = [], [], [[], []]
        for i, group in enumerate(groups):
            value = values.get((group, engine))
            if not _finite(value):
                continue
            xs.append(i + (j - (len(engines) - 1) / 2) * width)
            ys.append(value)
            low, high = lows.get((group, engine)), highs.get((group, engine))
            err[0].append(value - low if _finite(low) else 0.0)
            err[1].append(high - value if _finite(high) else 0.0)
        if xs:
            ax.bar(xs, ys, width, yerr=err, capsize=2, label=engine, color=colors[engine])
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.replace("_", "\n", 1) for g in groups], fontsize=8)


def _group_label(dataset, key, several):
    return f"{dataset} ({summary.setting_label(key)})" if several else dataset


def _speedups(results, against):
    """Bar values of predict speed-ups: ``against(runs)`` names the engine of each group."""
    groups = summary.group_runs(results)
    several = len({k for _, k in groups}) > 1
    values, lows, highs, labels, engines = {}, {}, {}, [], []
    for (dataset, key), runs in groups.items():
        other = against(runs)
        label = _group_label(dataset, key, several) + (f"\nvs {other}" if other else "")
        labels.append(label)
        for engine in summary.engines_of(results, runs):
            res = None if other is None or engine == other else summary.speedup(runs, engine,
                                                                                 other)
            if res is None:
                continue
            engines.append(engine)
            values[(label, engine)] = res["ratio"]
            lows[(label, engine)], highs[(label, engine)] = res["low"], res["high"]
    return labels, list(dict.fromkeys(engines)), values, lows, highs


def plot_speedup(results, path):
    """Bars of predict speed-up with CI whiskers: against the fastest peer of each dataset
    (left, the fairest comparison) and against the baseline (right)."""
    baseline = results["config"]["baseline"]
    colors = _colors(results)
    panels = [
        (lambda runs: summary.fastest_peer(results, runs), "the fastest peer of each dataset"),
        (lambda runs: baseline, baseline),
    ]
    n_groups = len(summary.group_runs(results))
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(6, 1.3 * n_groups + 3), 5), sharey=True)
    for ax, (against, name) in zip(axes, panels):
        labels, engines, values, lows, highs = _speedups(results, against)
        _grouped_bars(ax, labels, engines, values, lows, highs, colors)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylabel("predict speed-up (×, log scale)")
        ax.set_title(f"vs {name}", fontsize=10)
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(handles.values(), handles.keys(), fontsize=7, loc="center right")
    fig.suptitle("Predict speed-up with paired-bootstrap 95% CI (above 1 = faster)")
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)
    return Path(path)


def plot_accuracy(results, path):
    """Bars of mean accuracy with t-interval whiskers."""
    baseline = results["config"]["baseline"]
    groups = summary.group_runs(results)
    several = len({k for _, k in groups}) > 1
    values, lows, highs, labels, engines = {}, {}, {}, [], []
    for (dataset, key), runs in groups.items():
        label = _group_label(dataset, key, several)
        labels.append(label)
        for row in summary.engine_table(results, runs, baseline):
            ci = row.get("quality", {}).get("accuracy")
            if ci is None:
                continue
            engines.append(row["engine"])
            values[(label, row["engine"])] = ci["mean"]
            lows[(label, row["engine"])], highs[(label, row["engine"])] = ci["low"], ci["high"]
    engines = list(dict.fromkeys(engines))
    fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(labels) + 4), 5))
    _grouped_bars(ax, labels, engines, values, lows, highs, _colors(results))
    finite = [v for v in values.values() if _finite(v)]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 0.1), min(1.0, max(finite) + 0.05))
    ax.set_ylabel("accuracy (mean over repeats)")
    ax.set_title("Accuracy with 95% t-interval")
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def plot_scaling(results, path):
    """Fit and predict time against training-set size, log-log."""
    data = summary.scaling_table(results)
    fig, (ax_fit, ax_pred) = plt.subplots(1, 2, figsize=(11, 4.5))
    all_sizes = sorted({n for per in data.values() for n in per})
    colors = _colors(results)
    for engine, per in data.items():
        sizes = sorted(per)
        style = {"marker": "o", "label": engine, "color": colors.get(engine)}
        ax_fit.plot(sizes, [per[n]["fit"] for n in sizes], **style)
        ax_pred.plot(sizes, [per[n]["predict"] for n in sizes], **style)
    for ax, what in ((ax_fit, "fit"), (ax_pred, "predict")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(all_sizes)
        ax.set_xticklabels([f"{n:,}" for n in all_sizes], rotation=30, fontsize=8)
        ax.set_xlabel("training rows")
        ax.set_ylabel(f"{what} time (s, median)")
        ax.grid(True, which="both", alpha=0.3)
    n_queries = results["scaling"][0]["n_queries"] if results.get("scaling") else 0
    ax_pred.set_title(f"predict {n_queries:,} queries")
    ax_fit.set_title(f"fit (look-alikes of {results['config']['scaling_like']})")
    if data:
        ax_pred.legend(fontsize=8)
    return _save(fig, path)


def plot_cv(results, path):
    """Cross-validated accuracy against k per weighting scheme, one panel per dataset."""
    records = [r for r in results.get("cv", []) if r["status"] == "ok"]
    cols = min(3, len(records))
    rows = math.ceil(len(records) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    for ax, record in zip(axes.flat, records):
        for weights in record["weights"]:
            scores = [np.nan if v is None else v for v in record["mean_test_score"][weights]]
            ax.plot(record["ks"], scores, marker=".", markersize=4, linewidth=1.2, label=weights)
        best = record["best_params"]
        ax.plot([best["n_neighbors"]], [record["best_score"]], marker="*", markersize=13,
                color="black", linestyle="none",
                label=f"best: k={best['n_neighbors']}, {best['weights']}")
        ax.set_title(record["dataset"], fontsize=10)
        ax.set_xlabel("k")
        ax.set_ylabel(f"{record['folds']}-fold CV {record['scoring']}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(records):]:
        ax.axis("off")
    fig.suptitle("Cross-validated accuracy against k, per weighting scheme")
    return _save(fig, path)


def _pooled_scores(runs, engine):
    """True labels and scores of one engine pooled over repeats (one-vs-rest when multiclass)."""
    truth, scores = [], []
    for run in runs:
        record = run["engines"].get(engine)
        if record is None or record["status"] != "ok":
            continue
        y_true = np.asarray(run["y_true"][: len(record["score"])])
        score = np.asarray(record["score"], dtype=np.float64)
        if score.ndim == 2:  # micro-average: every (query, class) pair is one binary case
            classes = np.asarray(run["classes"])
            y_true = (y_true[:, None] == classes[None, :]).astype(int).ravel()
            score = score.ravel()
        else:
            y_true = (y_true == run["classes"][1]).astype(int)
        truth.append(y_true)
        scores.append(score)
    if not truth:
        return None, None
    return np.concatenate(truth), np.concatenate(scores)


def plot_roc(results, dataset, key, runs, path):
    """ROC curves of every engine on one dataset, pooled over repeats.

    Binary problems score the positive class; multiclass problems are micro-averaged one
    versus rest.
    """
    fig, ax = plt.subplots(figsize=(5.5, 5))
    baseline = results["config"]["baseline"]
    for engine in summary.engines_of(results, runs):
        truth, scores = _pooled_scores(runs, engine)
        if truth is None or np.unique(truth).size < 2:
            continue
        fpr, tpr = roc_points(truth, scores, positive=1)
        style = {"linewidth": 2.2} if engine == baseline else {"linewidth": 1, "alpha": 0.8}
        ax.plot(fpr, tpr, label=f"{engine} (AUC {auc(fpr, tpr):.3f})",
                color=_colors(results)[engine], **style)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    kind = "" if len(runs[0]["classes"]) == 2 else ", micro-averaged one-vs-rest"
    ax.set_title(f"ROC, {dataset} ({summary.setting_label(key)}{kind})", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)
    return Path(path)


def write_plots(results, out_dir):
    """Write every figure into ``out_dir``; returns their paths in a fixed order."""
    out_dir = Path(out_dir)
    paths = []
    if results["runs"]:
        paths.append(plot_speedup(results, out_dir / "speedup.png"))
        paths.append(plot_accuracy(results, out_dir / "accuracy.png"))
    if results.get("scaling"):
        paths.append(plot_scaling(results, out_dir / "scaling.png"))
    if any(r["status"] == "ok" for r in results.get("cv", [])):
        paths.append(plot_cv(results, out_dir / "cv.png"))
    done = set()
    for (dataset, key), runs in summary.group_runs(results).items():
        if dataset in done:
            continue
        done.add(dataset)
        paths.append(plot_roc(results, dataset, key, runs, out_dir / f"roc_{dataset}.png"))
    return paths
