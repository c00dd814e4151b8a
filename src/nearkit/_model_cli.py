"""``nearkit fit``, ``nearkit predict`` and ``nearkit info``: models from a CSV table to a
model file and back.

``nearkit fit`` reads a table as :func:`~nearkit.datasets.load_csv` does, fits the table's
preprocessor (:func:`~nearkit.datasets.make_preprocessor`) and the estimator, and saves the
chain (column plan, preprocessor, estimator) as one model file (:func:`nearkit.save`).
``nearkit predict`` applies it to another table with the same columns, in chunks, and writes
the predictions in the table's row order.  ``nearkit info`` describes a model file.  Bad
options, tables and model files exit with code 2 and a message naming the problem.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from nearkit.metrics import METRIC_ALIASES
from nearkit.search import ENGINES
from nearkit.weights import WEIGHTS

#: rows read, encoded and predicted at a time by ``nearkit predict``
CHUNK_ROWS = 20_000
TASKS = {"classification": "KNNClassifier", "regression": "KNNRegressor"}


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _names(text):
    return tuple(item.strip() for item in text.split(",") if item.strip())


def register(subparsers):
    """Add the ``fit``, ``predict`` and ``info`` sub-commands."""
    fit = subparsers.add_parser(
        "fit", help="fit a KNN model on a CSV table and write a model file",
        description="Read TABLE as nearkit.datasets.load_csv does (numbers, True/False as 1/0, "
                    "text one-hot encoded, text with too many levels dropped), fit the "
                    "table's preprocessor (median imputation when cells are missing, "
                    "standardisation) and the estimator, and write one model file.")
    fit.add_argument("table", type=Path, help="CSV file with a header line")
    fit.add_argument("--target", required=True, help="the column to predict")
    fit.add_argument("--out", type=Path, required=True, help="the model file to write")
    fit.add_argument("--task", choices=TASKS, default="classification",
                     help="KNNClassifier (default) or KNNRegressor (numeric target)")
    fit.add_argument("--k", type=_positive_int, default=5, help="neighbours (default 5)")
    fit.add_argument("--weights", choices=WEIGHTS, default="uniform",
                     help="weighting of the neighbours (default uniform)")
    fit.add_argument("--sigma", type=_positive_float, default=None,
                     help="Gaussian bandwidth (default: the k-th distance of each query)")
    fit.add_argument("--metric", choices=sorted(METRIC_ALIASES), default="euclidean",
                     metavar="METRIC", help="distance (default euclidean; one of "
                     f"{', '.join(sorted(METRIC_ALIASES))})")
    fit.add_argument("--p", type=_positive_float, default=2.0,
                     help="Minkowski exponent (default 2)")
    fit.add_argument("--algorithm", choices=["auto", *ENGINES], default="auto",
                     help="search engine (default auto)")
    fit.add_argument("--drop", type=_names, default=(), metavar="A,B",
                     help="columns to leave out (identifiers, leaks)")
    fit.add_argument("--na-values", type=_names, default=(), metavar="NA,?",
                     help="cell texts that mean 'missing', besides the empty cell")
    fit.add_argument("--max-categories", type=_positive_int, default=50,
                     help="text columns with more levels are dropped (default 50)")
    fit.add_argument("--cv", type=_positive_int, default=None, metavar="FOLDS",
                     help="also print the FOLDS-fold cross-validated accuracy (R² for "
                          "regression) of the same preprocessing and estimator")
    fit.set_defaults(func=run_fit)

    predict = subparsers.add_parser(
        "predict", help="predict every row of a CSV table with a model file",
        description="Apply a model written by 'nearkit fit' to TABLE, which must have the "
                    "columns of the table it was fitted on (the target may be there or not). "
                    "Writes one CSV row per table row, in order.")
    predict.add_argument("model", type=Path, help="a model file from 'nearkit fit'")
    predict.add_argument("table", type=Path, help="CSV file with a header line")
    predict.add_argument("--proba", action="store_true",
                         help="also write the probability of each class")
    predict.add_argument("--out", type=Path, default=None,
                         help="CSV file to write (default: standard output)")
    predict.add_argument("--chunk-rows", type=_positive_int, default=CHUNK_ROWS,
                         help=f"rows predicted at a time (default {CHUNK_ROWS:,})")
    predict.set_defaults(func=run_predict)

    info = subparsers.add_parser(
        "info", help="describe a model file (and verify it)",
        description="Print what a model file holds: its class, parameters, features, training "
                    "size and engine, after checking every hash and loading it.")
    info.add_argument("model", type=Path, help="a model file")
    info.set_defaults(func=run_info)


def _fail(command, message):
    Console(stderr=True).print(f"nearkit {command}: {message}", style="red", markup=False,
                               highlight=False, soft_wrap=True)
    return 2


def run_fit(args):
    """``nearkit fit``: exit code 0, or 2 with a message naming what is wrong."""
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    import nearkit
    from nearkit.datasets import load_csv, make_preprocessor

    started = time.perf_counter()
    try:
        data = load_csv(args.table, args.target, drop=args.drop, na_values=args.na_values,
                        max_categories=args.max_categories)
        target = data.frame[args.target]
        if args.task == "regression":
            if not pd.api.types.is_numeric_dtype(target):
                return _fail("fit", f"--task regression needs a numeric target; "
                                    f"{args.target!r} holds text.")
            y = target.to_numpy(np.float64)
        else:
            y = target.to_numpy()
        estimator = getattr(nearkit, TASKS[args.task])(
            args.k, weights=args.weights, sigma=args.sigma, metric=args.metric, p=args.p,
            algorithm=args.algorithm)
        preprocessor = make_preprocessor(data)
        model = Pipeline([("table", data.encoder), ("preprocess", preprocessor),
                          ("model", estimator)])
        model[1:].fit(data.X, y)
        size = nearkit.save(model, args.out)
        score = None
        if args.cv:  # accuracy (stratified folds) or R², the pipeline refitted on each fold
            from sklearn.model_selection import cross_val_score

            scores = cross_val_score(model[1:], data.X, y, cv=args.cv)
            score = float(scores.mean()), float(scores.std())
    except (OSError, ValueError) as exc:
        return _fail("fit", str(exc))
    print(f"Wrote {args.out} ({size:,} bytes): {TASKS[args.task]} k={args.k}, "
          f"weights={args.weights}, metric={estimator.effective_metric_}, engine "
          f"{estimator.algorithm_}, on {data.X.shape[0]:,} rows x {data.X.shape[1]} features "
          f"({time.perf_counter() - started:.1f} s)")
    if score is not None:
        what = "R²" if args.task == "regression" else "accuracy"
        print(f"{args.cv}-fold cross-validated {what}: {score[0]:.4f} (std {score[1]:.4f})")
    return 0


def run_predict(args):
    """``nearkit predict``: exit code 0, or 2 with a message naming what is wrong."""
    import nearkit
    from nearkit.datasets import TableEncoder

    try:
        model = nearkit.load(args.model)
    except (OSError, ValueError) as exc:
        return _fail("predict", str(exc))
    steps = getattr(model, "steps", [])
    if not steps or not isinstance(steps[0][1], TableEncoder):
        return _fail("predict", f"{args.model} was not written by 'nearkit fit' (it does not "
                                "start with a table's column plan); use the Python API.")
    encoder, rest = steps[0][1], model[1:]
    if args.proba and not hasattr(rest, "predict_proba"):
        return _fail("predict", "--proba needs a classifier; this model is a regressor.")
    if not args.table.is_file():
        return _fail("predict", f"no such file: {args.table}")
    columns = [encoder.target or "prediction"]
    if args.proba:
        columns += [f"proba_{label}" for label in rest.classes_]
    started, n_rows = time.perf_counter(), 0
    try:
        with open(args.table, "rb") as table, _output(args.out) as out, _progress() as progress:
            task = progress.add_task("predict", total=args.table.stat().st_size, rows=0)
            out.write(",".join(columns) + "\n")
            for X in encoder.iter_csv(table, chunksize=args.chunk_rows):
                if len(X):
                    _predictions(rest, X, columns, args.proba).to_csv(out, header=False,
                                                                      index=False)
                n_rows += len(X)
                progress.update(task, completed=table.tell(), rows=n_rows)
    except BrokenPipeError:  # the reader of standard output stopped (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (OSError, ValueError) as exc:
        return _fail("predict", str(exc))
    if args.out is not None:
        Console(stderr=True).print(f"Wrote {n_rows:,} predictions to {args.out} "
                                   f"({time.perf_counter() - started:.2f} s)", highlight=False)
    return 0


def _predictions(model, X, columns, proba):
    """The rows of the output for the features ``X``: the prediction, then the probability
    of each class (in ``classes_`` order) with ``proba``."""
    import pandas as pd

    if not proba:
        return pd.DataFrame({columns[0]: model.predict(X)})
    probabilities = model.predict_proba(X)
    # the prediction as predict() makes it, from the same probabilities
    frame = pd.DataFrame(probabilities, columns=columns[1:])
    frame.insert(0, columns[0], model.classes_[probabilities.argmax(axis=1)])
    return frame


def _output(path):
    """The file to write, or standard output (left open), as a context manager."""
    return contextlib.nullcontext(sys.stdout) if path is None else open(path, "w", newline="")


def _progress():
    console = Console(stderr=True)
    return Progress(TextColumn("predicting"), BarColumn(), DownloadColumn(),
                    TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def run_info(args):
    """``nearkit info``: exit code 0, or 2 with a message naming what is wrong."""
    from nearkit.io import describe

    try:
        print(describe(args.model))
    except (OSError, ValueError) as exc:
        return _fail("info", str(exc))
    return 0
