"""How the raw columns of a CSV table become float features, learned once and replayed.

:func:`~nearkit.datasets.load_csv` decides per column from the table it reads: numbers stay
numbers, True/False becomes 1/0, text is one-hot encoded by the levels it holds, and text with
too many levels is dropped.  :class:`TableEncoder` keeps those decisions (the column plan), so
that a model fitted on one table can be applied to another with exactly the same columns: a
level the plan does not know is an error, never a silently different encoding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from nearkit.datasets._errors import SchemaError
from nearkit.datasets._tables import ROWS_COUNTED, bad_cells, empty_cells

#: the cells of a True/False column, lower case (Python's and pandas' spellings of booleans:
#: True, TRUE, true)
_BOOLEAN_TEXT = {"true": 1.0, "false": 0.0}


class TableEncoder(TransformerMixin, BaseEstimator):
    """The features of a raw table, encoded as :func:`~nearkit.datasets.load_csv` encodes them.

    ``fit`` learns the column plan from a table: each column (but the target and the ones
    in ``drop``) is a number, a True/False column (1/0) or a text column, one-hot encoded by
    its levels (one 0/1 column ``f"{column}_{level}"`` per level, in sorted order; an empty
    cell gives zeros), or dropped when it has more than ``max_categories`` levels.
    ``transform`` applies the same plan to any table with those columns.

    Parameters
    ----------
    target : str or None, default=None
        The target column: left out of the features, and allowed (ignored) at transform.
    drop : sequence of str, default=()
        Columns left out (identifiers, leaks); allowed (ignored) at transform.
    max_categories : int, default=50
        Text columns with more levels than this are dropped.
    na_values : str or sequence of str, default=()
        Cell texts that mean "missing" besides the empty cell (for :meth:`read_options`).

    Attributes
    ----------
    columns_ : list of tuple
        The plan: ``(column, kind, levels)`` per source column, in table order; ``kind`` is
        ``'number'``, ``'boolean'`` or ``'one-hot'`` (``levels`` the sorted levels, else None).
    dropped_ : dict
        Column -> why it is left out.
    feature_names_out_ : list of str
        The output columns, in order.
    allow_missing_ : bool
        Whether the fitted table had missing values in its features (then a preprocessor
        from :func:`~nearkit.datasets.make_preprocessor` imputes them); if not, an empty
        cell at transform is an error naming it.

    Examples
    --------
    >>> import pandas as pd
    >>> from nearkit.datasets import TableEncoder
    >>> train = pd.DataFrame({"size": [1.5, 2.0, 0.5], "colour": ["red", "blue", "red"],
    ...                       "label": [1, 0, 1]})
    >>> encoder = TableEncoder("label").fit(train)
    >>> encoder.transform(train.drop(columns="label")).to_numpy().tolist()
    [[1.5, 0.0, 1.0], [2.0, 1.0, 0.0], [0.5, 0.0, 1.0]]
    >>> encoder.get_feature_names_out().tolist()
    ['size', 'colour_blue', 'colour_red']
    >>> encoder.transform(pd.DataFrame({"size": [1.0], "colour": ["green"]}))
    Traceback (most recent call last):
    ...
    nearkit.datasets._errors.SchemaError: The table: column 'colour' has a level the model was not fitted with, in 1 cell: row 0 'green' (rows counted from 0, the header line not counted); known levels: ['blue', 'red']
    """

    def __init__(self, target=None, *, drop=(), max_categories=50, na_values=()):
        self.target = target
        self.drop = drop
        self.max_categories = max_categories
        self.na_values = na_values

    def fit(self, X, y=None):
        """Learn the column plan of the table ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            The raw table (as :func:`~nearkit.datasets._tables.read_table` reads it).
        y : ignored

        Returns
        -------
        self : TableEncoder
        """
        self._fit(X, where="The table")
        return self

    def fit_transform(self, X, y=None):
        """:meth:`fit`, then the features of ``X`` (encoded once).

        Returns
        -------
        pandas.DataFrame of float64
        """
        return self._fit(X, where="The table")

    def _fit(self, frame, where):
        """Learn the plan from ``frame`` and return its features, naming the table ``where``
        in errors."""
        self.dropped_ = {column: "asked for (drop=...)" for column in self.drop}
        self.columns_ = []
        for column in frame.columns:
            if column == self.target or column in self.dropped_:
                continue
            kind, levels = _column_kind(frame[column], column, where=where)
            if kind == "one-hot" and len(levels) > self.max_categories:
                self.dropped_[column] = (f"text with {len(levels):,} levels "
                                         f"(> max_categories={self.max_categories})")
                continue
            self.columns_.append((column, kind, levels))
        self.feature_names_out_ = [
            name for column, kind, levels in self.columns_
            for name in ([column] if levels is None else [f"{column}_{v}" for v in levels])]
        X = self._encode(frame, where)
        self.allow_missing_ = bool(X.isna().to_numpy().any())
        return X

    def transform(self, X):
        """The features of table ``X``, by the fitted plan.

        Parameters
        ----------
        X : pandas.DataFrame
            A table with every column the plan uses; the target and the dropped columns may
            be present (they are ignored), any other column is an error.

        Returns
        -------
        pandas.DataFrame of float64
            Columns ``feature_names_out_``, the index of ``X``.

        Raises
        ------
        SchemaError
            Naming a missing or unexpected column, a level of a text column the plan does not
            know, text in a number or True/False column, or an empty cell when the fitted
            table had none (rows are the index labels of ``X``).
        """
        return self._transform(X, where="The table")

    def _transform(self, frame, where):
        """:meth:`transform`, naming the table ``where`` in errors."""
        check_is_fitted(self, "columns_")
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"TableEncoder transforms a pandas DataFrame, not "
                            f"{type(frame).__name__}.")
        used = [column for column, _, _ in self.columns_]
        missing = [column for column in used if column not in frame.columns]
        allowed = {*used, *self.dropped_, *([] if self.target is None else [self.target])}
        extra = [column for column in frame.columns if column not in allowed]
        if missing or extra:
            raise SchemaError(
                f"{where} does not have the columns the model was fitted with: "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {extra}" if extra else "")
                + f". Expected the columns {used} (and optionally {sorted(allowed - set(used), key=str)})."
            )
        X = self._encode(frame, where)
        if not self.allow_missing_ and X.isna().to_numpy().any():
            column = X.columns[X.isna().any()][0]
            error = empty_cells(frame[column], f"column {column!r}", where=where)
            raise SchemaError(f"{error}; the model was fitted on a table without missing "
                              "values, so it has no imputer for them.")
        return X

    def _encode(self, frame, where):
        pieces = {}
        for column, kind, levels in self.columns_:
            values = frame[column]
            if kind == "number":
                pieces[column] = _numbers(values, column, where=where)
            elif kind == "boolean":
                pieces[column] = _booleans(values, column, where=where)
            else:
                pieces.update(_one_hot(values, levels, column, where=where))
        return pd.DataFrame(pieces, index=frame.index, columns=self.feature_names_out_,
                            dtype=np.float64)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns.

        Returns
        -------
        ndarray of str objects
        """
        check_is_fitted(self, "columns_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def iter_csv(self, source, *, chunksize=10_000):
        """Read a CSV file as the fitted table was read, and yield its features chunk by chunk.

        Parameters
        ----------
        source : str, path-like or binary file object
            The CSV file (header line required).
        chunksize : int, default=10_000
            Rows per chunk.

        Yields
        ------
        pandas.DataFrame of float64
            The features of the next ``chunksize`` rows, indexed by row number (counted from
            0, the header line not counted), as :meth:`transform` gives them.

        Raises
        ------
        SchemaError
            As :meth:`transform`, naming the file and the rows.
        """
        where = f"CSV {getattr(source, 'name', source)}"
        with pd.read_csv(source, chunksize=chunksize, **self.read_options()) as reader:
            for chunk in reader:
                yield self._transform(chunk, where)

    def read_options(self):
        """Keyword arguments of :func:`pandas.read_csv` that read a table as the fitted one
        was read: only empty cells (and ``na_values``) are missing, and the text and
        True/False columns are read as text, whatever a chunk of them looks like.

        Returns
        -------
        dict
        """
        check_is_fitted(self, "columns_")
        na_values = (self.na_values,) if isinstance(self.na_values, str) else self.na_values
        return {"keep_default_na": False, "na_values": ["", *na_values],
                "dtype": {column: str for column, kind, _ in self.columns_ if kind != "number"}}


def _column_kind(values, column, *, where):
    """``(kind, levels)`` of a raw column (see :class:`TableEncoder`)."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean", None
    if pd.api.types.is_numeric_dtype(values):
        return "number", None
    levels = sorted(str(level) for level in values.dropna().unique())
    if set(levels) <= {"True", "False"}:
        return "boolean", None
    numbers = pd.to_numeric(values, errors="coerce")
    n_numbers, n_present = int(numbers.notna().sum()), int(values.notna().sum())
    if 2 * n_numbers <= n_present:
        return "one-hot", tuple(levels)
    bad = values.notna() & numbers.isna()
    if bad.any():
        markers = tuple(dict.fromkeys(str(value) for value in values[bad]))[:5]
        raise SchemaError(
            f"{where}: column {column!r} holds numbers ({n_numbers:,} of {n_present:,} "
            f"non-empty cells) and text in {bad_cells(values, bad)} ({ROWS_COUNTED}). "
            f"If these mark missing values, pass na_values={markers!r} to read them as NaN; "
            f"otherwise correct the file, or leave the column out with drop=[{column!r}]."
        )
    return "number", None


def _numbers(values, column, *, where):
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(np.float64)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if bad.any():
        raise SchemaError(f"{where}: column {column!r} must hold numbers but holds text in "
                          f"{bad_cells(values, bad)} ({ROWS_COUNTED})")
    return numbers.astype(np.float64)


def _booleans(values, column, *, where):
    present = values.notna()
    converted = values.astype(str).str.lower().map(_BOOLEAN_TEXT).where(present)
    bad = present & converted.isna()
    if bad.any():
        raise SchemaError(f"{where}: column {column!r} must be True/False but holds "
                          f"{bad_cells(values, bad)} ({ROWS_COUNTED})")
    return converted.astype(np.float64)


def _one_hot(values, levels, column, *, where):
    present = values.notna()
    text = values.astype(str)
    unseen = present & ~text.isin(levels)
    if unseen.any():
        raise SchemaError(
            f"{where}: column {column!r} has a level the model was not fitted with, in "
            f"{bad_cells(values, unseen)} ({ROWS_COUNTED}); known levels: {list(levels)}"
        )
    return {f"{column}_{level}": (present & (text == level)).to_numpy(np.float64)
            for level in levels}
