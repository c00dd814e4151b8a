"""The findings of a run in a few sentences, drawn from the stored numbers only."""

from __future__ import annotations

import numpy as np

from nearkit.bench import summary
from nearkit.bench.text import num, ratio_text, speed_sentence


def _algorithm(row):
    return row["samples"]["info"].get("algorithm_") or "–"


def findings(results):
    """A few sentences drawn from the numbers (deterministic).

    They lead with nearkit-auto's predict speed-up against the fastest peer of each dataset
    (:func:`~nearkit.bench.summary.fastest_peer`), the baseline's beside it.
    """
    baseline = results["config"]["baseline"]
    groups = summary.group_runs(results)
    if not groups:
        return ["Nothing was measured: no dataset could be loaded (see the dataset sections)."]
    out = []
    ratios = {"peer": [], "baseline": []}
    for (dataset, _key), runs in groups.items():
        rows = {r["engine"]: r for r in summary.engine_table(results, runs, baseline)
                if r["samples"]["repeats"]}
        if not rows:
            continue
        fastest = min(rows, key=lambda e: rows[e]["predict_pq"]["mean"]["mean"])
        nk = rows.get("nearkit-auto")
        text = f"On `{dataset}`"
        if nk:
            text += ", " + _versus(nk, baseline, ratios)
            text += f" (it chose `{_algorithm(nk)}`)"
        text += f"; the fastest engine per query is {fastest}."
        out.append(text)
    means = [f"{num(_geometric_mean(ratios['peer']))}× against the fastest peer of each dataset"
             if ratios["peer"] else "",
             f"{num(_geometric_mean(ratios['baseline']))}× against {baseline}"
             if ratios["baseline"] else ""]
    means = [m for m in means if m]
    if means:
        out.append("Geometric mean of nearkit-auto's predict speed-ups: " + ", ".join(means) + ".")
    out += _cv_findings(results)
    out += _tree_findings(results, groups) + _quality_findings(results, groups, baseline)
    return out


def _cv_findings(results):
    chosen = [f"`{r['dataset']}` k = {r['best_params']['n_neighbors']}, "
              f"{r['best_params']['weights']} ({num(r['best_score'], 4)})"
              for r in results.get("cv", []) if r["status"] == "ok"]
    if not chosen:
        return []
    return ["Cross-validation chose (best mean accuracy over folds): " + "; ".join(chosen) + "."]


def _geometric_mean(values):
    return float(np.exp(np.mean(np.log(values))))


def _versus(row, baseline, ratios):
    """``'nearkit-auto predicts 2.1 times faster than the fastest peer, faiss-flatl2, 95% CI
    [a, b] (12 times faster than sklearn-auto, 95% CI [c, d])'``; collects the ratios."""
    peer_res, base_res = row.get("speedup_peer_predict"), row.get("speedup_predict")
    if peer_res:
        ratios["peer"].append(peer_res["ratio"])
        text = speed_sentence(peer_res, "nearkit-auto", f"the fastest peer, {row['fastest_peer']}")
    else:
        text = "nearkit-auto (no peer ran)"
    if base_res and baseline != "nearkit-auto":
        ratios["baseline"].append(base_res["ratio"])
        text += f" ({speed_sentence(base_res, '', baseline, what='').strip()})"
    return text


def _tree_findings(results, groups):
    out = []
    for (dataset, _), runs in groups.items():
        res = summary.speedup(runs, "sklearn-kd_tree", "sklearn-brute")
        geo = results["datasets"].get(dataset, {}).get("geometry")
        if res is None or not geo:
            continue
        verdict = "helps" if res["low"] is not None and res["low"] > 1 else (
            "does not help" if res["high"] is not None and res["high"] < 1 else "is on par")
        out.append(f"A k-d tree {verdict} on `{dataset}` (scikit-learn kd_tree vs brute: "
                   f"{ratio_text(res)}), with intrinsic dimension ≈ {num(geo['twonn'], 2)} of "
                   f"{geo['n_features']} features and relative contrast "
                   f"{num(geo['relative_contrast_median'])}.")
    return out


def _quality_findings(results, groups, baseline):
    significant, mismatched = [], []
    for (dataset, _), runs in groups.items():
        for row in summary.engine_table(results, runs, baseline):
            mc = row.get("mcnemar")
            if mc and mc["p_value"] < 0.05:
                significant.append(f"{row['engine']} on `{dataset}` (p = {num(mc['p_value'], 2)})")
            check = row["samples"]["check"]
            if check["n_near_tie"] or check["n_wrong"]:
                mismatched.append(f"{row['engine']} on `{dataset}` ({check['n_near_tie']} near-tie,"
                                  f" {check['n_wrong']} wrong of {check['n_checked']})")
    out = [("Accuracy differs significantly from " + baseline + " (McNemar, p < 0.05) for: "
            + "; ".join(significant) + ".") if significant else
           f"No engine's accuracy differs significantly from {baseline}'s (McNemar, p ≥ 0.05)."]
    out.append(("Neighbour mismatches against the exact reference: " + "; ".join(mismatched)
                + ".") if mismatched else
               "Every engine returned exactly the true nearest neighbours on every checked query.")
    return out
