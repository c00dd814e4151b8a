"""nearkit: exact k-nearest-neighbour estimators with numba kernels."""

from nearkit.classifier import KNNClassifier
from nearkit.impute import KNNImputer
from nearkit.io import load, save
from nearkit.model_selection import KNNClassifierCV, KNNRegressorCV
from nearkit.outliers import KNNOutlierDetector
from nearkit.regressor import KNNRegressor
from nearkit.unsupervised import NearestNeighbors

__all__ = [
    "KNNClassifier",
    "KNNClassifierCV",
    "KNNImputer",
    "KNNOutlierDetector",
    "KNNRegressor",
    "KNNRegressorCV",
    "NearestNeighbors",
    "__version__",
    "load",
    "save",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("nearkit")
except Exception:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
