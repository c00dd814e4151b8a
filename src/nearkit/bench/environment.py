"""The environment a benchmark ran in, stored with its results.

CPU model, cores, the thread pools the process sees, Python and library versions, nearkit's
version and git commit, and the command line.  Everything is collected once, when the run
starts, so a report rebuilt later shows the machine the numbers came from.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

LIBRARIES = (
    "nearkit", "numpy", "scipy", "scikit-learn", "numba", "llvmlite", "faiss-cpu", "pandas",
    "matplotlib", "threadpoolctl", "rich",
)


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args):
    import nearkit

    folder = Path(nearkit.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _thread_pools():
    from threadpoolctl import threadpool_info

    return [
        {
            "user_api": pool.get("user_api"),
            "internal_api": pool.get("internal_api"),
            "num_threads": pool.get("num_threads"),
            "version": pool.get("version"),
        }
        for pool in threadpool_info()
    ]


def collect_environment(argv=None):
    """Describe the machine and software.

    Parameters
    ----------
    argv : list of str or None
        The command line of the run (``sys.argv`` when None).

    Returns
    -------
    dict
        JSON-ready description.
    """
    import numba
    import psutil

    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_bytes": int(psutil.virtual_memory().total),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": numba.config.THREADING_LAYER,
        "thread_pools": _thread_pools(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "nearkit_git_commit": _git("rev-parse", "HEAD"),
        "nearkit_git_dirty": None if status is None else bool(status),
        "command_line": list(sys.argv if argv is None else argv),
        "environment_variables": {
            key: os.environ[key]
            for key in ("NEARKIT_DATA", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_CACHE_DIR")
            if key in os.environ
        },
    }
