"""Every script of ``examples/`` runs to the end (the documentation includes them verbatim).

Each runs in a fresh interpreter, as a reader would run it, and must exit with code 0 within
its time budget; the scripts assert their own claims (equal to scikit-learn, PyOD, one
machine).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
#: optional packages a script needs, by script name
NEEDS = {"dask_sharded": ("dask", "distributed")}
#: seconds each script may take (the first to run may also compile nearkit's kernels)
TIMEOUT = 180


def test_every_example_is_listed_in_the_docs():
    listed = (EXAMPLES.parent / "docs" / "examples").glob("*.rst")
    included = {line.split("examples/")[-1].strip() for page in listed
                for line in page.read_text().splitlines() if "literalinclude::" in line}
    assert included == {script.name for script in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_example_runs(script, tmp_path):
    for module in NEEDS.get(script.stem, ()):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{script.name} needs {module}")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{script.name} printed nothing"
