"""Fixtures shared by the core tests."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def write_pickled_npy() -> Callable[[Path, list], None]:
    """``write(path, items)``: a hostile ``.npy`` for the loaders to refuse, written byte by byte.

    What ``np.save`` writes for an object array: a ``|O`` header, then a pickle of the array (which
    would run any ``__reduce__`` of ``items`` if something unpickled it).
    """

    def write(path: Path, items: list) -> None:
        array = np.empty(len(items), dtype=object)
        array[:] = items
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": array.shape})
            pickle.dump(array, f, protocol=4)

    return write
