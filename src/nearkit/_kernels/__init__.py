"""numba kernels: pure functions over arrays, no validation, no Python objects.

Every kernel takes C-contiguous float64 arrays (training data, queries) and writes into
outputs allocated by its caller.  Importing this package compiles nothing: kernels are
compiled on first call and cached on disk (``cache=True``).

Each kernel module ends with :func:`load_lightly` over its dispatchers: a kernel found in
the disk cache then loads without numba's full target refresh, which imports and registers
every typing and lowering table numba has (measured, a kernel path's load in a new process,
median of five: brute 0.154 -> 0.067 s, gemm 0.193 -> 0.130 s).  Only a compile needs those
tables, and numba's compiler refreshes them itself before it compiles anything.
"""

import functools


def load_lightly(namespace):
    """Let the numba dispatchers defined in module ``namespace`` (its ``globals()``) load
    from the disk cache with only the runtime initialised that loaded code calls (numba's
    NRT) instead of numba's full refresh (see the package text).

    Dispatchers without a disk cache, or a numba whose cache lacks the internals used here,
    keep numba's own loader (slower, same result).
    """
    module = namespace["__name__"]
    for value in list(namespace.values()):
        cache = getattr(value, "_cache", None)
        if (getattr(value, "__module__", None) == module
                and hasattr(cache, "_load_overload")
                and hasattr(cache, "_guard_against_spurious_io_errors")
                and "load_overload" not in vars(cache)):
            cache.load_overload = functools.partial(_load_overload, cache)


def _load_overload(cache, sig, target_context):
    """numba's ``Cache.load_overload`` without its ``target_context.refresh()``; a cache
    miss returns None, and numba's compiler then refreshes before compiling."""
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)  # (idempotent) the NRT functions loaded code links to
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)
    return None  # the guard swallowed an I/O error: numba compiles
