"""scikit-learn's estimator contract, for every weighting scheme and metric."""

from __future__ import annotations

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from nearkit import KNNClassifier


def inverse_distance_plus_one(dist):
    return 1.0 / (1.0 + dist)


ESTIMATORS = [
    KNNClassifier(weights=weights, metric=metric, **extra)
    for weights in ("uniform", "distance", "dudani", "gaussian", inverse_distance_plus_one)
    for metric, extra in (
        ("euclidean", {}),
        ("manhattan", {}),
        ("chebyshev", {}),
        ("minkowski", {"p": 3}),
        ("minkowski", {"p": 0.5}),
        ("mahalanobis", {}),
    )
] + [KNNClassifier(weights="gaussian", sigma=2.0), KNNClassifier(metric="minkowski", p=np.inf)]


def expected_failures(estimator):
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
