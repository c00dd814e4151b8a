"""Float32 copies of the points for the pre-filters of the 'brute' and 'gemm' engines.

Points are scaled by a power of two ``s0`` that brings the largest magnitude to [0.5, 1)
(exact), centred on their mean, and scaled by a second power of two ``s1`` that brings the
largest centred magnitude to [0.5, 1): the float32 copies then neither overflow nor lose
their relative precision, and the float64 subtraction errs by at most half an ulp of the
difference.  Data whose total scale ``s0 * s1`` lies outside [2**-400, 2**400] is searched in
float64 instead: there the exact surrogates themselves would overflow or underflow in the
estimates' units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _power_of_two_below(big):
    """``2**-e`` with ``big * 2**-e`` in [0.5, 1) (1 for 0; inf when ``2**-e`` is beyond
    float64, for a subnormal ``big``: the caller then searches in float64)."""
    if big == 0.0:
        return 1.0
    exponent = -math.frexp(big)[1]
    return math.ldexp(1.0, exponent) if exponent < 1024 else math.inf


@dataclass(frozen=True)
class Float32Space:
    """How points map to their float32 copies: ``((x * s0) - center) * s1``."""

    s0: float
    center: np.ndarray
    s1: float

    @property
    def scale(self):
        """The total power of two from original units to the copies' units."""
        return self.s0 * self.s1

    def copies(self, X, out=None):
        """Float32 copies of points ``X`` (float64, finite), written to ``out`` if given."""
        scaled = X * self.s0  # (in place from here: no more temporaries of X's size)
        scaled -= self.center
        scaled *= self.s1
        if out is None:
            return scaled.astype(np.float32)
        out[...] = scaled
        return out

    def queries(self, Q):
        """Float32 copies of queries, their squared norms (float64), and a mask of the
        queries too far out for float32 (norm or dot products could overflow: the kernels
        admit every point for them, and their copy is zeroed)."""
        with np.errstate(over="ignore", invalid="ignore"):
            Q32 = self.copies(Q)
            norms = np.einsum("ij,ij->i", Q32, Q32, dtype=np.float64)
        far = ~(norms <= 2.0**100)
        Q32[far] = 0.0
        return Q32, norms, far


def gemm_error(d):
    """``c`` of the float32 GEMM expansion's error bound in ``d`` features: the estimate
    ``||q||^2 + ||x||^2 - 2 q.x`` from float32 copies errs by less than
    ``c (||q||^2 + ||x||^2) / 2`` (see :mod:`nearkit._kernels.gemm`; the 'gemm' engine and
    the NumPy first-call engine filter by it)."""
    return 4.0 * (d + 16) * 2.0**-24


def lowered_norms(norms, c):
    """``w = ||x||^2 (1 - c)`` rounded down to float32 (float64 ``norms``; +inf becomes the
    largest float32): the per-point term of the float32 GEMM filter."""
    return np.nextafter((norms * (1.0 - c)).astype(np.float32), np.float32(-np.inf))


def float32_space(X):
    """The :class:`Float32Space` of training points ``X``, or None when their scale is
    too far from 1 for float32 estimates (see the module docstring)."""
    # three column reductions, no temporary of X's size (12 -> 4 ms of a loan_approval fit in
    # a new process): scaling by s0 and subtracting the centre are monotone in x, so the
    # largest centred magnitude of a column is at its smallest or its largest value
    lo, hi = X.min(axis=0), X.max(axis=0)
    s0 = _power_of_two_below(max(float(hi.max()), -float(lo.min())))
    if math.isinf(s0):  # every point subnormal
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        center = X.mean(axis=0) * s0
    if not np.isfinite(center).all():  # (a sum beyond float64: the mean of scaled points)
        center = (X * s0).mean(axis=0)
    ends = np.maximum(np.abs(hi * s0 - center), np.abs(lo * s0 - center))
    s1 = _power_of_two_below(float(ends.max()))
    if not 2.0**-400 <= s0 * s1 <= 2.0**400:
        return None
    return Float32Space(s0, center, s1)
