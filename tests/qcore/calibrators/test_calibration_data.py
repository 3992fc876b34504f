"""CalibrationData's row sorting into a reused buffer (qcore/calibrators/base.py)."""

from __future__ import annotations

import numpy as np

from qcore import QuantScheme
from qcore.calibrators import CalibrationData
from qcore.granularity import to_rows


def test_sorted_values_in_a_reused_buffer_equal_a_new_sort() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 50)).astype(np.float32)  # groups of 16: the last group padded (missing values)
    data = CalibrationData(to_rows(x, QuantScheme(bits=8, granularity="group", axis=1, group_size=16)))
    width = data.rows.values.shape[1]
    buffer = np.full((8, width + 3), np.float32(7.0))
    for rows in (slice(0, 8), slice(8, 13)):  # the second block is shorter: the buffer's first rows are used
        got = data.sorted_values(rows, buffer)
        expected = np.sort(data.rows.values[rows], axis=1)
        assert np.shares_memory(got, buffer)
        np.testing.assert_array_equal(got, expected)  # NaN (missing) last in both
    assert not np.shares_memory(data.sorted_values(slice(0, 4)), buffer)
