"""``nearkit fit``, ``nearkit predict`` and ``nearkit info``: from the shell on a report
dataset (compared with the Python API), and their errors in process on a small table."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_DIR, requires_real_data
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

import nearkit
from nearkit import KNNClassifier, KNNRegressor
from nearkit.cli import main
from nearkit.datasets import load_csv, make_preprocessor


def nearkit_command(*args, cwd):
    """Run ``python -m nearkit.cli ARGS`` with this nearkit (source tree first)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(nearkit.__file__).parents[1]), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "nearkit.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


@requires_real_data
def test_fit_predict_info_from_the_shell_equal_the_python_api(tmp_path):
    table = pd.read_csv(Path(DATA_DIR, "social_network_ads.csv"))
    table.iloc[:320].to_csv(tmp_path / "train.csv", index=False)
    table.iloc[320:].to_csv(tmp_path / "new.csv", index=False)  # the target may stay

    fit = nearkit_command("fit", "train.csv", "--target", "Purchased", "--drop", "User ID",
                          "--k", 7, "--weights", "distance", "--cv", 5, "--out", "ads.nearkit",
                          cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    predict = nearkit_command("predict", "ads.nearkit", "new.csv", "--proba", "--out",
                              "predictions.csv", cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    streamed = nearkit_command("predict", "ads.nearkit", "new.csv", "--chunk-rows", 7,
                               cwd=tmp_path)
    assert streamed.returncode == 0, streamed.stderr
    info = nearkit_command("info", "ads.nearkit", cwd=tmp_path)
    assert info.returncode == 0, info.stderr

    # the same model through the Python API
    data = load_csv(tmp_path / "train.csv", "Purchased", drop=["User ID"])
    model = make_pipeline(make_preprocessor(data), KNNClassifier(7, weights="distance"))
    y = data.frame["Purchased"].to_numpy()
    accuracy = cross_val_score(model, data.X, y, cv=5).mean()
    assert f"5-fold cross-validated accuracy: {accuracy:.4f}" in fit.stdout
    new = load_csv(tmp_path / "new.csv", "Purchased", drop=["User ID"]).X
    proba = model.fit(data.X, y).predict_proba(new)
    written = pd.read_csv(tmp_path / "predictions.csv")
    assert list(written) == ["Purchased", "proba_0", "proba_1"]
    np.testing.assert_array_equal(written[["proba_0", "proba_1"]].to_numpy(), proba)
    np.testing.assert_array_equal(written["Purchased"], model.predict(new))
    assert streamed.stdout == "Purchased\n" + "".join(f"{label}\n" for label in
                                                      model.predict(new))
    loaded = nearkit.load(tmp_path / "ads.nearkit")  # the raw table in, predictions out
    np.testing.assert_array_equal(loaded.predict_proba(table.iloc[320:]), proba)
    for expected in ("table (nearkit.datasets.TableEncoder) -> preprocess", "n_neighbors=7",
                     "weights='distance'", "Input columns (3): Gender, Age, EstimatedSalary",
                     "Features (4): Gender_Female, Gender_Male, Age, EstimatedSalary",
                     "Training set: 320 rows x 4 features", "sha256 of every one verified"):
        assert expected in info.stdout, info.stdout


@pytest.fixture
def shop(tmp_path):
    """A small table: a number with a missing cell, a text column, a True/False column."""
    rng = np.random.default_rng(2)
    n = 120
    frame = pd.DataFrame({
        "id": [f"c{i}" for i in range(n)],
        "size": rng.normal(size=n).round(3),
        "colour": rng.choice(["red", "green", "blue"], n),
        "member": rng.choice(["True", "False"], n),
        "spend": rng.uniform(0, 100, n).round(2),
        "label": rng.choice(["no", "yes"], n),
    })
    frame.loc[4, "size"] = np.nan
    frame.to_csv(tmp_path / "shop.csv", index=False)
    return frame


def run(args, capsys):
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_streams_in_row_order_and_regression_works(tmp_path, shop, capsys):
    model_path, shop_path = tmp_path / "spend.nearkit", tmp_path / "shop.csv"
    code, out, err = run(["fit", shop_path, "--target", "spend", "--task", "regression",
                          "--drop", "id", "--k", 4, "--metric", "manhattan", "--out", model_path],
                         capsys)
    assert code == 0, err
    assert "KNNRegressor k=4" in out and "metric=manhattan" in out
    code, out, err = run(["predict", model_path, shop_path, "--chunk-rows", 13], capsys)
    assert code == 0, err
    data = load_csv(shop_path, "spend", drop=["id"])
    expected = make_pipeline(make_preprocessor(data), KNNRegressor(4, metric="manhattan"))
    expected.fit(data.X, shop["spend"].to_numpy(float))
    written = pd.read_csv(io.StringIO(out))
    np.testing.assert_array_equal(written["spend"], expected.predict(data.X))
    code, _, err = run(["predict", model_path, shop_path, "--proba"], capsys)
    assert code == 2 and "--proba needs a classifier" in err
    code, _, err = run(["fit", shop_path, "--target", "colour", "--task", "regression",
                        "--out", model_path], capsys)
    assert code == 2 and "needs a numeric target; 'colour' holds text" in err


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.assign(colour=f["colour"].replace("green", "purple")),
     r"column 'colour' has a level the model was not fitted with, in \d+ cells: row \d+ "
     r"'purple'.*known levels: \['blue', 'green', 'red'\]"),
    (lambda f: f.drop(columns="member"), r"missing \['member'\]"),
    (lambda f: f.assign(shoe=1), r"unexpected \['shoe'\]"),
    (lambda f: f.astype({"spend": object}).assign(spend=["lots"] + [1.0] * (len(f) - 1)),
     r"column 'spend' must hold numbers but holds text in 1 cell: row 0 'lots'"),
    (lambda f: f.assign(member=["maybe"] + ["True"] * (len(f) - 1)),
     r"column 'member' must be True/False but holds 1 cell: row 0 'maybe'"),
], ids=["level", "missing", "extra", "text", "boolean"])
def test_predict_names_what_does_not_match_the_fitted_table(tmp_path, shop, capsys, change,
                                                             message):
    model_path = tmp_path / "shop.nearkit"
    code, _, err = run(["fit", tmp_path / "shop.csv", "--target", "label", "--drop", "id",
                        "--out", model_path], capsys)
    assert code == 0, err
    change(shop.drop(columns="label")).to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run(["predict", model_path, tmp_path / "new.csv"], capsys)
    assert code == 2
    assert "nearkit predict: CSV" in err and "new.csv" in err
    assert re.search(message, err), err


def test_an_empty_cell_needs_an_imputer_and_other_files_are_refused(tmp_path, shop, capsys):
    complete = shop.drop(index=4)
    complete.to_csv(tmp_path / "complete.csv", index=False)
    model_path = tmp_path / "complete.nearkit"
    code, _, err = run(["fit", tmp_path / "complete.csv", "--target", "label", "--drop", "id",
                        "--out", model_path], capsys)
    assert code == 0, err
    code, _, err = run(["predict", model_path, tmp_path / "shop.csv"], capsys)
    assert code == 2 and "column 'size' has 1 empty cells, in rows 4" in err
    assert "no imputer" in err
    bare = tmp_path / "bare.nearkit"
    nearkit.save(KNNClassifier(3).fit([[0.0], [1.0], [2.0]], [0, 1, 1]), bare)
    code, _, err = run(["predict", bare, tmp_path / "shop.csv"], capsys)
    assert code == 2 and "was not written by 'nearkit fit'" in err
    code, _, err = run(["info", tmp_path / "shop.csv"], capsys)
    assert code == 2 and "is not a nearkit model file" in err
