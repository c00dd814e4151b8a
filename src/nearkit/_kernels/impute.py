"""Donors for k-nearest-neighbour imputation: the nan-Euclidean distance and, per missing
cell, the k nearest training rows that have the cell's column.

The nan-Euclidean distance of scikit-learn's ``nan_euclidean_distances`` between a row ``x``
and a training row ``y``, over the ``c`` coordinates both have (NaN when ``c == 0``):

    sqrt((sum over common j of (x_j - y_j)**2) / c * n_features)

Here the sum is the sequential float64 loop in feature order (scikit-learn expands it into
matrix products, which agree to rounding), and donors are ranked by (distance, training
index).  The training rows are stored transposed, so the inner loop runs over training rows
(SIMD); a NaN in a training row drops out of both the sum and the count.
"""

import math

import numba
import numpy as np

from nearkit._kernels import load_lightly
from nearkit._kernels.distances import SAFE_HI, SAFE_LO
from nearkit._kernels.select import Heap, heap_init, heap_push, heap_sort_row


@numba.njit(cache=True)
def _scaled_sum(fit_XT, x, i):
    """The sum of squares over the common coordinates of ``x`` and training row ``i``,
    with the differences scaled by a power of two (as
    :func:`~nearkit._kernels.distances.scaled_dist`), for sums outside the safe range.
    Returns ``(sum of squares of the scaled differences, scale)``."""
    big = 0.0
    halved = False
    for j in range(x.shape[0]):
        diff = abs(x[j] - fit_XT[j, i])
        if diff == diff:
            big = max(big, diff)
    if big == 0.0:
        return 0.0, 1.0
    if big == np.inf:
        halved = True
        big = 0.0
        for j in range(x.shape[0]):
            diff = abs(0.5 * x[j] - 0.5 * fit_XT[j, i])
            if diff == diff:
                big = max(big, diff)
    pre = 2.0**600 if big < 2.0**-900 else 1.0
    s = math.ldexp(1.0, -math.frexp(big * pre)[1])
    acc = 0.0
    for j in range(x.shape[0]):
        diff = (0.5 * x[j] - 0.5 * fit_XT[j, i]) if halved else (x[j] - fit_XT[j, i])
        if diff == diff:
            v = (diff * pre) * s
            acc += v * v
    # the differences were scaled by pre * s (and first halved, which doubles the distance)
    return acc, pre * s * (0.5 if halved else 1.0)


@numba.njit(cache=True)
def _nan_distances(fit_XT, x, n_features, acc, common, out):
    """``out[i]``: nan-Euclidean distance from row ``x`` to training row ``i``."""
    n = fit_XT.shape[1]
    acc[:] = 0.0
    common[:] = 0.0
    for j in range(x.shape[0]):
        xj = x[j]
        if xj != xj:  # a missing coordinate of the row counts for no pair
            continue
        column = fit_XT[j]
        for i in range(n):
            diff = xj - column[i]
            present = diff == diff
            acc[i] += diff * diff if present else 0.0
            common[i] += 1.0 if present else 0.0
    for i in range(n):
        if common[i] == 0.0:
            out[i] = np.nan
        elif SAFE_LO <= acc[i] <= SAFE_HI:
            out[i] = np.sqrt(acc[i] / common[i] * n_features)
        else:  # squares that overflowed or underflowed: the differences scaled first
            scaled, scale = _scaled_sum(fit_XT, x, i)
            out[i] = np.sqrt(scaled / common[i] * n_features) / scale


@numba.njit(nogil=True, cache=True)
def impute_donors(fit_XT, fit_missing, X, cell_start, cell_col, r0, r1, out):
    """The donors of the missing cells of rows ``r0:r1``.

    Parameters
    ----------
    fit_XT : float64 array of shape (n_features, n_train)
        Training rows transposed, NaN where missing.
    fit_missing : bool array of shape (n_train, n_features)
        Which training cells are missing (then that row cannot donate to that column).
    X : float64 array of shape (n_rows, n_features)
        Rows to impute, NaN where missing.
    cell_start : int64 array of shape (n_rows + 1,)
        Cells ``cell_start[r]:cell_start[r + 1]`` are row ``r``'s cells to impute.
    cell_col : int64 array of shape (n_cells,)
        Column of each cell.
    r0, r1 : int
        The rows to answer.
    out : Heap of arrays of shape (n_cells, k)
        Row ``c``: cell ``c``'s donors by (distance, index); training rows at NaN distance
        never donate, and missing donors are left as (inf, INDEX_SENTINEL).
    """
    n_features, n = fit_XT.shape
    dist = np.empty(n)
    acc = np.empty(n)
    common = np.empty(n)
    for r in range(r0, r1):
        c0, c1 = cell_start[r], cell_start[r + 1]
        if c0 == c1:
            continue
        _nan_distances(fit_XT, X[r], n_features, acc, common, dist)
        heap = Heap(out.dist[c0:c1], out.rdist[c0:c1], out.ind[c0:c1])
        heap_init(heap)
        for cell in range(c1 - c0):
            col = cell_col[c0 + cell]
            for i in range(n):
                d = dist[i]
                # (d < root distance) is a quick reject; ties are decided in heap_push
                if d <= heap.dist[cell, 0] and not fit_missing[i, col]:
                    heap_push(heap, cell, d, d, i)
            heap_sort_row(heap, cell)


load_lightly(globals())
