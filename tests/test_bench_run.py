"""A small ``nearkit bench`` run end to end: every file, the schema, the images, the report."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearkit.bench import protocol, summary
from nearkit.bench.checks import FIELD_OPTIONS
from nearkit.bench.cli import DEFAULT_OUT
from nearkit.bench.engines import ENGINES, EngineSpec, NumpyTextbookEngine, engine_unavailable
from nearkit.bench.report import render_report
from nearkit.bench.results import SCHEMA_VERSION, load_results
from nearkit.bench.schema import SchemaError, validate_results
from nearkit.cli import main
from nearkit.weights import WEIGHTS

ENGINES_RUN = ("nearkit-auto,sklearn-auto,sklearn-brute,faiss-flatl2,scipy-ckdtree,numpy-textbook,"
               "sklearnex-brute,usearch-exact")
FILES = ("results.json", "results.csv", "report.md", "speedup.png", "accuracy.png",
         "scaling.png", "cv.png", "roc_breast_cancer.png")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", "--quick", "--datasets", "breast_cancer", "--repeats", "2",
                 "--iterations", "2", "--engines", ENGINES_RUN, "--sizes", "300,600",
                 "--first-call", "none", "--profile", "--max-test", "100", "--out", str(out)])
    assert code == 0
    return out


def test_every_file_is_written(run_dir):
    for name in FILES:
        assert (run_dir / name).stat().st_size > 0, name


def test_results_match_the_schema(run_dir):
    results = load_results(run_dir)
    validate_results(results)
    assert [run["repeat"] for run in results["runs"]] == [0, 1]
    env = results["environment"]
    assert env["python"] and env["libraries"]["numpy"] and env["cpu_model"]
    assert "--quick" in env["command_line"]
    assert results["schema_version"] == SCHEMA_VERSION
    run = results["runs"][0]
    available = {name for name in ENGINES_RUN.split(",") if engine_unavailable(name) is None}
    assert set(run["engines"]) == available | {"nearkit-auto[1t]", "sklearn-auto[1t]"}
    record = run["engines"]["sklearn-brute"]
    assert len(record["fit_s"]) == len(record["predict_s"]) == 2
    assert len(record["y_pred"]) == record["n_queries"] == 100
    assert run["engines"]["numpy-textbook"]["n_queries"] == 100  # below its cap
    assert record["check"]["n_wrong"] == 0
    assert results["datasets"]["breast_cancer"]["geometry"]["twonn"] > 1
    assert {r["n_train"] for r in results["scaling"]} == {300, 600}
    profile = {r["engine"]: r for r in results["profiles"]}
    assert profile["nearkit-auto"]["phases"]["search"] > 0
    assert profile["sklearn-brute"]["top_functions"]


def test_schema_rejects_broken_results(run_dir):
    results = load_results(run_dir)
    broken = copy.deepcopy(results)
    del broken["runs"][0]["engines"]["sklearn-auto"]["predict_s"]
    with pytest.raises(SchemaError, match="predict_s|none of the allowed"):
        validate_results(broken)
    broken = copy.deepcopy(results)
    broken["environment"]["python"] = 3.11
    with pytest.raises(SchemaError, match=r"\$\.environment\.python"):
        validate_results(broken)
    broken = copy.deepcopy(results)
    broken["runs"][0]["engines"]["sklearn-auto"]["status"] = "fine"
    with pytest.raises(SchemaError, match="sklearn-auto"):
        validate_results(broken)
    with pytest.raises(SchemaError):
        validate_results(results["runs"])


def test_pngs_are_images(run_dir):
    for name in FILES:
        if name.endswith(".png"):
            with Image.open(run_dir / name) as image:
                image.verify()
            with Image.open(run_dir / name) as image:
                assert image.format == "PNG" and min(image.size) > 100


def test_report_is_rebuilt_byte_for_byte(run_dir, capsys):
    original = (run_dir / "report.md").read_bytes()
    original_csv = (run_dir / "results.csv").read_bytes()
    (run_dir / "report.md").unlink()
    (run_dir / "results.csv").unlink()
    (run_dir / "cv.png").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.md").read_bytes() == original
    assert (run_dir / "results.csv").read_bytes() == original_csv
    assert (run_dir / "cv.png").stat().st_size > 0
    assert "summary" in capsys.readouterr().out


def test_report_content(run_dir):
    text = (run_dir / "report.md").read_text()
    for heading in ("## Summary", "## Findings", "## Method", "## Dataset `breast_cancer`",
                    "### Speed-up against the fastest peer, `",
                    "### Speed-up against `sklearn-auto`", "### Quality",
                    "## Cross-validated k and weights",
                    "### `breast_cancer`: cross-validated accuracy against k",
                    "## Thread scaling", "## Time versus training-set size", "## Profile",
                    "## Environment"):
        assert heading in text, heading
    assert "times faster" in text or "times slower" in text
    assert "McNemar" in text


def test_the_fastest_peer_leads_the_summary_and_findings(run_dir):
    results = load_results(run_dir)
    (_, runs), = summary.group_runs(results).items()
    peer = summary.fastest_peer(results, runs)
    assert results["engines"][peer]["family"] != "nearkit"
    means = {row["engine"]: row["predict_pq"]["mean"]["mean"]
             for row in summary.engine_table(results, runs, "sklearn-auto")
             if row["samples"]["repeats"] and results["engines"][row["engine"]]["family"]
             != "nearkit"}
    assert means[peer] == min(means.values())
    text = (run_dir / "report.md").read_text()
    header = text.split("## Summary")[1].strip().splitlines()[0]
    assert header.index("vs the fastest peer") < header.index("vs sklearn-auto")
    nearkit_row = next(line for line in text.split("## Summary")[1].splitlines()
                       if line.startswith("| breast_cancer | nearkit-auto |"))
    assert f"× vs {peer}" in nearkit_row
    lead = text.split("## Findings")[1].strip().splitlines()[0]
    assert f"than the fastest peer, {peer}, 95% CI" in lead
    assert lead.index("fastest peer") < lead.index("sklearn-auto")
    assert "against the fastest peer of each dataset" in text


def test_cv_scores_k_and_weights_per_dataset(run_dir):
    results = load_results(run_dir)
    (record,) = results["cv"]
    assert record["status"] == "ok" and record["dataset"] == "breast_cancer"
    assert record["ks"] == list(range(1, 31)) and record["weights"] == list(WEIGHTS)
    best = record["best_params"]
    scores = record["mean_test_score"]
    assert all(len(scores[w]) == 30 for w in WEIGHTS)
    assert scores[best["weights"]][best["n_neighbors"] - 1] == record["best_score"]
    assert record["best_score"] == max(max(v) for v in scores.values())
    text = (run_dir / "report.md").read_text()
    assert (f"| breast_cancer | {best['n_neighbors']} | {best['weights']} | "
            f"{record['best_score']:.4f}") in text
    assert "Cross-validation chose" in text.split("## Findings")[1].split("## Method")[0]


def test_results_of_schema_1_are_still_read(run_dir):
    results = load_results(run_dir)
    old = copy.deepcopy(results)
    old["schema_version"] = 1
    del old["cv"]
    validate_results(old)
    text = render_report(old)
    assert "## Summary" in text and "Cross-validated" not in text


def test_csv_is_tidy(run_dir):
    with (run_dir / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    measures = {row["measure"] for row in rows}
    assert {"fit_s", "predict_s", "latency_s", "accuracy", "roc_auc", "peak_memory_bytes",
            "mean_test_score"} <= measures
    cv = [r for r in rows if r["section"] == "cv" and r["measure"] == "mean_test_score"]
    assert len(cv) == 30 * len(WEIGHTS)
    predict = [r for r in rows if r["measure"] == "predict_s" and r["engine"] == "sklearn-auto"
               and r["section"] == "run"]
    assert len(predict) == 2 * 2  # repeats x iterations


def test_report_command_reports_a_missing_folder(tmp_path):
    assert main(["report", str(tmp_path / "nothing")]) == 2


class _WrongEngine(NumpyTextbookEngine):
    """Returns a far point instead of the nearest one for every other query."""

    def kneighbors(self, Q, k=None):
        dist, ind = super().kneighbors(Q, k)
        far = np.argmax(((self.X_[None] - Q[::2, None]) ** 2).sum(-1), axis=1)
        ind[::2, 0] = far
        return dist, ind


def test_a_wrong_engine_is_shown_not_hidden(monkeypatch):
    monkeypatch.setitem(ENGINES, "test-wrong", EngineSpec(_WrongEngine, "returns wrong points"))
    config = protocol.BenchConfig.quick_config(
        datasets=["iris"], engines=["sklearn-brute", "test-wrong"], repeats=1, iterations=1,
        threads=[], sizes=[], first_call="none", latency_queries=2, baseline="sklearn-brute",
        cv=False)
    results = json.loads(json.dumps(protocol.run_benchmark(config)))
    validate_results(results)
    check = results["runs"][0]["engines"]["test-wrong"]["check"]
    assert check["n_wrong"] == (check["n_checked"] + 1) // 2
    text = render_report(results)
    assert f"**{check['n_wrong']} wrong**" in text
    assert "Neighbour mismatches against the exact reference: test-wrong" in text


def test_other_settings_skip_engines_with_a_reason():
    config = protocol.BenchConfig.quick_config(
        datasets=["iris"], engines=["nearkit-auto", "sklearn-brute", "scipy-ckdtree"],
        weights=["uniform", "dudani"], metrics=["mahalanobis"], ks=[3], repeats=1,
        iterations=1, threads=[], sizes=[], first_call="none", latency_queries=1,
        baseline="sklearn-brute", cv=False)
    results = json.loads(json.dumps(protocol.run_benchmark(config)))
    validate_results(results)
    assert results["cv"] == []
    by_weights = {run["weights"]: run["engines"] for run in results["runs"]}
    assert by_weights["uniform"]["sklearn-brute"]["check"]["n_wrong"] == 0
    assert by_weights["uniform"]["nearkit-auto"]["check"]["n_wrong"] == 0
    assert by_weights["dudani"]["nearkit-auto"]["status"] == "ok"
    assert by_weights["dudani"]["sklearn-brute"]["status"] == "skipped"
    assert "mahalanobis" in by_weights["uniform"]["scipy-ckdtree"]["note"]
    text = render_report(results)
    assert "k=3, dudani, mahalanobis" in text


def test_a_dataset_that_cannot_be_loaded_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("NEARKIT_DATA_URL", "http://127.0.0.1:9")  # closed: the download fails
    out = tmp_path / "out"
    code = main(["bench", "--datasets", "pima_diabetes", "--first-call", "none",
                 "--no-scaling", "--no-progress", "--data-home", str(tmp_path / "data"),
                 "--out", str(out)])
    assert code == 1
    results = load_results(out)
    validate_results(results)
    assert "DownloadError" in results["datasets"]["pima_diabetes"]["error"]
    assert "Not run:" in (out / "report.md").read_text()


def _no_work(*args, **kwargs):
    raise AssertionError("the benchmark ran although an option was invalid")


@pytest.mark.parametrize(("options", "named"), [
    (["--k", "0"], "--k"), (["--k", "5,-3"], "-3"), (["--p", "0"], "--p"),
    (["--p", "nan"], "--p"), (["--repeats", "0"], "--repeats"),
    (["--iterations", "-1"], "--iterations"), (["--max-test", "0"], "--max-test"),
    (["--sizes", "500,0"], "--sizes"), (["--threads", "0"], "--threads"),
    (["--beta", "0"], "--beta"), (["--beta", "inf"], "--beta"), (["--seed", "-1"], "--seed"),
    (["--datasets", "iris,no_such_dataset"], "'no_such_dataset'"),
    (["--weights", "triangular"], "'triangular'"), (["--metric", "hamming"], "'hamming'"),
    (["--engines", "nearkit-auto", "--baseline", "sklearn-brute"], "'sklearn-brute'"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, monkeypatch, capsys, options, named):
    monkeypatch.setattr(protocol, "run_benchmark", _no_work)
    out = tmp_path / "out"
    assert main(["bench", "--quick", *options, "--out", str(out)]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert named in message, message
    assert not out.exists()


def test_an_out_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setattr(protocol, "run_benchmark", _no_work)
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "out"
    assert main(["bench", "--quick", "--out", str(out)]) == 2
    assert str(out) in " ".join(capsys.readouterr().err.split())


def test_unknown_engines_are_refused_by_the_parser():
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--engines", "annoy"])
    assert stop.value.code == 2


def test_metric_aliases_of_the_registry_are_accepted_as_their_metric():
    config = protocol.BenchConfig.quick_config(metrics=["l2", "cityblock", "euclidean"])
    assert protocol.check_config(config).metrics == ["euclidean", "manhattan"]


class _BrokenEngine(NumpyTextbookEngine):
    """Fails at every fit."""

    def fit(self, X, y):
        raise RuntimeError("broken on purpose")


@pytest.mark.filterwarnings("ignore:No artists with labels:UserWarning")  # empty plots
def test_exit_code_is_1_when_every_engine_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(ENGINES, "test-broken", EngineSpec(_BrokenEngine, "fails at fit"))
    out = tmp_path / "out"
    code = main(["bench", "--quick", "--datasets", "iris", "--engines", "test-broken",
                 "--baseline", "test-broken", "--repeats", "1", "--iterations", "1",
                 "--no-scaling", "--no-cv", "--first-call", "none", "--no-progress",
                 "--out", str(out)])
    assert code == 1
    assert "every engine failed" in " ".join(capsys.readouterr().err.split())
    results = load_results(out)
    assert results["runs"][0]["engines"]["test-broken"]["status"] == "error"
    assert results["cv"] == [] and "--no-cv" in results["environment"]["command_line"]


def _typed(value):
    """A default as typed on the command line (the test's own rendering)."""
    if isinstance(value, list):
        return "all" if value == list(ENGINES) else ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _expected_defaults():
    """``{option: (default, quick default or None)}`` of every option with a default."""
    normal, quick = protocol.BenchConfig(), protocol.BenchConfig.quick_config()
    expected = {"--out": (DEFAULT_OUT, None)}
    for field, option in FIELD_OPTIONS.items():
        if getattr(normal, field) is not None:
            default, fast = _typed(getattr(normal, field)), _typed(getattr(quick, field))
            expected[option] = (default, None if fast == default else fast)
    return expected


def test_help_shows_the_defaults_of_bench_config(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # argparse breaks long words at the terminal width
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--help"])
    assert stop.value.code == 0
    options = capsys.readouterr().out.split("\noptions:\n")[1]
    helps = {}
    for entry in re.split(r"\n  (?=-)", options):
        option, _, text = entry.strip().partition(" ")
        helps[option.rstrip(",")] = " ".join(text.split())
    expected = _expected_defaults()
    assert {"--iterations", "--max-test", "--repeats", "--k"} <= set(expected)
    for option, (default, quick) in expected.items():
        assert f"default {default}" in helps[option], (option, helps[option])
        if quick is not None:
            assert f"--quick {quick}" in helps[option], (option, helps[option])


def test_readme_states_the_defaults_of_bench_config():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Benchmark: `nearkit bench`")[1].split("\n## ")[0]
    text = " ".join(section.split())
    pattern = r"`(--[\w-]+)[^`]*` \((?:[^()]*?, )?default ([^;)]+?)(?:; `--quick` ([^)]+?))?[;)]"
    stated = {m[1]: (m[2], m[3]) for m in re.finditer(pattern, text)}
    assert stated == _expected_defaults()
