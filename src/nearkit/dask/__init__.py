"""Exact k-nearest-neighbour classification on a Dask cluster.

Two ways to scale out, both on Dask (install ``nearkit[dask]``), neither home-made:

- :class:`ParallelPredictor`: the training set fits on one machine, the queries do not.
  A fitted :class:`~nearkit.KNNClassifier` is sent to every worker once and answers the
  blocks of a Dask array or DataFrame of queries in parallel.
- :class:`ShardedNearestNeighbors`, :class:`ShardedKNNClassifier`,
  :class:`ShardedKNNRegressor`: the training set itself is partitioned.  Every row block of a
  Dask array is a shard, fitted and kept on a worker; every shard answers every query block
  with its exact top-k, and the partial lists are merged in a tree reduction by
  (distance, global index), so results equal the single-machine model's.

Both return Dask collections for Dask inputs (lazy: call ``.compute()``) and NumPy arrays
for NumPy inputs.  They run on whatever scheduler Dask uses: a ``distributed.Client`` if
one exists, else the local threads.

Faults: Dask keeps the lineage of every shard, so when a worker dies mid-computation the
scheduler recomputes the lost shards from their source and the job returns the complete
exact result.  When that is impossible (the source itself was only in the lost worker's
memory, e.g. sent with ``client.scatter``; or a task keeps killing workers) the computation
raises instead of returning a partial answer: a ``RuntimeError`` saying so from the methods
that return NumPy arrays, Dask's ``FutureCancelledError`` or ``KilledWorker`` when you
compute a returned Dask collection.
"""

try:
    import dask  # noqa: F401
    import dask.array  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "nearkit.dask needs Dask and distributed: pip install 'nearkit[dask]'"
    ) from exc

from nearkit.dask._parallel import ParallelPredictor
from nearkit.dask._sharded import ShardedKNNClassifier, ShardedKNNRegressor, ShardedNearestNeighbors

__all__ = ["ParallelPredictor", "ShardedKNNClassifier", "ShardedKNNRegressor",
           "ShardedNearestNeighbors"]
