"""The metric table: one row per distance metric, read by everything else.

Each row (:class:`MetricSpec`) gives a metric's name and aliases, how the kernels fold
feature differences into the surrogate they rank by and correct it into the distance
(:mod:`nearkit._kernels.distances`), the preparation applied to the points first, and the
``metric_params`` it takes.  Which engines can search a metric follows from the surrogate
kind each engine declares (:data:`nearkit.search.VALID_METRICS`).  The estimators'
parameter constraints, ``algorithm='auto'``, ``nearkit bench`` and the tests read this table;
adding a metric is a row here plus its reference in ``tests/reference.py``.

:func:`resolve_metric` turns a user's ``(metric, p, metric_params)`` and the training data
into a :class:`ResolvedMetric`: the kernel record plus the fitted preparation (the
whitening of Mahalanobis, the unit rows of cosine), which the search index applies to the
training points and to every query.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from nearkit._kernels import distances as kd
from nearkit._kernels.distances import KernelMetric


class SingularCovarianceWarning(UserWarning):
    """The covariance behind a Mahalanobis metric is singular; its pseudo-inverse is used."""


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table.

    Attributes
    ----------
    name : str
        Canonical name.
    aliases : tuple of str
        Other accepted names.
    kind, correction : int
        Surrogate kind and correction of :mod:`nearkit._kernels.distances`.
    prepare : {None, 'whiten', 'normalize'}
        Map applied to every point before the search.
    params : tuple of str
        Accepted ``metric_params`` keys (at most one of them at a time).
    uses_p : bool
        Whether the Minkowski exponent ``p`` applies.
    sklearn_name : str
        The same metric's name in scikit-learn and SciPy (peers and tests).
    formula : str
        The distance, for documentation.
    """

    name: str
    aliases: tuple = ()
    kind: int = kd.SQUARES
    correction: int = kd.SQRT
    prepare: str | None = None
    params: tuple = ()
    uses_p: bool = False
    sklearn_name: str = ""
    formula: str = ""


#: the metric table: canonical name -> its row, a :class:`MetricSpec`
METRICS = {spec.name: spec for spec in (
    MetricSpec("euclidean", ("l2",), kd.SQUARES, kd.SQRT, sklearn_name="euclidean",
               formula="sqrt(sum_j (a_j - b_j)^2)"),
    MetricSpec("manhattan", ("cityblock", "l1"), kd.ABS, kd.IDENTITY, sklearn_name="manhattan",
               formula="sum_j |a_j - b_j|"),
    MetricSpec("chebyshev", ("infinity",), kd.MAX, kd.IDENTITY, sklearn_name="chebyshev",
               formula="max_j |a_j - b_j|"),
    MetricSpec("minkowski", (), kd.POWER, kd.ROOT, uses_p=True, sklearn_name="minkowski",
               formula="(sum_j |a_j - b_j|^p)^(1/p)"),
    MetricSpec("mahalanobis", (), kd.SQUARES, kd.SQRT, prepare="whiten", params=("VI", "V"),
               sklearn_name="mahalanobis", formula="sqrt((a - b)^T VI (a - b))"),
    MetricSpec("cosine", (), kd.SQUARES, kd.HALF, prepare="normalize", sklearn_name="cosine",
               formula="1 - a.b / (||a|| ||b||)"),
)}

#: every accepted metric name (canonical names and aliases) -> canonical name
METRIC_ALIASES = {alias: spec.name for spec in METRICS.values()
                  for alias in (spec.name, *spec.aliases)}

#: Minkowski exponents that are metrics of their own
_MINKOWSKI_SPECIAL = {1.0: "manhattan", 2.0: "euclidean", math.inf: "chebyshev"}


@dataclass(frozen=True, eq=False)
class ResolvedMetric:
    """A metric as the search engines see it.

    Attributes
    ----------
    name : str
        Effective metric name (``'minkowski'`` with p=1, 2 or inf becomes ``'manhattan'``,
        ``'euclidean'`` or ``'chebyshev'``).
    spec : MetricSpec
        Its row of the table.
    kernel : KernelMetric
        The kernel record (kind, correction, p).
    params : dict
        Effective parameters (``{'p': p}`` for Minkowski, ``{'VI': VI}`` for Mahalanobis).
    whitening : ndarray of shape (n_features, rank) or None
        ``W`` with ``W @ W.T == VI * scale**2`` for Mahalanobis (a covariance of rank
        r < n_features gives r columns); points map to ``(x * scale) @ W``.
    scale : float
        Power of two applied to points before whitening (1 unless the training data's
        magnitude is extreme, where it keeps the covariance finite).
    """

    name: str
    spec: MetricSpec
    kernel: KernelMetric
    params: dict = field(default_factory=dict)
    whitening: np.ndarray | None = None
    scale: float = 1.0

    def _state(self):
        """``(arrays, scalars)`` from which :meth:`_from_state` rebuilds this metric (for
        :mod:`nearkit.io`): the name, the kernel record, ``p``, the scale, and the
        Mahalanobis ``VI`` and whitening."""
        arrays = {"VI": self.params["VI"]} if "VI" in self.params else {}
        if self.whitening is not None:
            arrays["whitening"] = self.whitening
        scalars = {"name": self.name, "kind": self.kernel.kind,
                   "correction": self.kernel.correction, "p": self.kernel.p,
                   "scale": self.scale}
        return arrays, scalars

    @classmethod
    def _from_state(cls, arrays, scalars):
        """The metric :meth:`_state` described; a ValueError names what does not fit the
        metric table."""
        name = scalars.get("name")
        if name not in METRICS:
            raise ValueError(f"Unknown metric {name!r} in the stored metric; expected one of "
                             f"{sorted(METRICS)}.")
        spec = METRICS[name]
        p, scale = scalars.get("p"), scalars.get("scale")
        if (scalars.get("kind"), scalars.get("correction")) != (spec.kind, spec.correction) \
                or type(p) is not float or type(scale) is not float \
                or not (p > 0 and math.isfinite(p) and scale > 0):
            raise ValueError(f"The stored kernel record of metric {name!r} does not match the "
                             f"metric table: {scalars}.")
        whiten = spec.prepare == "whiten"
        W, VI = arrays.get("whitening"), arrays.get("VI")
        if set(arrays) != ({"whitening", "VI"} if whiten else set()) or whiten and not (
                W.dtype == VI.dtype == np.float64 and W.ndim == 2
                and VI.shape == (W.shape[0], W.shape[0])):
            raise ValueError(f"The stored {name!r} metric needs "
                             + ("a VI of shape (d, d) and a whitening of shape (d, rank), "
                                if whiten else "no arrays, ")
                             + f"float64; got {({k: v.shape for k, v in arrays.items()})}.")
        params = {"VI": VI} if whiten else {"p": p} if spec.uses_p else {}
        return cls(name, spec, KernelMetric(spec.kind, spec.correction, p), params, W, scale)

    @property
    def is_true_metric(self):
        """False for Minkowski with 0 < p < 1, which breaks the triangle inequality."""
        return not (self.name == "minkowski" and self.kernel.p < 1)

    @property
    def code(self):
        """The surrogate kind (kept for the benchmark's diagnostics)."""
        return self.kernel.kind


def check_p(p):
    """The Minkowski exponent as a float, or a ValueError naming it."""
    if isinstance(p, bool) or not isinstance(p, Real) or not p > 0:
        raise ValueError(f"p must be a number > 0 (np.inf for Chebyshev); got {p!r}.")
    return float(p)


def resolve_metric(metric, p, metric_params, X, sample_weight=None):
    """Resolve a user's metric specification against training data ``X``.

    Parameters
    ----------
    metric : str
        A key of :data:`METRIC_ALIASES`.
    p : float
        Minkowski exponent, > 0 (``np.inf`` for Chebyshev); used by ``'minkowski'`` only.
    metric_params : dict or None
        ``{'VI': ...}`` or ``{'V': ...}`` for Mahalanobis; nothing else is accepted.
    X : ndarray of shape (n_samples, n_features)
        Validated training data (to learn the Mahalanobis covariance).
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Frequency weights of the rows for the learned covariance (a row of weight w counts
        as w copies of it).

    Returns
    -------
    ResolvedMetric
    """
    if metric not in METRIC_ALIASES:
        raise ValueError(
            f"Unknown metric {metric!r}; expected one of {sorted(METRIC_ALIASES)}."
        )
    spec = METRICS[METRIC_ALIASES[metric]]
    params = dict(metric_params or {})
    unknown = set(params) - set(spec.params)
    if unknown or len(params) > 1:
        if not spec.params:
            raise ValueError(
                f"metric_params are not used by metric {metric!r}; got keys {sorted(params)}"
                + (" (pass the Minkowski exponent as p=...)." if spec.uses_p else ".")
            )
        raise ValueError(
            f"metric_params for {spec.name!r} must be None or one of "
            f"{{'VI': inverse covariance}}, {{'V': covariance}}; got keys {sorted(params)}."
        )
    if spec.prepare == "whiten":
        return _mahalanobis(spec, params, X, sample_weight)
    if spec.uses_p:
        p = check_p(p)
        if p in _MINKOWSKI_SPECIAL:
            spec = METRICS[_MINKOWSKI_SPECIAL[p]]
        else:
            return ResolvedMetric(spec.name, spec, KernelMetric(spec.kind, spec.correction, p),
                                  {"p": p})
    return ResolvedMetric(spec.name, spec, KernelMetric(spec.kind, spec.correction, 2.0))


def _mahalanobis(spec, params, X, sample_weight):
    """The Mahalanobis metric: (VI, W) from one eigendecomposition."""
    n_samples, n_features = X.shape
    kernel = KernelMetric(spec.kind, spec.correction, 2.0)
    if "VI" in params:
        VI = _square_matrix(params["VI"], "VI", n_features)
        VI = (VI + VI.T) / 2
        eigval, eigvec = np.linalg.eigh(VI)
        _check_psd(eigval, "VI")
        W = np.ascontiguousarray(eigvec * np.sqrt(np.clip(eigval, 0.0, None)))
        return ResolvedMetric(spec.name, spec, kernel, {"VI": VI}, W)
    scale = 1.0
    if "V" in params:
        V = _square_matrix(params["V"], "V", n_features)
        source = "the given covariance V"
    else:
        total = n_samples if sample_weight is None else float(sample_weight.sum())
        if total < 2:
            raise ValueError(
                "metric='mahalanobis' learns the covariance of the training data, which needs "
                f"at least 2 samples (n_samples = {total:g}); pass metric_params={{'VI': ...}}."
            )
        # data whose squares would overflow or underflow: the covariance of X * scale
        scale = magnitude_scale(X)
        V = _covariance(X * scale, sample_weight)
        source = "the covariance of the training data"
    eigval, eigvec = np.linalg.eigh((V + V.T) / 2)
    _check_psd(eigval, "V")
    # the rank test of np.linalg.matrix_rank: eigenvalues below this are rounding noise
    tol = np.abs(eigval).max(initial=0.0) * n_features * np.finfo(np.float64).eps
    keep = eigval > tol
    rank = int(keep.sum())
    if rank < n_features:
        warnings.warn(
            f"Mahalanobis: {source} is singular (rank {rank} < {n_features} features); "
            "using its pseudo-inverse, so directions without variance are ignored.",
            SingularCovarianceWarning,
            stacklevel=5,
        )
    basis = eigvec[:, keep]
    VI = (basis / eigval[keep]) @ basis.T
    with np.errstate(over="ignore"):
        VI = (VI + VI.T) / 2 * scale * scale
    # whitening straight from V's eigenvectors: rank columns, the null directions dropped
    W = np.ascontiguousarray(basis / np.sqrt(eigval[keep]))
    return ResolvedMetric(spec.name, spec, kernel, {"VI": VI}, W, scale)


def _covariance(X, sample_weight):
    """``np.cov`` of the rows, each counted ``sample_weight`` times (frequency weights)."""
    if sample_weight is None:
        return np.atleast_2d(np.cov(X, rowvar=False))
    total = sample_weight.sum()
    centred = X - sample_weight @ X / total
    return np.atleast_2d((centred * sample_weight[:, None]).T @ centred / (total - 1))


def magnitude_scale(X):
    """1, or a power of two bringing the largest magnitude of ``X`` to [0.5, 1) when it lies
    outside [2**-200, 2**200] (where products of two entries would leave the float range)."""
    big = float(np.abs(X).max(initial=0.0))
    if big == 0.0 or 2.0**-200 <= big <= 2.0**200:
        return 1.0
    return math.ldexp(1.0, -math.frexp(big)[1])


def _square_matrix(value, label, n_features):
    try:
        M = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metric_params[{label!r}] must be a numeric matrix: {exc}") from None
    if M.shape != (n_features, n_features):
        raise ValueError(
            f"metric_params[{label!r}] must have shape ({n_features}, {n_features}) to match "
            f"the {n_features} features; got shape {M.shape}."
        )
    if not np.all(np.isfinite(M)):
        raise ValueError(f"metric_params[{label!r}] contains NaN or infinity.")
    return M


def _check_psd(eigval, label):
    """Raise unless the symmetric matrix with eigenvalues ``eigval`` is positive
    semi-definite (to rounding)."""
    scale = max(np.abs(eigval).max(initial=0.0), np.finfo(float).tiny)
    if eigval.min(initial=0.0) < -1e-10 * scale:
        raise ValueError(
            f"The Mahalanobis matrix {label} must be positive semi-definite; its smallest "
            f"eigenvalue is {eigval.min():.3g}."
        )
