"""Search engines: exact k-nearest-neighbour indexes behind one interface.

An engine is built from raw training points and a resolved metric
(:func:`nearkit.metrics.resolve_metric`), owns the metric's coordinate space and its threads,
and answers ``query(Q, k, n_threads=None) -> (distances, indices)`` with arrays of shape
(n_queries, k), neighbours ordered by (true distance, training index); see
:class:`~nearkit.search._index.Index`.  Engines are found through :data:`ENGINES`;
``algorithm='auto'`` is resolved by :func:`~nearkit.search.auto.select_index`.

Modules, one idea each: ``_threads`` (thread counts, the pool, BLAS limits), ``_space`` (the
metric's preparation of points), ``_float32`` (float32 copies for the pre-filters),
``_index`` (the shared contract), one module per engine, and ``auto``.
"""

from nearkit.metrics import METRICS
from nearkit.search._index import Index, valid_engines
from nearkit.search._threads import SERIAL_WORK, available_threads, resolve_n_jobs
from nearkit.search.auto import select_index
from nearkit.search.brute import BruteForceIndex
from nearkit.search.gemm import GemmIndex
from nearkit.search.kdtree import KDTreeIndex
from nearkit.search.projected import ProjectedIndex
from nearkit.search.tiled import TiledIndex

#: engine name -> class; each declares the surrogate kinds it searches
ENGINES = {engine.name: engine for engine in (BruteForceIndex, GemmIndex, KDTreeIndex,
                                                 ProjectedIndex, TiledIndex)}

#: engine name -> canonical names of the metrics it can search (scikit-learn's
#: ``VALID_METRICS`` per algorithm), from the metric table and the engines' surrogate kinds
VALID_METRICS = {name: sorted(spec.name for spec in METRICS.values() if spec.kind in engine.kinds)
                 for name, engine in ENGINES.items()}

__all__ = [
    "ENGINES",
    "SERIAL_WORK",
    "VALID_METRICS",
    "Index",
    "available_threads",
    "resolve_n_jobs",
    "select_index",
    "valid_engines",
]
