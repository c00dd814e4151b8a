"""The datasets of the nearkit benchmark: load, verify, describe, preprocess, imitate.

Five report datasets (:func:`list_datasets`), each a pinned file of a public GitHub repository
verified by sha256 before use; scikit-learn's bundled sets by name; any CSV by path; and
synthetic look-alikes of any size.

Files are looked for in ``data_home``, then ``$NEARKIT_DATA``, then the per-user cache, and a
missing one is downloaded from ``https://raw.githubusercontent.com/<repo>/<commit>/<path>``
(the base is replaced by ``$NEARKIT_DATA_URL`` when set).  Scaling and imputation are fitted
on training data only: :func:`make_preprocessor` returns them unfitted, for use inside
cross-validation.

Examples
--------
>>> from sklearn.model_selection import cross_val_score
>>> from sklearn.neighbors import KNeighborsClassifier
>>> from sklearn.pipeline import make_pipeline
>>> from nearkit.datasets import load_dataset, make_preprocessor
>>> wine = load_dataset("wine")
>>> model = make_pipeline(make_preprocessor(wine), KNeighborsClassifier())
>>> bool(cross_val_score(model, wine.X, wine.y, cv=5).mean() > 0.9)
True
"""

from nearkit.datasets._encoder import TableEncoder
from nearkit.datasets._errors import ChecksumError, DatasetNotFoundError, DownloadError, SchemaError
from nearkit.datasets._files import user_cache_dir
from nearkit.datasets._load import (
    DatasetStatus,
    check_dataset_name,
    dataset_from_frame,
    dataset_status,
    fetch_dataset,
    list_datasets,
    load_csv,
    load_dataset,
)
from nearkit.datasets._preprocess import make_preprocessor
from nearkit.datasets._synthetic import make_like
from nearkit.datasets._tables import Dataset

__all__ = [
    "ChecksumError",
    "Dataset",
    "DatasetNotFoundError",
    "DatasetStatus",
    "DownloadError",
    "SchemaError",
    "TableEncoder",
    "check_dataset_name",
    "dataset_from_frame",
    "dataset_status",
    "fetch_dataset",
    "list_datasets",
    "load_csv",
    "load_dataset",
    "make_like",
    "make_preprocessor",
    "user_cache_dir",
]
