"""The model tree of a model file: values as JSON nodes and arrays, and back.

A node is a JSON value: ``None``, booleans, integers, finite floats, strings and lists are
themselves; everything else is an object with one tag key first:

- ``{"$array": name}``: an array of the file (each array stored once, by identity);
- ``{"$scalar": dtype, "value": v}``, ``{"$float": "inf" | "-inf" | "nan"}``,
  ``{"$dtype": dtype}``: NumPy scalars, non-finite floats, dtypes;
- ``{"$tuple": [...]}``, ``{"$dict": [[key, value], ...]}``,
  ``{"$objects": [...], "shape": [...]}`` (an object array of numbers and text),
  ``{"$masked": data, "mask": mask}`` (a masked array, as in ``cv_results_``);
- ``{"$index": engine, "metric": {...}, "arrays": {...}, "scalars": ...}``: a search index
  from its ``_state`` (:mod:`nearkit.search`) and its metric's
  (:class:`~nearkit.metrics.ResolvedMetric`);
- ``{"$object": class, "params": {...}, "fitted": {...}}``: an estimator of a registered class
  (:class:`Stored`), built as ``cls(**params)`` and given its fitted attributes.

Nothing else can be encoded (a callable, an unregistered class: ``Encoder`` refuses it) or
decoded (``Decoder`` refuses unknown tags, classes and engines, and fitted attributes that
would shadow the class's methods).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np

from nearkit.metrics import ResolvedMetric
from nearkit.search import ENGINES, Index
from nearkit.weights import WEIGHTS


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
    sklearn_state : bool or None
        Whether the stored state is laid out by scikit-learn's code (its version then
        matters); None means: the class is scikit-learn's.
    """

    name: str
    derived: tuple = ()
    after_load: object = None
    sklearn_state: object = None

    def resolve(self):
        """The class (imported on first use)."""
        module, _, attribute = self.name.rpartition(".")
        return getattr(importlib.import_module(module), attribute)


def entry_of(registry, cls):
    """The entry of ``registry`` for exactly this class (not a subclass), or None."""
    for entry in registry:
        try:
            if entry.resolve() is cls:
                return entry
        except ImportError:  # an optional module that is not installed
            continue
    return None


class Encoder:
    """Values as JSON nodes; arrays go to ``arrays`` (each array once, by identity), and
    objects of the classes of ``registry`` as their parameters and fitted attributes."""

    def __init__(self, arrays, registry):
        self.arrays = arrays
        self.registry = registry
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
        if isinstance(value, np.ma.MaskedArray):  # (GridSearchCV-style cv_results_ columns)
            return {"$masked": self.ndarray(value.data, where),
                    "mask": self.ndarray(np.ma.getmaskarray(value), f"{where}.mask")}
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
        entry = entry_of(self.registry, type(value))
        if entry is not None:
            return self.estimator(value, entry, where)
        if callable(value):
            raise ValueError(
                f"Cannot save {where} = {value!r}: it is a callable, and model files hold data, "
                f"not code. Use a named scheme (weights={_named(WEIGHTS)}), or keep this "
                "model in your own code.")
        raise ValueError(f"Cannot save {where}: a {type(value).__module__}."
                         f"{type(value).__qualname__}, which model files do not hold (classes "
                         f"they hold: {', '.join(entry.name for entry in self.registry)}).")

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


class Decoder:
    """JSON nodes back into values: only the classes of ``registry`` and the engines of
    :data:`nearkit.search.ENGINES` are built; ``used`` collects the arrays read, and
    ``sklearn_state`` whether some object's state is scikit-learn's."""

    _TAGS = ("$array", "$scalar", "$float", "$dtype", "$tuple", "$dict", "$objects", "$masked",
             "$index", "$object")

    def __init__(self, arrays, path, registry):
        self.arrays = arrays
        self.path = path
        self.by_name = {entry.name: entry for entry in registry}
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

    def masked(self, node, where):
        data, mask = self.decode(node["$masked"], where), self.decode(node["mask"], where)
        if not (isinstance(data, np.ndarray) and isinstance(mask, np.ndarray)
                and mask.dtype == bool and mask.shape == data.shape):
            raise self.fail(where, "a masked array needs data and a boolean mask of its shape.")
        return np.ma.MaskedArray(data, mask=mask)

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
        entry = self.by_name.get(node["$object"])
        if entry is None:
            raise self.fail(where, f"unknown class {node['$object']!r}; model files hold "
                                   f"{', '.join(self.by_name)}.")
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
        self.sklearn_state |= (entry.name.startswith("sklearn.") if entry.sklearn_state is None
                               else entry.sklearn_state)
        return model


def _named(names):
    """``'a', 'b' or 'c'``."""
    quoted = [repr(name) for name in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
