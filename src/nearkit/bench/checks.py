"""Checks of a run's configuration and output folder, made before any work starts.

Each check names the setting (its ``BenchConfig`` field and its ``nearkit bench`` option)
and the bad value.  Metric and weight names come from nearkit's own registries, dataset
names from :func:`nearkit.datasets.check_dataset_name`, engine names from
:data:`~nearkit.bench.engines.ENGINES`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import tempfile
from pathlib import Path

from nearkit.bench.engines import parse_engine_name
from nearkit.metrics import METRIC_ALIASES  # names and aliases of nearkit.metrics.METRICS
from nearkit.weights import WEIGHTS

#: metric names a run accepts (aliases included), as nearkit's registry lists them
METRIC_NAMES = tuple(METRIC_ALIASES)
#: weighting schemes a run accepts, as nearkit lists them
WEIGHT_NAMES = tuple(WEIGHTS)

#: the ``nearkit bench`` option that sets each ``BenchConfig`` field
FIELD_OPTIONS = {
    "datasets": "--datasets", "engines": "--engines", "ks": "--k", "weights": "--weights",
    "metrics": "--metric", "p": "--p", "repeats": "--repeats", "iterations": "--iterations",
    "threads": "--threads", "seed": "--seed", "baseline": "--baseline", "beta": "--beta",
    "sizes": "--sizes", "first_call": "--first-call", "max_test": "--max-test",
    "data_home": "--data-home",
}
#: fields that must hold an integer >= 1 (lists: every item)
POSITIVE_INTEGERS = ("ks", "repeats", "iterations", "threads", "max_test", "latency_queries",
                     "check_queries", "sizes", "scaling_queries", "scaling_repeats", "cv_max_k")
#: seeds are handed to ``numpy.random.RandomState`` (scikit-learn's splitters)
MAX_SEED = 2**32 - 1
FIRST_CALL_CHOICES = ("all", "jit", "none")


def setting(field: str) -> str:
    """How a message names a field: ``"ks (--k)"``, or the bare field without an option."""
    option = FIELD_OPTIONS.get(field)
    return f"{field} ({option})" if option else field


def check_config(config):
    """Check every setting of a run; return it with canonical metric and dataset names.

    Parameters
    ----------
    config : BenchConfig
        The run to check.

    Returns
    -------
    BenchConfig
        A copy, with metric aliases replaced by the metric they stand for (``'l2'`` ->
        ``'euclidean'``) and dataset names as :func:`nearkit.datasets.load_dataset` knows them.

    Raises
    ------
    ValueError
        Naming the setting and the bad value.
    """
    for field in POSITIVE_INTEGERS:
        _check_integers(field, getattr(config, field), low=1)
    _check_integers("seed", config.seed, low=0, high=MAX_SEED)
    _check_integers("cv_folds", config.cv_folds, low=2)
    _check_range("p", config.p, "> 0", lambda v: v > 0)
    _check_range("beta", config.beta, "> 0 and finite", lambda v: 0 < v < math.inf)
    _check_range("train_size", config.train_size, "strictly between 0 and 1", lambda v: 0 < v < 1)
    for field in ("datasets", "engines", "ks", "weights", "metrics"):
        if not getattr(config, field):
            raise ValueError(f"{setting(field)} must not be empty")
    for field in ("engines", "thread_engines", "scaling_engines"):
        _check_engines(field, getattr(config, field))
    _check_first_call(config.first_call)
    unknown = [w for w in config.weights if w not in WEIGHT_NAMES]
    if unknown:
        raise ValueError(f"{setting('weights')}: unknown {unknown[0]!r}; "
                         f"known: {', '.join(WEIGHT_NAMES)}")
    if config.baseline not in config.engine_names():
        raise ValueError(f"{setting('baseline')}: {config.baseline!r} is not among the engines run "
                         f"({', '.join(config.engine_names())})")
    return dataclasses.replace(
        config,
        metrics=_canonical_metrics(config.metrics),
        datasets=list(dict.fromkeys(_dataset("datasets", name) for name in config.datasets)),
        scaling_like=_dataset("scaling_like", config.scaling_like),
    )


def _check_integers(field, value, *, low, high=None):
    many = isinstance(value, (list, tuple))
    for item in value if many else [value]:
        integral = isinstance(item, numbers.Integral) and not isinstance(item, bool)
        if not integral or item < low or (high is not None and item > high):
            bound = f">= {low}" + (f" and <= {high}" if high is not None else "")
            what = "integers" if many else "an integer"
            raise ValueError(f"{setting(field)} must be {what} {bound}; got {item!r}")


def _check_range(field, value, wanted, test):
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or math.isnan(value) or not test(value):
        raise ValueError(f"{setting(field)} must be a number {wanted}; got {value!r}")


def _check_engines(field, names):
    for name in names:
        try:
            parse_engine_name(name)
        except ValueError as exc:
            raise ValueError(f"{setting(field)}: {exc}") from None


def _check_first_call(choice):
    if isinstance(choice, str):
        if choice not in FIRST_CALL_CHOICES:
            raise ValueError(f"{setting('first_call')} must be one of {FIRST_CALL_CHOICES} or a "
                             f"list of engines; got {choice!r}")
        return
    _check_engines("first_call", choice)


def _canonical_metrics(metrics):
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"{setting('metrics')}: unknown metric {unknown[0]!r}; known: "
                         f"{', '.join(METRIC_NAMES)}")
    return list(dict.fromkeys(METRIC_ALIASES[m] for m in metrics))


def _dataset(field, name):
    from nearkit.datasets import check_dataset_name

    try:
        return check_dataset_name(name)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{setting(field)}: {exc}") from None


def check_out_dir(path) -> Path:
    """Create the output folder if needed and prove it writable by writing a file there.

    Raises
    ------
    ValueError
        Naming the folder and why it cannot be written (a file in the way, no permission).
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".nearkit-write-test-") as probe:
            probe.write(b"nearkit bench checks that --out is writable before it runs\n")
            probe.flush()
    except OSError as exc:
        reason = exc.strerror or exc
        raise ValueError(f"--out {os.fspath(path)!r} is not a writable folder: {reason}") from None
    return folder
