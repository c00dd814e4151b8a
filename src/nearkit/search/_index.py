"""What every search engine shares: the query contract over raw points.

An index is built from raw training points and a resolved metric; it owns its coordinate
space (the metric's preparation, :mod:`nearkit.search._space`) and its threads, and answers
``query(Q, k)`` with true distances and training indices of shape (n_queries, k), each row
ordered by (distance, index).  ``Q=None`` means the training points themselves, each
excluding itself.  Each engine declares the surrogate kinds it can search (``kinds``);
:data:`nearkit.search.VALID_METRICS` is derived from them.
"""

from __future__ import annotations

import functools

import numpy as np

from nearkit._kernels.select import empty_heap
from nearkit.search import _numpy, _warmup
from nearkit.search._radius import default_max_pairs, radius_limit, sort_rows
from nearkit.search._space import prepare
from nearkit.search._threads import build_lock, resolve_n_jobs


class Index:
    """Base of the search engines.

    Parameters
    ----------
    X : float64 ndarray of shape (n_samples, n_features)
        Raw training points (finite, C order).
    metric : ResolvedMetric
        The metric (and its fitted preparation) from :func:`nearkit.metrics.resolve_metric`.
    n_threads : int or None, default=None
        Threads for building (None: all cores).
    """

    #: engine name, as ``algorithm=`` takes it
    name = ""
    #: width of the prepared training points (set by ``_build``; the rank for Mahalanobis)
    n_features = None
    #: surrogate kinds (:mod:`nearkit._kernels.distances`) the engine can search
    kinds = frozenset()
    #: set once the engine's kernels are known to be compiled in this process
    _kernels_live = False
    #: False while the build has left work for the first search on the kernels
    #: (:meth:`_finish_build`; an engine that defers sets it in ``_build``)
    _built = True
    #: compiled kernel entry points for this index's serial calls (:mod:`nearkit.search._direct`)
    _entries = None

    def __init__(self, X, metric, *, n_threads=None):
        if metric.kernel.kind not in self.kinds:
            raise ValueError(
                f"The {self.name!r} engine does not support metric {metric.name!r}; engines "
                f"for it: {', '.join(valid_engines(metric.spec))}."
            )
        self.metric = metric
        self.n_samples = X.shape[0]
        threads = resolve_n_jobs(n_threads)
        self._build(prepare(metric, X, threads), threads)

    def __getstate__(self):
        # the kernels' entry points belong to this process (found again after unpickling)
        state = self.__dict__.copy()
        state.pop("_entries", None)
        return state

    def _direct_entries(self):
        """This index's dict of kernel entry points (see :func:`nearkit.search._direct.call`)."""
        if self._entries is None:
            self._entries = {}
        return self._entries

    @classmethod
    def on_prepared(cls, points, metric, n_threads, layout=None):
        """An index over points already in the metric's space (for engines that delegate,
        and for 'auto', which prepared them to choose); ``layout`` is the points'
        ``partition`` when already cut (the tile engines reuse it)."""
        index = cls.__new__(cls)
        index.metric = metric
        index.n_samples = points.shape[0]
        index._build(points, n_threads, layout)
        return index

    def _build(self, points, n_threads, layout=None):
        """Build the engine's structures over prepared ``points``."""
        raise NotImplementedError

    @property
    def data(self):
        """The prepared training points, shape (n_samples, n_prepared_features), C order."""
        raise NotImplementedError

    def query(self, Q, k, *, n_threads=None):
        """(distances, indices) of the k nearest training points of each row of ``Q``.

        Parameters
        ----------
        Q : float64 ndarray of shape (n_queries, n_features) or None
            Raw queries (finite, C order); None means the training points, each excluding
            itself (then ``k < n_samples``).
        k : int
            1 <= k <= n_samples.
        n_threads : int or None
            Search threads (None: all cores).

        Returns
        -------
        distances : ndarray of shape (n_queries, k)
        indices : int64 ndarray of shape (n_queries, k)
            Rows ordered by (distance, index).
        """
        threads = resolve_n_jobs(n_threads)
        points, self_index = self._queries(Q, threads)
        if self._answer_with_numpy(points.shape[0]):
            found = _numpy.kneighbors(self.data, points, self_index, k, self.metric.kernel,
                                      threads, self._numpy_space)
            _warmup.start(*self._kernel_path())  # after the answer: it takes a core
            return found
        out = empty_heap(points.shape[0], k)
        if points.shape[0]:
            if not (self._built or self._kernels_live):
                # the kernels load on a background thread while this one finishes the build
                # (LLVM's part of the load releases the GIL; measured on loan_approval, a
                # new process with a warm cache, 7 alternating runs: the first predict's
                # median 0.219 -> 0.170 s)
                _warmup.preload(*self._kernel_path())
            self._complete()
            self._search(points, self_index, k, threads, out)
        return out.dist, out.ind

    def _answer_with_numpy(self, n_queries):
        """Whether a search is answered by NumPy while the kernels load (see
        :mod:`nearkit.search._warmup`)."""
        if self._kernels_live:
            return False
        kernels = self._kernel_path()[1]
        if _warmup.live(kernels):
            self._kernels_live = True  # (kernels never unload)
            return False
        return _numpy.supports(self.metric.kernel) and _warmup.numpy_answers(
            kernels, n_queries * self.n_samples * self.n_features,
            lambda: self._numpy_space is not None)

    @functools.cached_property
    def _numpy_space(self):
        """The NumPy engine's :func:`~nearkit.search._numpy.expansion_space` of the training
        points, found at the first call that asks (its limits differ by an order of
        magnitude between the float32 expansion and pairs measured one by one)."""
        return _numpy.expansion_space(self.data, self.metric.kernel)

    def _kernel_path(self):
        """(name in :data:`nearkit._compile.PATHS`, the dispatchers a search calls)."""
        raise NotImplementedError

    def query_radius(self, Q, radius, *, n_threads=None, sort_results=False, max_pairs=None):
        """Every training point within ``radius`` of each row of ``Q``, as a ragged answer.

        Parameters
        ----------
        Q : float64 ndarray of shape (n_queries, n_features) or None
            Raw queries; None means the training points, each excluding itself.
        radius : float
            Largest distance included (``distance <= radius``).
        n_threads : int or None
            Search threads (None: all cores).
        sort_results : bool
            Rows ordered by (distance, index) if True, by index otherwise.
        max_pairs : int or None
            Most (query, neighbour) pairs to return; a ValueError beyond (None: half the
            available memory's worth, see :func:`~nearkit.search._radius.default_max_pairs`).

        Returns
        -------
        offsets : int64 ndarray of shape (n_queries + 1,)
            Row ``i`` is ``dist[offsets[i]:offsets[i + 1]]``.
        dist : ndarray of shape (n_pairs,)
        ind : int64 ndarray of shape (n_pairs,)
        """
        threads = resolve_n_jobs(n_threads)
        points, self_index = self._queries(Q, threads)
        max_pairs = default_max_pairs() if max_pairs is None else int(max_pairs)
        r_limit = radius_limit(float(radius), self.metric.kernel)
        self._complete()
        offsets, dist, ind = self._radius(points, self_index, r_limit, float(radius), threads,
                                          max_pairs)
        dist, ind = sort_rows(offsets, dist, ind, sort_results)
        return offsets, dist, ind

    def _queries(self, Q, n_threads):
        """Prepared queries and the training index each must not list."""
        if Q is None:
            return self.data, np.arange(self.n_samples, dtype=np.int64)
        return prepare(self.metric, Q, n_threads), np.full(Q.shape[0], -1, dtype=np.int64)

    def _complete(self):
        """Do the work the build deferred to the first search on the kernels
        (:meth:`_finish_build`), once: concurrent first searches wait for one of them, and
        find ``_built`` set only after everything it covers is filled in (searches that read
        a gemm index's tiles half-filled by another had answered wrongly)."""
        if self._built:
            return
        with build_lock():
            if not self._built:
                self._finish_build()
                self._built = True

    def _finish_build(self):
        """The part of the build an engine defers until a search needs it (the first
        searches of a process are answered from :attr:`data` by NumPy while the kernels
        load); called by :meth:`_complete`."""

    def _search(self, points, self_index, k, n_threads, out):
        """Fill the :class:`~nearkit._kernels.select.Heap` ``out`` (rows sorted) with the k
        nearest training points of each prepared query, never listing ``self_index``."""
        raise NotImplementedError


    def _radius(self, points, self_index, r_limit, radius, n_threads, max_pairs):
        """Ragged (offsets, dist, ind) of the points within ``radius`` of each prepared query
        (surrogates filtered at ``r_limit``), rows in query order."""
        raise NotImplementedError

    # -- persistence (:mod:`nearkit.io`) ---------------------------------------------------

    def _state(self):
        """The built index as ``(arrays, scalars)``: name -> ndarray, and name -> JSON value
        (numbers, strings, None), everything :meth:`_from_state` needs to answer queries
        (the deferred part of the build done first)."""
        self._complete()
        return {}, {"n_samples": self.n_samples}

    def _set_state(self, arrays, scalars):
        """Take the arrays and scalars of :meth:`_state` back (checked by the caller to be
        the dtypes and shapes :func:`check_state` names); subclasses extend it."""
        check_state({}, scalars, {}, {"n_samples": int})
        self.n_samples = scalars["n_samples"]

    @classmethod
    def _from_state(cls, metric, arrays, scalars):
        """The index :meth:`_state` described, over ``metric``, without building anything.

        Raises
        ------
        ValueError
            Naming the array or scalar that is missing or of the wrong shape or dtype.
        """
        index = cls.__new__(cls)
        index.metric = metric
        index._set_state(arrays, scalars)
        return index


def check_state(arrays, scalars, expected, scalar_types=None):
    """Raise a ValueError unless ``arrays`` holds exactly the arrays of ``expected`` (name ->
    (dtype, shape); in a shape, ``None`` stands for any length and a string for a length
    that must be the same wherever the string appears) and ``scalars`` a value of the given
    type for every name of ``scalar_types`` (name -> int or float).

    Returns the lengths the strings in the shapes stood for.
    """
    for name, kind in (scalar_types or {}).items():
        value = scalars.get(name)
        if type(value) is not kind:
            raise ValueError(f"The index state's scalar {name!r} must be {kind.__name__}; "
                             f"got {value!r}.")
    missing = [name for name in expected if name not in arrays]
    unexpected = sorted(set(arrays) - set(expected))
    if missing or unexpected:
        raise ValueError(f"The index state lacks the arrays {missing} or has unexpected "
                         f"ones {unexpected}.")
    sizes = {}
    for name, (dtype, shape) in expected.items():
        array = arrays[name]
        ok = array.dtype == np.dtype(dtype) and array.ndim == len(shape)
        for length, want in zip(array.shape, shape):
            if isinstance(want, str):
                want = sizes.setdefault(want, length)
            ok = ok and (want is None or length == want)
        if not ok:
            raise ValueError(f"Index array {name!r} has dtype {array.dtype} and shape "
                             f"{array.shape}; expected {np.dtype(dtype)} and "
                             f"{tuple(sizes.get(s, s) for s in shape)}.")
    return sizes


def check_links(name, values, low, high):
    """Raise a ValueError unless every entry of the integer array ``values`` (positions,
    permutations, child links of a stored index) lies in ``[low, high)``: the kernels index
    with them unchecked."""
    if values.size and (values.min() < low or values.max() >= high):
        raise ValueError(f"Index array {name!r} holds entries outside [{low}, {high}): the "
                         "index it describes is not one nearkit built.")


def valid_engines(spec):
    """Names of the engines that can search the metric of table row ``spec``."""
    from nearkit.search import ENGINES

    return [name for name, engine in ENGINES.items() if spec.kind in engine.kinds]
