"""Maps applied to points before the search: whitening (Mahalanobis) and unit rows (cosine).

Both work row by row with a fixed summation order, so a point maps to the same bits whatever
batch it arrives in (BLAS rounds a row's product differently depending on how many rows it
multiplies at once).  Both release the GIL and answer a range of rows; the caller runs
disjoint ranges on Python threads.
"""

import math

import numba
import numpy as np

from nearkit._kernels import load_lightly


@numba.njit(nogil=True, cache=True)
def whiten_rows(X, scale, W, out, r0, r1):
    """``out[i] = (X[i] * scale) @ W`` for rows ``r0:r1``, each entry summed over the
    features in order (``scale`` is a power of two: exact)."""
    d = X.shape[1]
    for i in range(r0, r1):
        for c in range(W.shape[1]):
            acc = 0.0
            for j in range(d):
                acc += (X[i, j] * scale) * W[j, c]
            out[i, c] = acc


@numba.njit(nogil=True, cache=True)
def normalize_rows(X, out, r0, r1):
    """``out[i] = X[i] / ||X[i]||`` for rows ``r0:r1``; returns the first all-zero row, or -1.

    The row is first scaled by the power of two that brings its largest entry to [0.5, 1)
    (exact), so the squares can neither overflow nor underflow; the norm is the square root
    of the squares summed in feature order.
    """
    d = X.shape[1]
    for i in range(r0, r1):
        big = 0.0
        for j in range(d):
            big = max(big, abs(X[i, j]))
        if big == 0.0:
            return i
        pre = 2.0**600 if big < 2.0**-900 else 1.0
        s = math.ldexp(1.0, -math.frexp(big * pre)[1])
        acc = 0.0
        for j in range(d):
            v = (X[i, j] * pre) * s
            acc += v * v
        norm = np.sqrt(acc)
        for j in range(d):
            out[i, j] = ((X[i, j] * pre) * s) / norm
    return -1


load_lightly(globals())
