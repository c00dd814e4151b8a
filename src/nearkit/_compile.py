"""``nearkit compile``: compile every kernel for this machine once, ahead of use.

nearkit's kernels are compiled by numba on first use and cached on disk (``cache=True``:
next to the package, or in ``$NUMBA_CACHE_DIR``), so a new environment pays the compile on
its first searches (small ones are answered by NumPy meanwhile: see
:mod:`nearkit.search._warmup`).  Container images and CI caches can pay it once, at build
time, with ``nearkit compile``: it runs every kernel path (each engine, float64 and float32
sweeps, query blocks and training chunks, radius queries, whitening, unit rows, imputation)
on tiny data, and reports what each step compiled or loaded from the cache, and how long it
took.  ``python -m nearkit._compile PATH`` compiles one path (the background warm-up's
child process).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

import numpy as np


def _search(algorithm, n, d, queries, metric="euclidean", radius=False):
    """Tiny searches that take every code path of one engine."""
    from nearkit import NearestNeighbors

    X = np.random.default_rng(0).normal(size=(n, d))
    model = NearestNeighbors(n_neighbors=3, metric=metric, algorithm=algorithm, n_jobs=2)
    model.fit(X)
    for m in queries:
        model.kneighbors(X[:m])
    model.kneighbors(n_neighbors=2)  # the training points, each without itself
    if radius:
        model.radius_neighbors(X[:5], radius=0.5)


def _imputer():
    from nearkit import KNNImputer

    holes = np.random.default_rng(0).normal(size=(300, 4))
    holes[np.random.default_rng(1).random(holes.shape) < 0.2] = np.nan
    KNNImputer(n_neighbors=3).fit_transform(holes)


def _transforms():
    from nearkit import NearestNeighbors

    X = np.random.default_rng(0).normal(size=(300, 4))
    for metric in ("mahalanobis", "cosine"):
        NearestNeighbors(n_neighbors=2, metric=metric, algorithm="brute").fit(X).kneighbors(X[:3])


#: kernel path -> the tiny run that compiles it (names used by the search engines'
#: ``_kernel_path``); 2,100 x 200 points with 3 queries on 2 threads take brute force's
#: training-chunk path, 70 queries its query blocks
PATHS = {
    "brute": lambda: _search("brute", 300, 4, (70,)),
    "brute-chunks": lambda: _search("brute", 2100, 200, (3,), metric="chebyshev"),
    "brute32": lambda: _search("brute", 2100, 200, (70, 3)),
    "gemm": lambda: _search("gemm", 2100, 4, (70,)),
    "tiled": lambda: _search("tiled", 600, 4, (70,), metric="manhattan"),
    "kd_tree": lambda: _search("kd_tree", 600, 4, (70,)),
    "projected": lambda: _search("projected", 600, 40, (70,)),
    "radius": lambda: [_search(algorithm, 600, 4, (), radius=True)
                       for algorithm in ("brute", "tiled", "kd_tree")],
    "transforms": _transforms,
    "imputer": _imputer,
}

_warming = threading.local()


def warming():
    """Whether the calling thread is compiling a path (its searches must use the kernels)."""
    return getattr(_warming, "on", False)


def compile_path(name):
    """Run the tiny searches of kernel path ``name`` (compiling or loading its kernels)."""
    _warming.on = True
    try:
        PATHS[name]()
    finally:
        _warming.on = False


@dataclass
class Step:
    """One step of :func:`compile_all`: what ran, the kernels it compiled, the time."""

    name: str
    seconds: float
    compiled: list


def _kernels():
    """Every numba dispatcher of nearkit's kernel modules."""
    import importlib
    import pkgutil

    import numba

    import nearkit._kernels as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"nearkit._kernels.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.__module__ \
                    == module.__name__:
                found.append((f"{info.name}.{name}", value))
    return found


def compile_all(report=None):
    """Compile (or load) every kernel path of :data:`PATHS`.

    Parameters
    ----------
    report : callable or None
        Called with each finished :class:`Step`.

    Returns
    -------
    list of Step
    """
    kernels = _kernels()
    before = {name: len(kernel.signatures) for name, kernel in kernels}
    steps = []
    for name in PATHS:
        start = time.perf_counter()
        compile_path(name)
        seconds = time.perf_counter() - start
        compiled = [kernel_name for kernel_name, kernel in kernels
                    if len(kernel.signatures) > before[kernel_name]]
        before.update({kernel_name: len(kernel.signatures) for kernel_name, kernel in kernels})
        step = Step(name, seconds, compiled)
        steps.append(step)
        if report is not None:
            report(step)
    return steps


def run_compile(args):
    """``nearkit compile``; returns the exit code."""
    import numba
    from rich.console import Console
    from rich.table import Table

    console = Console()
    start = time.perf_counter()
    table = Table(title="nearkit compile: every kernel for this machine")
    for column in ("path", "seconds", "kernels compiled or loaded from the cache"):
        table.add_column(column)
    with console.status("compiling") as status:
        def report(step):
            status.update(f"compiled: {step.name}")
            table.add_row(step.name, f"{step.seconds:.2f}", ", ".join(step.compiled) or "-")
        steps = compile_all(report)
    console.print(table)
    n_kernels = sum(len(step.compiled) for step in steps)
    console.print(f"{n_kernels} kernel signatures in {time.perf_counter() - start:.1f} s; "
                  f"cache: {numba.config.CACHE_DIR or 'next to the nearkit package'}")
    return 0


def register(subparsers):
    """Add the ``compile`` sub-command to the ``nearkit`` parser."""
    parser = subparsers.add_parser(
        "compile", help="compile every kernel for this machine once (numba's disk cache)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.set_defaults(func=run_compile)


if __name__ == "__main__":
    import os

    # run as a script this module is ``__main__``, a second copy of nearkit._compile: the
    # searches must see the flag of the copy that nearkit.search._warmup imports, or they
    # would answer with NumPy and start another child in turn
    from nearkit._compile import compile_path as _compile_path

    if hasattr(os, "nice"):
        os.nice(10)  # a background compile: the user's own work comes first
    _compile_path(sys.argv[1])
