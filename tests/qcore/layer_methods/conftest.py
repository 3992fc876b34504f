"""Real layers of the bundled data for the layer-method tests."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.samples import load_pair


@pytest.fixture(scope="session")
def real_layer():
    """``get(name) -> (W, X)`` float32 of a bundled pair (cached)."""
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def get(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in cache:
            x, w, _ = load_pair(name)
            cache[name] = (np.asarray(w, dtype=np.float32), np.asarray(x, dtype=np.float32))
        return cache[name]

    return get
