"""The element-wise INT pass: the <x, x_hat> identity, its fallback, and the clip split skipped when nothing clips."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, qparams_from_range, to_rows
from qcore.elementwise_metrics import _uniform_sums, row_abs_max, row_count, row_sum

SCHEME = QuantScheme(bits=8, granularity="channel", axis=0)


def _direct_dot(rows, params) -> float:
    from qcore.quantize import fake_quantize_rows

    x_hat = fake_quantize_rows(rows.values, params)
    return float(np.sum(np.nan_to_num(rows.values).astype(np.float64) * np.nan_to_num(x_hat).astype(np.float64)))


def test_identity_dot_equals_the_direct_sum() -> None:
    x = np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32)
    x[3, 5] = np.nan
    rows = to_rows(x, SCHEME)
    params = qparams_from_range(rows.min, rows.max, SCHEME)
    fast, slow = _uniform_sums(rows, params, identity=True), _uniform_sums(rows, params, identity=False)
    assert fast is not None
    assert fast.dot == pytest.approx(slow.dot, rel=1e-13) and fast.dot == pytest.approx(_direct_dot(rows, params))
    for name in ("clip", "round", "max_error", "outside", "levels_used"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert fast.xh_sq == pytest.approx(slow.xh_sq, rel=1e-14)


def test_far_clipped_values_take_the_direct_sum() -> None:
    """fl32(x_hat - x) rounds for a value far beyond the grid: the identity is refused, the direct sum is used."""
    x = np.array([[0.01, -0.02, 0.015, 3.0e3]], dtype=np.float32)
    rows = to_rows(x, SCHEME)
    params = qparams_from_range(np.array([-0.02]), np.array([0.02]), SCHEME)
    assert _uniform_sums(rows, params, identity=True) is None
    direct = _uniform_sums(rows, params, identity=False)
    assert direct.dot == pytest.approx(_direct_dot(rows, params), rel=1e-15)
    assert direct.outside[0] == 1


@pytest.mark.parametrize("shrink", [1.0, 0.5])
def test_clip_split_only_where_a_row_can_clip(shrink: float) -> None:
    """Rows inside their range skip the split (no clipping error); clipped rows still split it."""
    x = np.random.default_rng(1).standard_normal((4, 500)).astype(np.float32)
    rows = to_rows(x, SCHEME)
    lo, hi = rows.min.copy(), rows.max.copy()
    lo[1], hi[1] = lo[1] * shrink, hi[1] * shrink  # only row 1 may clip
    params = qparams_from_range(lo, hi, SCHEME)
    sums = _uniform_sums(rows, params, identity=False)
    assert sums.clip[[0, 2, 3]].sum() == 0 and sums.outside[[0, 2, 3]].sum() == 0
    inside = (x[1] >= np.float32(params.clip_min[1])) & (x[1] <= np.float32(params.clip_max[1]))
    assert sums.outside[1] == np.count_nonzero(~inside) and (sums.clip[1] > 0) == (shrink < 1)


def test_level_values_once_or_per_block_give_the_same_sums(monkeypatch) -> None:
    import qcore.elementwise_metrics as em

    x = np.random.default_rng(2).standard_normal((40, 300)).astype(np.float32)
    scheme = QuantScheme(bits=6, symmetric=False, granularity="channel", axis=0)
    rows = to_rows(x, scheme)
    params = qparams_from_range(rows.min, rows.max, scheme)
    monkeypatch.setattr(em, "BLOCK_ELEMENTS", 1000)
    once = _uniform_sums(rows, params, identity=True)
    monkeypatch.setattr(em, "LEVEL_TABLE", 0)
    per_block = _uniform_sums(rows, params, identity=True)
    assert once is not None and per_block is not None and once.dot == per_block.dot
    for name in ("clip", "round", "max_error", "outside", "levels_used"):
        np.testing.assert_array_equal(getattr(once, name), getattr(per_block, name), err_msg=name)


@pytest.mark.parametrize("width", [1, 3, 16, 32, 48, 64, 65, 4096])
def test_row_abs_max_equals_the_reduction(width: int) -> None:
    """The maximum of short rows (transposed blocks) is exactly ``np.abs(a).max(axis=1)``, any width."""
    a = np.random.default_rng(width).standard_normal((37, width)).astype(np.float32)
    a[0, -1] = -50.0  # the largest magnitude negative, last
    np.testing.assert_array_equal(row_abs_max(a), np.abs(a).max(axis=1))


@pytest.mark.parametrize("width", [1, 3, 16, 32, 64, 65, 300])
def test_row_sums_and_counts_equal_the_reductions(width: int) -> None:
    """Short rows are summed as a product with ones: the sums agree to rounding, the counts exactly."""
    a = np.random.default_rng(width).standard_normal((37, width))
    np.testing.assert_allclose(row_sum(a), a.sum(axis=1), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(row_sum(a.astype(np.float32)), a.astype(np.float32).sum(axis=1, dtype=np.float64),
                               rtol=1e-13, atol=1e-13)  # fmt: skip
    mask = a > 0.3
    assert row_count(mask).dtype == np.int64
    np.testing.assert_array_equal(row_count(mask), np.count_nonzero(mask, axis=1))


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "nvfp4", "nf4"])
def test_sparse_level_count_of_whole_rows_equals_the_dense_table(monkeypatch, fmt: str) -> None:
    """Blocks of whole rows count their distinct levels by sorting (the sparse path): as the dense table."""
    import qcore.elementwise_metrics as em
    from qcore import analyze
    from qcore.formats import FORMATS

    x = (np.random.default_rng(4).standard_normal((24, 128)) ** 3).astype(np.float32)
    x[2, 3], x[5, :] = np.nan, np.nan
    encoding = analyze(x, QuantScheme(bits=FORMATS[fmt].bits, format=fmt), "minmax").encoding
    dense = encoding.report()
    monkeypatch.setattr(em, "DENSE_LEVELS", 1)
    monkeypatch.setattr(em, "BLOCK_ELEMENTS", 300)  # several blocks of whole rows
    sparse = encoding.report()
    assert 1 < dense.levels_used <= dense.levels_total and sparse.levels_used == dense.levels_used
    np.testing.assert_array_equal(sparse.rows.levels_used, dense.rows.levels_used)
