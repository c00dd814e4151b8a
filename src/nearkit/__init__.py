"""nearkit: exact k-nearest-neighbour estimators with numba kernels.

The public names load on first use (``from nearkit import KNNClassifier`` imports the
classifier and what it needs, nothing else), so ``import nearkit`` itself costs little.
"""

import importlib

#: public name -> the module defining it
_EXPORTS = {
    "KNNClassifier": "nearkit.classifier",
    "KNNClassifierCV": "nearkit.model_selection",
    "KNNImputer": "nearkit.impute",
    "KNNOutlierDetector": "nearkit.outliers",
    "KNNRegressor": "nearkit.regressor",
    "KNNRegressorCV": "nearkit.model_selection",
    "NearestNeighbors": "nearkit.unsupervised",
    "load": "nearkit.io",
    "save": "nearkit.io",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'nearkit' has no attribute {name!r}")


def __dir__():
    return __all__


try:
    from importlib.metadata import version as _version

    __version__ = _version("nearkit")
except Exception:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
