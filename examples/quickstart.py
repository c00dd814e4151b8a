"""Fit nearkit and scikit-learn on the same split of a bundled dataset and compare them."""

import os
import time

# Searches wait for nearkit's compiled kernels instead of being answered by NumPy while the
# kernels load in the background (or compile, on a new install): this script times the
# kernels.  Set before the first search.
os.environ.setdefault("NEARKIT_JIT", "wait")

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from nearkit import KNNClassifier

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y,
                                                    random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

ours = KNNClassifier(n_neighbors=5).fit(X_train, y_train)
peer = KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(X_train, y_train)
# one untimed call each: nearkit's first call loads its kernels from numba's disk cache, or
# on a new install compiles them (seconds, once: see the compile-cache guide), and each
# library's first call pays one-time set-up (imports, starting threads)
print("first calls (nearkit compiles its kernels on a new install, once) ...")
for model in (ours, peer):
    model.predict(X_test)

# then the median of repeated calls, the two libraries interleaved
times = {"nearkit": [], "scikit-learn": []}
for _ in range(25):
    for name, model in (("nearkit", ours), ("scikit-learn", peer)):
        start = time.perf_counter()
        model.predict(X_test)
        times[name].append(time.perf_counter() - start)
for name, model in (("nearkit", ours), ("scikit-learn", peer)):
    accuracy = np.mean(model.predict(X_test) == y_test)
    print(f"{name:>12}: accuracy {accuracy:.4f}  predict {np.median(times[name]) * 1e3:.2f} ms "
          "(median of 25 calls)")
assert np.array_equal(ours.predict(X_test), peer.predict(X_test))
print("identical predictions")
