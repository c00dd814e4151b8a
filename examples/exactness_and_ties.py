"""Exactness and ties: the same neighbours whatever the engine, and where scikit-learn differs.

nearkit orders neighbours by (distance, training index), with distances as a plain float64
loop over the features defines them.  This script shows the three consequences the user
guide's "Exactness and ties" page explains: every engine returns the same answer; under
distance ties the lower index wins (scikit-learn picks by its scan order); and features with
a large offset keep their distances (scikit-learn's brute force expands
``||a||^2 + ||b||^2 - 2 a.b`` and loses them).
"""

import numpy as np
from sklearn.neighbors import NearestNeighbors as SklearnNearestNeighbors

from nearkit import KNNClassifier, NearestNeighbors
from nearkit.search import ENGINES

rng = np.random.default_rng(1)

# 1. ties: points on an integer grid, many at the same distance from the query
X = rng.integers(0, 3, size=(200, 2)).astype(float)
Q = np.array([[1.0, 1.0]])
answers = {engine: NearestNeighbors(n_neighbors=5, algorithm=engine).fit(X).kneighbors(Q)[1]
           for engine in ENGINES}
for engine, ind in answers.items():
    print(f"nearkit {engine:>8}: {ind[0].tolist()}")
    assert np.array_equal(ind, answers["brute"])
for algorithm in ("brute", "kd_tree"):
    ind = SklearnNearestNeighbors(n_neighbors=5, algorithm=algorithm).fit(X).kneighbors(Q)[1]
    print(f"sklearn {algorithm:>8}: {ind[0].tolist()}")
print(f"{int((X == Q).all(axis=1).sum())} training points equal the query (distance 0): "
      "nearkit lists the five of lowest index, in index order")

# 2. vote ties go to the smallest class label
model = KNNClassifier(n_neighbors=2).fit([[0.0], [2.0]], ["b", "a"])
print("a 1-1 vote between 'a' and 'b' predicts", model.predict([[1.0]]))

# 3. a large offset: features near 1e8 that vary by 1e-3
X = 1e8 + rng.random((2_000, 3)) * 1e-3
Q = 1e8 + rng.random((3, 3)) * 1e-3
exact = np.sqrt(((Q[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1))
nearest = np.argsort(exact, axis=1, kind="stable")[:, :3]
dist, ind = NearestNeighbors(n_neighbors=3).fit(X).kneighbors(Q)
assert np.array_equal(ind, nearest) and np.array_equal(dist, np.sort(exact, axis=1)[:, :3])
print("nearkit distances:", dist[0])
dist, ind = SklearnNearestNeighbors(n_neighbors=3, algorithm="brute").fit(X).kneighbors(Q)
print("sklearn brute    :", dist[0],
      f"(the right neighbours: {bool(np.array_equal(ind, nearest))})")
