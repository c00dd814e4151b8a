"""Shared fixtures: small datasets with and without ties, and the real datasets when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The tests check the kernels: searches wait for them rather than being answered by the
# NumPy engine while they load (tests/test_warmup.py checks that engine and its hand-over).
os.environ.setdefault("NEARKIT_JIT", "wait")

DATA_DIR = os.environ.get("NEARKIT_DATA")


def real_data_available():
    return bool(DATA_DIR) and Path(DATA_DIR, "MANIFEST.md").exists()


requires_real_data = pytest.mark.skipif(
    not real_data_available(),
    reason="set NEARKIT_DATA to the folder holding the five CSVs (CI: ../shared/datasets)",
)


@pytest.fixture(scope="session")
def gaussian_data():
    """Continuous data: no distance ties, three classes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = rng.integers(0, 3, size=300)
    Q = rng.normal(size=(60, 4))
    return X, y, Q


@pytest.fixture(scope="session")
def tie_data():
    """A tiny integer grid with duplicated rows: many exact distance and vote ties."""
    rng = np.random.default_rng(1)
    X = rng.integers(0, 3, size=(120, 3)).astype(float)
    X = np.vstack([X, X[:40]])  # exact duplicates
    y = rng.integers(0, 2, size=X.shape[0])
    Q = np.vstack([rng.integers(0, 3, size=(40, 3)).astype(float), X[:10]])
    return X, y, Q
