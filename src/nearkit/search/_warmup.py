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
thread, as does everything when ``NEARKIT_JIT=wait`` is set in the environment; a search
that waits for cached kernels and has a deferred build to finish first (the tiles of the
'gemm' engine) starts their load on the background thread before it cuts the tiles
(:func:`preload`).

One compile at a time per cache: the child holds an exclusive lock on a file in numba's cache
folder (:data:`LOCK_NAME`, inherited from the process that started it, so it outlives a
short-lived parent), and a process that finds the lock held waits for it, then loads what
the holder compiled.  Without it every short script started during a compile (a shell loop,
a process pool) started a compile of its own: measured, 13 concurrent children on 2 cores,
none finishing, so the cache never filled and every new process compiled again.

``nearkit compile`` fills the cache ahead of time (container images, CI caches).

``fork()`` waits while a thread compiles or loads a kernel (numba's compiler lock is held
across it): a child forked mid-load would inherit that lock held by a thread it does not
have, and hang on its first kernel.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time

try:
    import fcntl
except ImportError:  # Windows: no lock, compiles may overlap
    fcntl = None

#: pair-features (queries x points x features) the NumPy engine answers while the kernels
#: compile, by the path it takes (:func:`nearkit.search._numpy.expansion_space`): sums of
#: squares at a scale float32 holds go through BLAS (measured 0.3-0.45 s on loan_approval,
#: 9,000 x 36,000 x 27 = 8.7e9, on two cores, where a cold compile of the gemm engine took
#: 10-20 s), the other surrogates, and sums of squares far from scale 1, pair by pair
#: (measured 2.7 s per 1e9 on two cores, Manhattan on bank_churn, where a cold compile of
#: the tiled engine took 3.5 s)
NUMPY_MAX_WORK = {"expansion": 1e10, "pairs": 1e9}
#: ... and while they load from the disk cache, which takes 0.04-0.09 s once numba is
#: imported (the gemm path on an AMD EPYC, new processes; 0.14-0.24 s before the
#: environments of numba's implementations stopped importing their modules and numba's
#: runtime functions came from the cache, see :mod:`nearkit._kernels`): sums of squares up to 8e8, which covers bank_churn's
#: 2,000 x 8,000 x 13 = 2e8 (fit and first predict, alternating new processes on that
#: machine: NumPy 0.07-0.09 s against 0.14-0.17 s waiting for the kernels) but no longer
#: spotify_tracks' 4,306 x 17,222 x 14 = 1.0e9 (NumPy 0.18-0.23 s against 0.16-0.22 s,
#: median 0.21 against 0.19 s, six pairs; the limit was 2e9 while the load took longer)
#: nor loan_approval's 8.7e9 (NumPy 0.4 s; fit and first predict on the kernels 0.23-0.34 s);
#: pairs measured one by one up to 3e7 (Manhattan on bank_churn, first predict in a new
#: process: 2e7 NumPy 0.06 s against 0.09-0.10 s waiting, 4e7 0.12 s against 0.09-0.11,
#: 1e8 0.26-0.28 s against 0.11-0.12; spotify_tracks times 1e200, Euclidean, 1e9: 14-16 s
#: in NumPy, 3.0-3.5 s waiting for the kernels)
NUMPY_MAX_WORK_CACHED = {"expansion": 8e8, "pairs": 3e7}

_lock = threading.Lock()
_loading = {}  # kernel path -> the thread making it live


def waits():
    """Whether searches wait for the kernels (``NEARKIT_JIT=wait``, or the calling thread
    is itself compiling them)."""
    from nearkit._compile import warming

    return os.environ.get("NEARKIT_JIT", "background") == "wait" or warming()


def live(kernels):
    """Whether every dispatcher of ``kernels`` has a compiled signature in this process
    (``overloads``, not ``signatures``, which rebuilds a list: 10 us a search).  With
    ``NUMBA_DISABLE_JIT=1`` the kernels are plain Python functions, always live."""
    return all(getattr(kernel, "overloads", True) for kernel in kernels)


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


#: the file in numba's cache folder whose lock a compile child holds (see the module text)
LOCK_NAME = "nearkit-compile.lock"


def _make_live(path, kernels):
    from nearkit._compile import compile_path

    cached = all(map(_cached, kernels))
    if cached and _load_cached(kernels):
        return
    if not cached:
        with compile_lock(lock_path(kernels)) as fd:
            # re-checked under the lock: the holder we waited for may have compiled them
            if not all(_cached(kernel) for kernel in kernels):
                compile_in_child(path, fd)
    compile_path(path)  # loads from the cache the child filled (or compiles)


def _load_cached(kernels):
    """Load every signature of ``kernels`` that numba's disk cache holds for this machine,
    without running a search (numba internals; False when they cannot be read or hold no
    such signature: the caller then runs the path's tiny searches, which load them too).

    A search's own deferred build (the tiles of the 'gemm' engine) takes nearkit's build
    lock, which the tiny searches would wait for: loading by signature lets the load run
    while the calling thread cuts the tiles (:func:`preload`)."""
    try:
        for kernel in kernels:
            magic = kernel.targetctx.codegen().magic_tuple()
            signatures = [key[0] for key in kernel._cache._cache_file._load_index()
                          if key[1] == magic]
            if not signatures:
                return False
            for signature in signatures:
                kernel.compile(signature)
    except Exception:  # noqa: BLE001 - any change of numba's internals: the searches
        return False
    return True


def preload(path, kernels):
    """Start loading the kernels of ``path`` in the background when the disk cache holds
    them all and searches do not answer by NumPy meanwhile (not :func:`waits`): the caller
    is about to wait for them, and does the work it can do without them (a deferred build)
    while they load.  Never starts a compile: a cache miss is compiled by the search that
    needs it, on its own thread, as before."""
    if not waits() and all(map(_cached, kernels)):
        start(path, kernels)


def compile_in_child(path, lock_fd=None):
    """Compile kernel path ``path`` into numba's cache in a child process at low priority
    (the compile holds the GIL for seconds); the child inherits ``lock_fd`` and with it the
    compile lock, until it exits.  Not in a frozen application (PyInstaller and the like),
    whose ``sys.executable`` is the application itself, nor without an executable: there
    the caller compiles, on its thread."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return
    try:
        subprocess.run([sys.executable, "-m", "nearkit._compile", path],
                       env={**os.environ, "NEARKIT_JIT": "wait"},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=LOCK_WAIT_S,
                       check=False, pass_fds=() if lock_fd is None else (lock_fd,))
    except (OSError, subprocess.SubprocessError):
        pass  # compiled by the caller, on its thread


def lock_path(kernels):
    """The compile lock's file, in the cache folder of ``kernels`` (numba internals; None
    when they cannot be read or the folder cannot be made)."""
    try:
        folder = kernels[0]._cache._cache_path
        os.makedirs(folder, exist_ok=True)
    except Exception:  # noqa: BLE001 - any change of numba's internals: no lock
        return None
    return os.path.join(folder, LOCK_NAME)


#: seconds a compile child may take, and a process waits for another's compile lock
#: before compiling regardless
LOCK_WAIT_S = 600.0
_held = set()  # descriptors of compile locks held by this process's threads


@contextlib.contextmanager
def compile_lock(path, wait_s=LOCK_WAIT_S):
    """Hold the exclusive lock on file ``path``, waiting while another process holds it
    (at most ``wait_s`` seconds; then without the lock); yields the locked file
    descriptor, or None without ``fcntl``, a usable ``path`` or the lock."""
    fd = _acquire(path, wait_s)
    try:
        yield fd
    finally:
        if fd is not None:
            _held.discard(fd)
            os.close(fd)  # a child that inherited it keeps the lock until it exits


def _acquire(path, wait_s):
    if fcntl is None or path is None:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _held.add(fd)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        except OSError:
            break
    os.close(fd)
    return None


def numpy_answers(kernels, work, expansion):
    """Whether a search of ``work`` pair-features is answered by NumPy rather than by
    waiting for ``kernels``, which the caller found not :func:`live` (``expansion()``:
    whether the NumPy engine would use the GEMM expansion, asked only when the answer
    turns on it: the expansion's limits are the larger)."""
    if waits():
        return False

    def within(limits):
        return work <= limits["pairs"] or (work <= limits["expansion"] and expansion())

    # within the limits for cached kernels (the smaller) NumPy answers either way, so the
    # disk cache is read only beyond them (reading its indexes took 2-4 ms of a new
    # process's first predict on spotify_tracks and bank_churn)
    if within(NUMPY_MAX_WORK_CACHED):
        return True
    return within(NUMPY_MAX_WORK) and not all(map(_cached, kernels))


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
    for fd in list(_held):  # nor do the compiles they waited for: a long-lived forked
        _held.discard(fd)   # worker must not keep the lock from other processes
        with contextlib.suppress(OSError):
            os.close(fd)


def _numba_compiler_lock():
    """The lock of numba's global compiler lock, held while a kernel compiles or loads from
    the cache (None before numba is imported: then nothing can hold it).  Its ``RLock``
    itself, not the wrapper's ``acquire``, which also fires numba's timing events: those
    would land in the listeners of a compile running on another thread."""
    module = sys.modules.get("numba.core.compiler_lock")
    return getattr(getattr(module, "global_compiler_lock", None), "_lock", None)


def _hold_compiler_lock():
    """Before ``fork()``: wait until no thread compiles or loads a kernel, and hold numba's
    compiler lock across the fork.  A child forked while the warm-up thread loaded the
    kernels inherited the lock held by a thread it does not have, and its first search
    needing them waited forever (measured: 4 of 6 forks hung)."""
    lock = _numba_compiler_lock()
    if lock is not None:
        lock.acquire()
    _fork_hold.lock = lock  # per thread: two threads forking at once each release their own


def _release_compiler_lock():
    lock, _fork_hold.lock = getattr(_fork_hold, "lock", None), None
    if lock is not None:
        lock.release()


_fork_hold = threading.local()


def _after_fork_in_child():
    _release_compiler_lock()  # (the forking thread holds it in the child too)
    _reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_hold_compiler_lock, after_in_parent=_release_compiler_lock,
                        after_in_child=_after_fork_in_child)
