"""The fitted part of preprocessing, as an unfitted scikit-learn pipeline.

Everything learned from data (medians, means, standard deviations) must be learned on the
training split only, so it is not applied by the loaders: put :func:`make_preprocessor` inside
the cross-validation, in front of the classifier.
"""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from nearkit.datasets._registry import BUNDLED, SPECS, get_spec
from nearkit.datasets._tables import Dataset


def make_preprocessor(dataset: str | Dataset) -> Pipeline:
    """An unfitted pipeline mapping ``Dataset.X`` to a standardised float64 array.

    - ``pima_diabetes``: ``SimpleImputer(strategy="median")`` then ``StandardScaler()``.  Only
      Glucose, BloodPressure, SkinThickness, Insulin and BMI hold NaN in ``X`` (the file's zeros
      that mean "missing"), so the imputer only changes those columns; it keeps every column
      (``keep_empty_features=True``) so the output lines up with ``X``.
    - the other report datasets and the bundled sets: ``StandardScaler()``.
    - a :class:`Dataset` from :func:`load_csv`: the imputer is added if its ``X`` has NaN.

    Parameters
    ----------
    dataset : str or Dataset
        A dataset name, or a loaded :class:`Dataset`.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; fit it on the training split only (e.g. as the first step of a pipeline
        passed to ``cross_val_score``).

    Examples
    --------
    >>> import numpy as np
    >>> from nearkit.datasets import make_preprocessor
    >>> pre = make_preprocessor("pima_diabetes")
    >>> [name for name, _ in pre.steps]
    ['impute', 'scale']
    >>> X = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, 6.0]])
    >>> pre.fit_transform(X).round(3).tolist()
    [[-1.225, 0.0], [0.0, -1.225], [1.225, 1.225]]
    """
    if isinstance(dataset, Dataset):
        name = dataset.name
        if name not in SPECS and name not in BUNDLED:
            return _pipeline(impute=bool(np.isnan(dataset.X.to_numpy(np.float64)).any()))
    else:
        name = dataset
    if name in BUNDLED:
        return _pipeline(impute=False)
    return _pipeline(impute=bool(get_spec(name).missing_zeros))


def _pipeline(*, impute: bool) -> Pipeline:
    steps = []
    if impute:
        steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    steps.append(("scale", StandardScaler()))
    return Pipeline(steps)
