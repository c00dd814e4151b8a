"""How accuracy depends on k and the weighting scheme: ``KNNClassifierCV`` on each dataset.

On the training split of each dataset's first repeat (preprocessed as the timed runs are),
:class:`nearkit.KNNClassifierCV` scores k = 1..``cv_max_k`` x every weighting scheme of
:data:`nearkit.weights.WEIGHTS` (Gaussian with ``sigma = d_k``) by ``cv_folds``-fold
stratified cross-validation (shuffled, seeded by the run's seed) on accuracy, one neighbour
search per fold.  The record keeps the mean and standard deviation over folds of every
candidate, the best (k, weights) as ``GridSearchCV`` would choose it (the first of the best
mean scores in candidate order) and the seconds the search took (kernels compiled beforehand
on a few rows, so not counted).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from nearkit.bench.measure import settle, timed

logger = logging.getLogger("nearkit.bench")

#: rows of the uncounted warm-up search (compiles the kernels the search uses)
WARMUP_ROWS = 60


def _search(config, ks):
    from sklearn.model_selection import StratifiedKFold

    from nearkit import KNNClassifierCV
    from nearkit.weights import WEIGHTS

    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    return KNNClassifierCV(n_neighbors=ks, weights=list(WEIGHTS), refit=False, cv=folds)


def _warm_up(X_train, y_train, config):
    """An uncounted search on a few rows: compiles the kernels the real search uses."""
    small = np.random.default_rng(config.seed).permutation(len(y_train))[:WARMUP_ROWS]
    try:
        with warnings.catch_warnings():  # a rare class may have fewer rows than folds here
            warnings.simplefilter("ignore")
            _search(config, [1, 2]).fit(X_train[small], y_train[small])
    except ValueError:
        pass  # too few rows of each class to fold: the real search reports its own problems
    settle()


def cv_record(dataset, X_train, y_train, config):
    """Cross-validated accuracy of every (k, weights) on one dataset's training split.

    Parameters
    ----------
    dataset : str
        Dataset name.
    X_train : ndarray of shape (n_train, n_features)
        Preprocessed training rows.
    y_train : ndarray of shape (n_train,)
        Their labels.
    config : BenchConfig
        Reads ``cv_max_k``, ``cv_folds`` and ``seed``.

    Returns
    -------
    dict
        ``dataset``, ``status`` (``'ok'`` or ``'error'``) and ``note``; when ``'ok'`` also
        ``n_train``, ``folds``, ``scoring``, ``ks``, ``weights``, ``mean_test_score`` and
        ``std_test_score`` (scheme -> one score per k), ``best_params``, ``best_score``
        and ``search_s``.
    """
    record = {"dataset": dataset, "status": "ok", "note": None}
    # every fold must hold k_max training rows (stratified folds differ by a row per class)
    n_classes = len(np.unique(y_train))
    fold_rows = len(y_train) - len(y_train) // config.cv_folds - n_classes
    ks = list(range(1, max(1, min(config.cv_max_k, fold_rows)) + 1))
    _warm_up(X_train, y_train, config)
    try:
        search = _search(config, ks)
        _, seconds = timed(search.fit, X_train, y_train)
    except Exception as exc:  # reported in report.md; the timed study stands
        logger.error("cross-validation on %s failed: %s", dataset, exc)
        return {**record, "status": "error", "note": f"{type(exc).__name__}: {exc}"}
    results = search.cv_results_
    schemes = list(dict.fromkeys(p["weights"] for p in results["params"]))
    mean = {w: [None] * len(ks) for w in schemes}
    std = {w: [None] * len(ks) for w in schemes}
    for params, m, s in zip(results["params"], results["mean_test_score"],
                            results["std_test_score"]):
        position = ks.index(params["n_neighbors"])
        mean[params["weights"]][position] = float(m)
        std[params["weights"]][position] = float(s)
    return {**record, "n_train": int(len(y_train)), "folds": int(config.cv_folds),
            "scoring": "accuracy", "ks": ks, "weights": schemes, "mean_test_score": mean,
            "std_test_score": std,
            "best_params": {"n_neighbors": int(search.best_params_["n_neighbors"]),
                            "weights": str(search.best_params_["weights"])},
            "best_score": float(search.best_score_), "search_s": seconds}
