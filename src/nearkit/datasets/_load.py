"""The loading functions of :mod:`nearkit.datasets`: report datasets, CSV files, bundled sets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from nearkit.datasets import _files
from nearkit.datasets._encoder import TableEncoder
from nearkit.datasets._errors import SchemaError
from nearkit.datasets._registry import BUNDLED, SPECS, get_spec
from nearkit.datasets._tables import (
    Dataset,
    check_columns,
    class_summary,
    empty_cells,
    from_frame,
    read_table,
)


def list_datasets() -> list[str]:
    """Names of the five report datasets, in the report's order.

    scikit-learn's bundled sets (``"iris"``, ``"wine"``, ``"breast_cancer"``, ``"digits"``)
    are not listed but load by name too.

    Examples
    --------
    >>> from nearkit.datasets import list_datasets
    >>> list_datasets()
    ['social_network_ads', 'bank_churn', 'spotify_tracks', 'loan_approval', 'pima_diabetes']
    """
    return list(SPECS)


def _normalise(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a dataset name (str), got {type(name).__name__}")
    return name.strip().lower().replace("-", "_")


def check_dataset_name(name: str) -> str:
    """The name :func:`load_dataset` knows ``name`` by, without loading anything.

    Case, surrounding spaces and ``-`` against ``_`` do not matter.

    Raises
    ------
    ValueError
        If no dataset has that name; the message lists the known ones.

    Examples
    --------
    >>> from nearkit.datasets import check_dataset_name
    >>> check_dataset_name("Bank-Churn"), check_dataset_name("iris")
    ('bank_churn', 'iris')
    """
    name = _normalise(name)
    if name not in BUNDLED:
        get_spec(name)
    return name


def load_dataset(
    name: str, *, data_home: str | os.PathLike | None = None, download: bool = True
) -> Dataset:
    """Load a report dataset (verified against its sha256) or a bundled scikit-learn set.

    The file is looked for in ``data_home``, then ``$NEARKIT_DATA``, then the per-user cache
    (``$XDG_CACHE_HOME/nearkit`` or ``~/.cache/nearkit``); a missing file is downloaded from its
    pinned URL (``$NEARKIT_DATA_URL`` replaces ``https://raw.githubusercontent.com``) into the
    first writable of those folders, verified, then moved into place.

    Preprocessing (nothing fitted; see :func:`make_preprocessor` for scaling and imputation):

    - ``social_network_ads``: drop User ID; Gender -> one 0/1 column ``Gender_Male``;
      3 features; ``y = Purchased``.
    - ``bank_churn``: drop RowNumber, CustomerId, Surname; one-hot Geography (3) and
      Gender (2); 13 features; ``y = Exited``.
    - ``spotify_tracks``: drop rows repeating a track_id (first kept) before anything else;
      drop the row index, track_id, artists, album_name, track_name and track_genre
      (114 levels); explicit True/False -> 1/0; 14 audio features; ``y = popularity >= 50``.
      The 114,000-row original is accepted in place of the 22,800-row subset when its git
      blob id is ``623114a3...`` (``info["is_full"]``).
    - ``loan_approval``: one-hot every categorical, two-level ones included; 27 features;
      ``y = loan_status``.
    - ``pima_diabetes``: zeros in Glucose, BloodPressure, SkinThickness, Insulin and BMI mean
      "missing" and become NaN in ``X``; 8 features; ``y = Outcome``.

    Gender is one 0/1 column in ``social_network_ads`` but two one-hot columns in
    ``bank_churn`` (and ``loan_approval``), to keep the feature counts (3, 13, 27) that the
    engine benchmarks were sized on; after scaling, the two-column form gives a gender mismatch
    twice the weight in a squared Euclidean distance.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets`, or ``'iris'``, ``'wine'``, ``'breast_cancer'``,
        ``'digits'`` (bundled with scikit-learn, always offline).
    data_home : str or path-like, default=None
        Folder searched first (and downloaded into, if writable).
    download : bool, default=True
        Download a missing file. With ``False`` a missing file raises
        :class:`DatasetNotFoundError` naming the folders searched and the URL.

    Returns
    -------
    Dataset
        ``frame``, ``X``, ``y``, ``target``, ``description`` and ``info``.

    Raises
    ------
    ChecksumError
        If the file found does not have the recorded sha256; it is never used.
    DatasetNotFoundError, DownloadError
        If the file is missing and cannot be downloaded.
    SchemaError
        If the table lacks a required column.

    Examples
    --------
    >>> from nearkit.datasets import load_dataset
    >>> iris = load_dataset("iris")
    >>> iris.X.shape, iris.info["class_counts"]
    ((150, 4), {0: 50, 1: 50, 2: 50})
    >>> churn = load_dataset("bank_churn")  # doctest: +SKIP
    >>> churn.X.shape, churn.y.mean()  # doctest: +SKIP
    ((10000, 13), np.float64(0.2037))
    """
    name = check_dataset_name(name)
    if name in BUNDLED:
        return _load_bundled(name)
    spec = SPECS[name]
    path, status, digest = _files.locate(spec, data_home, download=download)
    source = {
        "urls": _files.source_urls(spec),
        "file": str(path),
        "status": status,
        "sha256": digest,
        "is_full": status == "full" or spec.full_git_blob is None,
    }
    if status == "full":
        source["git_blob"] = spec.full_git_blob
    return from_frame(spec, read_table(path), source=source)


def dataset_from_frame(name: str, frame: pd.DataFrame) -> Dataset:
    """Build a report dataset from a table you already hold (checked against the schema).

    Use it for a copy read some other way; nothing is checksummed.

    Raises
    ------
    SchemaError
        Naming the missing columns, or a column with values of the wrong kind.
    """
    return from_frame(get_spec(_normalise(name)), frame)


def fetch_dataset(
    name: str, *, data_home: str | os.PathLike | None = None, base_url: str | None = None
) -> Path:
    """Make sure a report dataset's verified file is present; download it if missing.

    Returns the path of the verified file.  ``base_url`` replaces
    ``https://raw.githubusercontent.com`` (default: ``$NEARKIT_DATA_URL``).
    """
    spec = get_spec(_normalise(name))
    return _files.locate(spec, data_home, download=True, base_url=base_url)[0]


class DatasetStatus(NamedTuple):
    """One row of :func:`dataset_status`."""

    name: str
    #: ``"verified"``, ``"full"`` (Spotify's full original), ``"missing"`` or ``"corrupt"``
    status: str
    #: the copy found, or ``None`` when missing
    path: Path | None


def dataset_status(data_home: str | os.PathLike | None = None) -> list[DatasetStatus]:
    """Status of each report dataset's file: ``(name, status, path)``, in the report's order.

    Only the first copy in the search order counts, as in :func:`load_dataset`.  Nothing is
    downloaded.
    """
    rows = []
    for spec in SPECS.values():
        path = _files.find_file(spec, data_home)
        status = "missing" if path is None else _files.check_file(spec, path)[0]
        rows.append(DatasetStatus(spec.name, status, path))
    return rows


def _load_bundled(name: str) -> Dataset:
    from sklearn import datasets as sk_datasets

    loader = BUNDLED[name]
    bunch = getattr(sk_datasets, loader)(as_frame=True)
    X = bunch.data.astype(np.float64)
    y = bunch.target.to_numpy(np.int64)
    labels = [str(label) for label in bunch.target_names]
    counts, balance, balance_text = class_summary(y, labels)
    title = next(
        line.strip()
        for line in bunch.DESCR.splitlines()
        if line.strip() and not line.startswith("..")
    )
    info = {
        "name": name,
        "origin": f"scikit-learn bundled dataset (sklearn.datasets.{loader}): {title}",
        "is_full": True,
        "n_rows": len(X),
        "n_features": X.shape[1],
        "feature_names": list(X.columns),
        "classes": labels,
        "class_counts": counts,
        "class_balance": balance,
    }
    description = "\n".join(
        [
            f"{name}: {info['origin']}, installed with scikit-learn (no download)",
            f"Target: class code 0..{len(labels) - 1} ({', '.join(labels)})",
            f"Features ({X.shape[1]}): all numeric, none dropped",
            f"Class balance: {balance_text}",
        ]
    )
    return Dataset(name, bunch.frame, X, y, f"class code ({', '.join(labels)})", description, info)


def load_csv(
    path: str | os.PathLike,
    target: str,
    *,
    positive: Any = None,
    drop=(),
    max_categories: int = 50,
    na_values=(),
) -> Dataset:
    """Load any CSV file with a named target column.

    Features: numeric columns as float64 (missing cells stay NaN; :func:`make_preprocessor`
    then imputes them), True/False columns as 1/0, text columns one-hot encoded (every level)
    unless they have more than ``max_categories`` levels, in which case they are dropped
    (an identifier or free text) and the description says so.

    Only empty cells are missing, unless ``na_values`` names other markers.  A text column
    in which more than half of the non-empty cells are numbers is a numeric column with bad
    cells (a typo such as ``12.5x``, or an undeclared marker such as ``NA``): it is never
    dropped nor one-hot encoded; loading stops with a :class:`SchemaError` naming the column
    and the rows and values of the bad cells (rows counted from 0, the header line not
    counted).  Declare the markers with ``na_values``, correct the file, or leave the column
    out with ``drop``.

    Parameters
    ----------
    path : str or path-like
        The CSV file (header line required).
    target : str
        Name of the target column.
    positive : scalar, default=None
        If given, ``y = (target == positive)`` as 0/1.  Otherwise ``y`` holds the class codes
        of the sorted distinct target values (``info["classes"]``).
    drop : sequence of str, default=()
        Columns to leave out of ``X`` (identifiers, leaks).
    max_categories : int, default=50
        Text columns with more levels than this are dropped.
    na_values : str or sequence of str, default=()
        Cell texts that mean "missing" in every column, besides the empty cell, e.g.
        ``("NA", "?")``; those cells become NaN.  A cell matches when its whole text is
        one of them.

    Returns
    -------
    Dataset
        ``frame``, ``X``, ``y``, ``target``, ``description`` and ``info``, and ``encoder``:
        the fitted :class:`TableEncoder` that made ``X``, to encode other tables the same way.

    Raises
    ------
    SchemaError
        If ``target`` or a column of ``drop`` is not in the file, the target has missing
        cells, ``positive`` never occurs, or a numeric column has cells that are not numbers.

    Examples
    --------
    >>> from pathlib import Path
    >>> from tempfile import TemporaryDirectory
    >>> from nearkit.datasets import load_csv
    >>> with TemporaryDirectory() as folder:
    ...     path = Path(folder, "shop.csv")
    ...     _ = path.write_text("size,label\\n1.5,yes\\nNA,no\\n2.0,yes\\n")
    ...     data = load_csv(path, "label", positive="yes", na_values=["NA"])
    >>> data.X["size"].tolist(), data.y.tolist()
    ([1.5, nan, 2.0], [1, 0, 1])
    """
    path = Path(path)
    frame = read_table(path, na_values)
    where = f"CSV {path}"
    check_columns(frame, [target, *drop], where=where)
    values = frame[target]
    if values.isna().any():
        raise empty_cells(values, f"the target {target!r}", where=where)
    if positive is not None:
        matches = values == positive
        if not pd.api.types.is_numeric_dtype(values) or isinstance(positive, str):
            matches = values.astype(str) == str(positive)
        if not matches.any():
            found = values.unique()[:10].tolist()
            raise SchemaError(f"{where}: positive={positive!r} never occurs in {target!r}: {found}")
        y = matches.to_numpy(np.int64)
        classes = [f"not {positive}", str(positive)]
        rule = f"{target} == {positive!r}"
    else:
        codes, uniques = pd.factorize(values, sort=True)
        y = codes.astype(np.int64)
        classes = [str(value) for value in uniques]
        shown = ", ".join(classes[:10]) + (f", ... ({len(classes)} classes)" if len(classes) > 10 else "")
        rule = f"class code of {target} ({shown})"
    encoder = TableEncoder(target, drop=drop, max_categories=max_categories,
                           na_values=na_values)
    X = encoder._fit(frame, where=where)
    dropped = dict(encoder.dropped_)
    counts, balance, balance_text = class_summary(y, classes)
    info = {
        "name": path.stem,
        "file": str(path),
        "n_rows": len(X),
        "n_features": X.shape[1],
        "feature_names": list(X.columns),
        "dropped_columns": dropped,
        "classes": classes,
        "class_counts": counts,
        "class_balance": balance,
        "is_full": True,
    }
    lines = [f"{path.stem}: CSV file {path} ({len(frame):,} rows)", f"Target: {rule}"]
    lines.append(f"Features ({X.shape[1]}): {', '.join(X.columns)}")
    lines.extend(f"Dropped {column}: {reason}" for column, reason in dropped.items())
    lines.append(f"Class balance: {balance_text}")
    return Dataset(path.stem, frame, X, y, rule, "\n".join(lines), info, encoder)

