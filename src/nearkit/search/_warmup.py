"""The first calls of a process: answer small searches at once, load the kernels aside.

numba compiles a kernel on its first call in a process, or loads it from its disk cache
(``cache=True``), which takes seconds either way.  Until an engine's kernels are live in the
process, a search is answered by the exact NumPy engine (:mod:`nearkit.search._numpy`,
identical results) when that is quicker than waiting for them: up to
:data:`NUMPY_MAX_WORK` pair-features when they must be compiled, up to
:data:`NUMPY_MAX_WORK_CACHED` when the disk cache holds them.  Meanwhile a background thread
makes the kernels live: it loads them from the disk cache, or, when the cache holds none,
has a child process compile them into the cache first (so the compile takes no time from
this process's GIL), then loads them.  Other searches wait for the kernels on the calling
thread, as does everything when ``NEARKIT_JIT=wait`` is set in the environment.

``nearkit compile`` fills the cache ahead of time (container images, CI caches).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

#: pair-features (queries x points x features) the NumPy engine answers while the kernels
#: compile: sums of squares go through BLAS (measured 1.45 s on loan_approval, 9,000 x
#: 36,000 x 27 = 8.7e9, on two cores, where a cold compile of the gemm engine took 10-20 s),
#: the other surrogates pair by pair (about 1 s per 1e9 on two cores)
NUMPY_MAX_WORK = {"expansion": 1e10, "pairs": 2e9}
#: ... and while they load from the disk cache (which takes 0.3-0.4 s): about 20 ms
NUMPY_MAX_WORK_CACHED = 2e7

_lock = threading.Lock()
_loading = {}  # kernel path -> the thread making it live


def waits():
    """Whether searches wait for the kernels (``NEARKIT_JIT=wait``, or the calling thread
    is itself compiling them)."""
    from nearkit._compile import warming

    return os.environ.get("NEARKIT_JIT", "background") == "wait" or warming()


def live(kernels):
    """Whether every dispatcher of ``kernels`` has a compiled signature in this process
    (``overloads``, not ``signatures``, which rebuilds a list: 10 us a search)."""
    return all(kernel.overloads for kernel in kernels)


def start(path, kernels):
    """Make the kernels of ``path`` (a name of :data:`nearkit._compile.PATHS`) live in the
    background, once per process."""
    with _lock:
        thread = _loading.get(path)
        if thread is not None and (thread.is_alive() or live(kernels)):
            return
        thread = threading.Thread(target=_make_live, args=(path, kernels), daemon=True,
                                  name=f"nearkit-warmup-{path}")
        _loading[path] = thread
        thread.start()


def wait():
    """Block until the kernels being made live in the background are (steady-state timings
    start after this; a search meanwhile is answered by NumPy, or waits)."""
    for thread in list(_loading.values()):
        thread.join()


def _make_live(path, kernels):
    from nearkit._compile import compile_path

    if not all(_cached(kernel) for kernel in kernels):
        try:  # compile in a child: the compile holds the GIL for seconds
            subprocess.run([sys.executable, "-m", "nearkit._compile", path],
                           env={**os.environ, "NEARKIT_JIT": "wait"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                           check=False)
        except (OSError, subprocess.SubprocessError):
            pass  # compiled below, on this thread
    compile_path(path)  # loads from the cache the child filled (or compiles)


def numpy_answers(kernels, work, expansion):
    """Whether a search of ``work`` pair-features is answered by NumPy rather than by
    waiting for ``kernels``, which the caller found not :func:`live` (``expansion``: the
    NumPy engine uses the GEMM expansion)."""
    if waits():
        return False
    if all(_cached(kernel) for kernel in kernels):
        return work <= NUMPY_MAX_WORK_CACHED
    return work <= NUMPY_MAX_WORK["expansion" if expansion else "pairs"]


#: kernels found in the disk cache (a cache entry is not removed under a running process;
#: reading the index costs 0.3 ms, asked at every search until the kernels are live)
_found_cached = set()


def _cached(kernel):
    """Whether numba's disk cache holds a compiled version of ``kernel`` (numba internals;
    False when they cannot be read)."""
    if id(kernel) in _found_cached:
        return True
    try:
        found = bool(kernel._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - any change of numba's internals: assume not cached
        return False
    if found:
        _found_cached.add(id(kernel))
    return found


def _reset_after_fork():
    global _lock
    _lock = threading.Lock()
    _loading.clear()  # (the parent's threads do not exist in the child)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
