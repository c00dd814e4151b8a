"""How the harness measures: wall time, thread limits and peak memory.

Times come from :func:`time.perf_counter` around one call each (:func:`timed`); the benchmark
scripts also time a sub-50 ms call as many consecutive calls as fill about 50 ms
(:func:`calls_per_run`, like ``timeit``) and race contenders interleaved (:func:`race`).  Peak memory is the growth of
the process's peak resident set size during the call: on Linux the peak (``VmHWM``) is reset
through ``/proc/self/clear_refs`` before the call, so native allocations (BLAS, numba, FAISS,
Cython) count too; elsewhere :mod:`tracemalloc` is used, which sees Python and NumPy
allocations only.  The method used is stored with every sample.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from pathlib import Path

import numpy as np

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
#: seconds of idle before each timed run of :func:`race`: BLAS and OpenMP worker threads
#: busy-wait after a call (OpenBLAS about 0.1 s), taking a core from whoever runs next
PAUSE_S = 0.3
#: seconds a timed run of :func:`race` lasts at least (short calls are repeated to fill it)
RUN_S = 0.05


def timed(func, *args, **kwargs):
    """Call ``func`` once and return ``(result, seconds)`` measured with perf_counter."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def median_time(fn, repeats, number=1):
    """Median over ``repeats`` runs of the mean time of ``number`` consecutive calls of ``fn()``.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    repeats : int
        Runs.
    number : int, default=1
        Consecutive calls per run.

    Returns
    -------
    float
        Seconds per call.
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return float(np.median(times))


def settle():
    """Wait for the kernels nearkit loads in the background after a first call (answered by
    NumPy meanwhile): steady-state timings must not overlap the load, whose allocations
    also trigger the garbage collector's full passes (milliseconds each)."""
    from nearkit.search import _warmup

    _warmup.wait()


def calls_per_run(fn, target_s=RUN_S):
    """Calls of ``fn()`` to time together so that a run lasts about ``target_s`` (timeit's
    autorange): one call of a sub-millisecond predict is mostly timer and cache noise."""
    start = time.perf_counter()
    fn()
    return max(1, int(target_s / max(time.perf_counter() - start, 1e-7)))


def race(contenders, inputs, repeats, pause_s=PAUSE_S, warmup_rows=50):
    """Median seconds per call of each contender on ``inputs``, interleaved.

    Each contender is first called once on ``inputs[:warmup_rows]`` (not counted: JIT
    compilation, lazy imports, then :func:`settle`).  Then, in each of ``repeats`` runs, every contender is timed
    once, in an order rotating between runs and after ``pause_s`` of idle, over as many
    consecutive calls as fill about :data:`RUN_S` (the same count in every run).

    Parameters
    ----------
    contenders : dict of str -> callable
        Each takes ``inputs`` (or its first rows, for the warm-up).
    inputs : ndarray
        What every contender is timed on.
    repeats : int
        Runs.
    pause_s : float, default=PAUSE_S
        Idle seconds before each timed run.
    warmup_rows : int, default=50
        Rows of the uncounted warm-up call.

    Returns
    -------
    medians : dict of str -> float
        Median over the runs of the seconds per call.
    samples : dict of str -> list of float
        Every run's seconds per call.
    """
    for fn in contenders.values():
        fn(inputs[:warmup_rows])
    settle()
    number = {name: calls_per_run(lambda fn=fn: fn(inputs)) for name, fn in contenders.items()}
    samples = {name: [] for name in contenders}
    names = list(contenders)
    for run in range(repeats):
        for name in names[run % len(names):] + names[:run % len(names)]:
            time.sleep(pause_s)
            samples[name].append(median_time(lambda fn=contenders[name]: fn(inputs), 1,
                                             number[name]))
    return {name: float(np.median(t)) for name, t in samples.items()}, samples


def single_row_times(fn, Q, calls):
    """Seconds of each of ``calls`` calls of ``fn`` on one row, cycling through ``Q``'s rows
    (after one uncounted call and :func:`settle`).

    Returns
    -------
    ndarray of shape (calls,)
    """
    fn(Q[:1])
    settle()
    times = np.empty(calls)
    for i in range(calls):
        row = Q[i % len(Q): i % len(Q) + 1]
        start = time.perf_counter()
        fn(row)
        times[i] = time.perf_counter() - start
    return times


@contextlib.contextmanager
def limit_threads(n_threads):
    """Limit the BLAS/OpenMP pools and numba's threads to ``n_threads`` (None: no limit).

    Parameters
    ----------
    n_threads : int or None
        Thread count for the duration of the block.
    """
    if n_threads is None:
        yield
        return
    import numba
    from threadpoolctl import threadpool_limits

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        numba.set_num_threads(previous)


def _status_kib(field):
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _can_reset_peak():
    try:
        _CLEAR_REFS.write_text("5")
        _status_kib("VmHWM")
    except (OSError, KeyError, ValueError):
        return False
    return True


class PeakMemory:
    """Context manager measuring the peak memory growth of the process inside the block.

    Attributes
    ----------
    bytes : int
        Peak memory over the memory in use when the block started.
    method : {'vmhwm', 'tracemalloc'}
        How it was measured (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> with PeakMemory() as peak:
    ...     block = np.ones(4_000_000)
    >>> peak.bytes > 16_000_000
    True
    """

    def __enter__(self):
        self.method = "vmhwm" if _can_reset_peak() else "tracemalloc"
        if self.method == "vmhwm":
            self._start = _status_kib("VmRSS")
        else:
            self._was_tracing = tracemalloc.is_tracing()
            if not self._was_tracing:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._start = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc_info):
        if self.method == "vmhwm":
            self.bytes = max(0, _status_kib("VmHWM") - self._start) * 1024
        else:
            self.bytes = max(0, tracemalloc.get_traced_memory()[1] - self._start)
            if not self._was_tracing:
                tracemalloc.stop()
        return False
