"""nearkit: exact k-nearest-neighbour classification with numba kernels."""

from nearkit.classifier import KNNClassifier

__all__ = ["KNNClassifier", "__version__"]

try:
    from importlib.metadata import version as _version

    __version__ = _version("nearkit")
except Exception:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
