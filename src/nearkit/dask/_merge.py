"""Exact merging of per-shard top-k lists, in NumPy.

A shard answers a block of queries with three (n_queries, k_shard) arrays: true distances,
*global* training indices and encoded class labels, each row ordered by (distance, index).
Neighbours are ranked by the key (distance, global index), a strict total order because the
global indices are distinct, so the k smallest keys of the union of any shards are one
well-defined set in one order: merging is a selection, with no arithmetic, and its result
does not depend on how the training rows were split or in which order partial results are
combined.
"""

from __future__ import annotations

import numpy as np


def merge_neighbors(parts, k):
    """The k nearest of the union of several per-shard neighbour lists.

    Parameters
    ----------
    parts : sequence of tuple (distances, indices, labels)
        Arrays of shape (n_queries, k_i) for the same queries, indices global.
    k : int
        Number of neighbours to keep (at most ``sum(k_i)`` are available).

    Returns
    -------
    distances, indices, labels : ndarrays of shape (n_queries, min(k, sum(k_i)))
        Ordered by (distance, global index) along each row.

    Examples
    --------
    >>> import numpy as np
    >>> a = (np.array([[1.0, 2.0]]), np.array([[7, 3]]), np.array([[0, 1]]))
    >>> b = (np.array([[1.0, 1.5]]), np.array([[2, 9]]), np.array([[1, 1]]))
    >>> merge_neighbors([a, b], 3)
    (array([[1. , 1. , 1.5]]), array([[2, 7, 9]]), array([[1, 0, 1]]))
    """
    if len(parts) == 1:
        dist, ind, lab = parts[0]
        return dist[:, :k], ind[:, :k], lab[:, :k]
    dist = np.concatenate([part[0] for part in parts], axis=1)
    ind = np.concatenate([part[1] for part in parts], axis=1)
    lab = np.concatenate([part[2] for part in parts], axis=1)
    # lexsort's last key is the primary one: distance first, then global index
    order = np.lexsort((ind, dist), axis=1)[:, :k]
    return (np.take_along_axis(dist, order, axis=1),
            np.take_along_axis(ind, order, axis=1),
            np.take_along_axis(lab, order, axis=1))


def drop_self(neighbors, first_row, k):
    """Remove each training query from its own neighbour list (``kneighbors(X=None)``).

    Parameters
    ----------
    neighbors : tuple (distances, indices, labels)
        The k+1 nearest training rows of training rows ``first_row, first_row + 1, ...``.
    first_row : int
        Global index of the first query row.
    k : int

    Returns
    -------
    distances, indices, labels : ndarrays of shape (n_queries, k)
        Each row without its own index; where the row is not among its k+1 nearest (more
        than k exact duplicates with lower indices) the last neighbour is dropped instead,
        which gives the same list: the first k of the order with the row itself removed.
    """
    dist, ind, lab = neighbors
    own = first_row + np.arange(ind.shape[0])
    keep = ind != own[:, None]
    keep[keep.all(axis=1), -1] = False
    shape = (ind.shape[0], k)
    return dist[keep].reshape(shape), ind[keep].reshape(shape), lab[keep].reshape(shape)
