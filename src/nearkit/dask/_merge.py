"""Exact merging of per-shard top-k lists, in NumPy.

A shard answers a block of queries with true distances and *global* training indices, arrays
of shape (n_queries, k_shard) each row ordered by (distance, index), and the neighbours'
payloads (class codes, targets, or None), shape (n_queries, k_shard, ...).
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
    parts : sequence of tuple (distances, indices, payloads)
        Arrays of shape (n_queries, k_i) (payloads: (n_queries, k_i, ...) or None) for the
        same queries, indices global.
    k : int
        Number of neighbours to keep (at most ``sum(k_i)`` are available).

    Returns
    -------
    distances, indices, payloads : ndarrays of shape (n_queries, min(k, sum(k_i)))
        Ordered by (distance, global index) along each row (payloads None if they were).

    Examples
    --------
    >>> import numpy as np
    >>> a = (np.array([[1.0, 2.0]]), np.array([[7, 3]]), np.array([[0, 1]]))
    >>> b = (np.array([[1.0, 1.5]]), np.array([[2, 9]]), np.array([[1, 1]]))
    >>> merge_neighbors([a, b], 3)
    (array([[1. , 1. , 1.5]]), array([[2, 7, 9]]), array([[1, 0, 1]]))
    """
    if len(parts) == 1:
        dist, ind, payload = parts[0]
        return dist[:, :k], ind[:, :k], None if payload is None else payload[:, :k]
    dist = np.concatenate([part[0] for part in parts], axis=1)
    ind = np.concatenate([part[1] for part in parts], axis=1)
    # lexsort's last key is the primary one: distance first, then global index
    order = np.lexsort((ind, dist), axis=1)[:, :k]
    payload = None
    if parts[0][2] is not None:
        payload = np.concatenate([part[2] for part in parts], axis=1)
        extra = (1,) * (payload.ndim - 2)
        payload = np.take_along_axis(payload, order.reshape(order.shape + extra), axis=1)
    return (np.take_along_axis(dist, order, axis=1), np.take_along_axis(ind, order, axis=1),
            payload)


def drop_self(neighbors, first_row, k):
    """Remove each training query from its own neighbour list (``kneighbors(X=None)``).

    Parameters
    ----------
    neighbors : tuple (distances, indices, payloads)
        The k+1 nearest training rows of training rows ``first_row, first_row + 1, ...``.
    first_row : int
        Global index of the first query row.
    k : int

    Returns
    -------
    distances, indices, payloads : ndarrays of shape (n_queries, k)
        Each row without its own index; where the row is not among its k+1 nearest (more
        than k exact duplicates with lower indices) the last neighbour is dropped instead,
        which gives the same list: the first k of the order with the row itself removed.
    """
    dist, ind, payload = neighbors
    own = first_row + np.arange(ind.shape[0])
    keep = ind != own[:, None]
    keep[keep.all(axis=1), -1] = False
    shape = (ind.shape[0], k)
    if payload is not None:
        payload = payload[keep].reshape(shape + payload.shape[2:])
    return dist[keep].reshape(shape), ind[keep].reshape(shape), payload
