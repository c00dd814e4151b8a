"""Weighting schemes for the neighbours, the vote, and the neighbours' share of sample weight.

The functions take the (n_queries, k) array of true distances sorted ascending along each
row, as the search engines return it.  Every scheme is computed from ratios of distances
(relative to the nearest), so weights do not depend on the unit of the data and never
overflow: the same probabilities at scale 1, 1e-170 or 1e300.
"""

from __future__ import annotations

import functools

import numpy as np

#: the names of the built-in weighting schemes (``weights=`` also takes a callable)
WEIGHTS = ("uniform", "distance", "dudani", "gaussian")


def compute_weights(distances, weights="uniform", sigma=None, counts=None):
    """Per-neighbour weights.

    Parameters
    ----------
    distances : ndarray of shape (n_queries, k)
        Distances to the k nearest neighbours, ascending along each row.
    weights : {'uniform', 'distance', 'dudani', 'gaussian'} or callable, default='uniform'
        With ``d_1`` and ``d_k`` the nearest and farthest counted distance of a row:

        - ``'uniform'``: every neighbour counts 1.
        - ``'distance'``: ``1 / d_i`` (computed as ``d_1 / d_i``, the same after
          normalisation); in a row where some ``d_i == 0`` those neighbours get weight 1 and
          the others 0 (as scikit-learn does).
        - ``'dudani'``: ``(d_k - d_i) / (d_k - d_1)``, and 1 for all when ``d_k == d_1``.
        - ``'gaussian'``: ``exp(-d_i**2 / (2 sigma**2))``, computed relative to ``d_1``
          (``exp(-(d_i - d_1)(d_i + d_1) / (2 sigma**2))``: the common factor cancels in the
          vote, and the nearest weighs exactly 1 however small sigma is).
        - callable: receives ``distances`` and returns an array of the same shape of finite,
          non-negative weights.
    sigma : float > 0 or None, default=None
        Gaussian bandwidth; None means ``sigma = d_k`` per query (uniform when ``d_k == 0``).
    counts : ndarray of shape (n_queries, k) or None, default=None
        How much of each neighbour counts (its share of sample weight among the first k
        units, see :func:`mass_counts`); None counts each neighbour once.  The weights are
        multiplied by it, and ``d_1``, ``d_k`` are those of the counted neighbours.

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
    counted = None if counts is None else counts > 0
    w = _scheme(dist, weights, sigma, counted)
    return w if counts is None else w * counts


def _scheme(dist, weights, sigma, counted):
    if weights == "uniform":
        return np.ones(dist.shape)
    if callable(weights) and not isinstance(weights, str):
        return _callable_weights(dist, weights)
    if counted is None:
        nearest, farthest = dist[:, :1], dist[:, -1:]
    else:
        first = np.argmax(counted, axis=1)
        last = dist.shape[1] - 1 - np.argmax(counted[:, ::-1], axis=1)
        rows = np.arange(dist.shape[0])
        nearest, farthest = dist[rows, first][:, None], dist[rows, last][:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        if weights == "distance":
            zero = dist == 0
            if counted is not None:
                zero &= counted
            w = nearest / dist
            exact = zero.any(axis=1)
            w[exact] = zero[exact]
        elif weights == "dudani":
            span = farthest - nearest
            w = np.where(span > 0, (farthest - dist) / span, 1.0)
        elif weights == "gaussian":
            bandwidth = farthest if sigma is None else np.float64(sigma)
            w = np.exp(-0.5 * ((dist - nearest) / bandwidth) * ((dist + nearest) / bandwidth))
            w = np.where((dist == nearest) | (bandwidth == 0), 1.0, w)
        else:
            raise ValueError(f"Unknown weights {weights!r}; expected one of {WEIGHTS} or a "
                             "callable.")
    # distances beyond the float range (points more than 1.8e308 apart) weigh nothing
    return w if np.isfinite(w).all() else np.nan_to_num(w, nan=0.0, posinf=0.0)


def _callable_weights(dist, weights):
    w = np.asarray(weights(dist), dtype=np.float64)
    if w.shape != dist.shape:
        raise ValueError(
            f"The weights callable must return an array of shape {dist.shape} (the "
            f"distances' shape); it returned shape {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("The weights callable returned negative, NaN or infinite weights.")
    return w


def mass_counts(neighbour_weights, k):
    """How much of each neighbour counts among the first ``k`` units of sample weight.

    A training row of sample weight ``w`` counts as ``w`` units at its distance, so that
    integer weights equal repeating the rows: walking the neighbours in (distance, index)
    order, each contributes ``min(w, k - units before it)``, never less than 0.

    Parameters
    ----------
    neighbour_weights : ndarray of shape (n_queries, n_neighbours)
        Sample weight of each neighbour, in neighbour order.
    k : int
        Units to collect.

    Returns
    -------
    ndarray of shape (n_queries, n_neighbours)

    Examples
    --------
    >>> import numpy as np
    >>> mass_counts(np.array([[2.0, 0.0, 3.0, 1.0]]), 4)
    array([[2., 0., 2., 0.]])
    """
    before = np.cumsum(neighbour_weights, axis=1) - neighbour_weights
    counts = np.clip(k - before, 0.0, neighbour_weights)
    # rounding in the running sum of fractional weights can leave a share of 1e-16 to a
    # row past the k-th unit; such a row does not count (it would move d_k)
    counts[counts <= k * 1e-12] = 0.0
    return counts


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
    if n_queries == 1:  # a single row (4 us less: a third of a single-row predict's votes)
        proba = np.bincount(neigh_labels[0], weights=weights[0], minlength=n_classes)
        total = proba.sum()
        if not total > 0:
            check_total(np.array([total]))
        proba /= total
        return proba[None, :]
    proba = _class_sums(neigh_labels, n_classes, np.ravel(weights))
    total = proba.sum(axis=1, keepdims=True)
    if not (total > 0).all():
        check_total(total[:, 0])
    proba /= total
    return proba


def majority_vote(neigh_labels, n_classes):
    """The most frequent class of each row's neighbours, ties to the smallest class: the
    argmax of :func:`vote_proba` with uniform weights, from integer counts.

    Parameters
    ----------
    neigh_labels : int ndarray of shape (n_queries, k)
        Encoded class (0 .. n_classes-1) of each neighbour.
    n_classes : int

    Returns
    -------
    int ndarray of shape (n_queries,)

    Examples
    --------
    >>> import numpy as np
    >>> majority_vote(np.array([[2, 0, 2, 1], [1, 0, 0, 1]]), 3)
    array([2, 0])
    """
    if neigh_labels.shape[0] == 1:
        return np.bincount(neigh_labels[0], minlength=n_classes).argmax(keepdims=True)
    return _class_sums(neigh_labels, n_classes).argmax(axis=1)


def _class_sums(neigh_labels, n_classes, weights=None):
    """(n_queries, n_classes) sums of the neighbours' ``weights`` (raveled; None counts each
    neighbour once, in integers) per class: one bincount over (query, class) cells.  It adds
    in input order, i.e. each query's neighbours in order, so the sums are those of the
    plain loop (and 10x faster than k fancy-indexed additions on small batches)."""
    n_queries = neigh_labels.shape[0]
    cells = (neigh_labels + _first_cells(n_queries, n_classes)).ravel()
    return np.bincount(cells, weights=weights,
                       minlength=n_queries * n_classes).reshape(n_queries, n_classes)


#: batches up to this many queries take their first cells from :func:`_cached_first_cells`
_CACHED_ROWS = 4096


def _first_cells(n_queries, n_classes):
    """``arange(n_queries)[:, None] * n_classes``, from a cache for small batches: the
    uniform vote on 80 queries took 6.3-10.4 us building it and 4.5-5.0 us with the cache
    (of a predict of social_network_ads of about 60 us; AMD EPYC machine)."""
    if n_queries > _CACHED_ROWS:
        return np.arange(n_queries)[:, None] * n_classes
    return _cached_first_cells(n_classes)[:n_queries]


@functools.lru_cache(maxsize=16)
def _cached_first_cells(n_classes):
    """The first cell of each of :data:`_CACHED_ROWS` rows, a column, read only (shared
    by every thread; the cache is bounded and thread-safe)."""
    cells = np.arange(_CACHED_ROWS)[:, None] * n_classes
    cells.flags.writeable = False
    return cells


def average(values, weights=None, total=None):
    """Means of the rows of ``values`` (n, k) or (n, k, n_outputs) over axis 1, weighted
    by ``weights`` (n, k; None: uniform), that do not overflow.

    Each row is first averaged by the plain float64 expression (``values.mean(axis=1)``, or
    ``(values * weights).sum(axis=1) / weights.sum(axis=1)``).  A row where that is not
    finite (finite values near the largest float64, whose sum overflows, or weights whose
    products with them do) is averaged again with its values (per output) and its weights
    scaled by the powers of two that bring their largest magnitudes to [0.5, 1), the mean
    scaled back exactly.  A row whose weights sum to zero gives NaN.  ``total``: the
    weights' row sums, when the caller has them.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean = _plain_average(values, weights, total)
        out = ~np.isfinite(mean)
        if out.any():
            rows = np.flatnonzero(out.reshape(len(mean), -1).any(axis=1))
            v = values[rows]
            shift = np.frexp(np.abs(v).max(axis=1))[1]  # (rows[, outputs])
            w = None if weights is None else weights[rows]
            if w is not None:
                w = np.ldexp(w, -np.frexp(np.abs(w).max(axis=1))[1][:, None])
            again = np.ldexp(_plain_average(np.ldexp(v, -shift[:, None]), w, None), shift)
            mean[rows] = np.where(out[rows], again, mean[rows])
    return mean


def weighted_mean(values, weights, uniform):
    """The neighbours' targets ``values`` (n_queries, k[, n_outputs]) averaged with
    ``weights`` (n_queries, k); a plain mean when ``uniform``.  Targets near the largest
    float64 do not overflow (:func:`average`)."""
    if uniform:
        return average(values)
    total = weights.sum(axis=1)
    check_total(total)
    return average(values, weights, total)


def _plain_average(values, weights, total):
    if weights is None:
        return values.mean(axis=1)
    if total is None:
        total = weights.sum(axis=1)
    if values.ndim == 2:
        return (values * weights).sum(axis=1) / total
    return (values * weights[:, :, None]).sum(axis=1) / total[:, None]


def check_total(total):
    """Raise when a query's neighbour weights sum to zero (only a weights callable, or
    class weights of zero, can make them so)."""
    if np.any(total <= 0):
        bad = int(np.flatnonzero(total <= 0)[0])
        raise ValueError(
            f"All neighbour weights of query {bad} are zero, so no prediction can be made: "
            "a weights callable (or class_weight) must give every query some positive weight."
        )
