"""KNNImputer: missing values from the nearest rows, multi-threaded, in bounded memory."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.impute import KNNImputer as _SKLearnKNNImputer
from sklearn.impute._base import _get_mask
from sklearn.utils._missing import is_scalar_nan
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import FLOAT_DTYPES, check_is_fitted

from nearkit._base import validate_data
from nearkit._kernels.impute import impute_donors
from nearkit._kernels.select import INDEX_SENTINEL, empty_heap
from nearkit.search._threads import resolve_n_jobs, run_ranges
from nearkit.weights import average

#: rows imputed per batch: the donors of one batch are held at once (cells x k)
_BATCH_ROWS = 4096
#: below this many (row with a missing cell) x training-cell operations a batch is imputed on
#: the calling thread: measured in a loop, social_network_ads' 27 x 320 x 3 took 215 us on
#: one thread and 417 us handed to two, pima_diabetes' ~100 x 614 x 8 (491k) 790 us on one
#: and 721 us on two
SERIAL_IMPUTE_WORK = 250_000


class KNNImputer(_SKLearnKNNImputer):
    """Fill missing values from the k nearest training rows, as scikit-learn defines it.

    The same estimator as :class:`sklearn.impute.KNNImputer` (same parameters, output,
    ``add_indicator``, ``keep_empty_features`` and feature names), with nearkit's search:
    for each missing cell, the donors are the ``n_neighbors`` training rows nearest by the
    nan-Euclidean distance (over the coordinates both rows have, scaled up by the share of
    coordinates present) among those that have the cell's column, ranked by (distance,
    training index); the cell gets their mean, uniform or weighted by inverse distance.  A
    row with no coordinate in common with any donor gets the column's training mean.

    Unlike scikit-learn's, the search runs on ``n_jobs`` threads and holds one distance row
    per thread instead of (rows x training rows) distance blocks, and distances are summed
    exactly instead of through matrix products (they agree to rounding; under exact distance
    ties scikit-learn's choice of donor depends on its partition order, nearkit's on the
    index).

    Parameters
    ----------
    missing_values : int, float, str, np.nan or None, default=np.nan
        The placeholder for missing values.
    n_neighbors : int, default=5
        Donors per missing cell.
    weights : {'uniform', 'distance'} or callable, default='uniform'
        Donors weigh equally, by inverse distance (a donor at distance 0 takes the whole
        weight), or by a callable mapping the (n_cells, k) donor distances to weights.
    metric : {'nan_euclidean'}, default='nan_euclidean'
        The distance (the only one).
    copy : bool, default=True
        Impute a copy (False: in place where possible).
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` of the features with missing
        values at fit.
    keep_empty_features : bool, default=False
        Keep (as zeros) the features that were all missing at fit instead of dropping them.
    n_jobs : int or None, default=None
        Threads (None or -1: all cores).

    Attributes
    ----------
    indicator_ : MissingIndicator or None
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)

    Examples
    --------
    >>> import numpy as np
    >>> from nearkit import KNNImputer
    >>> X = [[1.0, 2.0, np.nan], [3.0, 4.0, 3.0], [np.nan, 6.0, 5.0], [8.0, 8.0, 7.0]]
    >>> KNNImputer(n_neighbors=2).fit_transform(X)
    array([[1. , 2. , 4. ],
           [3. , 4. , 3. ],
           [5.5, 6. , 5. ],
           [8. , 8. , 7. ]])
    """

    _parameter_constraints = {
        **_SKLearnKNNImputer._parameter_constraints,
        "metric": [StrOptions({"nan_euclidean"})],
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, missing_values=np.nan, n_neighbors=5, weights="uniform",
                 metric="nan_euclidean", copy=True, add_indicator=False,
                 keep_empty_features=False, n_jobs=None):
        super().__init__(missing_values=missing_values, n_neighbors=n_neighbors,
                         weights=weights, metric=metric, copy=copy,
                         add_indicator=add_indicator, keep_empty_features=keep_empty_features)
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        """Store the training rows (the donors).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows, missing values marked by ``missing_values``.
        y : ignored

        Returns
        -------
        self : KNNImputer
        """
        with np.errstate(over="ignore", invalid="ignore"):  # (see validate_data)
            super().fit(X, y)
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not a thread count; use None, -1 or a positive int.")
        fit_X = np.where(self._mask_fit_X, np.nan, self._fit_X).astype(np.float64)
        self._fit_XT = np.ascontiguousarray(fit_X.T)
        self._col_means = average(np.nan_to_num(fit_X.T), (~self._mask_fit_X.T).astype(float))
        return self

    def transform(self, X):
        """Impute every missing value of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_output_features)
            The features not all missing at fit (all of them with
            ``keep_empty_features=True``), then the indicator columns if asked for.
        """
        check_is_fitted(self)
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not a thread count; use None, -1 or a positive int.")
        finite = "allow-nan" if is_scalar_nan(self.missing_values) else True
        X = validate_data(self, X, accept_sparse=False, dtype=FLOAT_DTYPES,
                          force_writeable=True, ensure_all_finite=finite, copy=self.copy,
                          reset=False)
        mask = _get_mask(X, self.missing_values)
        valid = self._valid_mask
        X_indicator = self._transform_indicator(mask)
        rows = np.flatnonzero(mask[:, valid].any(axis=1))
        for start in range(0, len(rows), _BATCH_ROWS):
            self._impute_rows(X, mask, rows[start:start + _BATCH_ROWS])
        if self.keep_empty_features:
            Xc = X
            Xc[:, ~valid] = 0
        else:
            Xc = X[:, valid]
        return self._concatenate_indicator(Xc, X_indicator)

    def _impute_rows(self, X, mask, rows):
        """Fill the missing cells (of columns seen at fit) of ``X[rows]`` in place."""
        cells = mask[rows] & self._valid_mask
        cell_row, cell_col = np.nonzero(cells)
        cell_start = np.concatenate([[0], np.cumsum(cells.sum(axis=1))]).astype(np.int64)
        receivers = np.where(mask[rows], np.nan, X[rows]).astype(np.float64)
        k = min(self.n_neighbors, self._fit_X.shape[0])
        donors = empty_heap(len(cell_col), k)
        # small batches on the calling thread, as the search engines do
        work = len(rows) * self._fit_X.shape[0] * self._fit_X.shape[1]
        threads = resolve_n_jobs(self.n_jobs) if work >= SERIAL_IMPUTE_WORK else 1
        run_ranges(impute_donors, (self._fit_XT, self._mask_fit_X, receivers, cell_start,
                                   cell_col.astype(np.int64)),
                   len(rows), threads, tail=(donors,))
        found = donors.ind != INDEX_SENTINEL
        dist = np.where(found, donors.dist, np.nan)
        weights = self._donor_weights(dist, found)
        # missing donors (fewer than n_neighbors rows have the column) weigh 0 and add 0
        values = np.where(found, self._fit_X[np.where(found, donors.ind, 0), cell_col[:, None]],
                          0.0)
        imputed = average(values, weights)
        none = ~found.any(axis=1)  # no training row shares a coordinate: the column's mean
        imputed[none] = self._col_means[cell_col[none]]
        X[rows[cell_row], cell_col] = imputed

    def _donor_weights(self, dist, found):
        """scikit-learn's weights of the donors (zero where no donor was found)."""
        if self.weights == "uniform":
            return found.astype(np.float64)
        if self.weights == "distance":
            with np.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = np.isinf(w)
            rows = exact.any(axis=1)
            w[rows] = exact[rows]
        else:
            w = np.asarray(self.weights(dist), dtype=np.float64)
        w[np.isnan(w)] = 0.0
        return w

