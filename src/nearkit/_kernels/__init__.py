"""numba kernels: pure functions over arrays, no validation, no Python objects.

Every kernel takes C-contiguous float64 arrays (training data, queries) and writes into
outputs allocated by its caller.  Importing this package compiles nothing: kernels are
compiled on first call and cached on disk (``cache=True``).

Each kernel module ends with :func:`load_lightly` over its dispatchers: a kernel found in
the disk cache then loads without numba's full target refresh, which imports and registers
every typing and lowering table numba has (measured, a kernel path's load in a new process,
median of five: brute 0.154 -> 0.067 s, gemm 0.193 -> 0.130 s).  Only a compile needs those
tables, and numba's compiler refreshes them itself before it compiles anything.  Nor does
the load import the modules of numba's implementations a kernel was built from
(:func:`_numba_environments_unimported`), and numba's runtime functions come from the disk
cache too (:mod:`nearkit._kernels._runtime`): the 'gemm' path's load measured 0.14-0.24 s
before these two and 0.04-0.09 s after (AMD EPYC, new processes).

It also stamps each dispatcher's cache with every module of this package: numba keeps a
cached kernel while its own file is unchanged, but kernels inline helpers from the other
modules (``select.offer_tile`` into the brute-force, tiled and gemm searches), and a change
there left the old code in the cache (seen in development: an edit to ``select.py`` that
made the brute-force search 1.3-1.4x faster showed nothing until the cache was cleared).
An installed release rewrites every file, so this matters where the sources change in
place (an editable install); a correctness fix in a helper must never be hidden by it.
"""

import contextlib
import functools
import os
import sys


def _without_refcounts():
    """numba options for a kernel that allocates nothing: compiled without numba's runtime
    (NRT), so that the array views it takes (a row, a chunk, a tile's slice) are not
    reference-counted.  Each view otherwise costs an atomic increment and decrement of its
    array's count: measured with ``perf`` on the brute-force search of social_network_ads
    (AMD EPYC, one thread), 20% of the kernel's samples sat in NRT_incref and NRT_decref,
    and compiling the per-query loops this way took them to 0.5% (the whole search
    1.13-1.21x faster, pima_diabetes 1.09-1.11x, interleaved in one process).  Such a kernel must not
    allocate (numba refuses to compile one that does) nor return a view of its arguments;
    its callers own every array for the call's duration.  ``_nrt`` is a numba option of
    long standing (a leading underscore: not in its documented set); without it the kernels
    compile with reference counts as before."""
    try:
        from numba.core.options import DefaultOptions
    except ImportError:  # pragma: no cover - a numba without the option table
        return {}
    return {"_nrt": False} if hasattr(DefaultOptions, "_nrt") else {}


#: options of the kernels that allocate nothing (see :func:`_without_refcounts`)
NO_REFCOUNTS = _without_refcounts()


def load_lightly(namespace):
    """Let the numba dispatchers defined in module ``namespace`` (its ``globals()``) load
    from the disk cache with only the runtime initialised that loaded code calls (numba's
    NRT) instead of numba's full refresh, and stamp their cache entries with
    :func:`package_stamp` (see the package text; the stamp is read once per process, about
    60 us).

    Dispatchers without a disk cache, or a numba whose cache lacks the internals used here,
    keep numba's own loader (slower, same result).
    """
    module = namespace["__name__"]
    package = package_stamp(os.path.dirname(__file__))
    for value in list(namespace.values()):
        cache = getattr(value, "_cache", None)
        if getattr(value, "__module__", None) != module:
            continue
        cache_file = getattr(cache, "_cache_file", None)
        if package and hasattr(cache_file, "_source_stamp"):
            # numba's stamp is its own file's (mtime, size); a cached index whose stamp
            # differs is ignored and rewritten (see the package text)
            cache_file._source_stamp = (cache_file._source_stamp, package)
        if (hasattr(cache, "_load_overload")
                and hasattr(cache, "_guard_against_spurious_io_errors")
                and "load_overload" not in vars(cache)):
            cache.load_overload = functools.partial(_load_overload, cache)


def _load_overload(cache, sig, target_context):
    """numba's ``Cache.load_overload`` without its ``target_context.refresh()``; a cache
    miss returns None, and numba's compiler then refreshes before compiling."""
    from nearkit._kernels import _runtime

    # (idempotent) the NRT functions loaded code links to, themselves from the disk cache
    _runtime.initialize(target_context, getattr(cache, "_cache_path", None))
    with _numba_environments_unimported(), cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)
    return None  # the guard swallowed an I/O error: numba compiles


@contextlib.contextmanager
def _numba_environments_unimported():
    """Within the block (a cache load, under numba's compiler lock), the environments of
    numba's own implementations in a loaded kernel do not import their modules.

    A kernel's cache entry pickles one environment per function it was built from,
    numba's implementations of ``np.empty``, ``np.dot`` or a ufunc included, each naming
    its module (``numba.np.arrayobj``, ``numba.np.npyimpl``, ``numba.cpython.unicode``,
    ``numba.np.linalg``...), and unpickling one imports that module to hand the
    environment its globals.  The imports took about half of a kernel path's load in a new
    process (measured on the 'gemm' path, AMD EPYC, four alternating pairs of new
    processes: 0.14-0.24 s -> 0.10-0.11 s), and compiled code never reads those globals:
    an environment's globals serve object mode, which numba's implementations never use,
    while the constants it holds (``consts``) are restored whole.  Such an environment
    gets a dict holding only its module's name (so that code compiled on it still caches);
    an environment of a module already imported, or outside numba, is rebuilt as numba
    does.  A numba without these internals loads as before.
    """
    try:
        from numba.core import environment
    except ImportError:  # pragma: no cover - a numba without the module
        yield
        return
    original = getattr(environment, "_rebuild_env", None)
    if (original is None or not hasattr(environment, "lookup_environment")
            or not hasattr(environment.Environment, "_memo")):
        yield  # pragma: no cover - a numba whose environments rebuild differently
        return
    environment._rebuild_env = functools.partial(_rebuild_environment, environment,
                                                 original)
    try:
        yield
    finally:
        environment._rebuild_env = original


def _rebuild_environment(environment, original, modname, consts, env_name):
    """numba's ``_rebuild_env``, with globals of only a name for an unimported module of
    numba (see :func:`_numba_environments_unimported`)."""
    if (not isinstance(modname, str) or not modname.startswith("numba.")
            or modname in sys.modules):
        return original(modname, consts, env_name)
    env = environment.lookup_environment(env_name)
    if env is None:
        env = environment.Environment({"__name__": modname})
        env.consts[:] = consts
        env.env_name = env_name
        environment.Environment._memo[env_name] = env
    return env


@functools.cache
def package_stamp(folder):
    """``(file name, mtime in ns, size)`` of every module in ``folder``, sorted by name:
    part of the disk-cache stamp of every kernel (see the package text).  Empty when the
    folder cannot be listed (a frozen application: numba's own stamp alone then)."""
    try:
        names = sorted(name for name in os.listdir(folder) if name.endswith(".py"))
        stats = [(name, os.stat(os.path.join(folder, name))) for name in names]
    except OSError:
        return ()
    return tuple((name, st.st_mtime_ns, st.st_size) for name, st in stats)
