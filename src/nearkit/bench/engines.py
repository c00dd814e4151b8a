"""Engines under test: small adapters behind one interface, found through :data:`ENGINES`.

Every adapter answers ``fit(X, y)``, ``kneighbors(Q, k) -> (distances, indices)`` of shape
``(n_queries, k)``, ``predict(Q)`` and ``predict_proba(Q)`` (columns in ``classes_`` order).
nearkit, scikit-learn and scikit-learn-intelex vote with their own estimators; the peers that
only search (FAISS, cKDTree, usearch, the NumPy textbook loop) vote with :func:`vote`, which
follows scikit-learn's rule: weights summed per class, ties to the smallest class label.

Metric names are those of nearkit's metric table (:data:`nearkit.metrics.METRICS`); each
adapter declares the ones it searches (:meth:`Engine.metric_names`) and the weighting schemes
it votes with.  The optional peers (FAISS, scikit-learn-intelex, usearch) are skipped with a
note when their package is not installed.

The nearkit adapter uses nearkit's public API only (``nearkit.KNNClassifier``), exactly as a
user would.  An engine is named ``family-variant``; a thread-limited instance of any engine is
named with a suffix, ``"nearkit-auto[1t]"`` (see :func:`parse_engine_name`).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nearkit.bench.vote import vote
from nearkit.metrics import METRICS

#: every metric of nearkit's table
ALL_METRICS = frozenset(METRICS)
#: the metrics computed on the raw coordinates (no preparation): the Minkowski family
MINKOWSKI_FAMILY = frozenset(name for name, spec in METRICS.items() if spec.prepare is None)


def minkowski_p(metric: str, p: float) -> float:
    """The Minkowski exponent of a metric of the Minkowski family.

    Parameters
    ----------
    metric : {'euclidean', 'manhattan', 'chebyshev', 'minkowski'}
        Metric name.
    p : float
        Exponent used when ``metric='minkowski'``.

    Returns
    -------
    float
        2, 1, ``inf`` or ``p``.
    """
    return {"euclidean": 2.0, "manhattan": 1.0, "chebyshev": np.inf}.get(metric, float(p))


class Engine(ABC):
    """One engine under test.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours that vote.
    weights : str, default='uniform'
        Weighting scheme of the vote.
    metric : str, default='euclidean'
        Distance metric.
    p : float, default=2
        Minkowski exponent (``metric='minkowski'``).
    metric_params : dict or None, default=None
        Extra metric arguments (Mahalanobis ``VI``).
    n_threads : int or None, default=None
        Threads the engine may use; None means all cores.  The harness also limits the
        thread pools it can see (:func:`nearkit.bench.measure.limit_threads`).
    **options
        Engine-specific options from its registry entry (e.g. ``algorithm``).
    """

    #: who wrote the engine: 'nearkit', 'scikit-learn', 'scikit-learn-intelex', 'faiss',
    #: 'scipy', 'usearch', 'numpy'.
    family: ClassVar[str] = ""
    #: module that must be importable for the engine to run (an optional extra).
    requires: ClassVar[str | None] = None
    #: whether the first call compiles code (its first-call time is measured apart).
    jit: ClassVar[bool] = False
    #: cap on the queries it is timed on (a deliberately slow engine); None means all.
    max_queries: ClassVar[int | None] = None
    metrics: ClassVar[frozenset[str]] = MINKOWSKI_FAMILY
    weight_schemes: ClassVar[frozenset[str]] = frozenset({"uniform", "distance"})

    def __init__(
        self,
        *,
        n_neighbors=5,
        weights="uniform",
        metric="euclidean",
        p=2.0,
        metric_params=None,
        n_threads=None,
        **options,
    ):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.p = p
        self.metric_params = metric_params
        self.n_threads = n_threads
        self.options = options

    @classmethod
    def unavailable(cls, **options) -> str | None:
        """Why the engine cannot run on this machine, or None when it can.

        Parameters
        ----------
        **options
            The registry options of the engine (e.g. ``algorithm``).
        """
        if cls.requires and importlib.util.find_spec(cls.requires) is None:
            return f"{cls.requires} is not installed (optional extra)"
        return None

    @classmethod
    def metric_names(cls, **options) -> frozenset[str]:
        """The metrics (names of :data:`nearkit.metrics.METRICS`) the engine searches.

        Parameters
        ----------
        **options
            The registry options of the engine (e.g. ``algorithm``).
        """
        return cls.metrics

    def unsupported(self) -> str | None:
        """Why the engine cannot run this setting (metric, weights), or None."""
        if self.metric not in self.metric_names(**self.options):
            return f"metric={self.metric!r} is not supported"
        if self.weights not in self.weight_schemes:
            return f"weights={self.weights!r} is not supported"
        return None

    @abstractmethod
    def fit(self, X, y):
        """Store or index the training data ``X`` (float64, C order) and labels ``y``."""

    @abstractmethod
    def kneighbors(self, Q, k=None):
        """``(distances, indices)`` of the ``k`` nearest training rows of each query."""

    def _store_labels(self, y):
        self.classes_, self._y_codes = np.unique(y, return_inverse=True)

    def _vote(self, Q):
        distances, indices = self.kneighbors(Q, self.n_neighbors)
        return vote(distances, indices, self._y_codes, len(self.classes_), self.weights)

    def predict(self, Q):
        """Predicted class labels of the queries."""
        return self.classes_[self._vote(Q)[1]]

    def predict_proba(self, Q):
        """Vote proportions of the queries, columns in ``classes_`` order."""
        return self._vote(Q)[0]

    def info(self) -> dict[str, Any]:
        """What the engine reports about itself after fit (e.g. the algorithm it chose)."""
        return {}


class _EstimatorEngine(Engine):
    """An engine that is a scikit-learn style estimator with its own vote."""

    def _make_estimator(self):  # pragma: no cover - abstract in spirit
        raise NotImplementedError

    def fit(self, X, y):
        self.estimator_ = self._make_estimator().fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def kneighbors(self, Q, k=None):
        distances, indices = self.estimator_.kneighbors(Q, k or self.n_neighbors)
        return np.asarray(distances, dtype=np.float64), np.asarray(indices, dtype=np.int64)

    def predict(self, Q):
        return self.estimator_.predict(Q)

    def predict_proba(self, Q):
        return self.estimator_.predict_proba(Q)

    def _metric_kwargs(self):
        kwargs = {"metric": self.metric, "metric_params": self.metric_params}
        if self.metric == "minkowski":
            kwargs["p"] = self.p
        return kwargs

    def _n_jobs(self):
        return -1 if self.n_threads is None else int(self.n_threads)


class NearkitEngine(_EstimatorEngine):
    """``nearkit.KNNClassifier`` with a given ``algorithm`` (the public API only)."""

    family = "nearkit"
    jit = True
    metrics = ALL_METRICS
    weight_schemes = frozenset({"uniform", "distance", "dudani", "gaussian"})

    @classmethod
    def unavailable(cls, **options):
        """None, or why this nearkit does not offer the engine's ``algorithm``.

        Asked through the public API: fitting no data fails on the parameter check first
        when the algorithm is unknown, and on the empty data otherwise.
        """
        import nearkit

        algorithm = options.get("algorithm", "auto")
        try:
            nearkit.KNNClassifier(algorithm=algorithm).fit(np.empty((0, 1)), np.empty(0))
        except (TypeError, ValueError) as exc:
            if "'algorithm' parameter" in str(exc) or "algorithm" in str(exc).split(";")[0]:
                return f"this nearkit does not offer algorithm={algorithm!r}"
        return None

    @classmethod
    def metric_names(cls, **options):
        """The metrics the ``algorithm`` searches (``nearkit.search.VALID_METRICS``; ``'auto'``
        every metric of the table)."""
        from nearkit.search import VALID_METRICS

        algorithm = options.get("algorithm", "auto")
        return frozenset(VALID_METRICS.get(algorithm, cls.metrics))

    def _make_estimator(self):
        import nearkit

        kwargs = {
            "n_neighbors": self.n_neighbors,
            "weights": self.weights,
            "algorithm": self.options.get("algorithm", "auto"),
            "n_jobs": self._n_jobs(),
            **self._metric_kwargs(),
        }
        if self.options.get("sigma") is not None:
            kwargs["sigma"] = self.options["sigma"]
        return nearkit.KNNClassifier(**kwargs)

    #: whether ``fit`` includes what an engine defers to its first kernel search (the gemm
    #: engine's tiles: :meth:`nearkit.search._index.Index._complete`), so that fit times
    #: compare what each engine builds before it can answer.  The first-call measurements
    #: (:func:`nearkit.bench.firstcall.startup_child`) turn it off: they time ``fit`` and the
    #: first ``predict`` as a user meets them.
    complete_index_at_fit = True

    def fit(self, X, y):
        super().fit(X, y)
        if self.complete_index_at_fit:
            self.estimator_._index._complete()
        return self

    def info(self):
        est = self.estimator_
        return {
            "algorithm_": getattr(est, "algorithm_", None),
            "effective_metric_": str(getattr(est, "effective_metric_", None)),
        }


class SklearnEngine(_EstimatorEngine):
    """scikit-learn's ``KNeighborsClassifier`` with a given ``algorithm``."""

    family = "scikit-learn"
    metrics = ALL_METRICS

    @classmethod
    def metric_names(cls, **options):
        """The metrics of nearkit's table that scikit-learn's ``algorithm`` accepts
        (``sklearn.neighbors.VALID_METRICS``; ``'auto'`` falls back to brute force)."""
        from sklearn.neighbors import VALID_METRICS

        algorithm = options.get("algorithm", "auto")
        valid = set(VALID_METRICS["brute" if algorithm == "auto" else algorithm])
        return frozenset(name for name in cls.metrics if METRICS[name].sklearn_name in valid)

    def _make_estimator(self):
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(
            n_neighbors=self.n_neighbors,
            weights=self.weights,
            algorithm=self.options.get("algorithm", "auto"),
            n_jobs=self._n_jobs(),
            **self._metric_kwargs(),
        )

    def info(self):
        # scikit-learn has no public attribute for the algorithm 'auto' resolved to.
        return {"algorithm_": getattr(self.estimator_, "_fit_method", None)}


class SklearnexEngine(SklearnEngine):
    """scikit-learn-intelex's ``KNeighborsClassifier`` (oneDAL kernels) with a given
    ``algorithm``.

    Only the settings oneDAL runs itself are offered (brute force: the Minkowski family and
    cosine; ``'auto'`` picks oneDAL's k-d tree for Euclidean data of at most 15 features,
    brute force otherwise; uniform and distance weights); on any other, scikit-learn-intelex
    falls back to scikit-learn, which is measured already.
    """

    family = "scikit-learn-intelex"
    requires = "sklearnex"
    metrics = frozenset({"euclidean", "manhattan", "chebyshev", "minkowski", "cosine"})

    @classmethod
    def metric_names(cls, **options):
        return cls.metrics

    def unsupported(self):
        reason = super().unsupported()
        if reason is None and self.metric == "minkowski" and self.p < 1:
            return "scikit-learn-intelex needs p >= 1"
        return reason

    def _make_estimator(self):
        from sklearnex.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(
            n_neighbors=self.n_neighbors,
            weights=self.weights,
            algorithm=self.options.get("algorithm", "auto"),
            n_jobs=self._n_jobs(),
            **self._metric_kwargs(),
        )


class FaissEngine(Engine):
    """FAISS ``IndexFlatL2`` (exact, float32) plus the shared vote."""

    family = "faiss"
    requires = "faiss"
    metrics = frozenset({"euclidean"})

    def _threads(self):
        import faiss

        return faiss, faiss.omp_get_max_threads()

    def fit(self, X, y):
        faiss, previous = self._threads()
        if self.n_threads:
            faiss.omp_set_num_threads(int(self.n_threads))
        try:
            self.index_ = faiss.IndexFlatL2(X.shape[1])
            self.index_.add(np.ascontiguousarray(X, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(previous)
        self._store_labels(y)
        return self

    def kneighbors(self, Q, k=None):
        faiss, previous = self._threads()
        if self.n_threads:
            faiss.omp_set_num_threads(int(self.n_threads))
        try:
            sq, indices = self.index_.search(
                np.ascontiguousarray(Q, dtype=np.float32), k or self.n_neighbors
            )
        finally:
            faiss.omp_set_num_threads(previous)
        return np.sqrt(np.maximum(sq, 0.0)).astype(np.float64), indices.astype(np.int64)


class CKDTreeEngine(Engine):
    """SciPy ``cKDTree`` plus the shared vote."""

    family = "scipy"

    def unsupported(self):
        reason = super().unsupported()
        if reason is None and minkowski_p(self.metric, self.p) < 1:
            return "cKDTree needs p >= 1"
        return reason

    def fit(self, X, y):
        from scipy.spatial import cKDTree

        self.tree_ = cKDTree(X)
        self._store_labels(y)
        return self

    def kneighbors(self, Q, k=None):
        k = k or self.n_neighbors
        distances, indices = self.tree_.query(
            Q, k=k, p=minkowski_p(self.metric, self.p), workers=self.n_threads or -1
        )
        shape = (np.asarray(Q).shape[0], k)
        return (
            np.asarray(distances, dtype=np.float64).reshape(shape),
            np.asarray(indices, dtype=np.int64).reshape(shape),
        )


class UsearchEngine(Engine):
    """usearch's exact search (``usearch.index.search(..., exact=True)``) plus the shared vote.

    Brute force over the float64 training rows as given; Euclidean through usearch's
    ``'l2sq'`` (squared distances, whose square root is returned) and cosine through
    ``'cos'``.  usearch reports float32 distances; the harness recomputes them.
    """

    family = "usearch"
    requires = "usearch"
    metrics = frozenset({"euclidean", "cosine"})
    _USEARCH_METRIC: ClassVar[dict[str, str]] = {"euclidean": "l2sq", "cosine": "cos"}

    def fit(self, X, y):
        self.X_ = np.ascontiguousarray(X, dtype=np.float64)
        self._store_labels(y)
        return self

    def kneighbors(self, Q, k=None):
        from usearch.index import search

        k = k or self.n_neighbors
        Q = np.ascontiguousarray(Q, dtype=np.float64)
        matches = search(self.X_, Q, k, metric=self._USEARCH_METRIC[self.metric], exact=True,
                         threads=int(self.n_threads or 0))
        # one query gives a flat answer
        shape = (Q.shape[0], k)
        distances = np.asarray(matches.distances, dtype=np.float64).reshape(shape)
        indices = np.asarray(matches.keys, dtype=np.int64).reshape(shape)
        if self.metric == "euclidean":
            distances = np.sqrt(np.maximum(distances, 0.0))
        return distances, indices


class NumpyTextbookEngine(Engine):
    """The textbook Python KNN: for each query, all distances, a full sort, the first k.

    This is the straightforward implementation the report contrasts with; it is timed on at
    most :attr:`max_queries` queries (its cost per query does not depend on the batch).
    """

    family = "numpy"
    max_queries = 200

    def fit(self, X, y):
        self.X_ = np.asarray(X, dtype=np.float64)
        self._store_labels(y)
        return self

    def kneighbors(self, Q, k=None):
        k = k or self.n_neighbors
        p = minkowski_p(self.metric, self.p)
        Q = np.asarray(Q, dtype=np.float64)
        out_d = np.empty((Q.shape[0], k))
        out_i = np.empty((Q.shape[0], k), dtype=np.int64)
        for row, query in enumerate(Q):
            diff = np.abs(self.X_ - query)
            if p == 2:
                dist = np.sqrt((diff * diff).sum(axis=1))
            elif p == 1:
                dist = diff.sum(axis=1)
            elif np.isinf(p):
                dist = diff.max(axis=1)
            else:
                dist = (diff**p).sum(axis=1) ** (1.0 / p)
            order = np.argsort(dist, kind="stable")[:k]
            out_i[row] = order
            out_d[row] = dist[order]
        return out_d, out_i


@dataclass(frozen=True)
class EngineSpec:
    """A registry entry: the adapter class, its options and a one-line description."""

    cls: type[Engine]
    description: str
    options: dict[str, Any] = field(default_factory=dict)


#: every engine the benchmark knows, by name; the default run uses all of them.
ENGINES: dict[str, EngineSpec] = {
    "nearkit-auto": EngineSpec(NearkitEngine, "nearkit, algorithm='auto'", {"algorithm": "auto"}),
    "nearkit-brute": EngineSpec(
        NearkitEngine, "nearkit, algorithm='brute'", {"algorithm": "brute"}
    ),
    "nearkit-gemm": EngineSpec(
        NearkitEngine, "nearkit, algorithm='gemm' (float32 GEMM candidates, exact re-rank)",
        {"algorithm": "gemm"},
    ),
    "nearkit-kd_tree": EngineSpec(
        NearkitEngine, "nearkit, algorithm='kd_tree'", {"algorithm": "kd_tree"}
    ),
    "nearkit-tiled": EngineSpec(
        NearkitEngine, "nearkit, algorithm='tiled' (gap-cut tiles, box pruning)",
        {"algorithm": "tiled"},
    ),
    "nearkit-projected": EngineSpec(
        NearkitEngine, "nearkit, algorithm='projected' (principal-component bounds)",
        {"algorithm": "projected"},
    ),
    "sklearn-auto": EngineSpec(
        SklearnEngine, "scikit-learn KNeighborsClassifier, algorithm='auto', n_jobs=-1",
        {"algorithm": "auto"},
    ),
    "sklearn-brute": EngineSpec(
        SklearnEngine, "scikit-learn, algorithm='brute', n_jobs=-1", {"algorithm": "brute"}
    ),
    "sklearn-kd_tree": EngineSpec(
        SklearnEngine, "scikit-learn, algorithm='kd_tree', n_jobs=-1", {"algorithm": "kd_tree"}
    ),
    "sklearn-ball_tree": EngineSpec(
        SklearnEngine, "scikit-learn, algorithm='ball_tree', n_jobs=-1",
        {"algorithm": "ball_tree"},
    ),
    "sklearnex-brute": EngineSpec(
        SklearnexEngine, "scikit-learn-intelex, algorithm='brute', n_jobs=-1",
        {"algorithm": "brute"},
    ),
    "sklearnex-auto": EngineSpec(
        SklearnexEngine, "scikit-learn-intelex, algorithm='auto', n_jobs=-1",
        {"algorithm": "auto"},
    ),
    "faiss-flatl2": EngineSpec(FaissEngine, "FAISS IndexFlatL2 (float32) + vote"),
    "scipy-ckdtree": EngineSpec(CKDTreeEngine, "SciPy cKDTree + vote"),
    "usearch-exact": EngineSpec(
        UsearchEngine, "usearch exact search (float64, brute force) + vote"
    ),
    "numpy-textbook": EngineSpec(
        NumpyTextbookEngine, "plain NumPy loop: all distances, argsort, vote"
    ),
}

_NAME = re.compile(r"^(?P<base>[\w.-]+?)(?:\[(?P<threads>\d+)t\])?$")


def parse_engine_name(name: str) -> tuple[str, int | None]:
    """Split an engine name into its registry name and thread count.

    Parameters
    ----------
    name : str
        A registry name, optionally with a thread suffix: ``"sklearn-auto[1t]"``.

    Returns
    -------
    base : str
        The registry name.
    n_threads : int or None
        The thread count; None means all cores.

    Examples
    --------
    >>> parse_engine_name("nearkit-auto[1t]")
    ('nearkit-auto', 1)
    >>> parse_engine_name("scipy-ckdtree")
    ('scipy-ckdtree', None)
    """
    match = _NAME.match(name)
    if match is None or match["base"] not in ENGINES:
        known = ", ".join(ENGINES)
        raise ValueError(f"unknown engine {name!r}; known engines: {known} (suffix [Nt] for N threads)")
    threads = match["threads"]
    return match["base"], (int(threads) if threads else None)


def resolve_setting(setting, X_train):
    """The setting engines get: for Mahalanobis, one ``VI`` from the training data for all.

    Parameters
    ----------
    setting : dict
        ``n_neighbors``, ``weights``, ``metric``, ``p`` (and maybe ``metric_params``).
    X_train : ndarray of shape (n_train, n_features)
        Training data of the split.

    Returns
    -------
    dict
        ``setting``, with ``metric_params={'VI': pinv(cov(X_train))}`` added for
        Mahalanobis when it has none, so every engine and the exactness check use one matrix.
    """
    if setting["metric"] != "mahalanobis" or (setting.get("metric_params") or {}).get("VI") is not None:
        return setting
    VI = np.linalg.pinv(np.cov(np.asarray(X_train, dtype=np.float64), rowvar=False))
    return {**setting, "metric_params": {"VI": VI}}


def engine_unavailable(name: str) -> str | None:
    """Why an engine (name as in :func:`parse_engine_name`) cannot run here, or None."""
    spec = ENGINES[parse_engine_name(name)[0]]
    return spec.cls.unavailable(**spec.options)


def engine_class(name: str) -> type[Engine]:
    """The adapter class behind an engine name (with or without a thread suffix)."""
    return ENGINES[parse_engine_name(name)[0]].cls


def make_engine(name: str, **setting) -> Engine:
    """A fresh, unfitted engine.

    Parameters
    ----------
    name : str
        Engine name, e.g. ``"sklearn-kd_tree"`` or ``"nearkit-auto[1t]"``.
    **setting
        ``n_neighbors``, ``weights``, ``metric``, ``p``, ``metric_params``.

    Returns
    -------
    Engine

    Examples
    --------
    >>> import numpy as np
    >>> engine = make_engine("numpy-textbook", n_neighbors=1).fit(np.eye(3), [0, 1, 1])
    >>> engine.predict(np.array([[0.9, 0.1, 0.0]])).tolist()
    [0]
    """
    base, n_threads = parse_engine_name(name)
    spec = ENGINES[base]
    return spec.cls(n_threads=n_threads, **setting, **spec.options)
