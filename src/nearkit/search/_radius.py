"""What every engine shares to answer radius queries: the surrogate limit, the memory
budget, and ragged answers put together, checked and sorted."""

from __future__ import annotations

import os

import numpy as np

from nearkit._kernels.distances import HALF, IDENTITY, ROOT, SQRT, widen

#: bytes a returned pair may cost while answers are gathered (distance and index, buffers
#: that grow by doubling, the per-row arrays handed back): the budget's unit
BYTES_PER_PAIR = 64


def radius_limit(radius, kernel):
    """The widened surrogate of ``radius``: every point within the radius has a surrogate
    at most this (see :func:`~nearkit._kernels.distances.widen`)."""
    with np.errstate(over="ignore"):
        if kernel.correction == SQRT:
            r = radius * radius
        elif kernel.correction == ROOT:
            r = np.power(np.float64(radius), kernel.p)  # +inf beyond the float range
        elif kernel.correction == HALF:
            r = 2.0 * radius
        else:
            assert kernel.correction == IDENTITY
            r = radius
    return float(widen(float(r), kernel))


def default_max_pairs():
    """Pairs a radius query may return: half the memory available now, at
    :data:`BYTES_PER_PAIR` bytes each (at least a million)."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        available = 8 << 30
    return max(1 << 20, available // 2 // BYTES_PER_PAIR)


def join_blocks(blocks, max_pairs):
    """One ragged answer (offsets, dist, ind) from per-block kernel answers, in block order.

    Raises
    ------
    ValueError
        When a block stopped at its share of ``max_pairs`` (the answer would not fit).
    """
    if not all(complete for *_, complete in blocks):
        raise ValueError(
            f"The radius query would return more than {max_pairs:,} (query, neighbour) pairs, "
            "more than half the memory available holds: use a smaller radius, or query in "
            "smaller batches of rows."
        )
    counts = np.concatenate([np.diff(offsets) for offsets, *_ in blocks])
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return (offsets, np.concatenate([dist for _, dist, _, _ in blocks]),
            np.concatenate([ind for _, _, ind, _ in blocks]))


def reorder_rows(offsets, dist, ind, order):
    """The ragged answer of queries given in ``order`` (row r answers query order[r]), put
    back in query order."""
    counts = np.diff(offsets)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    new_counts = counts[inverse]
    new_offsets = np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64)
    # position p of new row j comes from offsets[inverse[j]] + (p - new_offsets[j])
    take = (np.repeat(offsets[:-1][inverse] - new_offsets[:-1], new_counts)
            + np.arange(new_offsets[-1]))
    return new_offsets, dist[take], ind[take]


def sort_rows(offsets, dist, ind, by_distance):
    """Each row sorted by (distance, index), or by index alone."""
    rows = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    keys = (ind, dist, rows) if by_distance else (ind, rows)
    order = np.lexsort(keys)
    return dist[order], ind[order]
