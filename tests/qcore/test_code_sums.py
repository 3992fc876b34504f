"""Exact float32 square sums of integer codes (qcore.code_sums)."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.code_sums import square_sums


@pytest.mark.parametrize(("largest", "length"), [(8, 4096), (128, 4096), (255, 4096), (255, 768), (255, 200)])
def test_square_sums_are_exact(largest, length):
    """float32 slices whose partial sums stay below 2^24: the exact integer sum of squares."""
    q = np.random.default_rng(7).integers(-largest, largest + 1, size=(2, 3, length)).astype(np.float32)
    q[0, 0] = largest  # the largest partial sums
    np.testing.assert_array_equal(square_sums(q, largest), (q.astype(np.int64) ** 2).sum(axis=-1))


def test_square_sums_refuse_slices_that_are_short_or_inexact():
    assert square_sums(np.ones((1, 2, 4100), dtype=np.float32), 255) is None  # 4100 = 4 x 1025: slices of 4
    assert square_sums(np.ones((1, 2, 1), dtype=np.float32), 32767) is None  # 16 bits: q^2 itself is not exact
