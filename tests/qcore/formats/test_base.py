"""The format interface every view reads: level grids that decode the codes, the local-spacing reference, errors."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze
from qcore.formats import FORMATS

NON_INT = [name for name in FORMATS if name != "int"]


def _tensor() -> np.ndarray:
    x = np.random.default_rng(7).standard_normal((8, 512)).astype(np.float32)
    x[:, ::37] *= 6.0  # outliers: percentile ranges clip them
    x[2, 9] = np.nan
    return x


def _analysis(name: str):
    fmt = FORMATS[name]
    scheme = QuantScheme(bits=fmt.bits or 8, format=name, granularity="tensor" if fmt.block_sizes else "channel")
    return analyze(_tensor(), scheme, "percentile" if fmt.calibrated else "minmax", percentile=99.0)


@pytest.mark.parametrize("name", NON_INT)
def test_scaled_levels_agree_with_the_level_table(name: str) -> None:
    """Where a format states its levels as a unit grid times a row scale, that is its level table (up to an offset)."""
    enc = _analysis(name).encoding
    if getattr(enc, "unit_levels", None) is None:
        pytest.skip(f"{name} lists its levels per row")
    idx = np.arange(enc.rows.n_rows)
    table = enc.level_grid(idx)  # (rows, n_sub, levels)
    scale = enc.level_scale if enc.level_scale.ndim == 2 else enc.level_scale[:, None]  # one per sub-block or row
    assert scale.shape == table.shape[:2]
    scaled = enc.unit_levels[None, None, :] * scale[:, :, None]
    offset = table[:, :, :1] - scaled[:, :, :1]
    np.testing.assert_allclose(table, scaled + offset, rtol=1e-12, atol=1e-12 * np.abs(table).max())


@pytest.mark.parametrize("name", list(FORMATS))
def test_level_grid_decodes_every_code(name: str) -> None:
    """``level_grid(rows)[row, sub-block, level index]`` is each element's round trip; shape (rows, n_sub, levels)."""
    a = _analysis(name)
    enc, rows = a.encoding, a.rows
    grid = enc.level_grid(np.arange(rows.n_rows))
    n_sub = grid.shape[1]
    assert grid.shape == (rows.n_rows, n_sub, enc.levels_total) and rows.values.shape[1] % n_sub == 0
    assert n_sub == {"q4_k": 8, "q5_k": 8, "q6_k": 16}.get(name, 1)
    sub = np.arange(rows.values.shape[1]) * n_sub // rows.values.shape[1]
    decoded = grid[np.arange(rows.n_rows)[:, None], sub[None, :], enc.level_rows().astype(np.intp)]
    present = rows.finite_mask
    x_hat = enc.dequantized_rows()
    np.testing.assert_allclose(decoded[present], x_hat[present], rtol=2e-7, atol=0)


def _brute_reference(a) -> tuple[float, np.ndarray]:
    """``(1/N) sum_inside Delta^2/12`` with ``Delta`` the spacing of the distinct levels around each value."""
    enc, rows = a.encoding, a.rows
    grid = enc.level_grid(np.arange(rows.n_rows))
    n_sub, length = grid.shape[1], rows.values.shape[1]
    per_row = np.zeros(rows.n_rows)
    for r in range(rows.n_rows):
        for j in range(n_sub):
            x = rows.values[r, j * length // n_sub : (j + 1) * length // n_sub]
            levels = np.unique(grid[r, j])
            k = np.clip(np.searchsorted(levels.astype(np.float32), x, side="right"), 1, levels.size - 1)
            lo, hi = np.float32(enc.clip_min[r]), np.float32(enc.clip_max[r])
            inside = (x >= lo) & (x <= hi)  # NaN is never inside
            per_row[r] += float(np.sum(np.where(inside, levels[k] - levels[k - 1], 0.0) ** 2)) / 12.0
    return float(per_row.sum() / rows.count.sum()), per_row / np.maximum(rows.count, 1)


@pytest.mark.parametrize("name", NON_INT)
def test_round_mse_reference_is_the_local_level_spacing(name: str) -> None:
    """Every format reports a finite reference: ``Delta_i^2/12`` of the cell holding each value inside the range."""
    a = _analysis(name)
    whole, per_row = _brute_reference(a)
    # NF4 with double quantization picks codes with the exact absmax, then decodes with the quantized one: a value
    # can sit past its level's neighbour, where the core takes the neighbour's cell
    rtol = 1e-4 if name == "nf4_dq" else 1e-9
    assert np.isfinite(a.report.round_mse_reference) and whole > 0
    assert a.report.round_mse_reference == pytest.approx(whole, rel=rtol)
    np.testing.assert_allclose(a.report.rows.round_mse_reference, per_row, rtol=max(rtol, 1e-9))


def test_local_reference_predicts_the_rounding_error_of_dense_data() -> None:
    """Values spread evenly over many levels round with about the reference's error."""
    x = np.random.default_rng(1).uniform(-1, 1, (64, 4096)).astype(np.float32)
    for name in ("fp8_e4m3", "fp6_e2m3", "mxfp8_e4m3", "nf4", "log2"):
        fmt = FORMATS[name]
        scheme = QuantScheme(bits=fmt.bits or 8, format=name, granularity="group" if fmt.block_sizes else "tensor",
                             axis=1, group_size=fmt.block or 128)  # fmt: skip
        r = analyze(x, scheme, "minmax").report
        assert r.round_mse == pytest.approx(r.round_mse_reference, rel=0.1), name


def test_reference_on_a_grid_by_hand() -> None:
    """log2 levels {0, +-1/8 .. +-1}: 0.7 lies in [0.5, 1) (Delta 0.5), 0.3 in [0.25, 0.5) (Delta 0.25)."""
    x = np.array([0.7, 0.3, -0.7, 1.0], dtype=np.float32)
    a = analyze(x, QuantScheme(bits=3, format="log2"), "minmax")
    grid = np.unique(a.encoding.level_grid(np.array([0]))[0, 0])
    np.testing.assert_array_equal(grid, [-1, -0.5, -0.25, 0, 0.25, 0.5, 1])
    # 1.0 is the top level: the cell above it does not exist, it takes the end cell's spacing 0.5
    assert a.report.round_mse_reference == pytest.approx((0.25 + 0.0625 + 0.25 + 0.25) / 12 / 4, rel=1e-12)


@pytest.mark.parametrize(
    ("option", "text"),
    [
        ({"reduce_range": True}, "fp8_e4m3 does not take a reduced range"),
        ({"narrow_range": True}, "fp8_e4m3 does not take a narrow range"),
        ({"signed": False}, "fp8_e4m3 does not take unsigned codes"),
    ],
)
def test_int_only_options_are_named_in_the_error(option: dict, text: str) -> None:
    with pytest.raises(QuantOptionError, match=text):
        FORMATS["fp8_e4m3"].scheme_for(QuantScheme(bits=8, **option))


def test_round_trip_at_the_float32_limit_stays_finite() -> None:
    """A level computed in float64 may round just past float32's max (E4M3 at scale max/448): clamped, not inf."""
    import warnings

    fmax = np.finfo(np.float32).max
    x = np.array([[fmax, -fmax, 1.0, 0.5], [2.0, -fmax, 3e38, 0.0]], np.float32)
    encoding = analyze(x, QuantScheme(bits=8, format="fp8_e4m3")).encoding
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = encoding.round_trip(np.array([fmax, -fmax, 0.0]), 0)
    np.testing.assert_array_equal(out, np.array([fmax, -fmax, 0.0], np.float32))
