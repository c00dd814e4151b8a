"""Safe model files: :func:`save` and :func:`load` a fitted estimator as data, never code.

A fitted nearkit estimator is its training data in the search index's layout plus a few
parameters, so it can be stored without pickle (which runs arbitrary code when loaded).  A
model file holds a JSON header and the arrays (format: :mod:`nearkit._modelfile`):

- the header: the format version, the versions that wrote it, a summary for
  :func:`describe` (class, parameters, features, training size, engine), the model as a
  tree of JSON nodes (:mod:`nearkit._modelcodec`), and the dtype, shape and sha256 of every
  array;
- the arrays, raw and aligned: the search index's own arrays (its tiles, permutations,
  float32 copies, k-d tree nodes, whitening), so that loading rebuilds nothing, and the
  labels, weights and preprocessing statistics.

Loading checks the header's checksum, its format version, the layout and the sha256 of every
array, then builds only the classes of :data:`REGISTRY`, from JSON values and arrays (no
pickle, no ``allow_pickle``), checking that the arrays fit together before any kernel can
see them.  Arrays are memory-mapped (copy-on-write) by default, so loading is fast and
several processes share the pages.  A loaded model predicts and returns neighbours exactly
(bit for bit) what the saved one did.

What can be stored: the nearkit estimators, scikit-learn pipelines of registered steps,
the preprocessing of :mod:`nearkit.datasets` (``SimpleImputer``, ``StandardScaler``,
:class:`~nearkit.datasets.TableEncoder`).  What cannot: a callable parameter (a user's
weights function is code): :func:`save` refuses it.
"""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np

from nearkit._modelcodec import Decoder, Encoder, Stored, entry_of
from nearkit._modelfile import read_model_file, write_model_file

__all__ = ["REGISTRY", "describe", "load", "save"]


def _neighbors_loaded(model):
    """A nearkit neighbours estimator: its index, metric and per-sample arrays agree."""
    index, n = model._index, model.n_samples_fit_
    metric = index.metric
    width = model.n_features_in_  # of the points the engine searches (whitened: the rank)
    if metric.whitening is not None:
        width = metric.whitening.shape[1] if len(metric.whitening) == width else None
    if (index.n_samples != n or index.n_features != width or index.name != model.algorithm_
            or metric.name != model.effective_metric_):
        raise ValueError(
            f"The stored index ({index.name!r}, {index.n_samples} x {index.n_features}, metric "
            f"{metric.name!r}) does not match the estimator ({model.algorithm_!r}, {n} samples "
            f"x {model.n_features_in_} features, metric {model.effective_metric_!r}).")
    for name in ("_y", "_sample_weight", "decision_scores_"):
        value = getattr(model, name, None)
        if value is not None and (not isinstance(value, np.ndarray) or len(value) != n):
            raise ValueError(f"The stored {name} does not have one entry per training sample "
                             f"({n}).")
    classes = getattr(model, "classes_", None)
    if classes is not None and (model._y.dtype.kind not in "iu"
                                or model._y.size and not 0 <= model._y.min() <= model._y.max()
                                < len(classes)):
        raise ValueError("The stored labels are not codes of the stored classes_.")
    model._remember_params()


def _imputer_loaded(imputer):
    """nearkit's KNNImputer: the training rows, their mask and transpose agree."""
    X = imputer._fit_X
    shapes = {"_fit_X": (len(X), imputer.n_features_in_), "_mask_fit_X": X.shape, "_fit_XT": X.shape[::-1],
              "_valid_mask": (X.shape[1],), "_col_means": (X.shape[1],)}
    for name, shape in shapes.items():
        if getattr(imputer, name).shape != shape:
            raise ValueError(f"The stored KNNImputer's {name} has shape "
                             f"{getattr(imputer, name).shape}; expected {shape}.")


def _search_loaded(search):
    """A one-pass CV estimator: its scorer is rebuilt from ``scoring`` (code is never
    stored), its best estimator was checked as a neighbours estimator."""
    from sklearn.metrics import check_scoring

    search.scorer_ = check_scoring(search._estimator(), search.scoring)


_NEIGHBORS = {"derived": ("_checked_params",), "after_load": _neighbors_loaded}

#: the classes a model file may hold: ``load`` builds these and nothing else.  Adding a class
#: is one entry (its parameters and fitted attributes are stored by the generic encoding of
#: :mod:`nearkit._modelcodec`).
REGISTRY = (
    Stored("nearkit.KNNClassifier", **_NEIGHBORS),
    Stored("nearkit.KNNRegressor", **_NEIGHBORS),
    Stored("nearkit.NearestNeighbors", **_NEIGHBORS),
    Stored("nearkit.KNNOutlierDetector", **_NEIGHBORS),
    # (a subclass of scikit-learn's imputer: scikit-learn's fitted state)
    Stored("nearkit.KNNImputer", after_load=_imputer_loaded, sklearn_state=True),
    Stored("nearkit.KNNClassifierCV", derived=("scorer_",), after_load=_search_loaded),
    Stored("nearkit.KNNRegressorCV", derived=("scorer_",), after_load=_search_loaded),
    Stored("sklearn.model_selection.KFold"),
    Stored("sklearn.model_selection.StratifiedKFold"),
    Stored("nearkit.datasets.TableEncoder"),
    Stored("sklearn.pipeline.Pipeline"),
    Stored("sklearn.impute.SimpleImputer"),
    Stored("sklearn.impute.MissingIndicator"),
    Stored("sklearn.preprocessing.StandardScaler"),
)


# -- saving --------------------------------------------------------------------------------


def save(model, path):
    """Write a fitted model to a model file (a JSON header and raw arrays; no pickle).

    Parameters
    ----------
    model : estimator
        A fitted nearkit estimator (:class:`~nearkit.KNNClassifier`,
        :class:`~nearkit.KNNRegressor`, :class:`~nearkit.NearestNeighbors`,
        :class:`~nearkit.KNNOutlierDetector`, :class:`~nearkit.KNNImputer`), a fitted
        preprocessor of :mod:`nearkit.datasets`, or a :class:`~sklearn.pipeline.Pipeline` of
        them (e.g. ``make_pipeline(make_preprocessor(data), KNNClassifier())``).
    path : str or path-like
        The file to write (replaced atomically if it exists).

    Returns
    -------
    int
        The size of the file in bytes.

    Raises
    ------
    ValueError
        If the model (or a step of it) is of a class that cannot be stored, or holds a
        callable parameter such as a weights function: model files hold data, not code.
    sklearn.exceptions.NotFittedError
        If the model is not fitted.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> import nearkit
    >>> X, y = [[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]
    >>> model = nearkit.KNNClassifier(n_neighbors=3).fit(X, y)
    >>> with TemporaryDirectory() as folder:
    ...     path = Path(folder, "model.nearkit")
    ...     size = nearkit.save(model, path)
    ...     loaded = nearkit.load(path)
    ...     print(loaded.predict([[1.1], [2.6]]), loaded.kneighbors([[1.5]], 2)[1])
    [0 1] [[1 2]]
    >>> weighted = nearkit.KNNClassifier(3, weights=lambda d: 1 / d).fit(X, y)
    >>> nearkit.save(weighted, "never.nearkit")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Cannot save model.weights = <function <lambda> at ...>: it is a callable, and model files hold data, not code. Use a named scheme (weights='uniform', 'distance', 'dudani' or 'gaussian'), or keep this model in your own code.
    """
    from sklearn.utils.validation import check_is_fitted

    from nearkit import __version__

    check_is_fitted(model)
    arrays = {}
    tree = Encoder(arrays, REGISTRY).encode(model, "model")
    header = {"versions": _versions(__version__), "summary": _summary(model), "model": tree}
    return write_model_file(path, header, arrays)


def _versions(nearkit_version):
    import sklearn

    return {"nearkit": nearkit_version, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__}


def _summary(model):
    """What :func:`describe` shows, from the model (informative only: never loaded)."""
    steps = getattr(model, "steps", None) or [("model", model)]
    final = steps[-1][1]
    summary = {
        "class": _name(model),
        "steps": [[name, _name(step)] for name, step in steps],
        "estimator": _name(final),
        "params": {name: _readable(getattr(final, name))  # in the signature's order
                   for name in inspect.signature(type(final)).parameters},
    }
    facts = {"n_features_in": "n_features_in_", "n_samples_fit": "n_samples_fit_",
             "engine": "algorithm_", "metric": "effective_metric_"}
    summary.update({key: getattr(final, attribute) for key, attribute in facts.items()
                    if hasattr(final, attribute)})
    if hasattr(final, "_fit_X"):
        summary["n_samples_fit"] = len(final._fit_X)
    for key, attribute in (("feature_names", "feature_names_in_"), ("classes", "classes_")):
        if hasattr(final, attribute):
            summary[key] = [_readable(value) for value in getattr(final, attribute)]
    if len(steps) > 1 and hasattr(model[:-1], "get_feature_names_out"):
        try:  # the names of what the estimator sees, when the steps before it tell
            summary["feature_names"] = [str(name) for name in model[:-1].get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):
            pass
    table = steps[0][1]
    if hasattr(table, "columns_"):
        summary["input_columns"] = [column for column, _, _ in table.columns_]
        summary["target"] = table.target
    return summary


def _name(value):
    entry = entry_of(REGISTRY, type(value))
    return entry.name if entry is not None else type(value).__qualname__


def _readable(value):
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    return repr(value)


# -- loading -------------------------------------------------------------------------------


def load(path, *, mmap=True):
    """Read a model written by :func:`save`, checking everything before building it.

    Nothing is unpickled: the file's JSON header and raw arrays are checked (the header's
    checksum, the format version, the layout, the shape and sha256 of every array) and
    only the classes of :data:`REGISTRY` are built from them.  The search index is restored
    from its stored arrays, not rebuilt: predictions, probabilities and neighbours equal the
    saved model's bit for bit.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    mmap : bool, default=True
        Map the arrays from the file (copy-on-write: fast, shared between processes, the file
        is never changed) instead of reading them into memory.  Replace a model file with
        :func:`save` (which renames a new file over it), not by writing into it, while a
        process has it mapped.

    Returns
    -------
    estimator
        The fitted model.

    Raises
    ------
    ValueError
        Naming what is wrong: not a model file (a pickle, a zip, ...), a truncated file, a
        file larger than its header declares, a corrupted header or array (sha256), a shape
        that does not match, an unknown format version or class, or arrays that do not fit
        together.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> import nearkit
    >>> model = nearkit.NearestNeighbors(n_neighbors=1).fit([[0.0, 0.0], [3.0, 4.0]])
    >>> with TemporaryDirectory() as folder:  # doctest: +ELLIPSIS
    ...     path = Path(folder, "search.nearkit")
    ...     _ = nearkit.save(model, path)
    ...     _ = path.write_bytes(path.read_bytes()[:-3])  # cut short
    ...     nearkit.load(path)
    Traceback (most recent call last):
    ...
    ValueError: .../search.nearkit is truncated: its header declares ... bytes but the file has ...; array 'model._index.XT' is cut short.
    """
    return _load(path, mmap)[0]


def _load(path, mmap):
    """The model, and the header, arrays and size of its file."""
    header, arrays, size = read_model_file(path, mmap=mmap)
    decoder = Decoder(arrays, path, REGISTRY)
    try:
        model = decoder.decode(header.get("model"), "model")
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"{path}: the model in the header is malformed ({exc!r}).") from None
    unused = sorted(set(arrays) - decoder.used)
    if unused:
        raise ValueError(f"{path}: the arrays {unused} are stored but no part of the model "
                         "uses them.")
    if decoder.sklearn_state:
        _warn_versions(header, path)
    return model, header, arrays, size


def _warn_versions(header, path):
    import sklearn

    written = (header.get("versions") or {}).get("scikit-learn")
    if written != sklearn.__version__:
        warnings.warn(f"{path} holds scikit-learn objects written with scikit-learn {written}; "
                      f"this is {sklearn.__version__}. Their attributes may differ between "
                      "versions: check the model's predictions.", UserWarning, stacklevel=3)


# -- describing ----------------------------------------------------------------------------


def describe(path):
    """What a model file holds, in words (what ``nearkit info`` prints).

    Loads the model (so every check of :func:`load` runs, every hash included) and reads the
    summary the header keeps.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> import nearkit
    >>> from nearkit.io import describe
    >>> model = nearkit.KNNRegressor(n_neighbors=2).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 4.0])
    >>> with TemporaryDirectory() as folder:  # doctest: +ELLIPSIS
    ...     _ = nearkit.save(model, Path(folder, "model.nearkit"))
    ...     print(describe(Path(folder, "model.nearkit")))
    Model file: .../model.nearkit (... bytes, format version 1)
    Written by: nearkit ..., scikit-learn ..., numpy ...
    Model: nearkit.KNNRegressor
    Parameters: n_neighbors=2, weights='uniform', sigma=None, metric='euclidean', p=2, metric_params=None, algorithm='auto', n_jobs=None
    Training set: 3 rows x 1 features
    Search: engine 'brute', metric 'euclidean'
    Arrays: 3 (... bytes), sha256 of every one verified; the model loads
    """
    _, header, arrays, size = _load(path, mmap=True)
    summary, versions = header.get("summary", {}), header.get("versions", {})
    steps = summary.get("steps", [])
    lines = [
        f"Model file: {path} ({size:,} bytes, format version {header['format_version']})",
        "Written by: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        "Model: " + (" -> ".join(f"{name} ({cls})" for name, cls in steps)
                     if len(steps) > 1 else str(summary.get("estimator"))),
        "Parameters: " + ", ".join(f"{name}={value!r}"
                                   for name, value in summary.get("params", {}).items()),
    ]
    if "target" in summary:
        columns = summary["input_columns"]
        lines.append(f"Input columns ({len(columns)}): {', '.join(map(str, columns))}; "
                     f"target {summary['target']!r}")
    if "feature_names" in summary:
        names = summary["feature_names"]
        lines.append(f"Features ({len(names)}): {', '.join(map(str, names))}")
    if "n_samples_fit" in summary:
        lines.append(f"Training set: {summary['n_samples_fit']:,} rows x "
                     f"{summary.get('n_features_in')} features")
    if "classes" in summary:
        lines.append(f"Classes: {', '.join(map(str, summary['classes']))}")
    if "engine" in summary:
        lines.append(f"Search: engine {summary['engine']!r}, metric {summary['metric']!r}")
    nbytes = sum(array.nbytes for array in arrays.values())
    lines.append(f"Arrays: {len(arrays)} ({nbytes:,} bytes), sha256 of every one verified; "
                 "the model loads")
    return "\n".join(lines)

