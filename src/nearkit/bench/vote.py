"""The vote of the engines that only search (FAISS, cKDTree, the NumPy loop).

It follows scikit-learn's rule, so that every engine's predictions can be compared: the
neighbours' weights are summed per class and ties go to the smallest class label.
"""

from __future__ import annotations

import numpy as np


def vote(distances, indices, y_codes, n_classes, weights="uniform"):
    """Class scores of each query from its neighbours, as scikit-learn computes them.

    Parameters
    ----------
    distances : ndarray of shape (n_queries, k)
        Distances of the neighbours.
    indices : ndarray of shape (n_queries, k)
        Training indices of the neighbours.
    y_codes : ndarray of shape (n_train,)
        Training labels as positions in the sorted array of classes.
    n_classes : int
        Number of classes.
    weights : {'uniform', 'distance'}, default='uniform'
        ``'distance'`` weighs by ``1 / d``; a query with a neighbour at distance 0 counts only
        its neighbours at distance 0.

    Returns
    -------
    proba : ndarray of shape (n_queries, n_classes)
        Normalised vote of each class.
    labels : ndarray of shape (n_queries,)
        Position of the winning class; ties go to the smallest class.
    """
    distances = np.asarray(distances, dtype=np.float64)
    if weights == "uniform":
        w = np.ones_like(distances)
    elif weights == "distance":
        with np.errstate(divide="ignore"):
            w = 1.0 / distances
        zero_rows = np.any(distances == 0.0, axis=1)
        w[zero_rows] = (distances[zero_rows] == 0.0).astype(np.float64)
    else:
        raise ValueError(f"weights={weights!r} is not supported by the shared vote")
    scores = np.zeros((indices.shape[0], n_classes))
    rows = np.repeat(np.arange(indices.shape[0]), indices.shape[1])
    np.add.at(scores, (rows, y_codes[indices].ravel()), w.ravel())
    labels = np.argmax(scores, axis=1)  # first maximum: the smallest class label
    proba = scores / scores.sum(axis=1, keepdims=True)
    return proba, labels
