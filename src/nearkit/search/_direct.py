"""Serial kernel calls without numba's per-call argument typing.

numba's dispatcher types every argument of every call to find the compiled overload. It
types arrays in C, but the namedtuples every kernel takes (the metric, the heap) in Python:
2-3 us a call, measured on single-row ``predict`` on pima_diabetes (brute engine): a median
of 22.2 us a call dispatched against 19.2 us through the entry point, in 15 paired runs of
1,000 calls, in the machine's slow state. The arguments an index passes its serial kernel
keep their types from one call to the next (its own arrays, metric and tile, index arrays
and heaps it allocates the same way each time), all but the queries. So once a call
dispatched with :func:`plain` queries has compiled or loaded the overload, the index calls
that overload's compiled entry point directly while the queries stay :func:`plain`: the same
machine code, without the typing.

The entry points live in a dict per index (:attr:`nearkit.search._index.Index._entries`),
never pickled (they belong to the process; an unpickled index finds them again).
"""

from __future__ import annotations

import numpy as np


def plain(points):
    """Whether ``points`` is a writeable, aligned, C-ordered float64 matrix: the queries'
    type the entry points are found for (numba types other arrays differently)."""
    flags = points.flags
    return (points.dtype == np.float64 and points.ndim == 2 and flags.c_contiguous
            and flags.writeable and flags.aligned)


def call(entries, kernel, args, points):
    """``kernel(*args)``, through the entry point kept in ``entries`` for ``kernel`` when
    ``points`` (the queries among ``args``; every other argument must have the types it had
    in the call that found the entry) is :func:`plain`.

    Parameters
    ----------
    entries : dict
        numba dispatcher -> compiled entry point, for one index's arguments.
    kernel : numba dispatcher
    args : tuple
        The call's arguments.
    points : ndarray
        The queries among ``args``.
    """
    if not plain(points):
        kernel(*args)
        return
    entry = entries.get(kernel)
    if entry is not None:
        entry(*args)
        return
    kernel(*args)  # compiles or loads the overload of these types if it must
    if not hasattr(kernel, "overloads"):  # a plain function (NUMBA_DISABLE_JIT=1)
        return
    found = kernel.overloads.get(tuple(kernel.typeof_pyval(arg) for arg in args))
    if found is not None:
        entries[kernel] = found.entry_point
