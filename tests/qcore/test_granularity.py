"""Rows: one code path for every granularity."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, to_rows


def test_tensor_rows() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    r = to_rows(x, QuantScheme())
    assert r.values.shape == (1, 12) and r.values.dtype == np.float32 and not r.values.flags.writeable
    assert (r.min[0], r.max[0], r.absmax[0], r.count[0]) == (0.0, 11.0, 11.0, 12)
    assert r.finite_mask is None and not r.has_missing and r.size == 12


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_channel_rows_follow_pytorch_layout(axis: int) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 5)).astype(np.float32)
    r = to_rows(x, QuantScheme(granularity="channel", axis=axis))
    expected = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    np.testing.assert_array_equal(r.values, expected)
    np.testing.assert_array_equal(r.max, expected.max(axis=1))
    np.testing.assert_array_equal(r.restore(r.values), x)


def test_group_rows_pad_a_short_last_group() -> None:
    x = np.arange(14, dtype=np.float32).reshape(2, 7)
    r = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=3))
    # each line of 7 -> groups [0,1,2], [3,4,5], [6, pad, pad]
    assert r.values.shape == (6, 3) and r.padded == 4 and r.has_missing
    np.testing.assert_array_equal(r.values[2], [6, np.nan, np.nan])
    np.testing.assert_array_equal(r.count, [3, 3, 1, 3, 3, 1])
    np.testing.assert_array_equal(r.max, [2, 5, 6, 9, 12, 13])
    np.testing.assert_array_equal(r.restore(r.values), x)
    per_row = np.arange(6, dtype=np.float64)
    np.testing.assert_array_equal(r.expand(per_row), [[0, 0, 0, 1, 1, 1, 2], [3, 3, 3, 4, 4, 4, 5]])


def test_group_along_axis_0() -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    r = to_rows(x, QuantScheme(granularity="group", axis=0, group_size=2))
    np.testing.assert_array_equal(r.values, [[0, 3], [6, 9], [1, 4], [7, 10], [2, 5], [8, 11]])
    np.testing.assert_array_equal(r.restore(r.values), x)


def test_nonfinite_become_missing() -> None:
    x = np.array([[1.0, np.nan], [np.inf, -2.0]], dtype=np.float32)
    r = to_rows(x, QuantScheme(granularity="channel", axis=0))
    assert r.nonfinite_count == 2 and r.size == 2
    np.testing.assert_array_equal(r.min, [1.0, -2.0])
    np.testing.assert_array_equal(r.count, [1, 1])
    assert np.isnan(r.values[1, 0])  # +inf stored as NaN (missing), never as a value


def test_dtypes_computed_in_float32() -> None:
    for dt in (np.float16, np.float64, np.int8, np.uint8):
        r = to_rows(np.array([1, 2, 3], dtype=dt), QuantScheme())
        assert r.values.dtype == np.float32 and r.max[0] == 3.0 and r.max.dtype == np.float64


@pytest.mark.parametrize(
    ("x", "scheme", "message"),
    [
        (np.array([], dtype=np.float32), QuantScheme(), "empty"),
        (np.array([np.nan, np.inf]), QuantScheme(), "no finite"),
        (np.array(["a"]), QuantScheme(), "real numeric"),
        (np.ones(4), QuantScheme(granularity="channel"), "at least 2 dimensions"),
        (np.ones((2, 2)), QuantScheme(granularity="channel", axis=2), "axis 2 is out of range"),
        (np.ones((2, 2)), QuantScheme(granularity="group", axis=-3), "out of range"),
    ],
)
def test_bad_input(x: np.ndarray, scheme: QuantScheme, message: str) -> None:
    with pytest.raises(QuantOptionError, match=message):
        to_rows(x, scheme)


@pytest.mark.parametrize("group", [1, 7, 16, 32, 64, 65])
def test_row_extrema_of_short_rows_equal_the_reductions(monkeypatch, group: int) -> None:
    """Short rows are reduced through transposed blocks (several of them here): min/max unchanged, NaN ignored."""
    import qcore.granularity as granularity

    monkeypatch.setattr(granularity, "ROW_BLOCK", 256)
    x = np.random.default_rng(group).standard_normal((50, 130)).astype(np.float32)
    x[3, :] = np.nan  # with group 1 .. 65: whole missing rows
    x[7, 5], x[9, 0] = np.inf, -np.inf
    r = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=group))
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="All-NaN"):
        lo, hi = np.nanmin(r.values, axis=1), np.nanmax(r.values, axis=1)
    np.testing.assert_array_equal(r.min, np.nan_to_num(lo, nan=0.0))
    np.testing.assert_array_equal(r.max, np.nan_to_num(hi, nan=0.0))
    clean = to_rows(np.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-2.0), QuantScheme(granularity="group", axis=1,
                    group_size=group))  # fmt: skip
    lo, hi = granularity.row_reduce(clean.values, np.minimum, np.maximum)
    np.testing.assert_array_equal(lo, clean.values.min(axis=1))
    np.testing.assert_array_equal(hi, clean.values.max(axis=1))
