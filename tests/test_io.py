"""nearkit.save / nearkit.load: exact round trips, no rebuild, no pickle, and every damaged
file refused with a ValueError naming what is wrong."""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline

import nearkit
import nearkit._base
import nearkit.search.brute
import nearkit.search.gemm
import nearkit.search.kdtree
import nearkit.search.tiled
from nearkit import (
    KNNClassifier,
    KNNImputer,
    KNNOutlierDetector,
    KNNRegressor,
    NearestNeighbors,
)
from nearkit._kernels import brute, brute32, gemm, kdtree, tiled
from nearkit._modelfile import MAGIC, write_model_file
from nearkit.datasets import load_csv, make_preprocessor
from nearkit.io import REGISTRY, describe
from nearkit.metrics import METRICS
from nearkit.search import ENGINES
from nearkit.weights import WEIGHTS

SRC = Path(nearkit.__file__).parent


@pytest.fixture(scope="module")
def data():
    """Rounded Gaussian data (exact distance ties), above the float32 sweeps' threshold."""
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(2600, 5)), 1)
    y = rng.integers(0, 3, len(X))
    Q = np.vstack([np.round(rng.normal(size=(150, 5)), 1), X[:10]])
    return X, y, Q


def round_trip(model, tmp_path, **load_options):
    path = tmp_path / "model.nearkit"
    nearkit.save(model, path)
    return nearkit.load(path, **load_options)


def assert_same(a, b):
    """Equal bit for bit, dtype included (tuples of arrays element by element)."""
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


# (metric, engine, weights) configurations: together every metric, engine and weighting
CONFIGS = [
    ({"metric": "euclidean"}, "gemm", {"weights": "uniform"}, 1.0),
    ({"metric": "euclidean"}, "gemm", {"weights": "distance"}, 1e130),  # float64 fallback
    ({"metric": "euclidean"}, "brute", {"weights": "dudani"}, 1.0),  # float32 sweep
    ({"metric": "manhattan"}, "tiled", {"weights": "gaussian"}, 1.0),
    ({"metric": "chebyshev"}, "kd_tree", {"weights": "gaussian", "sigma": 0.5}, 1.0),
    ({"metric": "minkowski", "p": 3}, "brute", {"weights": "distance"}, 1.0),
    ({"metric": "mahalanobis"}, "gemm", {"weights": "dudani"}, 1.0),
    ({"metric": "mahalanobis", "metric_params": {"V": np.diag([1.0, 2, 3, 4, 5])}}, "kd_tree",
     {"weights": "uniform"}, 1.0),
    ({"metric": "cosine"}, "tiled", {"weights": "distance"}, 1.0),
    ({"metric": "cosine"}, "projected", {"weights": "gaussian"}, 1.0),
    ({"metric": "euclidean"}, "projected", {"weights": "uniform"}, 1e130),  # brute force
    ({"metric": "l1"}, "auto", {"weights": "uniform"}, 1.0),
]
KERNELS = [brute.brute_knn, brute32.brute32_knn, gemm.gemm_knn, tiled.tiled_knn,
           tiled.assign_tiles, kdtree.query_kdtree]


def test_the_configurations_cover_every_metric_engine_and_weighting():
    metrics = {METRICS.get(m["metric"], METRICS["manhattan"]).name for m, *_ in CONFIGS}
    assert metrics == set(METRICS)
    assert {engine for _, engine, *_ in CONFIGS} >= set(ENGINES)
    assert {w["weights"] for _, _, w, _ in CONFIGS} == set(WEIGHTS)


@pytest.mark.parametrize(("metric", "engine", "weights", "scale"), CONFIGS,
                         ids=[f"{m['metric']}-{e}-{w['weights']}" for m, e, w, _ in CONFIGS])
def test_round_trip_is_exact_and_compiles_nothing_new(data, tmp_path, metric, engine, weights,
                                                      scale):
    X, y, Q = data
    if metric["metric"] == "minkowski":  # (slow: a pow per pair and feature)
        X, y = X[:600], y[:600]
    X, Q = X * scale, Q * scale
    model = KNNClassifier(7, algorithm=engine, **metric, **weights).fit(X, y)
    if engine == "gemm":
        assert (model._index._fallback is None) == (scale == 1.0)
    before = (model.predict_proba(Q), model.predict(Q), model.kneighbors(Q),
              model.kneighbors(n_neighbors=3), model.predict_proba())
    signatures = [len(kernel.signatures) for kernel in KERNELS]
    for mmap in (True, False):
        loaded = round_trip(model, tmp_path, mmap=mmap)
        assert loaded.algorithm_ == model.algorithm_ and type(loaded._index) is type(model._index)
        after = (loaded.predict_proba(Q), loaded.predict(Q), loaded.kneighbors(Q),
                 loaded.kneighbors(n_neighbors=3), loaded.predict_proba())
        assert_same(before, after)
    # the loaded arrays have the types the kernels were compiled for: no new compilation
    assert [len(kernel.signatures) for kernel in KERNELS] == signatures
    assert loaded.get_params().keys() == model.get_params().keys()
    assert loaded.effective_metric_ == model.effective_metric_


def _outputs(model, Q):
    """What each estimator answers, for before / after comparisons."""
    if isinstance(model, KNNImputer):
        return (model.transform(Q),)
    if isinstance(model, KNNOutlierDetector):
        return (model.decision_scores_, model.score_samples(Q), model.decision_function(Q),
                model.predict(Q), model.kneighbors(Q))
    if isinstance(model, NearestNeighbors):
        dist, ind = model.radius_neighbors(Q, radius=1.0, sort_results=True)
        return (model.kneighbors(Q), model.kneighbors(), np.concatenate(dist),
                np.concatenate(ind), model.kneighbors_graph(Q).toarray())
    outputs = (model.predict(Q), model.kneighbors(Q), model.score(), model.predict())
    if isinstance(model, KNNClassifier):
        outputs += (model.predict_proba(Q), model.classes_)
    return outputs


def _estimators(X, y):
    rng = np.random.default_rng(3)
    weights = rng.uniform(0.2, 2.0, len(X))
    labels = np.array(["apple", "kiwi", "pear"])[y]
    with_gaps = np.where(rng.random(X.shape) < 0.1, np.nan, X)
    return {
        "classifier": (KNNClassifier(5, class_weight={"kiwi": 2.0, "apple": 1.0, "pear": 0.5}),
                       (X, labels), {"sample_weight": weights}),
        "regressor": (KNNRegressor(4, weights="dudani", metric="minkowski", p=np.inf),
                      (X, np.c_[X[:, 0], y.astype(float)]), {"sample_weight": weights}),
        "nearest": (NearestNeighbors(n_neighbors=3, metric="manhattan", algorithm="tiled"),
                    (X,), {}),
        "outliers": (KNNOutlierDetector(6, method="median", novelty=True, contamination=0.05),
                     (X,), {}),
        "imputer": (KNNImputer(n_neighbors=3, weights="distance", add_indicator=True),
                    (with_gaps,), {}),
    }


@pytest.mark.parametrize("name", ["classifier", "regressor", "nearest", "outliers", "imputer"])
def test_every_estimator_round_trips(data, tmp_path, name):
    X, y, Q = data
    model, args, fit_params = _estimators(X[:800], y[:800])[name]
    model.fit(*args, **fit_params)
    if name == "imputer":
        Q = np.where(np.random.default_rng(4).random(Q.shape) < 0.2, np.nan, Q)
    loaded = round_trip(model, tmp_path)
    assert type(loaded) is type(model)
    assert repr(loaded.get_params()) == repr(model.get_params())
    assert_same(_outputs(model, Q), _outputs(loaded, Q))


def test_fitted_preprocessor_and_pipeline_round_trip_on_a_table(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame({"size": rng.normal(size=n).round(2), "colour": rng.choice(
        ["red", "green", "blue"], n), "member": rng.choice(["True", "False"], n),
        "label": rng.choice(["yes", "no"], n)})
    frame.loc[[3, 7], "size"] = np.nan
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    table = load_csv(path, "label")
    preprocessor = make_preprocessor(table).fit(table.X)
    assert_same(round_trip(preprocessor, tmp_path).transform(table.X),
                preprocessor.transform(table.X))
    model = make_pipeline(make_preprocessor(table), KNNClassifier(3, weights="gaussian"))
    model.fit(table.X, table.y)
    loaded = round_trip(model, tmp_path)
    assert isinstance(loaded, Pipeline) and list(loaded.feature_names_in_) == list(table.X)
    assert_same(loaded.predict_proba(table.X), model.predict_proba(table.X))
    # the whole chain from the raw table: the column plan, the preprocessor, the estimator
    raw = Pipeline([("table", table.encoder), ("model", model)])
    loaded = round_trip(raw, tmp_path)
    new = frame.drop(columns="label").sample(50, random_state=0)
    assert_same(loaded.predict(new), raw.predict(new))


def test_loading_rebuilds_nothing(data, tmp_path, monkeypatch):
    X, y, Q = data
    models = [KNNClassifier(algorithm=engine, metric=metric).fit(X, y)
              for engine, metric in [("brute", "euclidean"), ("gemm", "mahalanobis"),
                                     ("tiled", "manhattan"), ("kd_tree", "chebyshev")]]
    for i, model in enumerate(models):
        nearkit.save(model, tmp_path / f"{i}.nearkit")

    def forbidden(*args, **kwargs):
        raise AssertionError("loading built an index")

    for engine in ENGINES.values():
        monkeypatch.setattr(engine, "_build", forbidden)
    for module, name in [(nearkit.search.tiled, "partition"), (nearkit.search.kdtree,
                         "build_kdtree"), (nearkit.search.brute, "float32_space"),
                         (nearkit.search.gemm, "float32_space"), (nearkit._base, "select_index"),
                         (nearkit._base, "resolve_metric")]:
        monkeypatch.setattr(module, name, forbidden)
    for i, model in enumerate(models):
        loaded = nearkit.load(tmp_path / f"{i}.nearkit")
        assert_same(loaded.kneighbors(Q), model.kneighbors(Q))
    with pytest.raises(AssertionError, match="built an index"):  # the patches do bite
        KNNClassifier(algorithm="tiled").fit(X, y)


def test_loading_unpickles_nothing(data, tmp_path, monkeypatch):
    X, y, Q = data
    model = make_pipeline(make_preprocessor("iris"), KNNClassifier(weights="distance"))
    model.fit(X, y)
    path = tmp_path / "model.nearkit"
    nearkit.save(model, path)

    def forbidden(*args, **kwargs):
        raise AssertionError("loading unpickled")

    import _pickle
    for module in (pickle, _pickle):
        for name in ("load", "loads", "Unpickler"):
            monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    assert_same(nearkit.load(path).predict_proba(Q), model.predict_proba(Q))
    # and the loading code does not even import a pickler
    for module in ("io.py", "_modelcodec.py", "_modelfile.py"):
        tree = ast.parse((SRC / module).read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names} | {node.module.split(".")[0] for node in
                                                ast.walk(tree) if isinstance(node, ast.ImportFrom)
                                                and node.module}
        assert not imported & {"pickle", "_pickle", "joblib", "cloudpickle", "dill", "skops"}
        calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute)
                 and getattr(node.func.value, "id", None) in ("np", "numpy")}
        assert not calls & {"load", "loadtxt", "genfromtxt", "fromfile"}


def test_save_refuses_code_and_unknown_classes(data, tmp_path):
    X, y, _ = data
    path = tmp_path / "model.nearkit"
    with pytest.raises(ValueError, match=r"Cannot save model\.weights = <function.*callable.*"
                                         "data, not code"):
        nearkit.save(KNNClassifier(weights=lambda dist: 1 / (1 + dist)).fit(X, y), path)
    imputer = KNNImputer(weights=np.ones_like).fit(X)
    with pytest.raises(ValueError, match=r"model\.weights .*callable"):
        nearkit.save(imputer, path)
    with pytest.raises(ValueError, match=r"Cannot save model\.steps\[1\]\[1\]: a "
                                         r"sklearn\..*KNeighborsClassifier"):
        nearkit.save(make_pipeline(make_preprocessor("iris"), KNeighborsClassifier()).fit(X, y),
                     path)
    with pytest.raises(NotFittedError):
        nearkit.save(KNNClassifier(), path)
    model = KNNClassifier().fit(X, y).set_params(metric="manhattan")
    with pytest.raises(ValueError, match="'metric' parameter was changed after fit"):
        nearkit.save(model, path)
    assert not path.exists()


def test_values_of_every_kind_round_trip():
    """The generic encoding of fitted attributes (model_selection's cv_results_ included:
    masked object columns, lists of dicts)."""
    from nearkit._modelcodec import Decoder, Encoder

    column = np.ma.MaskedArray(np.array([3, None, 5], dtype=object), mask=[False, True, False])
    value = {"params": [{"n_neighbors": 3, "weights": "uniform"}, {"p": np.inf}],
             "param_n_neighbors": column, "rank": np.array([2, 1], dtype=np.int32),
             "names": np.array(["a", "b"], dtype=object), 7: (np.float64(0.5), np.int64(-2),
                                                          np.dtype("float32"), float("nan"))}
    arrays = {}
    node = Encoder(arrays, REGISTRY).encode(value, "value")
    back = Decoder(arrays, "memory", REGISTRY).decode(json.loads(json.dumps(node)), "value")
    assert repr(back) == repr(value)
    assert isinstance(back["param_n_neighbors"], np.ma.MaskedArray)
    np.testing.assert_array_equal(back["param_n_neighbors"].mask, column.mask)


def test_every_public_estimator_is_registered():
    registered = {entry.resolve() for entry in REGISTRY}
    public = {getattr(nearkit, name) for name in nearkit.__all__}
    assert {cls for cls in public if isinstance(cls, type) and hasattr(cls, "fit")} <= registered


def test_replacing_a_file_leaves_a_mapped_model_intact(data, tmp_path):
    X, y, Q = data
    path = tmp_path / "model.nearkit"
    first = KNNClassifier(algorithm="tiled").fit(X, y)
    nearkit.save(first, path)
    mapped = nearkit.load(path)
    nearkit.save(KNNClassifier(algorithm="tiled").fit(X[::-1], y), path)
    assert_same(mapped.kneighbors(Q), first.kneighbors(Q))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_describe_says_what_the_file_holds(data, tmp_path):
    X, y, _ = data
    path = tmp_path / "model.nearkit"
    nearkit.save(KNNClassifier(9, weights="dudani", algorithm="kd_tree").fit(X, y), path)
    text = describe(path)
    for expected in ("format version 1", "nearkit.KNNClassifier", "n_neighbors=9",
                     "weights='dudani'", "2,600 rows x 5 features", "engine 'kd_tree'",
                     "Classes: 0, 1, 2", "sha256 of every one verified"):
        assert expected in text, text


# -- damaged files -------------------------------------------------------------------------


@pytest.fixture
def saved(data, tmp_path):
    """A small model file (its tiles, labels and metric) and the model."""
    X, y, _ = data
    model = KNNClassifier(algorithm="tiled", metric="mahalanobis").fit(X[:300], y[:300])
    path = tmp_path / "model.nearkit"
    nearkit.save(model, path)
    return path


def _read(path):
    """(raw bytes, header, start of the data section) of a model file."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[8:16], "little")
    return raw, json.loads(raw[48:48 + n]), -(-(48 + n) // 64) * 64


def _rewrite(path, edit):
    """Apply ``edit`` to the header and write it back with a valid header checksum: the
    checks past the header's own must catch what ``edit`` broke."""
    raw, header, start = _read(path)
    edit(header)
    text = json.dumps(header).encode()
    pad = bytes(-(48 + len(text)) % 64)
    path.write_bytes(MAGIC + len(text).to_bytes(8, "little") + hashlib.sha256(text).digest()
                     + text + pad + raw[start:])


def _entry(header, name):
    return next(entry for entry in header["arrays"] if entry["name"] == name)


def test_a_flipped_byte_is_refused_naming_the_array(saved):
    raw, header, start = _read(saved)
    for entry in header["arrays"]:
        if not entry["nbytes"]:
            continue
        damaged = bytearray(raw)
        damaged[start + entry["offset"] + entry["nbytes"] // 2] ^= 0x10
        saved.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match=rf"array '{entry['name']}' is corrupted \(its "
                                             "sha256 does not match"):
            nearkit.load(saved)
    for where, message in [(60, "the header is corrupted"), (start - 1, "not zero")]:
        damaged = bytearray(raw)
        damaged[where] ^= 0x01
        saved.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match=message):
            nearkit.load(saved)


def test_a_truncated_or_overlong_file_is_refused(saved):
    raw, header, start = _read(saved)
    # the last array with bytes (empty arrays, such as a one-tile index's tree, are never
    # cut), short of its last byte
    last = [entry for entry in header["arrays"] if entry["nbytes"]][-1]
    end = start + last["offset"] + last["nbytes"]
    for size, message in [(4, "truncated: it has 4 bytes"), (30, "truncated: its header needs"),
                          (start + 100, "truncated: its header declares"),
                          (end - 1, f"array '{last['name']}' is cut short")]:
        saved.write_bytes(raw[:size])
        with pytest.raises(ValueError, match=message):
            nearkit.load(saved)
    # one byte short at the very end: the alignment after the last array with bytes, and
    # no array named as cut short (the empty ones after it hold nothing to cut)
    empty = [entry["name"] for entry in header["arrays"] if not entry["nbytes"]]
    assert empty and raw.endswith(b"\0")  # (300 points: one tile, an empty tree)
    saved.write_bytes(raw[:-1])
    with pytest.raises(ValueError, match=r"truncated: .* the file has [\d,]+\.$"):
        nearkit.load(saved)
    saved.write_bytes(raw + b"\0" * 8)
    with pytest.raises(ValueError, match="larger than its header declares: .* 8 of them after"):
        nearkit.load(saved)


def test_a_shape_that_does_not_match_is_refused(saved):
    raw, header, _ = _read(saved)
    name = "model._index.box_lo"
    rows, columns = _entry(header, name)["shape"]
    _rewrite(saved, lambda h: _entry(h, name).update(shape=[rows + 1, columns]))
    with pytest.raises(ValueError, match=rf"array '{name}' has shape \({rows + 1}, {columns}\) "
                                         r"and dtype <f8 in the header, which is"):
        nearkit.load(saved)
    # the same bytes under another shape pass the container's checks, not the index's
    saved.write_bytes(raw)
    _rewrite(saved, lambda h: _entry(h, name).update(shape=[columns, rows]))
    with pytest.raises(ValueError, match=r"Index array 'box_lo' has dtype float64 and shape"):
        nearkit.load(saved)


def test_swapped_arrays_are_refused(saved):
    raw, header, start = _read(saved)
    lo, hi = _entry(header, "model._index.box_lo"), _entry(header, "model._index.box_hi")
    assert lo["nbytes"] == hi["nbytes"]
    data = bytearray(raw)
    a, b = start + lo["offset"], start + hi["offset"]
    data[a:a + lo["nbytes"]], data[b:b + hi["nbytes"]] = raw[b:b + hi["nbytes"]], raw[
        a:a + lo["nbytes"]]
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="array 'model._index.box_lo' is corrupted"):
        nearkit.load(saved)
    # entries swapped in the header (each hash still matches its bytes): the shapes do not
    saved.write_bytes(raw)

    def swap(h):
        x, y = _entry(h, "model._y"), _entry(h, "model._index.perm")
        x["name"], y["name"] = y["name"], x["name"]
        h["arrays"].sort(key=lambda entry: entry["offset"])
    _rewrite(saved, swap)
    with pytest.raises(ValueError, match="Index array 'perm' has dtype int64 and shape"):
        nearkit.load(saved)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda h: h.update(format_version=2), "has format version 2; this nearkit reads format "
                                           "version 1"),
    (lambda h: h["model"].update({"$object": "nearkit.Evil"}), "unknown class 'nearkit.Evil'"),
    (lambda h: h["model"].update({"$object": "os.system"}), "unknown class 'os.system'"),
    (lambda h: h["model"]["fitted"]["_index"].update({"$index": "ball_tree"}),
     "unknown search engine 'ball_tree'"),
    (lambda h: h["model"]["fitted"].update(predict=1), "'predict' cannot be a fitted attribute"),
    (lambda h: h["model"]["params"].update(evil=1), r"has no parameters \['evil'\]"),
    (lambda h: h["model"]["fitted"].pop("_y"), "incomplete"),
    (lambda h: h["model"]["fitted"].update(n_samples_fit_=299), "does not match the estimator"),
    (lambda h: h["model"]["fitted"]["_index"]["scalars"].update({"$dict": []}),
     "scalar 'n_samples' must be int"),
    (lambda h: h["model"]["fitted"].update(_y={"$pickle": "..."}), "unknown node"),
    (lambda h: h.pop("format"), "does not describe a nearkit model"),
], ids=["version", "class", "os-system", "engine", "method", "parameter", "missing", "size",
        "scalar", "node", "format"])
def test_a_header_nearkit_did_not_write_is_refused(saved, edit, message):
    _rewrite(saved, edit)
    with pytest.raises(ValueError, match=message):
        nearkit.load(saved)


@pytest.mark.parametrize(("engine", "name", "change", "message"), [
    ("tiled", "perm", lambda perm: perm + 5, r"'perm' holds entries outside \[-1, 2600\)"),
    ("gemm", "tree_left", lambda left: np.where(left >= 0, 0, left), "not describe a tree"),
    ("kd_tree", "perm", lambda perm: perm - 1, r"'perm' holds entries outside \[0, 2600\)"),
    ("kd_tree", "left", lambda left: np.where(left >= 0, 0, left), "not describe a tree"),
])
def test_links_out_of_range_are_refused(data, engine, name, change, message):
    """A file whose hashes match but whose permutation or tree links point outside the
    index (deliberately written) never reaches a kernel."""
    X, y, _ = data
    index = KNNClassifier(algorithm=engine).fit(X, y)._index
    arrays, scalars = index._state()
    arrays[name] = change(arrays[name])
    with pytest.raises(ValueError, match=message):
        type(index)._from_state(index.metric, arrays, scalars)


def test_other_files_are_refused(data, tmp_path):
    X, y, _ = data
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(KNNClassifier().fit(X, y)))
    with pytest.raises(ValueError, match="is a pickle file .* nearkit never unpickles"):
        nearkit.load(path)
    np.savez(tmp_path / "arrays.npz", X=X)
    with pytest.raises(ValueError, match=r"is a zip archive \(\.npz"):
        nearkit.load(tmp_path / "arrays.npz")
    (tmp_path / "notes.txt").write_text("k=5\n")
    with pytest.raises(ValueError, match="is not a nearkit model file"):
        nearkit.load(tmp_path / "notes.txt")
    write_model_file(tmp_path / "extra.nearkit", {"model": None}, {"stray": X[:2]})
    with pytest.raises(ValueError, match=r"the arrays \['stray'\] are stored but no part"):
        nearkit.load(tmp_path / "extra.nearkit")


def test_threads_saving_to_one_path_do_not_share_a_temporary_file(data, tmp_path):
    """Each save writes its own temporary file: a thread's clean-up never removes another's
    (with one name per process, a replace raised FileNotFoundError)."""
    from concurrent.futures import ThreadPoolExecutor

    X, y, Q = data
    model = KNNClassifier().fit(X, y)
    path = tmp_path / "shared.nearkit"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: nearkit.save(model, path), range(40)))
    np.testing.assert_array_equal(nearkit.load(path).predict(Q), model.predict(Q))
    assert [p.name for p in tmp_path.iterdir()] == ["shared.nearkit"]


@pytest.mark.parametrize("name, warns", [("imputer", True), ("nearest", False)])
def test_scikit_learn_version_warning_for_its_state_only(data, tmp_path, name, warns):
    """A file written by another scikit-learn warns when it holds scikit-learn's fitted
    state (nearkit's KNNImputer subclasses scikit-learn's), and not otherwise."""
    import warnings

    X, y, Q = data
    model, args, fit_params = _estimators(X[:300], y[:300])[name]
    path = tmp_path / "model.nearkit"
    nearkit.save(model.fit(*args, **fit_params), path)
    _rewrite(path, lambda h: h["versions"].update({"scikit-learn": "0.0"}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nearkit.load(path)
    assert any("written with scikit-learn 0.0" in str(w.message) for w in caught) == warns
