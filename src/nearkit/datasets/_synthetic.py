"""Synthetic look-alikes of the datasets, at any size, for scale tests."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from nearkit.datasets._errors import DatasetNotFoundError
from nearkit.datasets._load import _normalise, load_dataset
from nearkit.datasets._registry import get_spec
from nearkit.datasets._tables import Dataset, class_summary

_CHUNK_ROWS = 1 << 16
#: generic generator: how far apart (in standard deviations) the class means are, per feature,
#: along the first ``_GENERIC_INFORMATIVE`` features.
_GENERIC_SHIFT = 1.0
_GENERIC_INFORMATIVE = 3


@dataclass
class _Model:
    """Per-class Gaussians in standardised units, and how to map back to the data's units."""

    feature_names: list[str]
    class_fractions: np.ndarray
    means: list[np.ndarray]
    factors: list[np.ndarray]
    center: np.ndarray
    scale: np.ndarray
    integer: np.ndarray
    low: np.ndarray
    high: np.ndarray
    default_rows: int
    how: str


def make_like(
    name: str,
    n_samples: int | None = None,
    random_state: int | None = 0,
    *,
    data_home: str | os.PathLike | None = None,
) -> Dataset:
    """A synthetic dataset shaped like a real one: same features, same class balance.

    If the real file is present (searched as in :func:`load_dataset`, never downloaded), each
    class is a multivariate Gaussian with the mean and covariance of that class in the real
    ``X`` after median imputation and standardisation; samples are mapped back to the real
    units, integer-valued columns (counts, 0/1 and one-hot columns) are rounded and every
    column is clipped to its real range, so marginals and ties are roughly those of the data.
    Otherwise a generic generator is used: per class an isotropic unit Gaussian, the class
    means 1.0 apart along each of the first three features (``info["generator"]`` says which).
    The class counts are exact: ``round(n_samples * fraction)`` by largest remainder.

    Parameters
    ----------
    name : str
        A report dataset (:func:`list_datasets`) or a bundled set (``'iris'``, ...).
    n_samples : int, default=None
        Number of rows; ``None`` gives as many rows as the real ``X`` has.
    random_state : int or None, default=0
        Seed of the local ``numpy.random.default_rng``.
    data_home : str or path-like, default=None
        Folder searched first for the real file.

    Returns
    -------
    Dataset
        Named ``f"{name}_like"``; ``frame`` is ``X`` plus a ``target`` column.

    Raises
    ------
    ChecksumError
        If the real file is present but corrupt (it is not used, and not silently replaced
        by the generic generator either).

    Examples
    --------
    >>> from nearkit.datasets import make_like
    >>> big = make_like("iris", n_samples=1_000_000)
    >>> big.X.shape, big.info["class_counts"]
    ((1000000, 4), {0: 333334, 1: 333333, 2: 333333})
    """
    name = _normalise(name)
    try:
        model = _fit(load_dataset(name, data_home=data_home, download=False))
    except DatasetNotFoundError:
        model = _generic(name)
    n_samples = model.default_rows if n_samples is None else int(n_samples)
    if n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}")
    rng = np.random.default_rng(random_state)
    y = rng.permutation(np.repeat(np.arange(len(model.class_fractions)), _counts(model, n_samples)))
    X = _sample(model, y, rng)
    X_frame = pd.DataFrame(X, columns=model.feature_names, copy=False)
    counts, balance, balance_text = class_summary(y)
    info = {
        "name": f"{name}_like",
        "like": name,
        "synthetic": True,
        "generator": model.how,
        "random_state": random_state,
        "n_rows": n_samples,
        "n_features": X.shape[1],
        "feature_names": list(model.feature_names),
        "class_counts": counts,
        "class_balance": balance,
        "positive_fraction": balance.get(1, 0.0),
        "is_full": False,
    }
    description = "\n".join(
        [
            f"{name}_like: synthetic look-alike of {name} ({n_samples:,} rows, seed {random_state})",
            f"Generator: {model.how}",
            f"Features ({X.shape[1]}): {', '.join(model.feature_names)}",
            f"Class balance: {balance_text}",
        ]
    )
    return Dataset(
        name=f"{name}_like",
        frame=X_frame.assign(target=y),
        X=X_frame,
        y=y,
        target="class drawn with the real class balance",
        description=description,
        info=info,
    )


def _counts(model: _Model, n_samples: int) -> np.ndarray:
    exact = model.class_fractions * n_samples
    counts = np.floor(exact).astype(np.int64)
    remainder = n_samples - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    return counts


def _fit(real: Dataset) -> _Model:
    X = real.X.to_numpy(np.float64, copy=True)
    medians = np.nanmedian(X, axis=0)
    rows, columns = np.nonzero(np.isnan(X))
    X[rows, columns] = medians[columns]
    center = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (X - center) / scale
    classes = np.unique(real.y)
    means, factors, fractions = [], [], []
    for label in classes:
        Zc = Z[real.y == label]
        means.append(Zc.mean(axis=0))
        covariance = np.cov(Zc, rowvar=False) if len(Zc) > 1 else np.eye(Z.shape[1])
        values, vectors = np.linalg.eigh(np.atleast_2d(covariance))
        factors.append(vectors * np.sqrt(np.clip(values, 0.0, None)))
        fractions.append(len(Zc) / len(Z))
    source = real.info.get("file") or real.info.get("origin", real.name)
    return _Model(
        feature_names=list(real.X.columns),
        class_fractions=np.array(fractions),
        means=means,
        factors=factors,
        center=center,
        scale=scale,
        integer=np.all(X == np.round(X), axis=0),
        low=X.min(axis=0),
        high=X.max(axis=0),
        default_rows=len(X),
        how=(
            f"per-class Gaussian fitted to the standardised X of {source} (median-imputed), "
            "mapped back to its units, integer-valued columns rounded, clipped to the real range"
        ),
    )


def _generic(name: str) -> _Model:
    spec = get_spec(name)
    d = len(spec.feature_names)
    shift = np.zeros(d)
    shift[:_GENERIC_INFORMATIVE] = _GENERIC_SHIFT
    return _Model(
        feature_names=spec.feature_names,
        class_fractions=np.array([1.0 - spec.positive_fraction, spec.positive_fraction]),
        means=[np.zeros(d), shift],
        factors=[np.eye(d), np.eye(d)],
        center=np.zeros(d),
        scale=np.ones(d),
        integer=np.zeros(d, dtype=bool),
        low=np.full(d, -np.inf),
        high=np.full(d, np.inf),
        default_rows=spec.n_rows - spec.n_duplicates,
        how=(
            f"generic (the {spec.filename} file was not found): an isotropic unit Gaussian per "
            f"class, class means {_GENERIC_SHIFT} apart on each of the first "
            f"{_GENERIC_INFORMATIVE} features; real feature names and class balance only"
        ),
    )


def _sample(model: _Model, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the rows in fixed-size chunks, so memory stays at the output plus one chunk."""
    d = len(model.feature_names)
    X = np.empty((len(y), d), dtype=np.float64)
    rounded = np.flatnonzero(model.integer)
    # (chunk, d) @ (d, d) products are too small to gain from BLAS threads, which only contend.
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, len(y), _CHUNK_ROWS):
            labels = y[start : start + _CHUNK_ROWS]
            Z = rng.standard_normal((len(labels), d))
            for label, (mean, factor) in enumerate(zip(model.means, model.factors)):
                rows = labels == label
                Z[rows] = Z[rows] @ factor.T + mean
            chunk = Z * model.scale + model.center
            chunk[:, rounded] = np.round(chunk[:, rounded])
            np.clip(chunk, model.low, model.high, out=chunk)
            X[start : start + len(labels)] = chunk
    return X
