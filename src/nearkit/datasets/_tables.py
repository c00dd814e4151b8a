"""Turning a verified table into a :class:`Dataset`: schema check, ``X``, ``y``, description."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nearkit.datasets._errors import SchemaError
from nearkit.datasets._registry import DatasetSpec


@dataclass(repr=False, eq=False)
class Dataset:
    """A loaded dataset.

    Attributes
    ----------
    name : str
        Dataset name, e.g. ``"bank_churn"``.
    frame : pandas.DataFrame
        The table as read, every column unconverted, restricted to the rows kept in ``X``
        (only ``spotify_tracks`` drops rows: its repeated track_ids).
    X : pandas.DataFrame
        The features: numeric float64, named columns, row ``i`` is ``frame`` row ``i``.  Nothing
        fitted has been applied: scale (and impute) with :func:`make_preprocessor` inside
        cross-validation.  Missing values are NaN (only Pima has some).
    y : numpy.ndarray of int64
        The target: 0/1 for the report datasets, class codes ``0..C-1`` otherwise.
    target : str
        The rule that gives ``y``, e.g. ``"popularity >= 50 (...)"``.
    description : str
        Human-readable: source, target rule, columns dropped and why, class balance.
    info : dict
        Machine-readable facts: source, checksums, ``n_rows``, ``n_features``,
        ``class_counts``, ``class_balance``, ``is_full``, ...
    encoder : TableEncoder or None
        For a table from :func:`load_csv`: the fitted column plan that made ``X`` from
        ``frame``, which encodes other tables the same way (None for the other loaders).
    """

    name: str
    frame: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray
    target: str
    description: str
    info: dict[str, Any] = field(default_factory=dict)
    encoder: Any = None

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, n_rows={self.X.shape[0]}, "
            f"n_features={self.X.shape[1]}, target={self.target!r})"
        )


#: how a True/False column is read: Python booleans or their text; 1 == True, 0 == False
BOOLEANS = {True: 1.0, False: 0.0, "True": 1.0, "False": 0.0}
#: how the rows in error messages are counted
ROWS_COUNTED = "rows counted from 0, the header line not counted"


def read_table(path: str | os.PathLike, na_values=()) -> pd.DataFrame:
    """Read a CSV as stored: only empty cells are missing (a surname "Null" stays a string).

    Cells whose whole text is one of ``na_values`` are missing too.
    """
    if isinstance(na_values, str):
        na_values = (na_values,)
    return pd.read_csv(path, keep_default_na=False, na_values=["", *na_values])


def bad_cells(values: pd.Series, mask, *, limit: int = 5) -> str:
    """The cells of ``values`` where ``mask`` holds: ``"2 cells: row 41 '12.5x', row 57 'NA'"``.

    Rows are the index labels of ``values``: the 0-based data rows of a table read from a
    file (see :data:`ROWS_COUNTED`).
    """
    rows = values.index[np.asarray(mask, dtype=bool)]
    shown = [f"row {row} {_plain(values.loc[row])!r}" for row in rows[:limit]]
    return f"{len(rows):,} cell{'s' if len(rows) != 1 else ''}: {_listed(shown, len(rows))}"


def _plain(value):
    """A NumPy scalar as the Python value it holds (``5``, not ``np.int64(5)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _listed(shown: list[str], total: int) -> str:
    more = f", ... ({total - len(shown):,} more)" if total > len(shown) else ""
    return ", ".join(shown) + more


def class_summary(y: np.ndarray, labels: list[str] | None = None) -> tuple[dict, dict, str]:
    """``(counts, fractions, text)`` of the classes in ``y``."""
    values, counts = np.unique(y, return_counts=True)
    total = int(counts.sum())
    class_counts = {int(v): int(c) for v, c in zip(values, counts)}
    balance = {int(v): c / total for v, c in zip(values, counts)}
    parts = []
    for value, count in class_counts.items():
        label = f" ({labels[value]})" if labels and labels[value] != str(value) else ""
        parts.append(f"{value}{label}: {count:,}/{total:,} = {100 * count / total:.2f} %")
    return class_counts, balance, "; ".join(parts)


def check_columns(frame: pd.DataFrame, required, *, where: str) -> None:
    """Raise :class:`SchemaError` naming the ``required`` columns missing from ``frame``."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise SchemaError(
            f"{where} is missing the column(s) {missing}. Expected columns: {list(required)}; "
            f"found: {list(frame.columns)}. Check the header line (and the separator)."
        )


def _numeric(frame: pd.DataFrame, column: str, *, where: str) -> pd.Series:
    values = frame[column]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        converted = pd.to_numeric(values, errors="coerce")
        bad = values.notna() if pd.api.types.is_bool_dtype(values) else (
            converted.isna() & values.notna()
        )
        if bad.any():
            raise SchemaError(
                f"{where}: column {column!r} must be numeric but holds "
                f"{bad_cells(values, bad)} ({ROWS_COUNTED})"
            )
        values = converted
    return values.astype(np.float64)


def empty_cells(values: pd.Series, what: str, *, where: str) -> SchemaError:
    """A :class:`SchemaError` naming the rows of the empty cells of ``values``."""
    rows = values.index[values.isna()]
    return SchemaError(
        f"{where}: {what} has {len(rows):,} empty cells, in rows "
        f"{_listed([str(row) for row in rows[:5]], len(rows))} ({ROWS_COUNTED})"
    )


def _one_hot(values: pd.Series, levels, column: str, *, where: str) -> pd.DataFrame:
    text = values.astype(str)
    unexpected = ~text.isin(levels)
    if unexpected.any():
        raise SchemaError(
            f"{where}: column {column!r} has unexpected values in {bad_cells(values, unexpected)} "
            f"({ROWS_COUNTED}); expected one of {list(levels)}"
        )
    return pd.DataFrame(
        {f"{column}_{level}": (text == level).to_numpy(np.float64) for level in levels},
        index=values.index,
    )


def _booleans(values: pd.Series, column: str, *, where: str) -> pd.Series:
    converted = values.map(BOOLEANS)
    if converted.isna().any():
        raise SchemaError(
            f"{where}: column {column!r} must be True/False but holds "
            f"{bad_cells(values, converted.isna())} ({ROWS_COUNTED})"
        )
    return converted.astype(np.float64)


def build_features(spec: DatasetSpec, frame: pd.DataFrame, *, where: str) -> pd.DataFrame:
    """``X`` of a report dataset from its raw table (see :class:`DatasetSpec`)."""
    pieces = []
    for column in spec.columns:
        if column == spec.target_column or column in spec.dropped:
            continue
        if column in spec.categoricals:
            pieces.append(_one_hot(frame[column], spec.categoricals[column], column, where=where))
        elif column in spec.binary:
            level = spec.binary[column]
            other = [v for v in frame[column].astype(str).unique() if v != level]
            if len(other) > 1:
                raise SchemaError(
                    f"{where}: column {column!r} must have two values, found {[level, *other]}"
                )
            pieces.append(_one_hot(frame[column], (level, *other), column, where=where).iloc[:, :1])
        elif column in spec.booleans:
            pieces.append(_booleans(frame[column], column, where=where).rename(column))
        else:
            values = _numeric(frame, column, where=where)
            if column in spec.missing_zeros:
                values = values.mask(values == 0)
            elif values.isna().any():
                raise empty_cells(values, f"column {column!r}", where=where)
            pieces.append(values.rename(column))
    X = pd.concat(pieces, axis=1)
    X.columns = spec.feature_names
    return X


def build_target(spec: DatasetSpec, frame: pd.DataFrame, *, where: str) -> np.ndarray:
    """``y`` of a report dataset: ``target >= threshold``, or the 0/1 target column itself."""
    values = _numeric(frame, spec.target_column, where=where)
    if values.isna().any():
        raise empty_cells(values, f"the target {spec.target_column!r}", where=where)
    if spec.target_threshold is not None:
        return (values >= spec.target_threshold).to_numpy(np.int64)
    if not values.isin([0, 1]).all():
        raise SchemaError(
            f"{where}: the target {spec.target_column!r} must be 0/1 but holds "
            f"{bad_cells(frame[spec.target_column], ~values.isin([0, 1]))} ({ROWS_COUNTED})"
        )
    return values.to_numpy(np.int64)


def from_frame(
    spec: DatasetSpec, frame: pd.DataFrame, *, source: dict[str, Any] | None = None
) -> Dataset:
    """Build the :class:`Dataset` of a report dataset from its raw table."""
    source = dict(source or {})
    where = f"{spec.name} table" + (f" ({source['file']})" if source.get("file") else "")
    check_columns(frame, spec.columns, where=where)
    n_rows_file = len(frame)
    # rows keep their place in the table until X and y are built, for the error messages
    frame = frame.reset_index(drop=True)
    if spec.dedup_key is not None:
        frame = frame.drop_duplicates(spec.dedup_key, keep="first")
    X = build_features(spec, frame, where=where).reset_index(drop=True)
    y = build_target(spec, frame, where=where)
    frame = frame.reset_index(drop=True)
    counts, balance, balance_text = class_summary(y)
    missing = {c: int(X[c].isna().sum()) for c in spec.missing_zeros}
    info = {
        "name": spec.name,
        "origin": spec.origin,
        "repo": spec.repo,
        "commit": spec.commit,
        "paths": [part.path for part in spec.parts],
        **source,
        "n_rows_file": n_rows_file,
        "duplicates_dropped": n_rows_file - len(frame),
        "n_rows": len(frame),
        "n_features": X.shape[1],
        "feature_names": list(X.columns),
        "dropped_columns": dict(spec.dropped),
        "missing_zeros": missing,
        "class_counts": counts,
        "class_balance": balance,
        "positive_fraction": balance.get(1, 0.0),
    }
    info.setdefault("is_full", spec.full_git_blob is None)
    return Dataset(
        name=spec.name,
        frame=frame,
        X=X,
        y=y,
        target=spec.target_rule,
        description=_describe(spec, info, balance_text),
        info=info,
    )


def _describe(spec: DatasetSpec, info: dict[str, Any], balance_text: str) -> str:
    if info.get("file"):
        check = "git blob " + spec.full_git_blob if info.get("status") == "full" else "sha256"
        file_line = f"File: {info['file']} ({info['n_rows_file']:,} rows, verified by {check})"
    else:
        file_line = f"Table given in memory ({info['n_rows_file']:,} rows, not checksummed)"
    lines = [
        f"{spec.name}: {spec.origin}",
        f"Source: {spec.repo} at commit {spec.commit}, {' + '.join(info['paths'])}",
        file_line,
    ]
    if spec.full_git_blob is not None:
        lines.append(
            f"Full original ({spec.full_n_rows:,} rows): "
            + ("yes" if info.get("is_full") else f"no, a {spec.n_rows:,}-row subset")
        )
    lines.append(f"Target: {spec.target_rule}")
    if info["duplicates_dropped"]:
        lines.append(
            f"Rows: {info['n_rows']:,} after dropping {info['duplicates_dropped']:,} rows that "
            f"repeat a {spec.dedup_key} (first kept), before any split"
        )
    lines.append(f"Features ({info['n_features']}): {', '.join(info['feature_names'])}")
    for column, reason in spec.dropped.items():
        lines.append(f"Dropped {column}: {reason}")
    for column, levels in spec.categoricals.items():
        lines.append(f"One-hot {column}: {len(levels)} columns ({', '.join(levels)})")
    for column, level in spec.binary.items():
        lines.append(f"Binary {column}: one 0/1 column {column}_{level} (1 = {level})")
    for column in spec.booleans:
        lines.append(f"Boolean {column}: True/False -> 1/0")
    if info["missing_zeros"]:
        counts = ", ".join(f"{c} {n}" for c, n in info["missing_zeros"].items())
        lines.append(
            f"Zeros meaning 'missing' set to NaN ({counts} rows); make_preprocessor imputes "
            "them with the median of the training split"
        )
    lines.extend(f"Note: {note}" for note in spec.notes)
    lines.append(f"Class balance: {balance_text}")
    return "\n".join(lines)

