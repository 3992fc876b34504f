"""The round trip: codes, dtypes, rounding ties, arithmetic modes, missing values."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, fake_quantize, qparams_from_range, quantize, to_rows
from qcore.quantize import dequantize_rows, fake_quantize_rows, quantize_rows
from qcore.rounding import round_half_away, round_half_even

TIES = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], dtype=np.float32)


def test_rounding_rules_at_ties() -> None:
    np.testing.assert_array_equal(round_half_even(TIES), [0, 2, 2, -0, -2, -2])
    np.testing.assert_array_equal(round_half_away(TIES), [1, 2, 3, -1, -2, -3])
    # floor(|v| + 0.5) would round the float just below 0.5 up to 1
    below_half = np.nextafter(np.float32(0.5), np.float32(0))
    assert round_half_away(np.array([below_half, -below_half])).tolist() == [0.0, -0.0]


@pytest.mark.parametrize(
    ("rounding", "expected"), [("half_even", [0, 2, 2, 0, -2, -2]), ("half_away", [1, 2, 3, -1, -2, -3])]
)
def test_codes_use_the_scheme_rounding(rounding: str, expected: list[int]) -> None:
    scheme = QuantScheme(rounding=rounding)
    p = qparams_from_range(-127.0, 127.0, scheme)  # s = 1
    np.testing.assert_array_equal(quantize_rows(TIES[None, :], p)[0], expected)


@pytest.mark.parametrize(
    ("scheme", "dtype"),
    [
        (QuantScheme(), np.int8),
        (QuantScheme(signed=False), np.uint8),
        (QuantScheme(bits=4), np.int8),
        (QuantScheme(bits=12), np.int16),
        (QuantScheme(bits=16, signed=False), np.uint16),
    ],
)
def test_code_dtype_is_the_smallest_that_fits(scheme: QuantScheme, dtype: type) -> None:
    p = qparams_from_range(-1.0, 1.0, scheme)
    assert quantize_rows(np.zeros((1, 2), dtype=np.float32), p).dtype == dtype


def test_zero_point_added_after_rounding_then_clamped() -> None:
    # PyTorch's example (anchors §3): fake_quantize(0.25, s=0.5, z=3, [0, 255]) = 0: round(0.5) = 0, +3, -3
    scheme = QuantScheme(symmetric=False, signed=False)
    p = qparams_from_range(-1.5, 126.0, scheme)
    assert (p.scale[0], p.zero_point[0]) == (0.5, 3)
    x = np.array([[0.25, 0.75, -9.0, 500.0]], dtype=np.float32)
    np.testing.assert_array_equal(quantize_rows(x, p), [[3, 5, 0, 255]])
    np.testing.assert_array_equal(dequantize_rows(quantize_rows(x, p), p), [[0.0, 1.0, -1.5, 126.0]])


def test_missing_values_keep_nan_and_the_flag_only_skips_work() -> None:
    x = np.array([[0.5, np.nan, -1.0]], dtype=np.float32)
    p = qparams_from_range(-1.0, 1.0, QuantScheme())
    codes = quantize_rows(x, p)
    assert codes[0, 1] == 0  # the zero point
    out = fake_quantize_rows(x, p)
    assert np.isnan(out[0, 1]) and out[0, 0] == np.float32(np.round(0.5 * 127) / 127)
    clean = np.array([[0.5, 0.25, -1.0]], dtype=np.float32)
    np.testing.assert_array_equal(fake_quantize_rows(clean, p, missing=False), fake_quantize_rows(clean, p))


def test_tensor_shaped_results_per_channel() -> None:
    w = np.array([[0.1, -0.2, 0.3], [10.0, -20.0, 5.0]], dtype=np.float32)
    scheme = QuantScheme(granularity="channel", axis=0)
    rows = to_rows(w, scheme)
    p = qparams_from_range(-rows.absmax, rows.absmax, scheme)
    codes = quantize(rows, p)
    assert codes.shape == w.shape
    np.testing.assert_array_equal(codes, [[42, -85, 127], [64, -127, 32]])
    np.testing.assert_allclose(fake_quantize(rows, p), codes * (rows.absmax / 127)[:, None], rtol=1e-6)


def test_arithmetic_modes_differ_only_in_float32_details() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5000)).astype(np.float32)
    t = 3.1
    params = {conv: qparams_from_range(-t, t, QuantScheme(), conv) for conv in ("default", "tensorrt", "ncnn")}
    codes = {conv: quantize_rows(x, p).astype(np.int64) for conv, p in params.items()}
    # x/s, x*(127*(1/T)) and x*(127/T) give the same codes except (rarely) right at a rounding tie
    for conv in ("tensorrt", "ncnn"):
        assert np.abs(codes[conv] - codes["default"]).max() <= 1
        assert np.mean(codes[conv] == codes["default"]) > 0.999
    x_hat = {conv: dequantize_rows(codes["default"], p) for conv, p in params.items()}
    # (q - z) s versus q / m: the same value up to float32 rounding
    np.testing.assert_allclose(x_hat["tensorrt"], x_hat["default"], rtol=2e-7, atol=0)
