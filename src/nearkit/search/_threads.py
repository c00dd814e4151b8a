"""Threads: how many, the shared worker pool, running kernel ranges, and BLAS limits.

Every engine runs the same way: its kernels release the GIL and answer a range of work
items (query blocks, training chunks, rows), and :func:`run_ranges` splits the items into
contiguous ranges run on Python threads of one shared pool (:func:`claim_items` hands
uneven items out one at a time instead).  There is no OpenMP anywhere, so
a process forked after a multi-threaded search can search again: the child makes its own
pool (a forked child inherits the pool object but not its threads).
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController

#: Below this many pair-feature operations a query batch runs on one thread.  Measured on
#: pima_diabetes (154 x 614 x 8 = 756k): 0.17 ms on one thread, 0.09 ms median on two, but on
#: a shared machine one call in ~50 then waits 3-8 ms for a descheduled worker (a time
#: slice), which doubles the mean; one thread is the predictable choice at this size.
SERIAL_WORK = 1_000_000


_cores = None


def available_threads():
    """Cores this process may run on (asked once per process: the call costs ~4 us, a
    fifth of a single-row predict)."""
    global _cores
    if _cores is None:
        try:
            _cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not on Linux
            _cores = os.cpu_count() or 1
    return _cores


def resolve_n_jobs(n_jobs):
    """Thread count for ``n_jobs`` (None or -1: all cores; -2: all but one; ...).

    ``n_jobs`` must already be validated (a non-zero int or None)."""
    n_cores = available_threads()
    if n_jobs is None:
        return n_cores
    if n_jobs < 0:
        return max(1, n_cores + 1 + n_jobs)
    return min(n_jobs, n_cores)


_pool = None
_pool_pid = None
_pool_lock = threading.Lock()
_build_lock = threading.Lock()


def build_lock():
    """The lock held while an index finishes a build it deferred to its first search
    (:meth:`nearkit.search._index.Index._complete`); a forked child has its own, in case
    the fork found it held by a thread the child does not have."""
    return _build_lock


def _reset_after_fork():
    global _pool, _pool_pid, _pool_lock, _build_lock, _blas_lock, _blas_depth, _blas_limiter
    global _cores
    _pool, _pool_pid, _cores = None, None, None
    _pool_lock = threading.Lock()
    _build_lock = threading.Lock()
    _blas_lock = threading.Lock()
    _blas_depth = 0
    _blas_limiter = None


def thread_pool():
    """Worker threads shared by every search (one fewer than the cores: the calling thread
    takes a range too); a forked child makes its own."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=max(1, available_threads() - 1),
                                       thread_name_prefix="nearkit")
            _pool_pid = os.getpid()
        return _pool


def run_ranges(kernel, args, n_items, n_threads, tail=()):
    """``kernel(*args, i0, i1, *tail)`` over items 0 .. n_items-1, split into contiguous
    ranges on ``n_threads`` threads (the calling thread takes the first range).

    The kernels release the GIL and write disjoint parts of their outputs.
    """
    map_ranges(kernel, args, n_items, n_threads, tail)


def map_ranges(kernel, args, n_items, n_threads, tail=()):
    """Like :func:`run_ranges`, for kernels that return their answer: the list of
    ``kernel(*args, i0, i1, *tail)`` over the ranges, in item order."""
    if n_threads <= 1 or n_items <= 1:
        return [kernel(*args, 0, n_items, *tail)]
    bounds = np.linspace(0, n_items, min(n_threads, n_items) + 1).astype(int)
    ranges = [(int(i0), int(i1)) for i0, i1 in zip(bounds[:-1], bounds[1:])]
    jobs = _submit([(kernel, (*args, i0, i1, *tail)) for i0, i1 in ranges[1:]])
    try:
        first = kernel(*args, *ranges[0], *tail)
    finally:
        pooled = iter([job.result() for job in jobs if job is not None])
    rest = [next(pooled) if job is not None else kernel(*args, *span, *tail)
            for job, span in zip(jobs, ranges[1:])]
    return [first, *rest]


def claim_items(kernel, args, n_items, n_threads, tail=()):
    """Like :func:`run_ranges`, with the items claimed one at a time: each thread calls
    ``kernel(*args, i, i + 1, *tail)`` for the next item no thread has taken, until none is
    left (the calling thread works too).

    For few, costly items of uneven cost, such as the query blocks of the tile engines:
    queries sorted by tile make blocks from dense regions dearer, and contiguous halves of
    spotify_tracks' 17 blocks cost 13.1 and 17.4 ms on one thread; claimed one at a time,
    the 'gemm' kernel's search on two threads measured 17.0 ms against 18.2 ms for the
    contiguous ranges (median of 21, three alternating rounds).  A call costs about 5 us
    of dispatch, so items should take far longer than that.
    """
    if n_threads <= 1 or n_items <= 1:
        kernel(*args, 0, n_items, *tail)
        return
    claims = itertools.count()  # (next() on it is atomic: it holds the GIL)
    failed = []

    def work():
        try:
            for item in claims:
                if item >= n_items or failed:
                    return
                kernel(*args, item, item + 1, *tail)
        except BaseException:
            failed.append(True)  # the other threads stop at their next claim
            raise

    # (a job the pool refuses leaves its items to the threads that claim: this one at least)
    jobs = _submit([(work, ())] * (min(n_threads, n_items) - 1))
    try:
        work()
    finally:
        for job in jobs:
            if job is not None:
                job.result()


def _submit(calls):
    """Each ``(function, arguments)`` call as a job on the pool, or None for a call the
    pool refused: once the interpreter has begun to exit it shuts the pool down
    (``concurrent.futures``), and a search made then (from an ``atexit`` function, or by the
    kernels' warm-up thread at exit) does that work on the calling thread instead of
    failing."""
    pool = thread_pool()
    jobs = []
    for function, arguments in calls:
        try:
            jobs.append(pool.submit(function, *arguments))
        except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
            jobs.append(None)
    return jobs


def blas_controller():
    """threadpoolctl's controller of the loaded libraries with a thread pool (BLAS, OpenMP).

    threadpoolctl resolves the real path of every loaded library (about 260 in a process
    that has imported numba, SciPy and scikit-learn) to match its file name against the
    pools it knows: 10-12 ms on a process's first search, most of it ``os.path.realpath``.
    A library whose own name matches none of those names and is not a symbolic link cannot
    match after that resolution either (only a link changes a path's last component), so it
    is passed over; the libraries found are the same (tested).  Should threadpoolctl's
    internals used here change, its plain controller is used.
    """
    try:
        import threadpoolctl

        prefixes = tuple(prefix for cls in threadpoolctl._ALL_CONTROLLERS
                         for prefix in cls.filename_prefixes)
    except (AttributeError, TypeError):
        return ThreadpoolController()
    return _NamedLibraries(prefixes)


class _NamedLibraries(ThreadpoolController):
    """A :class:`~threadpoolctl.ThreadpoolController` that resolves only the libraries whose
    name may be a thread pool's (see :func:`blas_controller`)."""

    def __init__(self, prefixes):
        self._prefixes = prefixes
        super().__init__()

    def _make_controller_from_path(self, filepath):
        if may_hold_pool(filepath, self._prefixes):
            super()._make_controller_from_path(filepath)


def may_hold_pool(filepath, prefixes):
    """Whether the library at ``filepath`` may be one whose file name (after resolving
    links, as threadpoolctl does) starts with one of ``prefixes``."""
    return os.path.basename(filepath).lower().startswith(prefixes) or os.path.islink(filepath)


_blas_controller = None
_blas_lock = threading.Lock()
_blas_depth = 0
_blas_limiter = None


class single_threaded_blas:
    """Context manager: BLAS on one thread while any search thread calls it.

    Kernels that call BLAS do so per block, one block per thread: BLAS's own threads would
    only oversubscribe the cores.  Concurrent searches share one limit, counted: the first
    to enter sets it and the last to leave restores the process's previous setting (nested
    ``threadpoolctl`` limits from concurrent threads would restore each other's values and
    could leave BLAS on one thread after every search had returned).
    """

    def __enter__(self):
        global _blas_controller, _blas_depth, _blas_limiter
        with _blas_lock:
            if _blas_depth == 0:
                if _blas_controller is None:
                    _blas_controller = blas_controller()
                _blas_limiter = _blas_controller.limit(limits=1, user_api="blas")
            _blas_depth += 1
        return self

    def __exit__(self, *exc_info):
        global _blas_depth, _blas_limiter
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
        return False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
