"""Every public name is listed in the API reference (docs/api/*.rst)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api"
MODULES = ["nearkit", "nearkit.search", "nearkit.metrics", "nearkit.weights",
           "nearkit.datasets", "nearkit.io", "nearkit.dask", "nearkit.bench",
           "nearkit.model_selection"]


def _listed():
    return " ".join(path.read_text() for path in API.glob("*.rst"))


@pytest.mark.parametrize("module", MODULES)
def test_public_names_are_in_the_api_reference(module):
    if module == "nearkit.dask":
        pytest.importorskip("dask.distributed")
    text = _listed()
    mod = importlib.import_module(module)
    # the module's __all__, or else the public functions and classes it defines
    names = getattr(mod, "__all__", None) or [
        name for name, obj in vars(mod).items()
        if not name.startswith("_") and getattr(obj, "__module__", None) == module]
    names = [name for name in names if not name.startswith("__")]
    missing = [name for name in names if not re.search(rf"\b{re.escape(name)}\b", text)]
    assert not missing, f"{module}: not in docs/api: {missing}"


def test_every_engine_class_is_in_the_api_reference():
    from nearkit.search import ENGINES

    text = _listed()
    missing = [cls.__name__ for cls in ENGINES.values() if cls.__name__ not in text]
    assert not missing, f"engine classes not in docs/api/search.rst: {missing}"
