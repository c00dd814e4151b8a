"""The schema of ``results.json`` and a small validator for it.

:data:`RESULTS_SCHEMA` is written in a subset of JSON Schema (draft 2020-12 keywords
``type``, ``properties``, ``required``, ``additionalProperties``, ``items``, ``enum``,
``minimum``, ``anyOf``), so any JSON Schema tool can read it; :func:`validate` implements that
subset, because the project does not depend on ``jsonschema``.
"""

from __future__ import annotations

from nearkit.bench.results import READABLE_VERSIONS

NUMBER = {"type": "number"}
NUMBERS = {"type": "array", "items": NUMBER}
INTEGER = {"type": "integer", "minimum": 0}
STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_INTEGER = {"type": ["integer", "null"]}


def _object(required, optional=None, additional=False):
    properties = {**required, **(optional or {})}
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": additional}


CHECK = _object({
    "n_checked": INTEGER, "n_exact": INTEGER, "n_near_tie": INTEGER, "n_wrong": INTEGER,
    "max_reported_distance_error": NULLABLE_NUMBER,
    "examples": {"type": "array", "items": {"type": "object"}},
})
QUALITY = _object({
    "average": {"enum": ["binary", "macro"]},
    "confusion_matrix": {"type": "array", "items": {"type": "array", "items": INTEGER}},
    "accuracy": NUMBER, "balanced_accuracy": NUMBER, "precision": NUMBER, "recall": NUMBER,
    "f1": NUMBER, "fbeta": NUMBER, "roc_auc": NULLABLE_NUMBER,
})
_RECORD_HEAD = {"status": {"enum": ["ok"]}, "note": {"type": "null"}, "threads": NULLABLE_INTEGER}
ENGINE_OK = _object(
    {**_RECORD_HEAD, "fit_s": NUMBERS, "predict_s": NUMBERS, "latency_s": NUMBERS,
     "n_queries": INTEGER, "check": CHECK, "quality": QUALITY,
     "y_pred": {"type": "array"}, "score": {"type": "array"}, "info": {"type": "object"}},
    {"memory": _object({"bytes": INTEGER, "method": {"enum": ["vmhwm", "tracemalloc"]}}),
     "warmup_s": _object({"fit": NUMBER, "predict": NUMBER})},
)
ENGINE_NOT_RUN = _object(
    {"status": {"enum": ["skipped", "error"]}, "note": STRING, "threads": NULLABLE_INTEGER},
    additional=True,
)
RUN = _object({
    "dataset": STRING, "n_neighbors": INTEGER, "weights": STRING, "metric": STRING,
    "p": NUMBER, "repeat": INTEGER, "n_train": INTEGER, "n_test": INTEGER,
    "order": {"type": "array", "items": STRING}, "classes": {"type": "array"},
    "y_true": {"type": "array"},
    "engines": {"type": "object", "additionalProperties": {"anyOf": [ENGINE_OK, ENGINE_NOT_RUN]}},
})
ENGINE_ENTRY = _object({
    "base": STRING, "family": STRING, "description": STRING, "threads": NULLABLE_INTEGER,
    "jit": {"type": "boolean"}, "max_queries": NULLABLE_INTEGER,
    "available": {"type": "boolean"}, "note": NULLABLE_STRING,
})
GEOMETRY = _object({
    "n_features": INTEGER, "relative_contrast_median": NULLABLE_NUMBER,
    "relative_contrast_q25": NULLABLE_NUMBER, "relative_contrast_q75": NULLABLE_NUMBER,
    "n_contrast_queries": INTEGER, "n_coinciding_queries": INTEGER,
    "twonn": NULLABLE_NUMBER, "levina_bickel": NULLABLE_NUMBER, "n_points": INTEGER,
})
DATASET = {"anyOf": [
    _object({"description": STRING, "info": {"type": "object"}, "n_rows": INTEGER,
             "n_features": INTEGER, "n_train": INTEGER, "n_test": INTEGER,
             "geometry": GEOMETRY}),
    _object({"error": STRING}),
]}
FIRST_CALL = _object(
    {"engine": STRING, "cache": {"enum": ["cold", "warm"]}, "n_train": INTEGER,
     "n_queries": INTEGER, "n_features": INTEGER, "status": {"enum": ["ok", "error"]},
     "note": NULLABLE_STRING},
    {"first_fit_s": NUMBER, "first_predict_s": NUMBER, "steady_fit_s": NUMBER,
     "steady_predict_s": NUMBER},
)
SCALING = _object({
    "dataset": STRING, "n_train": INTEGER, "n_queries": INTEGER, "n_features": INTEGER,
    "engine": STRING, "fit_s": NUMBERS, "predict_s": NUMBERS,
    "status": {"enum": ["ok", "error"]}, "note": NULLABLE_STRING,
})
PROFILE = _object(
    {"dataset": STRING, "engine": STRING, "status": {"enum": ["ok", "skipped", "error"]},
     "note": NULLABLE_STRING},
    {"n_queries": INTEGER, "predict_s": NUMBER, "kneighbors_s": NUMBER,
     "profiled_predict_s": NUMBER,
     "top_functions": {"type": "array", "items": _object({
         "function": STRING, "ncalls": INTEGER, "tottime_s": NUMBER, "cumtime_s": NUMBER})},
     "phases": {"type": "object"}},
)
_SCORES = {"type": "object", "additionalProperties": {"type": "array", "items": NULLABLE_NUMBER}}
CV = {"anyOf": [
    _object({"dataset": STRING, "status": {"enum": ["ok"]}, "note": {"type": "null"},
             "n_train": INTEGER, "folds": INTEGER, "scoring": STRING,
             "ks": {"type": "array", "items": INTEGER},
             "weights": {"type": "array", "items": STRING},
             "mean_test_score": _SCORES, "std_test_score": _SCORES,
             "best_params": _object({"n_neighbors": INTEGER, "weights": STRING}),
             "best_score": NUMBER, "search_s": NUMBER}),
    _object({"dataset": STRING, "status": {"enum": ["error"]}, "note": STRING}),
]}
ENVIRONMENT = _object(
    {"started_utc": STRING, "cpu_model": NULLABLE_STRING, "logical_cores": NULLABLE_INTEGER,
     "python": STRING, "libraries": {"type": "object"},
     "nearkit_git_commit": NULLABLE_STRING, "command_line": {"type": "array", "items": STRING}},
    additional=True,
)
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nearkit bench results",
    **_object({
        "schema_version": {"enum": list(READABLE_VERSIONS)},
        "config": {"type": "object"},
        "environment": ENVIRONMENT,
        "engines": {"type": "object", "additionalProperties": ENGINE_ENTRY},
        "datasets": {"type": "object", "additionalProperties": DATASET},
        "runs": {"type": "array", "items": RUN},
        "first_call": {"type": "array", "items": FIRST_CALL},
        "scaling": {"type": "array", "items": SCALING},
        "profiles": {"type": "array", "items": PROFILE},
    }, {"cv": {"type": "array", "items": CV}}),
}

_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
}


class SchemaError(ValueError):
    """``results.json`` does not match :data:`RESULTS_SCHEMA`."""


def _is_type(value, name):
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def errors(value, schema, path="$"):
    """Every mismatch between ``value`` and ``schema``, as ``"path: message"`` strings."""
    if "anyOf" in schema:
        branches = [errors(value, option, path) for option in schema["anyOf"]]
        if all(branches):
            best = min(branches, key=len)
            return [f"{path}: matches none of the allowed forms; closest: {best[0]}"]
        return []
    found = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in types):
            return [f"{path}: expected {' or '.join(types)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        found.append(f"{path}: {value} is below the minimum {schema['minimum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{path}: missing required key {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found.extend(errors(item, properties[key], f"{path}.{key}"))
            elif extra is False:
                found.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                found.extend(errors(item, extra, f"{path}.{key}"))
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found.extend(errors(item, schema["items"], f"{path}[{i}]"))
    return found


def validate_results(results):
    """Raise :class:`SchemaError` listing the first mismatches if ``results`` is invalid.

    Parameters
    ----------
    results : dict
        Content of ``results.json``.

    Returns
    -------
    dict
        ``results``, unchanged.
    """
    found = errors(results, RESULTS_SCHEMA)
    if found:
        shown = "\n  ".join(found[:10])
        more = f"\n  ... and {len(found) - 10} more" if len(found) > 10 else ""
        raise SchemaError(f"results.json does not match the schema:\n  {shown}{more}")
    return results
