"""First-call time, measured apart from steady state, each engine in a fresh process.

A JIT engine compiles on its first use in a process; that cost is real for a user (a script
that classifies once pays it) but must not pollute steady-state timings.  So each engine runs
in a new Python process on synthetic data (``n_features`` of the first dataset): first fit,
first predict, then the median of three more fit/predict pairs (steady state).  numba's disk
cache is pointed at a fresh folder per engine: the ``cold`` run compiles everything; for JIT
engines a second process on the same folder gives the ``warm`` (cached) first call.

:func:`measure_startup` and :func:`import_seconds` measure what a user's fresh process pays
on given data: ``import nearkit`` (timed apart), then ``fit`` and the first ``predict``
(``benchmarks/bench_engines.py``'s cold- and warm-start targets).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from statistics import median

logger = logging.getLogger("nearkit.bench")

N_TRAIN = 2000
N_QUERIES = 200
STEADY_CALLS = 3
TIMEOUT_S = 600
_CHILD_CODE = (
    "import json, sys; from nearkit.bench.firstcall import child; "
    "print(json.dumps(child(json.loads(sys.argv[1]))))"
)
# the import is timed first thing, before anything else of nearkit (or NumPy) is loaded
_STARTUP_CODE = (  # (nearkit's names load on first use: the import is of the estimator)
    "import time; start = time.perf_counter(); from nearkit import KNNClassifier; "
    "import_s = time.perf_counter() - start; import json, sys; "
    "from nearkit.bench.firstcall import startup_child; "
    "print(json.dumps(startup_child(json.loads(sys.argv[1]), import_s)))"
)
_IMPORT_CODE = ("import time; start = time.perf_counter(); import {module}; "
                "print(time.perf_counter() - start)")


def measure_first_calls(names, n_features, setting, seed=0, progress=None):
    """First-call and steady-state times of each engine, each in fresh processes.

    Parameters
    ----------
    names : list of str
        Engines; thread-limited variants are measured once, under their base name.
    n_features : int
        Columns of the synthetic data.
    setting : dict
        ``n_neighbors``, ``weights``, ``metric``, ``p``.
    seed : int, default=0
        Seed of the synthetic data.
    progress : object, optional
        Progress reporter (``step(text, advance)``); told what runs, nothing is counted.

    Returns
    -------
    list of dict
        One record per engine and cache state (``'cold'``, and ``'warm'`` for JIT engines).
    """
    from nearkit.bench.engines import engine_class, parse_engine_name

    bases = list(dict.fromkeys(parse_engine_name(n)[0] for n in names))
    records = []
    for name in bases:
        states = ["cold", "warm"] if engine_class(name).jit else ["cold"]
        with tempfile.TemporaryDirectory(prefix="nearkit-firstcall-") as cache_dir:
            for state in states:
                if progress is not None:
                    progress.step(f"first call · {name} · {state} cache", advance=0)
                spec = {"engine": name, "n_features": int(n_features), "setting": setting,
                        "seed": int(seed)}
                record = {"engine": name, "cache": state, "n_train": N_TRAIN,
                          "n_queries": N_QUERIES, "n_features": int(n_features)}
                record.update(_run_child(spec, cache_dir))
                records.append(record)
                if record["status"] != "ok":
                    break  # a warm run cannot succeed where the cold one failed
    return records


def _run_child(spec, cache_dir, code=_CHILD_CODE):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    # what a user meets: the default first-call behaviour, not the timing runs' setting
    # (``NEARKIT_JIT=wait`` inherited from the benchmark's shell made every cold first
    # predict wait 20-36 s for its compile)
    env.pop("NEARKIT_JIT", None)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, json.dumps(spec)],
            env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "error", "note": f"timed out after {TIMEOUT_S} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        note = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        logger.error("first-call run of %s failed: %s", spec["engine"], note)
        return {"status": "error", "note": note}
    return {"status": "ok", "note": None, **json.loads(lines[-1])}


def _as_user_meets_it(engine):
    """The engine with ``fit`` as the estimator's own: a nearkit engine's fit otherwise
    includes what the gemm engine builds at its first search
    (:attr:`~nearkit.bench.engines.NearkitEngine.complete_index_at_fit`)."""
    if hasattr(engine, "complete_index_at_fit"):
        engine.complete_index_at_fit = False
    return engine


def child(spec):
    """Measure in this (fresh) process; returns the JSON-ready timings."""
    import numpy as np

    from nearkit.bench.engines import make_engine, resolve_setting
    from nearkit.bench.measure import timed

    rng = np.random.default_rng(spec["seed"])
    X = rng.normal(size=(N_TRAIN, spec["n_features"]))
    y = rng.integers(0, 2, size=N_TRAIN)
    Q = rng.normal(size=(N_QUERIES, spec["n_features"]))
    setting = resolve_setting(spec["setting"], X)
    engine = _as_user_meets_it(make_engine(spec["engine"], **setting))
    _, first_fit = timed(engine.fit, X, y)
    _, first_predict = timed(engine.predict, Q)
    fits, predicts = [], []
    for _ in range(STEADY_CALLS):
        engine = _as_user_meets_it(make_engine(spec["engine"], **setting))
        fits.append(timed(engine.fit, X, y)[1])
        predicts.append(timed(engine.predict, Q)[1])
    return {
        "first_fit_s": first_fit, "first_predict_s": first_predict,
        "steady_fit_s": median(fits), "steady_predict_s": median(predicts),
    }


def measure_startup(engine, data_path, setting, cache_dir):
    """``from nearkit import KNNClassifier``, then ``fit`` and the first ``predict`` of an
    engine, in a fresh process.

    Parameters
    ----------
    engine : str
        Engine name (:func:`~nearkit.bench.engines.make_engine`).
    data_path : str or Path
        An ``.npz`` file holding ``X_train``, ``y_train`` and ``X_test`` (numeric arrays).
    setting : dict
        ``n_neighbors``, ``weights``, ``metric``, ``p``.
    cache_dir : str or Path
        numba's cache folder for the process: empty for a cold start, filled by an earlier
        process for a warm one.

    Returns
    -------
    dict
        ``status`` and ``note``; when ``'ok'``, ``import_s``, ``fit_s``,
        ``first_predict_s`` and ``algorithm_``.
    """
    spec = {"engine": engine, "data": str(data_path), "setting": setting}
    return _run_child(spec, cache_dir, _STARTUP_CODE)


def startup_child(spec, import_s):
    """Measure in this (fresh) process, after ``import nearkit`` took ``import_s`` seconds."""
    import numpy as np

    from nearkit.bench.engines import make_engine
    from nearkit.bench.measure import settle, timed

    with np.load(spec["data"]) as data:
        X_train, y_train, X_test = data["X_train"], data["y_train"], data["X_test"]
    engine = _as_user_meets_it(make_engine(spec["engine"], **spec["setting"]))
    _, fit_s = timed(engine.fit, X_train, y_train)
    _, predict_s = timed(engine.predict, X_test)
    settle()  # so that a warm run finds the cache filled, and idle
    return {"import_s": import_s, "fit_s": fit_s, "first_predict_s": predict_s,
            "algorithm_": engine.info().get("algorithm_")}


def import_seconds(module, env=None):
    """Seconds ``import module`` takes in a fresh Python process (None if it failed).

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``'sklearn.neighbors'``.
    env : dict or None, default=None
        Environment of the process (None: this one's).
    """
    proc = subprocess.run([sys.executable, "-c", _IMPORT_CODE.format(module=module)],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        logger.error("import %s failed: %s", module,
                     (proc.stderr.strip().splitlines() or ["no output"])[-1])
        return None
    return float(lines[-1])
