"""``nearkit compile``: compile every kernel for this machine once, ahead of use.

nearkit's kernels are compiled by numba on first use and cached on disk (``cache=True``:
next to the package, or in ``$NUMBA_CACHE_DIR``), so a new environment pays the compile on
its first searches.  Container images and CI caches can pay it once, at build time, with
``nearkit compile``: it runs every engine on every path (float64 and float32 sweeps, query
blocks and training chunks, radius queries, the k-d tree, whitening, unit rows, imputation)
on tiny data, and reports what each step compiled or loaded from the cache, and how long it
took.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


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


def _steps():
    """(name, callable) of every path to exercise, on tiny data."""
    from nearkit import KNNImputer, NearestNeighbors
    from nearkit.metrics import METRICS
    from nearkit.search import VALID_METRICS

    rng = np.random.default_rng(0)
    small = rng.normal(size=(300, 4))
    large = rng.normal(size=(2100, 4))  # from the float32 sweep's threshold

    def search(algorithm, metric, X):
        model = NearestNeighbors(n_neighbors=3, metric=metric, p=3, algorithm=algorithm,
                                 n_jobs=2).fit(X)
        model.kneighbors(X[:70])      # query blocks
        model.kneighbors(X[:2])       # few queries: training chunks (brute)
        model.kneighbors(n_neighbors=2)  # the training points, each without itself
        model.radius_neighbors(X[:5], radius=0.5)

    steps = []
    for algorithm, metrics in VALID_METRICS.items():
        for metric in metrics:
            for label, X in (("", small), (" (float32 sweep)", large)):
                if label and (algorithm != "brute" or METRICS[metric].kind > 1):
                    continue
                steps.append((f"{algorithm} {metric}{label}",
                              lambda a=algorithm, m=metric, X=X: search(a, m, X)))
    holes = small.copy()
    holes[rng.random(holes.shape) < 0.2] = np.nan
    steps.append(("imputer", lambda: KNNImputer(n_neighbors=3).fit_transform(holes)))
    return steps


def compile_all(report=None):
    """Run every step of :func:`_steps`, compiling (or loading) every kernel.

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
    for name, run in _steps():
        start = time.perf_counter()
        run()
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
    for column in ("step", "seconds", "kernels compiled or loaded from the cache"):
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
