"""LOG2 format: power-of-two levels, log vs linear rounding, the grid path through analyze, its own metrics.

The numbers are those of the former log2 calibrator: with minmax the calibrated range is max|x|, as it used.
"""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze
from qcore.analysis import grid_index
from qcore.formats import get_format
from qcore.granularity import to_rows

S4 = QuantScheme(bits=4)


def test_levels_4bit():
    # sign apart, 2^(4-1) - 1 = 7 exponents below and at the full-scale exponent e = floor(log2 1.0) = 0
    x = np.array([1.0, -0.3, 0.2], dtype=np.float32)
    cal = analyze(x, S4.with_(format="log2")).encoding.calibration
    pos = [2.0**k for k in range(-6, 1)]
    np.testing.assert_array_equal(cal.grid[0], [-v for v in pos[::-1]] + [0.0] + pos)
    assert cal.hi[0] == 1.0 and cal.lo[0] == -1.0
    assert cal.details["levels"] == 15


@pytest.mark.parametrize(
    ("value", "log", "linear"),
    [
        (0.7, 0.5, 0.5),  # log2 0.7 = -0.51 -> 2^-1; below the midpoint 0.75
        (0.72, 1.0, 0.5),  # log2 0.72 = -0.47 -> 2^0; still below 0.75
        (-0.72, -1.0, -0.5),  # sign kept apart
        (0.8, 1.0, 1.0),
        (1.0, 1.0, 1.0),
        (2.0**-8, 0.0, 0.0),  # below 2^(-6 - 1/2) (log) and 2^-7 (linear): flushed to 0
        (0.0111, 2.0**-6, 2.0**-6),  # just above 2^-6.5 = 0.01105 (log) and 2^-7 (linear)
    ],
)
def test_rounding_log_vs_linear(value, log, linear):
    x = np.array([1.0, value], dtype=np.float32)
    for rounding, expected in (("log", log), ("linear", linear)):
        got = analyze(x, S4.with_(format="log2"), rounding=rounding).dequantized()[1]
        assert got == pytest.approx(expected), rounding


def test_underflow_boundaries():
    lo_log, lo_lin = 2.0 ** (-6.5), 2.0**-7
    x = np.array([1.0, lo_log * 0.999, lo_log * 1.001, lo_lin * 0.999, lo_lin * 1.001], dtype=np.float32)
    np.testing.assert_allclose(analyze(x, S4.with_(format="log2")).dequantized(), [1.0, 0.0, 2.0**-6, 0.0, 0.0])
    np.testing.assert_allclose(
        analyze(x, S4.with_(format="log2"), rounding="linear").dequantized(), [1.0, 2.0**-6, 2.0**-6, 0.0, 2.0**-6]
    )


def test_full_scale_floor_and_round():
    x = np.array([1.9, 0.5], dtype=np.float32)
    floor = analyze(x, S4.with_(format="log2")).encoding.calibration
    assert floor.grid[0, -1] == 1.0 and floor.hi[0] == 1.0
    rnd = analyze(x, S4.with_(format="log2"), full_scale="round").encoding.calibration
    assert rnd.grid[0, -1] == 2.0 and rnd.hi[0] == pytest.approx(1.9)


def test_unsigned_has_no_negative_levels():
    x = np.array([-1.0, 0.3, 4.0], dtype=np.float32)
    a = analyze(x, QuantScheme(bits=3, signed=False).with_(format="log2"))
    assert a.encoding.calibration.grid.shape == (1, 8) and a.encoding.calibration.grid.min() == 0.0  # 0 and 2^-4 .. 2^2
    np.testing.assert_allclose(a.dequantized(), [0.0, 0.25, 4.0])


def test_grid_path_matches_closed_form_per_channel_tiny_values():
    """``analyze`` maps values through ``grid_index``; it agrees with the frexp closed form.

    Regression: tiny per-channel rows used to merge splits when rows were offset in float.
    """
    rng = np.random.default_rng(0)
    for scale in (1e-6, 1.0, 1e4):
        x = (rng.standard_normal((8, 500)) * scale).astype(np.float32)
        x[:, 0] = 0.0
        for bits in (3, 8):
            scheme = QuantScheme(bits=bits, granularity="channel")
            for rounding in ("log", "linear"):
                a = analyze(x, scheme.with_(format="log2"), rounding=rounding)
                closed = get_format("log2", rounding=rounding).round_trip(
                    a.rows.values, a.encoding.calibration.details["top_exponent"], scheme
                )
                np.testing.assert_array_equal(a.dequantized(), closed.astype(np.float32))
                assert a.report.levels_total == a.encoding.calibration.grid.shape[1]


def test_grid_index_exact_for_distant_rows():
    splits = np.array([[-1e-30, 1e-30], [1e3, 2e3]])
    values = np.array([[0.0, 2e-30], [1500.0, 1e4]], dtype=np.float32)
    np.testing.assert_array_equal(grid_index(values, splits), [[1, 2], [1, 2]])


def test_own_metrics():
    x = np.random.default_rng(1).uniform(0.05, 1.0, 10_000).astype(np.float32) * np.sign(
        np.random.default_rng(2).standard_normal(10_000)
    ).astype(np.float32)
    x[0] = 1.0
    cal = analyze(x, QuantScheme(bits=5).with_(format="log2")).encoding.calibration
    rel = np.abs(analyze(x, QuantScheme(bits=5).with_(format="log2")).dequantized() - x) / np.abs(x)
    assert cal.details["mean_relative_error"] == pytest.approx(rel.mean(), rel=1e-6)
    assert rel.max() <= np.sqrt(2) - 1 + 1e-6  # in range, log rounding: |x_hat / x - 1| <= sqrt(2) - 1
    assert 0 < cal.details["mean_abs_log2_error"] <= 0.5
    assert cal.details["zero_flush_fraction"] == 0.0


def test_tiny_row_keeps_every_level_at_8_bits():
    x = np.array([[1.0, 0.5], [1e-30, 0.0]], dtype=np.float32)
    cal = analyze(x, QuantScheme(granularity="channel").with_(format="log2")).encoding.calibration
    assert cal.details["levels"] == 255


def test_16_bit_levels_stop_at_float64_subnormals():
    x = np.array([1.0, 1e-30, -3.0], dtype=np.float32)
    cal = analyze(x, QuantScheme(bits=16).with_(format="log2")).encoding.calibration
    assert cal.details["levels"] < 2**16 - 1
    assert np.all(np.diff(cal.grid[0]) > 0)
    assert analyze(x, QuantScheme(bits=16).with_(format="log2")).dequantized()[1] == pytest.approx(2.0**-100)


@pytest.mark.parametrize(
    ("x", "scheme"),
    [
        (np.full(50, 3.0, dtype=np.float32), QuantScheme()),
        (np.eye(1, 64, 5, dtype=np.float32)[0] * -2.0, QuantScheme()),
        (
            np.random.default_rng(4).standard_normal((8, 40)).astype(np.float32) * 1e-6,
            QuantScheme(granularity="channel"),
        ),
        (
            np.random.default_rng(5).standard_normal((6, 50)).astype(np.float32) * 1e4,
            QuantScheme(granularity="group", axis=1, group_size=16, symmetric=False),
        ),
    ],
)
def test_edge_inputs(x, scheme):
    before = x.copy()
    rows = to_rows(x, scheme)
    cal = analyze(x, scheme.with_(format="log2")).encoding.calibration
    np.testing.assert_array_equal(x, before)
    if scheme.symmetric:
        assert np.all(cal.hi > 0) and np.all(cal.hi <= rows.absmax)
    else:
        assert np.all(cal.lo >= rows.min) and np.all(cal.hi <= rows.max)
    assert np.all(np.diff(cal.grid, axis=1) > 0) and np.all(np.diff(cal.splits, axis=1) > 0)
    assert np.all(np.isfinite(analyze(x, scheme.with_(format="log2")).dequantized()))


def test_bad_options():
    with pytest.raises(QuantOptionError):
        get_format("log2", rounding="nearest")
    with pytest.raises(QuantOptionError):
        get_format("log2", full_scale="ceil")


def test_any_calibrator_sets_the_range():
    x = np.random.default_rng(3).laplace(size=4000).astype(np.float32)
    a = analyze(x, QuantScheme(bits=4, format="log2"), "percentile", percentile=99.0)
    t = a.calibration.threshold[0]
    assert t < np.abs(x).max() and a.encoding.calibration.grid[0, -1] == 2.0 ** np.floor(np.log2(t))
    assert a.report.clipped_fraction > 0
