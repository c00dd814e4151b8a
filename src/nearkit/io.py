"""Safe model files: :func:`save` and :func:`load` a fitted estimator as data, never code.

A fitted nearkit estimator is its training data in the search index's layout plus a few
parameters, so it can be stored without pickle (which runs arbitrary code when loaded).  A
model file holds a JSON header and the arrays (format: :mod:`nearkit._modelfile`):

- the header: the format version, the versions that wrote it, a summary for
  :func:`describe` (class, parameters, features, training size, engine), the model as a
  tree of JSON nodes, and the dtype, shape and sha256 of every array;
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

import importlib
import inspect
import math
import warnings
from dataclasses import dataclass

import numpy as np

from nearkit._modelfile import read_model_file, write_model_file
from nearkit.metrics import ResolvedMetric
from nearkit.search import ENGINES, Index

__all__ = ["REGISTRY", "describe", "load", "save"]


@dataclass(frozen=True)
class Stored:
    """How one class is stored: by its parameters and its fitted attributes.

    Attributes
    ----------
    name : str
        The public import path of the class, as the file names it.
    derived : tuple of str
        Fitted attributes rebuilt after loading (by ``after_load``), not stored.
    after_load : callable or None
        ``after_load(obj)`` checks that the loaded attributes fit together (a ValueError
        otherwise) and rebuilds the derived ones.
    """

    name: str
    derived: tuple = ()
    after_load: object = None

    def resolve(self):
        """The class (imported on first use)."""
        module, _, attribute = self.name.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


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
    model._checked_params = {name: getattr(model, name) for name in model._parameter_constraints}


def _imputer_loaded(imputer):
    """nearkit's KNNImputer: the training rows, their mask and transpose agree."""
    X = imputer._fit_X
    shapes = {"_mask_fit_X": X.shape, "_fit_XT": X.shape[::-1],
              "_valid_mask": (X.shape[1],), "_col_means": (X.shape[1],)}
    for name, shape in shapes.items():
        if getattr(imputer, name).shape != shape:
            raise ValueError(f"The stored KNNImputer's {name} has shape "
                             f"{getattr(imputer, name).shape}; expected {shape}.")


_NEIGHBORS = {"derived": ("_checked_params",), "after_load": _neighbors_loaded}

#: the classes a model file may hold: ``load`` builds these and nothing else.  Adding a class
#: is one entry (its attributes are stored by the generic value encoding below).
REGISTRY = (
    Stored("nearkit.KNNClassifier", **_NEIGHBORS),
    Stored("nearkit.KNNRegressor", **_NEIGHBORS),
    Stored("nearkit.NearestNeighbors", **_NEIGHBORS),
    Stored("nearkit.KNNOutlierDetector", **_NEIGHBORS),
    Stored("nearkit.KNNImputer", after_load=_imputer_loaded),
    Stored("nearkit.datasets.TableEncoder"),
    Stored("sklearn.pipeline.Pipeline"),
    Stored("sklearn.impute.SimpleImputer"),
    Stored("sklearn.impute.MissingIndicator"),
    Stored("sklearn.preprocessing.StandardScaler"),
)
_BY_NAME = {entry.name: entry for entry in REGISTRY}


def _entry_of(cls):
    """The registry entry of exactly this class (not of a subclass), or None."""
    for entry in REGISTRY:
        try:
            if entry.resolve() is cls:
                return entry
        except ImportError:  # an optional module that is not installed
            continue
    return None


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
    tree = _Encoder(arrays).encode(model, "model")
    header = {"versions": _versions(__version__), "summary": _summary(model), "model": tree}
    return write_model_file(path, header, arrays)


def _versions(nearkit_version):
    import sklearn

    return {"nearkit": nearkit_version, "scikit-learn": sklearn.__version__,
            "numpy": np.__version__}


class _Encoder:
    """Values as JSON nodes; arrays go to ``arrays`` (each array once, by identity)."""

    def __init__(self, arrays):
        self.arrays = arrays
        self._names = {}

    def array(self, value, where):
        if id(value) not in self._names:
            self._names[id(value)] = where
            self.arrays[where] = value
        return {"$array": self._names[id(value)]}

    def encode(self, value, where):
        if value is None or isinstance(value, (bool, str)):
            return str(value) if isinstance(value, str) else value
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise ValueError(f"Cannot save {where}: a NumPy {value.dtype} scalar.")
            return {"$scalar": value.dtype.str, "value": self.encode(value.item(), where)}
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, np.ndarray):
            return self.ndarray(value, where)
        if isinstance(value, np.dtype):
            return {"$dtype": value.str}
        if isinstance(value, (list, tuple)):
            items = [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
            return {"$tuple": items} if isinstance(value, tuple) else items
        if isinstance(value, dict):
            return {"$dict": [[self.encode(key, f"{where} key"),
                               self.encode(item, f"{where}[{key!r}]")]
                              for key, item in value.items()]}
        if isinstance(value, Index):
            return self.index(value, where)
        entry = _entry_of(type(value))
        if entry is not None:
            return self.estimator(value, entry, where)
        if callable(value):
            raise ValueError(
                f"Cannot save {where} = {value!r}: it is a callable, and model files hold data, "
                "not code. Use a named scheme (weights='uniform', 'distance', 'dudani' or "
                "'gaussian'), or keep this model in your own code.")
        raise ValueError(f"Cannot save {where}: a {type(value).__module__}."
                         f"{type(value).__qualname__}, which model files do not hold (classes "
                         f"they hold: {', '.join(_BY_NAME)}).")

    def ndarray(self, value, where):
        if value.dtype.kind in "biufU":
            return self.array(value, where)
        if value.dtype.kind == "O":
            items = [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value.flat)]
            if all(item is None or isinstance(item, (bool, int, float, str)) for item in items):
                return {"$objects": items, "shape": list(value.shape)}
        raise ValueError(f"Cannot save {where}: an array of dtype {value.dtype} (numbers, "
                         "booleans, text, and object arrays of those only).")

    def index(self, index, where):
        arrays, scalars = index._state()
        metric_arrays, metric_scalars = index.metric._state()
        return {"$index": index.name,
                "metric": {"arrays": {name: self.array(array, f"{where}.metric.{name}")
                                      for name, array in metric_arrays.items()},
                           "scalars": self.encode(metric_scalars, f"{where}.metric")},
                "arrays": {name: self.array(array, f"{where}.{name}")
                           for name, array in arrays.items()},
                "scalars": self.encode(scalars, where)}

    def estimator(self, model, entry, where):
        if hasattr(model, "_checked_params"):
            model._check_fitted()  # parameters changed since fit: refuse as the model would
        params = model.get_params(deep=False)
        fitted = {name: value for name, value in vars(model).items()
                  if name not in params and name not in entry.derived}
        return {"$object": entry.name,
                "params": {name: self.encode(value, f"{where}.{name}")
                           for name, value in params.items()},
                "fitted": {name: self.encode(value, f"{where}.{name}")
                           for name, value in fitted.items()}}


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
    entry = _entry_of(type(value))
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
    decoder = _Decoder(arrays, path)
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


class _Decoder:
    """JSON nodes back into values; only registered classes and engines are built."""

    _TAGS = ("$array", "$scalar", "$float", "$dtype", "$tuple", "$dict", "$objects", "$index",
             "$object")

    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path
        self.used = set()
        self.sklearn_state = False

    def fail(self, where, message):
        return ValueError(f"{self.path}: {where}: {message}")

    def decode(self, node, where):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(item, f"{where}[{i}]") for i, item in enumerate(node)]
        tag = next(iter(node), None) if isinstance(node, dict) else None
        if tag not in self._TAGS:
            raise self.fail(where, f"unknown node {str(node)[:80]!r}.")
        return getattr(self, tag[1:])(node, where)

    def array(self, node, where):
        name = node["$array"]
        if name not in self.arrays:
            raise self.fail(where, f"the array {name!r} is not in the file.")
        self.used.add(name)
        return self.arrays[name]

    def scalar(self, node, where):
        dtype = np.dtype(node["$scalar"])
        if dtype.kind not in "biuf":
            raise self.fail(where, f"a scalar of dtype {dtype} is not allowed.")
        value = self.decode(node["value"], where)
        if not isinstance(value, (bool, int, float)):
            raise self.fail(where, f"a scalar cannot hold {value!r}.")
        return dtype.type(value)

    def float(self, node, where):
        if node["$float"] not in ("inf", "-inf", "nan"):
            raise self.fail(where, f"{node['$float']!r} is not a float.")
        return float(node["$float"])

    def dtype(self, node, where):
        dtype = np.dtype(node["$dtype"])
        if dtype.kind not in "biufUO":
            raise self.fail(where, f"dtype {dtype} is not allowed.")
        return dtype

    def tuple(self, node, where):
        if not isinstance(node["$tuple"], list):
            raise self.fail(where, "a tuple node must hold a list.")
        return tuple(self.decode(node["$tuple"], where))

    def dict(self, node, where):
        return {self.decode(key, where): self.decode(value, f"{where}[{key!r}]")
                for key, value in node["$dict"]}

    def objects(self, node, where):
        items = self.decode(node["$objects"], where)
        if any(not (item is None or isinstance(item, (bool, int, float, str)))
               for item in items):
            raise self.fail(where, "an object array may hold numbers and text only.")
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(node["shape"])

    def index(self, node, where):
        engine = ENGINES.get(node["$index"])
        if engine is None:
            raise self.fail(where, f"unknown search engine {node['$index']!r}; known: "
                                   f"{sorted(ENGINES)}.")
        part = node["metric"]
        metric = ResolvedMetric._from_state(
            {name: self.array(ref, where) for name, ref in part["arrays"].items()},
            self.decode(part["scalars"], where))
        if metric.kernel.kind not in engine.kinds:
            raise self.fail(where, f"the {engine.name!r} engine cannot search metric "
                                   f"{metric.name!r}.")
        return engine._from_state(metric, {name: self.array(ref, where)
                                           for name, ref in node["arrays"].items()},
                                  self.decode(node["scalars"], where))

    def object(self, node, where):
        entry = _BY_NAME.get(node["$object"])
        if entry is None:
            raise self.fail(where, f"unknown class {node['$object']!r}; model files hold "
                                   f"{', '.join(_BY_NAME)}.")
        cls = entry.resolve()
        params = {name: self.decode(value, f"{where}.{name}")
                  for name, value in node["params"].items()}
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise self.fail(where, f"{entry.name} has no parameters {sorted(unknown)}.")
        model = cls(**params)
        for name, value in node["fitted"].items():
            if (not name.isidentifier() or name.startswith("__") or name in params
                    or hasattr(cls, name) or name in entry.derived):
                raise self.fail(where, f"{name!r} cannot be a fitted attribute of "
                                       f"{entry.name}.")
            setattr(model, name, self.decode(value, f"{where}.{name}"))
        if entry.after_load is not None:
            try:
                entry.after_load(model)
            except (AttributeError, TypeError) as exc:
                raise self.fail(where, f"the stored {entry.name} is incomplete ({exc}).") \
                    from None
        self.sklearn_state |= entry.name.startswith("sklearn.") or entry.name.endswith(
            "KNNImputer")
        return model


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

