"""grid_index: the bucket-table path and the keyed search agree with the original keyed searchsorted."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import grid
from qcore.grid import grid_index


def oracle_grid_index(values: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """The original implementation: int64 order keys of float32 patterns, rows offset by ``r 2^33``, one search."""
    n_rows, n_splits = splits.shape
    split32 = splits.astype(np.float32)
    split32 = np.where(split32 < splits, np.nextafter(split32, np.float32(np.inf)), split32)
    offsets = (np.arange(n_rows, dtype=np.int64) << 33)[:, None]

    def key(v: np.ndarray) -> np.ndarray:
        bits = np.ascontiguousarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    flat_splits = (key(split32) + offsets).ravel()
    flat_values = key(np.where(np.isnan(values), 0.0, values).astype(np.float32)) + offsets
    idx = np.searchsorted(flat_splits, flat_values.ravel(), side="right").reshape(values.shape)
    return idx - (np.arange(n_rows) * n_splits)[:, None]


#: Values on and next to bucket ends, signed zeros, subnormals, infinities and NaN.
SPECIAL = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.0, -1.0, 1.4142135, 1.5, 3.4e38, -3.4e38],
    dtype=np.float32,
)
BUCKET_ENDS = np.array([0x3F800000, 0x3F80FFFF, 0x3F810000, 0xBF80FFFF, 0x0000FFFF, 0x80010000], dtype=np.uint32)


@st.composite
def grids(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_rows = draw(st.integers(1, 3))
    length = draw(st.integers(0, 40))
    n_splits = draw(st.integers(1, 12))
    floats = st.floats(width=32, allow_nan=True, allow_infinity=True)
    values = draw(hnp.arrays(np.float32, (n_rows, length), elements=floats | st.sampled_from(list(SPECIAL))))
    pool = np.concatenate([SPECIAL[~np.isnan(SPECIAL)].astype(np.float64), BUCKET_ENDS.view(np.float32), [1e-300]])
    split_elems = st.floats(-3.4e38, 3.4e38, allow_nan=False) | st.sampled_from(list(pool))
    splits = draw(hnp.arrays(np.float64, (n_rows, n_splits), elements=split_elems))
    splits = np.sort(splits, axis=1)
    # some values are the splits themselves (as float32, below and above)
    s32 = splits.astype(np.float32)
    near = np.stack([s32, np.nextafter(s32, np.float32(-np.inf)), np.nextafter(s32, np.float32(np.inf))], axis=-1)
    values = np.concatenate([values, near.reshape(n_rows, -1)], axis=1)
    return values, splits


@pytest.mark.parametrize("min_length", [0, 1 << 40], ids=["bucket-table", "keyed-search"])
@settings(max_examples=150, deadline=None)
@given(case=grids())
def test_grid_index_matches_the_original(min_length: int, case: tuple[np.ndarray, np.ndarray]) -> None:
    values, splits = case
    saved = grid.TABLE_MIN_LENGTH
    grid.TABLE_MIN_LENGTH = min_length
    try:
        got = grid_index(values, splits)
    finally:
        grid.TABLE_MIN_LENGTH = saved
    expected = oracle_grid_index(values, splits)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_bucket_table_on_a_long_row_of_log2_splits() -> None:
    """The default path for a long row (table built, few values searched) against the original."""
    rng = np.random.default_rng(3)
    values = rng.standard_normal((2, grid.TABLE_MIN_LENGTH), dtype=np.float32)
    values[0, :6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, 2.0**-149]
    pos = np.ldexp(np.sqrt(2.0), np.arange(-20, 3))
    splits = np.stack([np.concatenate([-pos[::-1], pos])] * 2)
    np.testing.assert_array_equal(grid_index(values, splits), oracle_grid_index(values, splits))
