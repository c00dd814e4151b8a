"""The protocol: configuration, repeated stratified splits and interleaved, timed runs.

For each dataset, each setting (k, weights, metric) and each repeat:

1. a stratified split (``train_size`` of the rows, at most ``max_test`` test rows), with the
   dataset's preprocessor fitted on the training split only;
2. once per dataset and setting, a warm-up of every engine (fit, predict, predict_proba,
   kneighbors, one single-row predict) that is stored but never counted;
3. ``iterations`` timed fits, then ``iterations`` timed predicts of the test split, then
   ``latency_queries`` single-row predicts, each round visiting the engines in an order
   shuffled per repeat, so that drift of the machine hits every engine alike;
4. untimed: ``predict_proba`` (quality, ROC-AUC), ``kneighbors`` on the first
   ``check_queries`` test rows (checked by :mod:`~nearkit.bench.exactness`), and, in the
   first repeat, peak memory of a fresh fit and predict.

Quality figures come from :mod:`~nearkit.bench.quality`; everything is stored raw.  With
``cv`` on, each dataset's first training split also gets the cross-validated accuracy of every
(k, weights) (:mod:`~nearkit.bench.cvstudy`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from nearkit.bench import cvstudy, firstcall, profiling, scaling
from nearkit.bench.checks import check_config
from nearkit.bench.engines import (
    ENGINES,
    engine_class,
    engine_unavailable,
    make_engine,
    parse_engine_name,
    resolve_setting,
)
from nearkit.bench.environment import collect_environment
from nearkit.bench.exactness import check_neighbors, reference_kth_distances
from nearkit.bench.geometry import dataset_geometry
from nearkit.bench.measure import PeakMemory, limit_threads, settle, timed
from nearkit.bench.quality import quality_metrics
from nearkit.bench.results import SCHEMA_VERSION, jsonable

logger = logging.getLogger("nearkit.bench")

REPORT_DATASETS = (
    "social_network_ads", "bank_churn", "spotify_tracks", "loan_approval", "pima_diabetes",
)
QUICK_DATASETS = ("iris", "breast_cancer")
WARMUP_QUERIES = 32


@dataclass
class BenchConfig:
    """Everything that defines a run; stored in ``results.json``.

    Parameters
    ----------
    datasets : list of str
        Dataset names (:func:`nearkit.datasets.load_dataset`).
    engines : list of str
        Engine names (:data:`~nearkit.bench.engines.ENGINES`, optionally ``[Nt]``).
    ks : list of int
        Numbers of neighbours.
    weights, metrics : list of str
        Weighting schemes and metrics; every combination with ``ks`` is a setting.
    p : float
        Minkowski exponent for ``metric='minkowski'``.
    repeats : int
        Stratified splits per setting.
    iterations : int
        Timed fits and predicts per engine and repeat.
    threads : list of int
        Extra thread counts at which ``thread_engines`` also run (all cores always run).
    seed : int
        Seed of the splits, engine orders and synthetic data.
    baseline : str
        Engine the speed-ups are measured against.
    beta : float
        Beta of the F-beta score.
    sizes : list of int
        Training-set sizes of the scaling study (synthetic look-alikes of ``scaling_like``).
    first_call : {'all', 'jit', 'none'} or list of str
        Engines whose first call is timed in fresh processes: all, the JIT ones, none, or
        the listed ones.
    profile : bool
        Profile each engine's predict (``--profile``).
    cv : bool
        Cross-validate k and weights on each dataset (``--no-cv`` turns it off).
    cv_max_k : int
        Largest k of the cross-validation grid (k = 1..cv_max_k).
    cv_folds : int
        Folds of the stratified cross-validation.
    """

    datasets: list[str] = field(default_factory=lambda: list(REPORT_DATASETS))
    engines: list[str] = field(default_factory=lambda: list(ENGINES))
    ks: list[int] = field(default_factory=lambda: [5])
    weights: list[str] = field(default_factory=lambda: ["uniform"])
    metrics: list[str] = field(default_factory=lambda: ["euclidean"])
    p: float = 2.0
    repeats: int = 5
    iterations: int = 2
    threads: list[int] = field(default_factory=lambda: [1])
    thread_engines: list[str] = field(default_factory=lambda: ["nearkit-auto", "sklearn-auto"])
    seed: int = 0
    baseline: str = "sklearn-auto"
    beta: float = 2.0
    train_size: float = 0.8
    max_test: int = 1000
    latency_queries: int = 30
    check_queries: int = 200
    sizes: list[int] = field(default_factory=lambda: [2000, 8000, 32000, 114000, 228000])
    scaling_like: str = "spotify_tracks"
    scaling_engines: list[str] = field(
        default_factory=lambda: ["nearkit-auto", "nearkit-brute", "sklearn-auto", "sklearn-brute",
                                 "faiss-flatl2"]
    )
    scaling_queries: int = 1000
    scaling_repeats: int = 2
    first_call: str | list[str] = "all"
    profile: bool = False
    cv: bool = True
    cv_max_k: int = 30
    cv_folds: int = 5
    quick: bool = False
    data_home: str | None = None

    @classmethod
    def quick_config(cls, **overrides):
        """The ``--quick`` configuration: small bundled data, offline, under a minute."""
        values = {
            "datasets": list(QUICK_DATASETS), "repeats": 3, "iterations": 2,
            "latency_queries": 10, "check_queries": 100, "sizes": [500, 2000, 8000],
            "scaling_like": "breast_cancer", "scaling_queries": 200,
            "scaling_engines": ["nearkit-auto", "sklearn-auto", "sklearn-brute"],
            "scaling_repeats": 1, "first_call": ["nearkit-auto"], "quick": True,
        }
        values.update(overrides)
        return cls(**values)

    def engine_names(self):
        """The engines of the run: ``engines`` plus the thread-limited variants."""
        names = list(dict.fromkeys(self.engines))
        for n_threads in self.threads:
            for base in self.thread_engines:
                variant = f"{base}[{int(n_threads)}t]"
                if base in names and variant not in names:
                    names.append(variant)
        return names

    def settings(self):
        """Every (k, weights, metric) combination, in a fixed order."""
        return [
            {"n_neighbors": int(k), "weights": w, "metric": m, "p": float(self.p)}
            for k in self.ks for w in self.weights for m in self.metrics
        ]


class NullProgress:
    """Progress reporter that shows nothing (the CLI passes a rich one)."""

    def begin(self, total):
        """Announce the number of steps."""

    def step(self, text, advance=1):
        """Say what runs now and count ``advance`` steps done."""


def count_steps(config, n_engines, n_scaling_engines):
    """Number of progress steps of a run (one per engine and repeat, and per extra task)."""
    main = len(config.datasets) * len(config.settings()) * config.repeats * n_engines
    scaling = len(config.sizes) * n_scaling_engines
    extra = (len(config.datasets) * n_engines if config.profile else 0) + (
        len(config.datasets) if config.cv else 0)
    return main + scaling + extra


def _engine_table(names):
    table = {}
    for name in names:
        base, n_threads = parse_engine_name(name)
        cls = engine_class(name)
        reason = engine_unavailable(name)
        table[name] = {
            "base": base, "family": cls.family, "description": ENGINES[base].description,
            "threads": n_threads, "jit": cls.jit, "max_queries": cls.max_queries,
            "available": reason is None, "note": reason,
        }
    return table


def run_benchmark(config, progress=None, argv=None):
    """Run the whole study and return the results (``results.json`` content).

    Parameters
    ----------
    config : BenchConfig
        What to run; checked first (:func:`~nearkit.bench.checks.check_config`).
    progress : object with ``begin(total)`` and ``step(text, advance=1)``, optional
        Progress reporter.
    argv : list of str, optional
        Command line stored with the environment.

    Returns
    -------
    dict
        Raw results; see :mod:`nearkit.bench.schema`.

    Raises
    ------
    ValueError
        If a setting of ``config`` is invalid, before any work.
    """
    from nearkit.datasets import load_dataset

    config = check_config(config)
    progress = progress or NullProgress()
    names = config.engine_names()
    engines = _engine_table(names)
    runnable = [n for n in names if engines[n]["available"]]
    for name, entry in engines.items():
        if not entry["available"]:
            logger.warning("engine %s skipped: %s", name, entry["note"])
    usable = [n for n in config.scaling_engines if engine_unavailable(n) is None]
    progress.begin(count_steps(config, len(runnable), len(usable)))
    results = {
        "schema_version": SCHEMA_VERSION,
        "config": asdict(config),
        "environment": collect_environment(argv),
        "engines": engines,
        "datasets": {},
        "runs": [],
        "first_call": [],
        "scaling": [],
        "profiles": [],
        "cv": [],
    }
    loaded = {}
    progress.step("loading datasets", advance=0)
    for name in config.datasets:
        try:
            loaded[name] = load_dataset(name, data_home=config.data_home)
        except Exception as exc:  # a missing dataset is reported, the others still run
            logger.error("dataset %s could not be loaded: %s", name, exc)
            results["datasets"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    if config.first_call != "none" and loaded:
        first = next(iter(loaded.values()))
        chosen = _first_call_engines(config.first_call, runnable, engines)
        start = time.perf_counter()
        results["first_call"] = firstcall.measure_first_calls(
            chosen, n_features=first.X.shape[1], setting=config.settings()[0], seed=config.seed,
            progress=progress,
        )
        logger.info("first calls: %.1f s", time.perf_counter() - start)
    for name, dataset in loaded.items():
        splits = make_splits(dataset.y, config)
        first_train, first_test = _prepared(dataset, *splits[0])
        results["datasets"][name] = {
            "description": dataset.description,
            "info": jsonable(dataset.info),
            "n_rows": int(len(dataset.y)),
            "n_features": int(first_train[0].shape[1]),
            "n_train": int(len(splits[0][0])),
            "n_test": int(len(splits[0][1])),
            "geometry": dataset_geometry(first_train[0], first_test[0], seed=config.seed),
        }
        for setting in config.settings():
            start = time.perf_counter()
            results["runs"].extend(
                run_setting(dataset, splits, setting, runnable, config, progress)
            )
            logger.info("%s %s: %.1f s", name, setting, time.perf_counter() - start)
        if config.profile:
            results["profiles"].extend(
                profiling.profile_engines(name, first_train, first_test, runnable,
                                          resolve_setting(config.settings()[0], first_train[0]),
                                          progress)
            )
        if config.cv:
            progress.step(f"{name} · cross-validating k and weights", advance=0)
            start = time.perf_counter()
            results["cv"].append(cvstudy.cv_record(name, *first_train, config))
            progress.step(f"{name} · cross-validated k and weights")
            logger.info("%s cross-validation: %.1f s", name, time.perf_counter() - start)
    start = time.perf_counter()
    results["scaling"] = scaling.scaling_study(config, usable, progress)
    logger.info("scaling study: %.1f s", time.perf_counter() - start)
    if hasattr(os, "getloadavg"):
        results["environment"]["load_average_end"] = list(os.getloadavg())
    return jsonable(results)


def _first_call_engines(choice, runnable, engines):
    if choice == "all":
        return list(runnable)
    if choice == "jit":
        return [n for n in runnable if engines[n]["jit"]]
    if choice == "none":
        return []
    return [n for n in choice if n in runnable]


def make_splits(y, config):
    """Repeated stratified train/test splits (``StratifiedShuffleSplit``), as index arrays."""
    from sklearn.model_selection import StratifiedShuffleSplit

    n = len(y)
    n_train = int(round(config.train_size * n))
    n_test = min(n - n_train, config.max_test)
    splitter = StratifiedShuffleSplit(
        n_splits=config.repeats, train_size=n_train, test_size=n_test, random_state=config.seed
    )
    return list(splitter.split(np.zeros((n, 1)), y))


def _prepared(dataset, train, test):
    """Preprocessor fitted on the training rows only; C-contiguous float64 arrays."""
    from nearkit.datasets import make_preprocessor

    pre = make_preprocessor(dataset)
    X_train = np.ascontiguousarray(pre.fit_transform(dataset.X.iloc[train]), dtype=np.float64)
    X_test = np.ascontiguousarray(pre.transform(dataset.X.iloc[test]), dtype=np.float64)
    y = np.asarray(dataset.y)
    return (X_train, y[train]), (X_test, y[test])


def _call(slot, method, *args):
    """Call an engine's method under its thread limit, timed."""
    with limit_threads(slot["threads"]):
        return timed(getattr(slot["engine"], method), *args)


def _fail(slot, name, exc):
    slot["record"].update(status="error", note=f"{type(exc).__name__}: {exc}")
    logger.error("engine %s failed: %s", name, slot["record"]["note"])


def _new_slots(names, setting, config):
    slots = {}
    for name in names:
        engine = make_engine(name, **setting)
        record = {"status": "ok", "note": None, "threads": engine.n_threads}
        reason = engine.unsupported()
        if reason is not None:
            record.update(status="skipped", note=reason)
        slots[name] = {"engine": engine, "threads": engine.n_threads, "record": record}
    return slots


def _warm_up(slots, X_train, y_train, X_test):
    """Exercise every code path once (JIT compile, lazy imports); stored, not counted."""
    for name, slot in slots.items():
        if slot["record"]["status"] != "ok":
            continue
        Q = X_test[:WARMUP_QUERIES]
        try:
            _, t_fit = _call(slot, "fit", X_train, y_train)
            _, t_pred = _call(slot, "predict", Q)
            _call(slot, "predict_proba", Q)
            _call(slot, "kneighbors", Q, slot["engine"].n_neighbors)
            _call(slot, "predict", Q[:1])
        except Exception as exc:
            _fail(slot, name, exc)
            continue
        slot["warmup_s"] = {"fit": t_fit, "predict": t_pred}
    settle()  # nearkit's kernels, live before anything is timed


def run_setting(dataset, splits, setting, names, config, progress):
    """All repeats of one dataset and setting; one run record per repeat."""
    rng = np.random.default_rng([config.seed, len(dataset.y)])
    skipped = {}
    runs = []
    warmed = False
    for repeat, (train, test) in enumerate(splits):
        (X_train, y_train), (X_test, y_test) = _prepared(dataset, train, test)
        engine_setting = resolve_setting(setting, X_train)
        slots = _new_slots([n for n in names if n not in skipped], engine_setting, config)
        if not warmed:
            _warm_up(slots, X_train, y_train, X_test)
            warmed = True
        order = [names[i] for i in rng.permutation(len(names)) if names[i] in slots]
        run = {
            "dataset": dataset.name, **setting, "repeat": repeat, "n_train": int(len(train)),
            "n_test": int(len(test)), "order": order,
            "classes": np.unique(y_train).tolist(), "y_true": y_test.tolist(),
            "engines": dict(skipped),
        }
        active = [n for n in order if slots[n]["record"]["status"] == "ok"]
        progress.step(f"{dataset.name} · repeat {repeat + 1}/{len(splits)} · timing", advance=0)
        _timed_rounds(slots, active, X_train, y_train, X_test, config)
        progress.step(f"{dataset.name} · repeat {repeat + 1}/{len(splits)} · quality, checks",
                      advance=0)
        _untimed(slots, active, X_train, y_train, X_test, y_test, engine_setting, config, repeat)
        for name in order:
            slot = slots[name]
            progress.step(f"{dataset.name} · {name} · repeat {repeat + 1}/{len(splits)}")
            record = slot["record"]
            if "warmup_s" in slot and repeat == 0:
                record["warmup_s"] = slot["warmup_s"]
            run["engines"][name] = record
            if record["status"] != "ok":
                skipped[name] = {k: record[k] for k in ("status", "note", "threads")}
        runs.append(run)
    return runs


def _queries(slot, X_test):
    cap = slot["engine"].max_queries
    return X_test if cap is None else X_test[:cap]


def _timed_rounds(slots, active, X_train, y_train, X_test, config):
    for name in active:
        slots[name]["record"].update(fit_s=[], predict_s=[], latency_s=[],
                                     n_queries=len(_queries(slots[name], X_test)))
    for _ in range(config.iterations):
        for name in _alive(slots, active):
            slot = slots[name]
            slot["engine"] = make_engine(name, **_setting_of(slot["engine"]))
            try:
                _, seconds = _call(slot, "fit", X_train, y_train)
            except Exception as exc:
                _fail(slot, name, exc)
                continue
            slot["record"]["fit_s"].append(seconds)
    for _ in range(config.iterations):
        for name in _alive(slots, active):
            slot = slots[name]
            try:
                y_pred, seconds = _call(slot, "predict", _queries(slot, X_test))
            except Exception as exc:
                _fail(slot, name, exc)
                continue
            slot["record"]["predict_s"].append(seconds)
            slot["y_pred"] = np.asarray(y_pred)
    for row in range(min(config.latency_queries, len(X_test))):
        for name in _alive(slots, active):
            slot = slots[name]
            try:
                _, seconds = _call(slot, "predict", X_test[row : row + 1])
            except Exception as exc:
                _fail(slot, name, exc)
                continue
            slot["record"]["latency_s"].append(seconds)


def _alive(slots, names):
    return [n for n in names if slots[n]["record"]["status"] == "ok"]


def _setting_of(engine):
    setting = {
        "n_neighbors": engine.n_neighbors, "weights": engine.weights, "metric": engine.metric,
        "p": engine.p, "metric_params": engine.metric_params,
    }
    if engine.options.get("sigma") is not None:
        setting["sigma"] = engine.options["sigma"]
    return setting


def _untimed(slots, active, X_train, y_train, X_test, y_test, setting, config, repeat):
    n_check = min(config.check_queries, len(X_test))
    Q_check = X_test[:n_check]
    VI = (setting.get("metric_params") or {}).get("VI")
    reference = None
    for name in _alive(slots, active):
        slot = slots[name]
        record = slot["record"]
        engine = slot["engine"]
        Q = _queries(slot, X_test)
        try:
            proba, _ = _call(slot, "predict_proba", Q)
            (dist, ind), _ = _call(slot, "kneighbors", Q_check, engine.n_neighbors)
        except Exception as exc:
            _fail(slot, name, exc)
            continue
        if reference is None:
            reference = reference_kth_distances(X_train, Q_check, engine.n_neighbors,
                                                setting["metric"], setting["p"], VI)
        record["check"] = check_neighbors(X_train, Q_check, dist, ind, engine.n_neighbors,
                                          setting["metric"], setting["p"], VI, reference)
        classes = np.asarray(engine.classes_)
        y_pred = slot["y_pred"]
        record["quality"] = quality_metrics(y_test[: len(Q)], y_pred, proba, classes, config.beta)
        record["y_pred"] = y_pred.tolist()
        proba = np.round(np.asarray(proba, dtype=np.float64), 6)
        record["score"] = (proba[:, 1] if classes.size == 2 else proba).tolist()
        record["info"] = jsonable(engine.info())
        if repeat == 0:
            record["memory"] = _peak_memory(slot, name, X_train, y_train, Q)


def _peak_memory(slot, name, X_train, y_train, Q):
    engine = make_engine(name, **_setting_of(slot["engine"]))
    with limit_threads(slot["threads"]), PeakMemory() as peak:
        engine.fit(X_train, y_train)
        engine.predict(Q)
    return {"bytes": int(peak.bytes), "method": peak.method}
