"""The examples in the docstrings of every module of ``src/nearkit`` run as doctests.

So ``python -m pytest`` (the README's test command) checks them.  An example that needs the
five report datasets is marked ``# doctest: +SKIP`` in its docstring; it runs here when
``$NEARKIT_DATA`` holds them (the objects listed in :data:`NEED_REPORT_DATA`) and is skipped
otherwise.  Modules of an optional extra that is not installed (``nearkit.dask`` without
Dask) are skipped.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import numpy as np
import pytest
from conftest import real_data_available

import nearkit

#: docstrings whose skipped examples load the report datasets (run when they are present)
NEED_REPORT_DATA = {"nearkit.datasets._load.load_dataset"}

PACKAGE = Path(nearkit.__file__).resolve().parent


def _modules_with_examples():
    """Dotted names of the package's modules whose source holds a ``>>>`` example."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # an optional extra (nearkit[dask]) is not installed
        pytest.skip(f"{name} needs an optional package: {exc}")


def _tests(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [test for test in finder.find(module, module.__name__)
             if test.examples and test.name.startswith(module.__name__)]
    if real_data_available():
        for test in tests:
            if test.name in NEED_REPORT_DATA:
                for example in test.examples:
                    example.options.pop(doctest.SKIP, None)
    return tests


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = _import(name)
    tests = _tests(module)
    assert tests, f"{name} has '>>>' in its source but no docstring examples were found"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = []
    with np.printoptions(legacy=False):
        for test in tests:
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
