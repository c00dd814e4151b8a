"""How the harness measures: wall time, thread limits and peak memory.

Times come from :func:`time.perf_counter` around one call each.  Peak memory is the growth of
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

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def timed(func, *args, **kwargs):
    """Call ``func`` once and return ``(result, seconds)`` measured with perf_counter."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


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
