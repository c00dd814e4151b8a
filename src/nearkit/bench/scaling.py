"""Time versus training-set size, on synthetic look-alikes of a real dataset.

``nearkit.datasets.make_like`` draws a dataset with the features and class balance of
``scaling_like`` (by default ``spotify_tracks``, whose full original has 114,000 rows) at each
size in ``sizes``; a fixed set of ``scaling_queries`` extra rows from the same draw are the
queries.  Engines are interleaved per size and every fit and predict is stored.
"""

from __future__ import annotations

import logging

import numpy as np

from nearkit.bench.engines import make_engine, resolve_setting
from nearkit.bench.measure import limit_threads, timed

logger = logging.getLogger("nearkit.bench")


def scaling_study(config, names, progress):
    """Fit and predict times of ``names`` at each training-set size.

    Parameters
    ----------
    config : BenchConfig
        Uses ``sizes``, ``scaling_like``, ``scaling_queries``, ``scaling_repeats``, ``seed``
        and the first setting.
    names : list of str
        Engines to time.
    progress : object
        Progress reporter.

    Returns
    -------
    list of dict
        One record per size and engine.
    """
    from nearkit.datasets import make_like, make_preprocessor

    if not config.sizes or not names:
        return []
    setting = config.settings()[0]
    rng = np.random.default_rng(config.seed)
    records = []
    warmed = set()
    for size in sorted(config.sizes):
        data = make_like(config.scaling_like, n_samples=int(size) + config.scaling_queries,
                         random_state=config.seed)
        pre = make_preprocessor(data)
        X_train = np.ascontiguousarray(pre.fit_transform(data.X.iloc[:size]), dtype=np.float64)
        Q = np.ascontiguousarray(pre.transform(data.X.iloc[size:]), dtype=np.float64)
        y_train = np.asarray(data.y[:size])
        by_engine = {}
        for name in names:
            by_engine[name] = {"dataset": data.name, "n_train": int(size),
                               "n_queries": int(len(Q)), "n_features": int(X_train.shape[1]),
                               "engine": name, "fit_s": [], "predict_s": [], "status": "ok",
                               "note": None}
        for _ in range(config.scaling_repeats):
            for name in [names[i] for i in rng.permutation(len(names))]:
                record = by_engine[name]
                if record["status"] != "ok":
                    continue
                engine = make_engine(name, **resolve_setting(setting, X_train))
                try:
                    with limit_threads(engine.n_threads):
                        if name not in warmed:  # not counted: compile, lazy imports
                            engine.fit(X_train, y_train)
                            engine.predict(Q[:16])
                            warmed.add(name)
                        record["fit_s"].append(timed(engine.fit, X_train, y_train)[1])
                        record["predict_s"].append(timed(engine.predict, Q)[1])
                except Exception as exc:
                    record.update(status="error", note=f"{type(exc).__name__}: {exc}")
                    logger.error("scaling: %s failed at n=%d: %s", name, size, exc)
        for name in names:
            progress.step(f"scaling · {name} · n={size:,}")
            records.append(by_engine[name])
    return records
