"""Regression: the weighted mean of the nearest neighbours' targets.

Fits :class:`nearkit.KNNRegressor` on scikit-learn's bundled diabetes data with each weighting
scheme, checks that uniform weights give scikit-learn's ``KNeighborsRegressor`` predictions,
and scores the training set by leave-one-out in one search (``score()`` without arguments).
"""

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler

from nearkit import KNNRegressor

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

for weights in ("uniform", "distance", "dudani", "gaussian"):
    model = KNNRegressor(n_neighbors=10, weights=weights).fit(X_train, y_train)
    print(f"{weights:>8}: test R2 {model.score(X_test, y_test):.3f}   "
          f"leave-one-out R2 {model.score():.3f}")

# uniform weights: the same predictions as scikit-learn (no distance ties in this data)
ours = KNNRegressor(n_neighbors=10).fit(X_train, y_train).predict(X_test)
theirs = KNeighborsRegressor(n_neighbors=10).fit(X_train, y_train).predict(X_test)
assert np.allclose(ours, theirs, rtol=1e-12, atol=0)
print("uniform predictions equal scikit-learn's")

# several targets at once: y of shape (n_samples, n_outputs)
Y_train = np.column_stack([y_train, np.log(y_train)])
both = KNNRegressor(n_neighbors=10, weights="distance").fit(X_train, Y_train)
print("two outputs:", both.predict(X_test[:3]).round(2).tolist())
