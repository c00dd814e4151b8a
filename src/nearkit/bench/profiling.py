"""``--profile``: where predict time goes.

For every engine, the deterministic profiler (:mod:`cProfile`) runs one predict of the first
split's test rows and the functions with the most own time are kept.  For nearkit the
predict time is also split into phases in two independent ways:

- through the public API: ``kneighbors`` (validation + search) against ``predict``
  (validation + search + weights + vote), medians of three unprofiled calls each;
- from the profile: the cumulative time of each function the estimator's methods call,
  grouped by the module that holds it (:data:`PHASES`), e.g. ``sklearn.utils.validation``
  is validation, ``nearkit/search/`` is search, ``nearkit/weights.py`` is weights and vote.
  The profiler only observes; nothing private is imported.
"""

from __future__ import annotations

import cProfile
import pstats
import re
from statistics import median

from nearkit.bench.engines import make_engine
from nearkit.bench.measure import limit_threads, settle, timed

TOP_FUNCTIONS = 15
#: (pattern on "file:function" of a callee of the estimator, phase), first match wins
PHASES = (
    (r"sklearn/utils/|check_is_fitted|validate", "validation"),
    (r"nearkit/search/|nearkit/_kernels/|nearkit/metrics\.py", "search"),
    (r"nearkit/weights\.py|vote|weights", "weights and vote"),
)
_ESTIMATOR_FILE = re.compile(r"nearkit/(classifier|_base)\.py$")


def _short(filename):
    for marker in ("site-packages/", "/src/", "/lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _label(func):
    filename, line, name = func
    return f"{_short(filename)}:{line}({name})" if filename != "~" else name


def top_functions(stats, n=TOP_FUNCTIONS):
    """The ``n`` functions with the most own time in a :class:`pstats.Stats`."""
    rows = sorted(stats.stats.items(), key=lambda item: (-item[1][2], _label(item[0])))
    return [
        {"function": _label(func), "ncalls": int(nc), "tottime_s": float(tt), "cumtime_s": float(ct)}
        for func, (_, nc, tt, ct, _) in rows[:n]
    ]


def estimator_phases(stats):
    """Cumulative time of the callees of nearkit's estimator methods, grouped into phases.

    Parameters
    ----------
    stats : pstats.Stats
        Profile of one ``predict`` call.

    Returns
    -------
    dict
        Seconds per phase (``'validation'``, ``'search'``, ``'weights and vote'``,
        ``'other'``) and the callee modules seen (``'callees'``).
    """
    phases = {"validation": 0.0, "search": 0.0, "weights and vote": 0.0, "other": 0.0}
    callees = {}
    for func, (_, _, _, _, callers) in stats.stats.items():
        if _ESTIMATOR_FILE.search(func[0]):
            continue  # the estimator's own methods are the frame, not a phase
        from_estimator = sum(
            timing[3] for caller, timing in callers.items() if _ESTIMATOR_FILE.search(caller[0])
        )
        if from_estimator <= 0:
            continue
        key = f"{_short(func[0])}:{func[2]}"
        phase = next((p for pattern, p in PHASES if re.search(pattern, key)), "other")
        phases[phase] += from_estimator
        callees[key] = {"phase": phase, "cumtime_s": float(from_estimator)}
    return {**phases, "callees": dict(sorted(callees.items()))}


def profile_engines(dataset, train, test, names, setting, progress):
    """Profile one predict of each engine on a split.

    Parameters
    ----------
    dataset : str
        Dataset name (stored with the record).
    train, test : tuple of (X, y)
        Preprocessed split.
    names : list of str
        Engines to profile.
    setting : dict
        ``n_neighbors``, ``weights``, ``metric``, ``p``.
    progress : object
        Progress reporter.

    Returns
    -------
    list of dict
        One record per engine.
    """
    (X_train, y_train), (X_test, _) = train, test
    records = []
    for name in names:
        progress.step(f"profile · {dataset} · {name}")
        engine = make_engine(name, **setting)
        record = {"dataset": dataset, "engine": name, "status": "ok", "note": None}
        reason = engine.unsupported()
        if reason:
            records.append({**record, "status": "skipped", "note": reason})
            continue
        Q = X_test if engine.max_queries is None else X_test[: engine.max_queries]
        try:
            with limit_threads(engine.n_threads):
                engine.fit(X_train, y_train)
                engine.predict(Q[:8])  # warm-up, not profiled
                settle()
                predict_s = median(timed(engine.predict, Q)[1] for _ in range(3))
                kneighbors_s = median(
                    timed(engine.kneighbors, Q, engine.n_neighbors)[1] for _ in range(3)
                )
                profiler = cProfile.Profile()
                profiler.runcall(engine.predict, Q)
        except Exception as exc:
            records.append({**record, "status": "error", "note": f"{type(exc).__name__}: {exc}"})
            continue
        stats = pstats.Stats(profiler)
        record.update(
            n_queries=int(len(Q)), predict_s=predict_s, kneighbors_s=kneighbors_s,
            profiled_predict_s=float(stats.total_tt), top_functions=top_functions(stats),
        )
        if engine.family == "nearkit":
            record["phases"] = estimator_phases(stats)
        records.append(record)
    return records
