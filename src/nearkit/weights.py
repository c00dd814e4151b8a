"""Weighting schemes for the neighbours' votes, and the vote itself.

All functions take the (n_queries, k) array of true distances sorted ascending along each
row, as returned by the search engines.
"""

from __future__ import annotations

import numpy as np

WEIGHTS = ("uniform", "distance", "dudani", "gaussian")


def compute_weights(distances, weights="uniform", sigma=None):
    """Per-neighbour vote weights.

    Parameters
    ----------
    distances : ndarray of shape (n_queries, k)
        Distances to the k nearest neighbours, ascending along each row.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        - ``'uniform'``: every neighbour counts 1.
        - ``'distance'``: ``1 / d_i``; in a row where some ``d_i == 0`` those neighbours get
          weight 1 and the others 0 (as scikit-learn does).
        - ``'dudani'``: ``(d_k - d_i) / (d_k - d_1)``, and 1 for all when ``d_k == d_1``.
        - ``'gaussian'``: ``exp(-d_i**2 / (2 sigma**2))``, computed relative to ``d_1`` so that
          it never underflows to all zeros (the common factor cancels in the vote).
        - callable: receives ``distances`` and returns an array of the same shape.
    sigma : float > 0 or None, default=None
        Gaussian bandwidth; None means ``sigma = d_k`` per query (uniform when ``d_k == 0``).

    Returns
    -------
    ndarray of shape (n_queries, k)

    Examples
    --------
    >>> import numpy as np
    >>> compute_weights(np.array([[1.0, 2.0, 3.0]]), "dudani")
    array([[1. , 0.5, 0. ]])
    >>> compute_weights(np.array([[0.0, 2.0]]), "distance")
    array([[1., 0.]])
    """
    dist = np.asarray(distances, dtype=np.float64)
    if weights == "uniform":
        return np.ones_like(dist)
    if weights == "distance":
        with np.errstate(divide="ignore"):
            w = 1.0 / dist
        inf_mask = np.isinf(w)
        inf_row = np.any(inf_mask, axis=1)
        w[inf_row] = inf_mask[inf_row]
        return w
    if weights == "dudani":
        nearest, farthest = dist[:, :1], dist[:, -1:]
        span = farthest - nearest
        with np.errstate(divide="ignore", invalid="ignore"):
            w = (farthest - dist) / span
        return np.where(span > 0, w, 1.0)
    if weights == "gaussian":
        nearest = dist[:, :1]
        bandwidth = dist[:, -1:] if sigma is None else np.float64(sigma)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.exp(-(dist**2 - nearest**2) / (2.0 * bandwidth * bandwidth))
        # the nearest neighbours weigh exactly 1, even when sigma**2 underflows to 0
        w = np.where(dist == nearest, 1.0, w)
        return np.where(bandwidth > 0, w, 1.0)
    if callable(weights):
        w = np.asarray(weights(dist), dtype=np.float64)
        if w.shape != dist.shape:
            raise ValueError(
                f"The weights callable must return an array of shape {dist.shape} (the "
                f"distances' shape); it returned shape {w.shape}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("The weights callable returned negative, NaN or infinite weights.")
        return w
    raise ValueError(f"Unknown weights {weights!r}; expected one of {WEIGHTS} or a callable.")


def vote_proba(neigh_labels, weights, n_classes):
    """Class probabilities: weights summed per class in neighbour order, then normalised.

    Parameters
    ----------
    neigh_labels : int ndarray of shape (n_queries, k)
        Encoded class (0 .. n_classes-1) of each neighbour.
    weights : ndarray of shape (n_queries, k)
        Vote weight of each neighbour.
    n_classes : int

    Returns
    -------
    ndarray of shape (n_queries, n_classes)
        Rows sum to 1.  ``argmax`` gives the prediction, ties to the smallest class.

    Raises
    ------
    ValueError
        If a query's weights are all zero (no class can be chosen).
    """
    n_queries, k = neigh_labels.shape
    # one bincount over (query, class) cells; it adds in input order, i.e. each query's
    # neighbours in order, so the sums are those of the plain loop (and 10x faster than k
    # fancy-indexed additions on small batches)
    cells = (np.arange(n_queries)[:, None] * n_classes + neigh_labels).ravel()
    proba = np.bincount(cells, weights=np.ravel(weights),
                        minlength=n_queries * n_classes).reshape(n_queries, n_classes)
    total = proba.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        bad = int(np.flatnonzero(total[:, 0] <= 0)[0])
        raise ValueError(
            f"All neighbour weights of query {bad} are zero, so no class can be chosen; "
            "use a larger sigma or another weights scheme."
        )
    proba /= total
    return proba
