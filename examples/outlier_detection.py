"""Outlier detection: how far each point is from its k nearest neighbours.

:class:`nearkit.KNNOutlierDetector` scores a point by its distance to its k-th nearest
neighbour (or the mean or median of the k distances), as PyOD's ``KNN`` does.  With
``novelty=False`` it labels the training points (``fit_predict``); with ``novelty=True`` it
scores new points against them.
"""

import numpy as np

from nearkit import KNNOutlierDetector

rng = np.random.default_rng(0)
inliers = rng.normal(size=(950, 4))
outliers = rng.uniform(-8, 8, size=(50, 4))
X = np.vstack([inliers, outliers])
is_outlier = np.r_[np.zeros(950, bool), np.ones(50, bool)]

# outlier detection: label the training points themselves (each scored without itself)
detector = KNNOutlierDetector(n_neighbors=10, contamination=0.05)
labels = detector.fit_predict(X)
caught = np.mean(labels[is_outlier] == -1)
false_alarms = np.mean(labels[~is_outlier] == -1)
print(f"planted outliers caught: {caught:.0%}, inliers flagged: {false_alarms:.1%}")
print(f"threshold (95th percentile of the training scores): {detector.threshold_:.3f}")

# novelty detection: fit on clean data, score new points
novelty = KNNOutlierDetector(n_neighbors=10, method="mean", novelty=True).fit(inliers)
new_points = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, -6.0, 6.0, -6.0]])
print("new points:", novelty.predict(new_points).tolist(),
      "scores:", (-novelty.score_samples(new_points)).round(2).tolist())

# PyOD's KNN gives the same scores (optional: pip install pyod)
try:
    from pyod.models.knn import KNN
except ImportError:
    print("PyOD not installed: comparison skipped")
else:
    pyod = KNN(n_neighbors=10, contamination=0.05).fit(X)
    assert np.allclose(pyod.decision_scores_, detector.decision_scores_, rtol=1e-12, atol=0)
    print("training scores equal PyOD's KNN")
