"""Tests of nearkit.datasets.

The report datasets are read from ``$NEARKIT_DATA`` (set by .ci/run); those tests are skipped
when it is unset.  Downloads are tested against a local HTTP server on 127.0.0.1, never the
internet: every test runs with ``NEARKIT_DATA_URL`` pointing at a closed local port unless it
starts its own server.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import os
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from nearkit.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    SchemaError,
    _files,
    check_dataset_name,
    dataset_from_frame,
    dataset_status,
    fetch_dataset,
    list_datasets,
    load_csv,
    load_dataset,
    make_like,
    make_preprocessor,
)
from nearkit.datasets._cli import register as register_cli
from nearkit.datasets._files import git_blob_of, source_urls
from nearkit.datasets._registry import SPECS

# rows, positives (target == 1) and columns, copied from MANIFEST.md; features after one-hot.
MANIFEST = {
    "social_network_ads": {"rows": 400, "positives": 143, "columns": 5, "features": 3},
    "bank_churn": {"rows": 10_000, "positives": 2_037, "columns": 14, "features": 13},
    "spotify_tracks": {"rows": 22_800, "positives": None, "columns": 21, "features": 14},
    "loan_approval": {"rows": 45_000, "positives": 10_000, "columns": 14, "features": 27},
    "pima_diabetes": {"rows": 768, "positives": 268, "columns": 9, "features": 8},
}
PIMA_ZEROS = {"Glucose": 5, "BloodPressure": 35, "SkinThickness": 227, "Insulin": 374, "BMI": 11}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No user cache, no internet: a closed local port as download base, proxies bypassed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv("NEARKIT_DATA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def shared() -> Path:
    """The folder holding the five report CSVs, or skip."""
    folder = os.environ.get("NEARKIT_DATA")
    if not folder:
        pytest.skip("NEARKIT_DATA is not set: the report datasets live outside the repository")
    missing = [s.filename for s in SPECS.values() if not (Path(folder) / s.filename).is_file()]
    if missing:
        pytest.skip(f"{missing} absent from NEARKIT_DATA={folder}")
    return Path(folder)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture
def server(tmp_path):
    """``(root, base_url)``: an HTTP server on 127.0.0.1 serving the folder ``root``."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _publish(root: Path, name: str, contents: list[bytes]) -> None:
    """Put each part of a dataset where its pinned URL points, under ``root``."""
    spec = SPECS[name]
    for part, content in zip(spec.parts, contents):
        target = root / spec.repo / spec.commit / part.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _parts_of(shared: Path, name: str) -> list[bytes]:
    """The upstream files of a dataset; Spotify's file is test.csv + validate.csv minus header."""
    content = (shared / SPECS[name].filename).read_bytes()
    if name != "spotify_tracks":
        return [content]
    lines = content.splitlines(keepends=True)
    return [b"".join(lines[: 1 + 11_400]), lines[0] + b"".join(lines[1 + 11_400 :])]


def _flip_one_byte(content: bytes, at: int = 100) -> bytes:
    return content[:at] + bytes([content[at] ^ 0x01]) + content[at + 1 :]


def test_list_datasets_in_report_order():
    assert list_datasets() == [
        "social_network_ads", "bank_churn", "spotify_tracks", "loan_approval", "pima_diabetes"
    ]


def test_default_urls_are_pinned_to_a_commit(monkeypatch):
    monkeypatch.delenv("NEARKIT_DATA_URL")
    assert source_urls(SPECS["pima_diabetes"]) == [
        "https://raw.githubusercontent.com/prasertcbs/basic-dataset/"
        "a53613f61acc18b9ff46a5c018336d2f9ba0187b/diabetes.csv"
    ]
    assert len(source_urls(SPECS["spotify_tracks"])) == 2


def test_git_blob_id_is_what_git_hash_object_prints(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_of(path) == "ce013625030ba8dba906f756967f9e9ca394464a"


@pytest.mark.parametrize("name", list(MANIFEST))
def test_report_dataset_has_manifest_rows_and_balance(shared, name):
    expected = MANIFEST[name]
    data = load_dataset(name, download=False)
    raw = pd.read_csv(shared / SPECS[name].filename)
    assert data.info["n_rows_file"] == expected["rows"] == len(raw)
    assert data.info["status"] == "verified" and data.info["file"] == str(shared / f"{name}.csv")
    assert data.frame.shape[1] == expected["columns"]
    assert data.X.shape == (len(data.frame), expected["features"]) == (len(data.y), data.info["n_features"])
    assert (data.X.dtypes == np.float64).all() and data.y.dtype == np.int64
    assert set(np.unique(data.y)) == {0, 1}
    if expected["positives"] is not None:
        assert len(data.y) == expected["rows"]
        assert data.info["class_counts"] == {0: expected["rows"] - expected["positives"], 1: expected["positives"]}
        share = f"{100 * expected['positives'] / expected['rows']:.2f} %"
        assert share in data.description
    for column in SPECS[name].dropped:
        assert f"Dropped {column}:" in data.description
    assert SPECS[name].repo in data.description and "Class balance" in data.description
    if name != "pima_diabetes":
        assert not data.X.isna().any().any()


def test_spotify_drops_repeated_tracks_before_the_target(shared):
    data = load_dataset("spotify_tracks", download=False)
    raw = pd.read_csv(shared / "spotify_tracks.csv")
    unique = raw.drop_duplicates("track_id")
    assert len(data.X) == len(unique) == 21_528 and data.info["duplicates_dropped"] == 1_272
    assert data.frame["track_id"].is_unique
    assert (data.y == (unique["popularity"].to_numpy() >= 50)).all()
    assert data.info["class_counts"] == {0: 16_033, 1: 5_495}
    assert set(data.X["explicit"].unique()) == {0.0, 1.0}
    assert "track_genre" not in data.X.columns and "114 levels" in data.description
    assert data.info["is_full"] is False and "22,800-row subset" in data.description


def test_feature_columns_are_the_documented_encoding(shared):
    social = load_dataset("social_network_ads", download=False)
    assert list(social.X.columns) == ["Gender_Male", "Age", "EstimatedSalary"]
    assert social.X["Gender_Male"].sum() == 196  # MANIFEST: 204 Female, 196 Male
    churn = load_dataset("bank_churn", download=False)
    assert churn.X[["Geography_France", "Geography_Germany", "Geography_Spain"]].sum().tolist() == [5014, 2509, 2477]
    loan = load_dataset("loan_approval", download=False)
    assert loan.X.filter(like="person_home_ownership_").sum(axis=1).eq(1).all()


def test_pima_missing_zeros_are_imputed_from_the_training_split_only(shared):
    data = load_dataset("pima_diabetes", download=False)
    assert data.X.isna().sum().to_dict() == {**dict.fromkeys(data.X.columns, 0), **PIMA_ZEROS}
    assert (data.frame["Insulin"] == 0).sum() == 374  # the raw table keeps the file's zeros
    train, test = data.X.iloc[:500], data.X.iloc[500:]
    pre = make_preprocessor("pima_diabetes").fit(train)
    imputer, scaler = pre.named_steps["impute"], pre.named_steps["scale"]
    np.testing.assert_allclose(imputer.statistics_, train.median().to_numpy())
    assert not np.allclose(imputer.statistics_, data.X.median().to_numpy())
    out = pre.transform(test)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == test.shape
    assert not np.isnan(out).any()
    np.testing.assert_allclose(pre.transform(train).mean(axis=0), 0.0, atol=1e-12)
    assert scaler.n_features_in_ == 8


def test_preprocessor_runs_inside_cross_validation(shared):
    data = load_dataset("bank_churn", download=False)
    assert [name for name, _ in make_preprocessor("bank_churn").steps] == ["scale"]
    model = make_pipeline(make_preprocessor(data), KNeighborsClassifier())
    assert cross_val_score(model, data.X.iloc[:2000], data.y[:2000], cv=3).mean() > 0.75


def test_one_byte_changed_is_refused(shared, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    good = (shared / "pima_diabetes.csv").read_bytes()
    (home / "pima_diabetes.csv").write_bytes(_flip_one_byte(good))
    found = hashlib.sha256(_flip_one_byte(good)).hexdigest()
    with pytest.raises(ChecksumError) as error:
        load_dataset("pima_diabetes", data_home=home, download=False)
    message = str(error.value)
    assert str(home / "pima_diabetes.csv") in message and found in message
    assert SPECS["pima_diabetes"].sha256 in message and "delete it" in message
    status = {row.name: (row.status, row.path) for row in dataset_status(home)}
    assert status["pima_diabetes"] == ("corrupt", home / "pima_diabetes.csv")
    assert status["bank_churn"] == ("verified", shared / "bank_churn.csv")


def test_missing_file_offline_names_file_places_and_url(tmp_path, monkeypatch):
    home, env = tmp_path / "home", tmp_path / "env"
    monkeypatch.setenv("NEARKIT_DATA", str(env))
    monkeypatch.delenv("NEARKIT_DATA_URL")
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("bank_churn", data_home=home, download=False)
    message = str(error.value)
    for expected in ("bank_churn.csv", str(home), str(env), str(tmp_path / "user-cache" / "nearkit")):
        assert expected in message
    assert source_urls(SPECS["bank_churn"])[0] in message
    assert [row.status for row in dataset_status(home)] == ["missing"] * 5


def test_table_missing_a_column_names_it(shared):
    frame = pd.read_csv(shared / "bank_churn.csv").drop(columns=["Geography", "Tenure"])
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['Geography', 'Tenure'\]"):
        dataset_from_frame("bank_churn", frame)


def test_csv_missing_the_target_column_names_it(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['label'\]"):
        load_csv(path, "label")


def _fake_full_spotify(shared: Path, path: Path, drop: str | None = None) -> str:
    """Write a stand-in for the 114,000-row original (Kaggle header: empty first name)."""
    frame = pd.read_csv(shared / "spotify_tracks.csv").rename(columns={"Unnamed: 0": ""})
    frame.drop(columns=[drop] if drop else []).to_csv(path, index=False)
    return git_blob_of(path)


def test_full_spotify_file_is_recognised_by_its_git_blob(shared, tmp_path, monkeypatch):
    path = tmp_path / "spotify_tracks.csv"
    blob = _fake_full_spotify(shared, path)
    # the recorded blob cannot be checked against a file (nobody has the full original here):
    # check it against the manifest it was transcribed from, not against a copy of itself
    assert f"Its git blob is {SPECS['spotify_tracks'].full_git_blob}," in (
        shared / "MANIFEST.md"
    ).read_text()
    monkeypatch.setitem(SPECS, "spotify_tracks", dataclasses.replace(SPECS["spotify_tracks"], full_git_blob=blob))
    data = load_dataset("spotify_tracks", data_home=tmp_path, download=False)
    assert data.info["status"] == "full" and data.info["is_full"] is True
    assert data.info["git_blob"] == blob and "yes" in data.description
    assert data.X.shape == (21_528, 14)
    assert dict(dataset_status(tmp_path)[2]._asdict()) == {"name": "spotify_tracks", "status": "full", "path": path}


def test_checksum_accepted_file_with_a_missing_column_names_it(shared, tmp_path, monkeypatch):
    blob = _fake_full_spotify(shared, tmp_path / "spotify_tracks.csv", drop="tempo")
    monkeypatch.setitem(SPECS, "spotify_tracks", dataclasses.replace(SPECS["spotify_tracks"], full_git_blob=blob))
    with pytest.raises(SchemaError, match=r"missing the column\(s\) \['tempo'\]"):
        load_dataset("spotify_tracks", data_home=tmp_path, download=False)


def test_download_from_pinned_url_then_verify(shared, server, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    monkeypatch.setenv("NEARKIT_DATA_URL", base)
    _publish(root, "social_network_ads", _parts_of(shared, "social_network_ads"))
    home = tmp_path / "home"
    data = load_dataset("social_network_ads", data_home=home)
    assert data.info["file"] == str(home / "social_network_ads.csv") and len(data.y) == 400
    assert sorted(p.name for p in home.iterdir()) == ["social_network_ads.csv"]


def test_download_joins_the_two_spotify_files(shared, server, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    _publish(root, "spotify_tracks", _parts_of(shared, "spotify_tracks"))
    path = fetch_dataset("spotify_tracks", data_home=tmp_path / "home", base_url=base)
    assert path.read_bytes() == (shared / "spotify_tracks.csv").read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["spotify_tracks.csv"]


def test_corrupted_download_is_refused_and_nothing_saved(shared, server, tmp_path, monkeypatch):
    root, base = server
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    _publish(root, "pima_diabetes", [_flip_one_byte((shared / "pima_diabetes.csv").read_bytes())])
    home = tmp_path / "home"
    with pytest.raises(ChecksumError, match="refusing the download of .*diabetes.csv") as error:
        fetch_dataset("pima_diabetes", data_home=home, base_url=base)
    assert SPECS["pima_diabetes"].parts[0].git_blob in str(error.value)
    assert not home.exists()


def test_unreachable_file_raises_download_error_naming_the_url(server, tmp_path, monkeypatch):
    _, base = server
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    with pytest.raises(DownloadError, match=rf"could not download {base}/.*Churn_Modelling.csv") as error:
        fetch_dataset("bank_churn", data_home=tmp_path / "home", base_url=base)
    assert "HTTP 404" in str(error.value) and str(tmp_path / "home") in str(error.value)
    assert not (tmp_path / "home").exists()


def test_failed_download_leaves_no_mistyped_data_folder_behind(tmp_path, monkeypatch):
    (tmp_path / "shared").mkdir()
    monkeypatch.setenv("NEARKIT_DATA", str(tmp_path / "shared" / "datsets" / "csv"))
    with pytest.raises(DownloadError, match="could not download http://127.0.0.1:9/"):
        load_dataset("pima_diabetes")
    assert list(tmp_path.iterdir()) == [tmp_path / "shared"]
    assert list((tmp_path / "shared").iterdir()) == []


def test_a_download_folder_with_a_stranger_file_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    home = tmp_path / "home"

    def someone_else_writes_then_fails(url, output, *, label):
        (home / "notes.txt").write_text("not nearkit's")
        raise DownloadError(f"could not download {url}")

    monkeypatch.setattr(_files, "_download", someone_else_writes_then_fails)
    with pytest.raises(DownloadError):
        fetch_dataset("pima_diabetes", data_home=home)
    assert [p.name for p in home.iterdir()] == ["notes.txt"]


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nearkit")
    register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_lists_status_and_fails_on_a_corrupt_file(shared, tmp_path, capsys):
    assert _run_cli(["datasets"]) == 0
    assert capsys.readouterr().out.count("verified") == 5
    (tmp_path / "bank_churn.csv").write_bytes(b"RowNumber\n1\n")
    assert _run_cli(["datasets", "--data-home", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("verified") == 4 and "corrupt" in out


def test_cli_download_fetches_every_missing_file(shared, server, tmp_path, monkeypatch, capsys):
    root, base = server
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    monkeypatch.setenv("NEARKIT_DATA_URL", base)
    for name in list_datasets():
        _publish(root, name, _parts_of(shared, name))
    home = tmp_path / "home"
    assert _run_cli(["datasets", "--data-home", str(home)]) == 0
    assert capsys.readouterr().out.count("missing") >= 5
    assert _run_cli(["datasets", "--download", "--data-home", str(home)]) == 0
    assert [row.status for row in dataset_status(home)] == ["verified"] * 5


@pytest.mark.parametrize("name", ["social_network_ads", "loan_approval", "pima_diabetes"])
def test_make_like_matches_features_and_balance(shared, name):
    real = load_dataset(name, download=False)
    fake = make_like(name, n_samples=20_001, random_state=3)
    assert fake.info["generator"].startswith("per-class Gaussian fitted")
    assert list(fake.X.columns) == list(real.X.columns) and fake.X.shape == (20_001, real.X.shape[1])
    assert abs(fake.y.mean() - real.y.mean()) <= 1 / 20_001
    assert not fake.X.isna().any().any()
    binary = [c for c in real.X.columns if set(real.X[c].dropna().unique()) <= {0.0, 1.0}]
    assert all(set(fake.X[c].unique()) <= {0.0, 1.0} for c in binary)
    z = (fake.X.mean() - real.X.mean()).abs() / real.X.std()
    assert (z < 0.25).all(), z
    assert fake.X.equals(make_like(name, n_samples=20_001, random_state=3).X)
    assert not fake.X.equals(make_like(name, n_samples=20_001, random_state=4).X)


def test_make_like_a_million_rows_is_fast(shared):
    start = time.perf_counter()
    fake = make_like("spotify_tracks", n_samples=1_000_000)
    elapsed = time.perf_counter() - start
    assert fake.X.shape == (1_000_000, 14) and fake.info["class_counts"][1] == round(1e6 * 5_495 / 21_528)
    assert elapsed < 20, f"make_like took {elapsed:.1f} s for 1,000,000 rows"


def test_make_like_without_the_file_uses_the_generic_generator(tmp_path, monkeypatch):
    monkeypatch.delenv("NEARKIT_DATA", raising=False)
    fake = make_like("bank_churn", n_samples=1_000, data_home=tmp_path)
    assert fake.info["generator"].startswith("generic") and fake.X.shape == (1_000, 13)
    assert fake.info["class_counts"] == {0: 796, 1: 204}
    assert list(fake.X.columns) == SPECS["bank_churn"].feature_names


@pytest.mark.parametrize(("name", "shape", "classes"), [
    ("iris", (150, 4), 3), ("wine", (178, 13), 3), ("breast_cancer", (569, 30), 2), ("digits", (1797, 64), 10)
])
def test_bundled_sets_load_offline(name, shape, classes):
    data = load_dataset(name, download=False)
    assert data.X.shape == shape and (data.X.dtypes == np.float64).all()
    assert len(np.unique(data.y)) == classes and "scikit-learn" in data.description
    assert sum(data.info["class_counts"].values()) == shape[0]


def test_load_csv_encodes_text_booleans_and_drops_identifiers(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({
        "id": [f"user{i}" for i in range(n)],
        "colour": rng.choice(["red", "green", "blue"], n),
        "member": rng.choice(["True", "False"], n),
        "size": rng.normal(size=n).round(3),
        "label": rng.choice(["yes", "no"], n),
    })
    frame.loc[3, "size"] = np.nan
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    data = load_csv(path, "label", positive="yes", max_categories=10)
    assert list(data.X.columns) == ["colour_blue", "colour_green", "colour_red", "member", "size"]
    assert (data.y == (frame["label"] == "yes")).all() and "id" in data.info["dropped_columns"]
    assert np.isnan(data.X.loc[3, "size"]) and "impute" in dict(make_preprocessor(data).steps)
    codes = load_csv(path, "label", drop=["id"])
    assert codes.info["classes"] == ["no", "yes"] and codes.X.shape[1] == 5
    with pytest.raises(SchemaError, match="never occurs"):
        load_csv(path, "label", positive="maybe")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="known datasets: 'social_network_ads'.*'digits'"):
        load_dataset("titanic")


def _csv_with_sizes(tmp_path: Path, n: int, cells: dict[int, str]) -> Path:
    """A CSV with a text column, a surname column, a numeric 'size' column and a label;
    ``cells`` replaces some 'size' cells by the text given."""
    rng = np.random.default_rng(4)
    size = [f"{value:.3f}" for value in rng.normal(size=n)]
    for row, text in cells.items():
        size[row] = text
    frame = pd.DataFrame({
        "Gender": rng.choice(["Female", "Male"], n),
        "Surname": [f"Name{i}" for i in range(n)],
        "size": size,
        "label": rng.integers(0, 2, n),
    })
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("n", [61, 20])  # 61 levels were dropped as text, 20 one-hot encoded
def test_load_csv_refuses_a_typo_in_a_numeric_column(tmp_path, n):
    path = _csv_with_sizes(tmp_path, n, {12: "12.5x"})
    with pytest.raises(SchemaError) as error:
        load_csv(path, "label")
    message = str(error.value)
    for expected in ("column 'size'", "row 12 '12.5x'", "rows counted from 0",
                     "na_values=('12.5x',)", "drop=['size']"):
        assert expected in message, message


def test_load_csv_na_values_declares_missing_value_markers(tmp_path):
    path = _csv_with_sizes(tmp_path, 61, {3: "NA", 7: "?", 9: "NA"})
    with pytest.raises(SchemaError, match=r"3 cells: row 3 'NA', row 7 '\?', row 9 'NA'.*"
                                          r"na_values=\('NA', '\?'\)"):
        load_csv(path, "label")
    data = load_csv(path, "label", na_values=("NA", "?"))
    assert list(data.X.columns) == ["Gender_Female", "Gender_Male", "size"]
    assert data.info["dropped_columns"] == {"Surname": "text with 61 levels (> max_categories=50)"}
    assert data.X["size"].isna().tolist() == [row in (3, 7, 9) for row in range(61)]
    raw = pd.read_csv(path)
    kept = ~data.X["size"].isna()
    np.testing.assert_array_equal(data.X["size"][kept], raw["size"][kept].astype(float))
    assert load_csv(path, "label", na_values="NA", drop=["size"]).X.shape == (61, 2)


def test_load_csv_keeps_every_boolean_of_a_column_with_an_empty_cell(tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("member,label\nTrue,1\n,0\nFalse,0\nTrue,1\n")
    data = load_csv(path, "label")
    np.testing.assert_array_equal(data.X["member"], [1.0, np.nan, 0.0, 1.0])


def _pima_frame(n: int = 10) -> pd.DataFrame:
    """A small table with the columns of pima_diabetes, every cell a valid number."""
    frame = pd.DataFrame({column: np.arange(1.0, n + 1) for column in SPECS["pima_diabetes"].columns})
    frame["Outcome"] = np.arange(n) % 2
    return frame


def test_report_dataset_schema_errors_name_the_row_and_value():
    assert dataset_from_frame("pima_diabetes", _pima_frame()).X.shape == (10, 8)
    frame = _pima_frame().astype({"Glucose": object})
    frame.loc[7, "Glucose"] = "12.5x"
    with pytest.raises(SchemaError, match=r"column 'Glucose' must be numeric but holds "
                                          r"1 cell: row 7 '12.5x' \(rows counted from 0"):
        dataset_from_frame("pima_diabetes", frame)
    frame = _pima_frame()
    frame.loc[[2, 4], "Pregnancies"] = np.nan
    with pytest.raises(SchemaError, match=r"'Pregnancies' has 2 empty cells, in "
                                          r"rows 2, 4 \(rows counted from 0"):
        dataset_from_frame("pima_diabetes", frame)
    frame = _pima_frame()
    frame.loc[5, "Outcome"] = 2
    with pytest.raises(SchemaError, match=r"'Outcome' must be 0/1 but holds 1 cell: row 5 2"):
        dataset_from_frame("pima_diabetes", frame)


def test_schema_error_rows_count_the_table_before_duplicates_are_dropped(shared):
    frame = pd.read_csv(shared / "spotify_tracks.csv", keep_default_na=False, na_values=[""])
    row = int(np.flatnonzero(~frame["track_id"].duplicated())[-1])
    assert row > 21_528  # after rows that repeat a track_id, so the two counts differ
    frame = frame.astype({"tempo": object})
    frame.loc[row, "tempo"] = "fast"
    with pytest.raises(SchemaError, match=rf"'tempo' must be numeric but holds 1 cell: row {row} 'fast'"):
        dataset_from_frame("spotify_tracks", frame)


def test_check_dataset_name_knows_what_load_dataset_loads():
    assert check_dataset_name(" Bank-Churn ") == "bank_churn"
    assert check_dataset_name("breast_cancer") == "breast_cancer"
    with pytest.raises(ValueError, match="unknown dataset 'titanic'; known datasets: 'social"):
        check_dataset_name("titanic")
