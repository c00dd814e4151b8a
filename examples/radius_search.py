"""Nearest-neighbour search: the k nearest, everything within a radius, and the graphs.

:class:`nearkit.NearestNeighbors` finds similar items exactly.  Neighbours come back ordered by
(distance, training index), so equal distances always list the lower index first; radius
queries return every point with ``distance <= radius`` (sorted on request), and both kinds of
query give a sparse neighbours graph.
"""

import numpy as np

from nearkit import NearestNeighbors

rng = np.random.default_rng(0)
items = rng.normal(size=(2_000, 16))  # e.g. item embeddings
queries = items[:3] + 0.05 * rng.normal(size=(3, 16))

search = NearestNeighbors(n_neighbors=5).fit(items)
dist, ind = search.kneighbors(queries)
print("5 nearest items of each query:\n", ind)
print("their distances:\n", dist.round(3))

# every item within a radius, nearest first
dist, ind = search.radius_neighbors(queries, radius=4.0, sort_results=True)
for q, (d, i) in enumerate(zip(dist, ind)):
    print(f"query {q}: {len(i)} items within 4.0, nearest {i[:3].tolist()} at {d[:3].round(3)}")

# X=None means the training items themselves, each excluded from its own neighbours
graph = search.radius_neighbors_graph(radius=3.5, mode="distance")
print(f"radius graph of the items: {graph.shape}, {graph.nnz} edges, "
      f"{int((graph.diagonal() != 0).sum())} self-loops")
knn_graph = search.kneighbors_graph(n_neighbors=3)
assert knn_graph.sum(axis=1).min() == 3

# cosine distance (1 - cos), as for text or embedding vectors
cosine = NearestNeighbors(n_neighbors=3, metric="cosine").fit(items)
dist, ind = cosine.kneighbors(queries)
print("cosine neighbours:", ind.tolist(), "engine:", cosine.algorithm_)
