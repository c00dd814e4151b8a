"""The distance-metric registry: names, parameters and what each becomes for the kernels.

Every supported metric reduces to one of the kernel metric codes of
:mod:`nearkit._kernels.distances`.  Mahalanobis becomes Euclidean after a whitening
transform ``x -> x @ W`` with ``W @ W.T == VI``, applied once to the training data at fit and
to each batch of queries.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from nearkit._kernels.distances import CHEBYSHEV, EUCLIDEAN, MANHATTAN, MINKOWSKI, whiten

#: accepted metric names and the canonical name each stands for
METRIC_ALIASES = {
    "euclidean": "euclidean",
    "l2": "euclidean",
    "manhattan": "manhattan",
    "cityblock": "manhattan",
    "l1": "manhattan",
    "chebyshev": "chebyshev",
    "infinity": "chebyshev",
    "minkowski": "minkowski",
    "mahalanobis": "mahalanobis",
}

_CODES = {"euclidean": EUCLIDEAN, "manhattan": MANHATTAN, "chebyshev": CHEBYSHEV,
          "minkowski": MINKOWSKI, "mahalanobis": EUCLIDEAN}


class SingularCovarianceWarning(UserWarning):
    """The covariance behind a Mahalanobis metric is singular; its pseudo-inverse is used."""


@dataclass(frozen=True)
class ResolvedMetric:
    """A metric as the search engines see it.

    Attributes
    ----------
    name : str
        Effective metric name (``'minkowski'`` with p=1, 2 or inf becomes ``'manhattan'``,
        ``'euclidean'`` or ``'chebyshev'``).
    code : int
        Kernel metric code.
    p : float
        Minkowski exponent (meaningful for ``code == MINKOWSKI`` only).
    params : dict
        Effective parameters (``{'p': p}`` for Minkowski, ``{'VI': VI}`` for Mahalanobis).
    whitening : ndarray of shape (n_features, rank) or None
        ``W`` with ``W @ W.T == VI`` for Mahalanobis (a learned or given covariance of
        rank r < n_features gives r columns).
    """

    name: str
    code: int
    p: float
    params: dict = field(default_factory=dict)
    whitening: np.ndarray | None = None

    def prepare(self, X):
        """Map points into the space where the kernel metric applies (float64, C order).

        For Mahalanobis, ``X @ W`` row by row in a fixed order, so a point maps to the same
        bits whatever batch it comes in (see :func:`nearkit._kernels.distances.whiten`).
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        if self.whitening is None:
            return X
        out = np.empty((X.shape[0], self.whitening.shape[1]))
        whiten(X, self.whitening, out)
        return out

    @property
    def is_true_metric(self):
        """False for Minkowski with 0 < p < 1, which breaks the triangle inequality."""
        return not (self.code == MINKOWSKI and self.p < 1)


def resolve_metric(metric, p, metric_params, X):
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

    Returns
    -------
    ResolvedMetric
    """
    if metric not in METRIC_ALIASES:
        raise ValueError(
            f"Unknown metric {metric!r}; expected one of {sorted(METRIC_ALIASES)}."
        )
    name = METRIC_ALIASES[metric]
    params = dict(metric_params or {})
    if name == "mahalanobis":
        unknown = set(params) - {"V", "VI"}
        if unknown or len(params) > 1:
            raise ValueError(
                "metric_params for 'mahalanobis' must be None, {'VI': inverse covariance} or "
                f"{{'V': covariance}}; got keys {sorted(params)}."
            )
        VI, whitening = _mahalanobis(params, X)
        return ResolvedMetric("mahalanobis", EUCLIDEAN, 2.0, {"VI": VI}, whitening)
    if params:
        raise ValueError(
            f"metric_params are not used by metric {metric!r}; got keys {sorted(params)} "
            "(pass the Minkowski exponent as p=...)."
        )
    if name == "minkowski":
        if p == 1:
            name = "manhattan"
        elif p == 2:
            name = "euclidean"
        elif np.isinf(p):
            name = "chebyshev"
        else:
            return ResolvedMetric("minkowski", MINKOWSKI, float(p), {"p": float(p)})
    return ResolvedMetric(name, _CODES[name], 2.0 if name == "euclidean" else float(p))


def _mahalanobis(params, X):
    """(VI, W) with ``W @ W.T == VI``, from one eigendecomposition."""
    n_samples, n_features = X.shape
    if "VI" in params:
        VI = _square_matrix(params["VI"], "VI", n_features)
        VI = (VI + VI.T) / 2
        return VI, _whitening(VI)
    if "V" in params:
        V = _square_matrix(params["V"], "V", n_features)
        source = "the given covariance V"
    else:
        if n_samples < 2:
            raise ValueError(
                "metric='mahalanobis' learns the covariance of the training data, which needs "
                f"at least 2 samples (n_samples = {n_samples}); pass metric_params={{'VI': ...}}."
            )
        V = np.atleast_2d(np.cov(X, rowvar=False))
        source = "the covariance of the training data"
    eigval, eigvec = np.linalg.eigh((V + V.T) / 2)
    # the rank test of np.linalg.matrix_rank: eigenvalues below this are rounding noise
    tol = np.abs(eigval).max(initial=0.0) * n_features * np.finfo(np.float64).eps
    keep = eigval > tol
    rank = int(keep.sum())
    if rank < n_features:
        warnings.warn(
            f"Mahalanobis: {source} is singular (rank {rank} < {n_features} features); "
            "using its pseudo-inverse, so directions without variance are ignored.",
            SingularCovarianceWarning,
            stacklevel=4,
        )
    basis = eigvec[:, keep]
    VI = (basis / eigval[keep]) @ basis.T
    # whitening straight from V's eigenvectors: rank columns, the null directions dropped
    return (VI + VI.T) / 2, np.ascontiguousarray(basis / np.sqrt(eigval[keep]))


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


def _whitening(VI):
    """W with W @ W.T == VI, for a symmetric positive semi-definite VI."""
    eigval, eigvec = np.linalg.eigh(VI)
    scale = max(np.abs(eigval).max(initial=0.0), np.finfo(float).tiny)
    if eigval.min(initial=0.0) < -1e-10 * scale:
        raise ValueError(
            "The Mahalanobis matrix VI must be positive semi-definite; its smallest eigenvalue "
            f"is {eigval.min():.3g}."
        )
    return np.ascontiguousarray(eigvec * np.sqrt(np.clip(eigval, 0.0, None)))
