"""Fit nearkit and scikit-learn on the same split of a bundled dataset and compare them."""

import time

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
ours.predict(X_test[:1])  # a first call: loads the kernels (in a new install, NumPy answers
#                           while they compile in the background: see the compile-cache guide)
peer = KNeighborsClassifier(n_neighbors=5, algorithm="brute").fit(X_train, y_train)

for name, model in (("nearkit", ours), ("scikit-learn", peer)):
    start = time.perf_counter()
    predictions = model.predict(X_test)
    elapsed = time.perf_counter() - start
    print(f"{name:>12}: accuracy {np.mean(predictions == y_test):.4f}  "
          f"predict {elapsed * 1e3:.2f} ms")
assert np.array_equal(ours.predict(X_test), peer.predict(X_test))
print("identical predictions")
