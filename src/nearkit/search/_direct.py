"""Serial kernel calls without numba's per-call argument typing.

numba's dispatcher types every argument of every call to find the compiled overload. It
types arrays in C, but the namedtuples every kernel takes (the metric, the heap) in Python:
2-3 us a call, measured on single-row ``predict`` on pima_diabetes (brute engine): a median
of 22.2 us a call dispatched against 19.2 us through the entry point, in 15 paired runs of
1,000 calls, in the machine's slow state. The arguments an index passes its serial kernel
keep their types from one call to the next (its own arrays, metric and tile, index arrays
and heaps it allocates the same way each time), all but the queries. So once calls
dispatched with :func:`plain` queries have compiled or loaded the overload, the index calls
that overload's compiled entry point directly while the queries stay :func:`plain`: the same
machine code, without the typing.  (The entry point is looked up at an index's second
search, not its first: an index searched once, as in an outlier detector's fit, pays no
lookup.)

The entry points live in a dict per index (:attr:`nearkit.search._index.Index._entries`),
never pickled (they belong to the process; an unpickled index finds them again).
"""

from __future__ import annotations

import numpy as np


def plain(points):
    """Whether ``points`` is a writeable, aligned, C-ordered float64 matrix: the queries'
    type the entry points are found for (numba types other arrays differently).

    :func:`~nearkit.search._space.prepare` already copies read-only and unaligned queries;
    this stays as the entry points' own guard, since an entry point given an array of
    another type reads it with the wrong layout instead of compiling for it."""
    flags = points.flags
    return (points.dtype == np.float64 and points.ndim == 2 and flags.c_contiguous
            and flags.writeable and flags.aligned)


#: what :func:`call` keeps for a kernel called once: the entry point is looked up at the
#: second call (typing the arguments to find it takes 65-115 us, a tenth of an outlier
#: detector's fit on social_network_ads, whose index is searched once)
_CALLED_ONCE = object()


def call(entries, kernel, args, points):
    """``kernel(*args)``, through the entry point kept in ``entries`` for ``kernel`` when
    ``points`` (the queries among ``args``; every other argument must have the types it had
    in the call that found the entry) is :func:`plain`.

    The first two plain calls are dispatched; the second looks up the entry point (a kernel
    with none, such as a plain function under ``NUMBA_DISABLE_JIT=1``, is kept as its own
    entry).

    Parameters
    ----------
    entries : dict
        numba dispatcher -> what to call instead, for one index's arguments.
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
    if entry is None or entry is _CALLED_ONCE:
        kernel(*args)  # compiles or loads the overload of these types if it must
        if entry is None:
            entries[kernel] = _CALLED_ONCE
            return
        found = None
        if hasattr(kernel, "overloads"):  # (not a plain function: NUMBA_DISABLE_JIT=1)
            found = kernel.overloads.get(tuple(kernel.typeof_pyval(arg) for arg in args))
        entries[kernel] = kernel if found is None else found.entry_point
        return
    entry(*args)
