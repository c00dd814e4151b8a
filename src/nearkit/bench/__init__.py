"""``nearkit bench``: the reproducible benchmark of nearkit against its peers.

The study measures training time, prediction time, single-row latency, memory and
classification quality of every engine on the same repeated stratified splits, checks each
engine's neighbours against an exact float64 reference, and stores every raw sample with the
environment in ``results.json``.  Tables and plots are made from that file alone.

Modules, one idea each:

- :mod:`~nearkit.bench.engines`: the adapters (nearkit, scikit-learn, scikit-learn-intelex,
  FAISS, cKDTree, usearch, NumPy)
  behind one interface, found through :data:`~nearkit.bench.engines.ENGINES`.
- :mod:`~nearkit.bench.exactness`: the tie-aware check of returned neighbours.
- :mod:`~nearkit.bench.measure`: timers, thread limits and peak memory.
- :mod:`~nearkit.bench.protocol`: the configuration and the interleaved repeated runs.
- :mod:`~nearkit.bench.quality`: classification metrics (``sklearn.metrics``).
- :mod:`~nearkit.bench.cvstudy`: the cross-validated accuracy of every (k, weights) per
  dataset (``KNNClassifierCV``).
- :mod:`~nearkit.bench.firstcall`, :mod:`~nearkit.bench.scaling`,
  :mod:`~nearkit.bench.geometry`, :mod:`~nearkit.bench.profiling`: first-call (JIT) time,
  time versus training-set size, the curse of dimensionality, ``--profile``.
- :mod:`~nearkit.bench.environment`: the machine and software a run used.
- :mod:`~nearkit.bench.stats`: confidence intervals, speed-up ratios, McNemar's test.
- :mod:`~nearkit.bench.results` and :mod:`~nearkit.bench.schema`: storage and validation.
- :mod:`~nearkit.bench.summary`, :mod:`~nearkit.bench.findings`, :mod:`~nearkit.bench.text`,
  :mod:`~nearkit.bench.report`, :mod:`~nearkit.bench.plots`: from stored results to
  report.md and the PNG figures.
- :mod:`~nearkit.bench.cli`: the ``bench`` and ``report`` sub-commands.
"""

import importlib

_EXPORTS = {
    "ENGINES": "nearkit.bench.engines",
    "Engine": "nearkit.bench.engines",
    "make_engine": "nearkit.bench.engines",
    "BenchConfig": "nearkit.bench.protocol",
    "run_benchmark": "nearkit.bench.protocol",
    "load_results": "nearkit.bench.results",
    "write_outputs": "nearkit.bench.results",
}


def __getattr__(name):
    # imported on first use, so that ``nearkit --help`` does not load scipy.stats and friends
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nearkit.bench' has no attribute {name!r}")


__all__ = [
    "ENGINES",
    "BenchConfig",
    "Engine",
    "load_results",
    "make_engine",
    "run_benchmark",
    "write_outputs",
]
