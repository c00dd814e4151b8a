"""The exact distance of one pair of points, shared by every engine.

A kernel metric is a :class:`KernelMetric` record ``(kind, correction, p)``: how the
per-feature differences are folded into the *surrogate* ``r`` (the quantity engines rank
by), and how the true distance follows from it.  Every metric of :mod:`nearkit.metrics`
is one such record, applied after the metric's preparation of the points (whitening for
Mahalanobis, unit rows for cosine).

==========  ==============================  ============  ======================
kind        r (loop over features j)        correction    distance
==========  ==============================  ============  ======================
SQUARES     sum (a_j - b_j)**2              SQRT / HALF   sqrt(r) / r / 2
ABS         sum |a_j - b_j|                 IDENTITY      r
MAX         max |a_j - b_j|                 IDENTITY      r
POWER       sum |a_j - b_j|**p              ROOT          r**(1/p)
==========  ==============================  ============  ======================

The definition of "exact" (the NumPy reference in ``tests/reference.py`` evaluates the same):
``r`` is a sequential float64 loop over the features in their stored order, without
fast-math.  When ``r`` lies in ``[SAFE_LO, SAFE_HI]`` (``2**-960`` to ``2**960``) no partial
sum can have overflowed and every underflowed term is far below the last bit of ``r``, and the
distance is ``correction(r)``.  Outside that range (points so far apart that squares overflow,
or so close that they underflow) the pair is measured again by :func:`scaled_dist`: the
differences are scaled by a power of two that brings the largest to [0.5, 1), folded, corrected
and scaled back, which is exact in floating point.  So distances are right at any magnitude,
and equal the plain loop wherever the plain loop neither overflows nor underflows.

Engines filter candidates on ``r`` against :func:`widen` of the current k-th surrogate; it
admits whatever could still tie or beat the k-th *distance* (see there), and the final
comparison is on the key (distance, training index).
"""

import math
from collections import namedtuple

import numba
import numpy as np

from nearkit._kernels import load_lightly

# how differences fold into the surrogate
SQUARES = 0
ABS = 1
MAX = 2
POWER = 3
# how the distance follows from the surrogate
SQRT = 0
IDENTITY = 1
ROOT = 2
HALF = 3

#: the surrogate range in which the plain float64 loop is the distance's definition
SAFE_LO = 2.0**-960
SAFE_HI = 2.0**960

#: a metric as the kernels see it: ``kind``, ``correction`` (ints above) and the exponent ``p``
KernelMetric = namedtuple("KernelMetric", ["kind", "correction", "p"])


@numba.njit(cache=True)
def accumulate(acc, diff, kind, p):
    """Fold one feature difference ``diff`` into the running surrogate ``acc``."""
    if kind == SQUARES:
        return acc + diff * diff
    elif kind == ABS:
        return acc + abs(diff)
    elif kind == MAX:
        a = abs(diff)
        return a if a > acc else acc
    else:
        return acc + abs(diff) ** p


@numba.njit(cache=True)
def pair_rdist(a, b, metric):
    """Surrogate distance between two 1-d arrays (the plain loop of the module table)."""
    acc = 0.0
    for j in range(a.shape[0]):
        acc = accumulate(acc, a[j] - b[j], metric.kind, metric.p)
    return acc


@numba.njit(cache=True)
def correct(r, metric):
    """The distance of surrogate ``r`` (the correction of the module table)."""
    if metric.correction == SQRT:
        return np.sqrt(r)
    elif metric.correction == ROOT:
        return r ** (1.0 / metric.p)
    elif metric.correction == HALF:
        return r * 0.5
    return r


@numba.njit(cache=True)
def scaled_dist(a, b, metric):
    """The distance of a pair whose plain surrogate left ``[SAFE_LO, SAFE_HI]``.

    The differences are multiplied by a power of two ``s`` that brings the largest into
    [0.5, 1) (first halving both points when a difference overflows, first multiplying by
    2**600 when the largest is below 2**-900 so that ``s`` stays finite), folded in feature
    order, corrected, and divided by ``s``: every step but the fold and the correction is
    exact, so the result is the distance to the rounding of an ordinary evaluation.
    """
    d = a.shape[0]
    big = 0.0
    for j in range(d):
        big = max(big, abs(a[j] - b[j]))
    if big == 0.0:
        return 0.0
    halved = big == np.inf
    if halved:
        big = 0.0
        for j in range(d):
            big = max(big, abs(0.5 * a[j] - 0.5 * b[j]))
    pre = 2.0**600 if big < 2.0**-900 else 1.0
    s = math.ldexp(1.0, -math.frexp(big * pre)[1])
    acc = 0.0
    for j in range(d):
        diff = (0.5 * a[j] - 0.5 * b[j]) if halved else (a[j] - b[j])
        acc = accumulate(acc, (diff * pre) * s, metric.kind, metric.p)
    dist = correct(acc, metric)
    if metric.correction == HALF:  # quadratic in the scale
        dist = dist / s / s / pre / pre
        return dist * 4.0 if halved else dist
    dist = dist / s / pre
    return dist * 2.0 if halved else dist


@numba.njit(cache=True)
def exact_dist(r, a, b, metric):
    """The distance of points ``a`` and ``b`` whose plain surrogate is ``r``."""
    if metric.kind == MAX or SAFE_LO <= r <= SAFE_HI:
        return correct(r, metric)
    return scaled_dist(a, b, metric)


@numba.njit(inline="always", cache=True)
def exact_dist_column(r, q, XT, i, metric, column):
    """:func:`exact_dist` for training point ``i`` stored as column ``i`` of ``XT``
    (``column`` is scratch of length d; only used on the rare scaled path)."""
    if metric.kind == MAX or SAFE_LO <= r <= SAFE_HI:
        return correct(r, metric)
    for j in range(XT.shape[0]):
        column[j] = XT[j, i]
    return scaled_dist(q, column, metric)


@numba.njit(cache=True)
def widen(top_r, metric):
    """Largest surrogate whose distance could still tie or beat that of surrogate ``top_r``.

    A filter on the surrogate must admit everything up to this and decide on the full key
    (distance, index):

    - ``sqrt`` and ``** (1/p)`` compress, so surrogates a few ulps apart can share a
      distance (and a point just above the k-th surrogate can win on index): a relative
      slack far larger than that rounding, 1e-12 (times p for p > 1; libm's ``pow`` is
      monotone only to its last bit, which the slack also absorbs).  ``r / 2`` and the
      identity are strictly monotone: no slack.
    - Outside ``[SAFE_LO, SAFE_HI]`` distances come from :func:`scaled_dist`, not from the
      surrogate: above, everything is admitted; below, the whole underflow range.
    """
    if top_r > SAFE_HI:
        return np.inf
    if top_r < SAFE_LO:
        return 2.0 * SAFE_LO
    if metric.correction == SQRT:
        return top_r * (1.0 + 1e-12)
    if metric.correction == ROOT:
        return top_r * (1.0 + 1e-12 * max(1.0, metric.p))
    return top_r


load_lightly(globals())
