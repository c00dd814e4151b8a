"""Scaling out with Dask: training rows sharded over the workers, exact results.

:class:`nearkit.dask.ShardedKNNClassifier` keeps each row block of a Dask array on a worker,
fitted as its own index; every shard answers each query block with its exact top-k and the
lists are merged by (distance, index), so the results equal one :class:`nearkit.KNNClassifier`
on all rows.  :class:`nearkit.dask.ParallelPredictor` instead sends one fitted model to every
worker and answers blocks of queries in parallel.  Needs ``pip install "nearkit[dask]"``.
"""

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

from nearkit import KNNClassifier, NearestNeighbors
from nearkit.dask import ParallelPredictor, ShardedKNNClassifier, ShardedNearestNeighbors

if __name__ == "__main__":
    # two workers inside this process keep the example fast; on a real cluster connect with
    # Client("tcp://scheduler:8786") instead, or LocalCluster() for one worker per core
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                       dashboard_address=None) as cluster,
          Client(cluster)):
        rng = da.random.default_rng(0)
        X = rng.normal(size=(20_000, 8), chunks=(5_000, 8))  # 4 shards, made on the workers
        y = (X[:, 0] + X[:, 1] > 0).astype(int)
        Q = rng.normal(size=(1_000, 8), chunks=(250, 8))

        sharded = ShardedKNNClassifier(n_neighbors=5, weights="distance").fit(X, y)
        print("shards:", sharded.shard_sizes_)
        labels = sharded.predict(Q)  # lazy: nothing runs until compute()
        print("first labels:", labels[:10].compute().tolist())

        # the same as one model on all rows
        X_all, y_all, Q_all = X.compute(), y.compute(), Q.compute()
        single = KNNClassifier(n_neighbors=5, weights="distance").fit(X_all, y_all)
        assert np.array_equal(labels.compute(), single.predict(Q_all))
        print("sharded predictions equal KNNClassifier on all rows")

        # exact neighbours too: global training indices, (distance, index) order.  The
        # shards live as long as the fitted estimator: keep it while its lazy results run
        search = ShardedNearestNeighbors(n_neighbors=5).fit(X)
        dist, ind = search.kneighbors(Q)
        dist_1, ind_1 = NearestNeighbors(n_neighbors=5).fit(X_all).kneighbors(Q_all)
        assert np.array_equal(ind.compute(), ind_1)
        assert np.array_equal(dist.compute(), dist_1)
        print("sharded neighbours equal NearestNeighbors on all rows")

        # query-parallel: the fitted single-machine model answers blocks on every worker
        same = ParallelPredictor(single).predict(Q) == labels
        print("ParallelPredictor agrees:", bool(same.all().compute()))
