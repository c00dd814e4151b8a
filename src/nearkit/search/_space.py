"""The coordinate space of a metric: preparing training points and queries for the kernels.

Mahalanobis whitens (``x -> (x * scale) @ W``), cosine scales every row to unit length; the
other metrics search the points as given.  Both maps run row by row in a fixed order
(:mod:`nearkit._kernels.transform`), so a point maps to the same bits whatever batch it
arrives in, on threads over row ranges.
"""

from __future__ import annotations

import numpy as np

from nearkit._kernels.transform import normalize_rows, whiten_rows
from nearkit.search._threads import run_ranges

#: rows per work item of the maps
_ROWS = 256


def prepare(metric, X, n_threads, what="X"):
    """``X`` (float64, C order, finite) mapped into the space where ``metric``'s kernel
    applies; a new array unless the metric searches points as given and ``X`` is writeable
    and aligned.

    A read-only or unaligned ``X`` (a memory map, an array over a foreign buffer) is
    copied: numba types such arrays apart from the others, so every kernel they reached
    took a second signature, compiled on the spot (measured in a new environment: a
    read-only query batch on brute force 3.2 s; read-only training sets of 3,000 rows
    2.7 s on brute force's float32 sweep, 1.2 s on the k-d tree, 2.5 s on 'projected').

    Raises
    ------
    ValueError
        For cosine, naming a row of zeros (its direction is undefined); for Mahalanobis,
        when whitened coordinates leave the float64 range.
    """
    flags = X.flags
    if not (flags.writeable and flags.aligned):
        X = np.array(X)
    how = metric.spec.prepare
    if how is None:
        return X
    n_items = -(-X.shape[0] // _ROWS)
    if how == "normalize":
        out = np.empty_like(X)
        zero = np.full(max(n_items, 1), -1, dtype=np.int64)
        run_ranges(_normalize_items, (X, out, zero), n_items, n_threads)
        bad = zero[zero >= 0]
        if bad.size:
            raise ValueError(
                f"Row {int(bad.min())} of {what} is all zeros: its cosine distance to any "
                "point is undefined. Drop or change such rows."
            )
        return out
    out = np.empty((X.shape[0], metric.whitening.shape[1]))
    run_ranges(_whiten_items, (X, metric.scale, metric.whitening, out), n_items, n_threads)
    if not np.isfinite(out).all():
        row = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise ValueError(
            f"Row {row} of {what} whitened by the Mahalanobis matrix leaves the float64 "
            "range (its coordinates times VI's square root overflow)."
        )
    return out


def _normalize_items(X, out, zero, i0, i1):
    for item in range(i0, i1):
        zero[item] = normalize_rows(X, out, item * _ROWS, min(X.shape[0], (item + 1) * _ROWS))


def _whiten_items(X, scale, W, out, i0, i1):
    whiten_rows(X, scale, W, out, i0 * _ROWS, min(X.shape[0], i1 * _ROWS))
