"""Checking and converting what users hand to :mod:`nearkit.dask`, on the client.

Everything here looks at shapes, chunk sizes and dtypes only; nothing reads a training
block into the client.  Checks that need the values (finite numbers) run inside the block
tasks, on the workers, and name the rows they found the problem in.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np

#: rows per block when NumPy queries are split into a Dask array
QUERY_BLOCK_ROWS = 10_000


def current_client():
    """The active ``distributed.Client``, or None when Dask runs without a cluster."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is part of the nearkit[dask] extra
        return None
    try:
        return default_client()
    except ValueError:
        return None


def is_dask_dataframe(obj):
    """Whether ``obj`` is a Dask DataFrame or Series."""
    try:
        import dask.dataframe as dd
    except ImportError:  # pragma: no cover - dataframe is part of the nearkit[dask] extra
        return False
    return isinstance(obj, (dd.DataFrame, dd.Series))


def check_known_chunks(array, name):
    """Raise if a Dask array's chunk sizes are unknown (``np.nan``), which blocks need."""
    if any(math.isnan(size) for sizes in array.chunks for size in sizes):
        raise ValueError(
            f"{name} is a Dask array with unknown chunk sizes (np.nan in {name}.chunks); "
            "nearkit needs every block's row count to give rows their global indices. Call "
            f"{name}.compute_chunk_sizes() first, or build it with known lengths (e.g. "
            "DataFrame.to_dask_array(lengths=True))."
        )


def check_numeric(dtype, name):
    """Raise unless ``dtype`` holds numbers that convert to float64."""
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise ValueError(f"{name} must hold numbers; got dtype {dtype}.")


def as_dask_matrix(X, name, n_features=None, n_blocks=None):
    """``X`` (NumPy, Dask array or Dask DataFrame) as a 2-d Dask array in one column block.

    A NumPy ``X`` is split into ``n_blocks`` blocks of equal size, or blocks of
    :data:`QUERY_BLOCK_ROWS` rows when ``n_blocks`` is None; Dask inputs keep their row
    blocks.

    Returns
    -------
    X : dask.array.Array of shape (n_rows, n_features)
        Known chunk sizes, a single chunk along the features, dtype float64.
    feature_names : ndarray of str or None
        Column names of a DataFrame input.
    """
    feature_names = None
    if is_dask_dataframe(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-d (a DataFrame); got a Dask Series.")
        feature_names = np.asarray(X.columns, dtype=object)
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        X = as_numpy_matrix(X, name, n_features)
        if n_blocks is None:
            rows = min(X.shape[0], QUERY_BLOCK_ROWS)
        else:
            rows = -(-X.shape[0] // n_blocks)
        return da.from_array(X, chunks=(max(1, rows), X.shape[1])), None
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_samples, n_features); got shape {X.shape}.")
    check_known_chunks(X, name)
    check_numeric(X.dtype, name)
    check_n_features(X.shape[1], n_features, name)
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X.astype(np.float64), feature_names


def as_numpy_matrix(X, name, n_features=None):
    """A NumPy 2-d float64 matrix of finite numbers, checked on the client."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold numbers: {exc}") from None
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-d (n_samples, n_features); got shape {X.shape}.")
    check_n_features(X.shape[1], n_features, name)
    check_finite(X, name, 0)
    return X


def check_n_features(got, expected, name):
    """Raise when a query's feature count differs from the training data's."""
    if expected is not None and got != expected:
        raise ValueError(
            f"{name} has {got} features, but the model was fitted with {expected} features."
        )


def check_finite(block, name, first_row):
    """Raise when a block holds NaN or infinity, naming the first offending row."""
    finite = np.isfinite(block)
    if not finite.all():
        row = first_row + int(np.flatnonzero(~finite.all(axis=1))[0])
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {row}); nearkit needs finite "
            "coordinates: impute or drop missing values first."
        )


def as_dask_labels(y, row_chunks):
    """Class labels as a 1-d Dask array whose blocks line up with the training blocks."""
    if is_dask_dataframe(y):
        if y.ndim != 1:
            if len(y.columns) != 1:
                raise ValueError(f"y must be 1-d; got a DataFrame with {len(y.columns)} columns.")
            y = y[y.columns[0]]
        y = y.to_dask_array(lengths=True)
    elif not isinstance(y, da.Array):
        y = np.asarray(y)
    if isinstance(y, da.Array):
        check_known_chunks(y, "y")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be 1-d (n_samples,); got shape {y.shape}.")
    if y.shape[0] != sum(row_chunks):
        raise ValueError(f"X has {sum(row_chunks)} rows but y has {y.shape[0]} labels.")
    if isinstance(y, np.ndarray):
        return da.from_array(y, chunks=(row_chunks,))
    if y.chunks[0] != tuple(row_chunks):
        y = y.rechunk((tuple(row_chunks),))
    return y
