"""Scaled float formats: NVIDIA modelopt's scaled_e4m3 bit for bit, calibrated ranges, saturation."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, analyze
from qcore.formats import FORMATS
from qcore.formats.elements import ELEMENTS

E4M3 = QuantScheme(bits=8, format="fp8_e4m3")


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_fp8_matches_modelopt_scaled_e4m3(minilm, torch, modelopt_tensor_quant, granularity):
    for x in minilm.values():
        a = analyze(x, E4M3.with_(granularity=granularity, axis=0))
        amax = a.calibration.threshold.astype(np.float32)
        amax_t = torch.from_numpy(amax if granularity == "tensor" else amax[:, None])
        ref = modelopt_tensor_quant.scaled_e4m3(torch.from_numpy(x), amax_t.reshape(()) if amax.size == 1 else amax_t,
                                                None, 4, 3).numpy()  # fmt: skip
        np.testing.assert_array_equal(a.dequantized(), ref)


def test_fp8_with_a_calibrated_amax_matches_modelopt(minilm, torch, modelopt_tensor_quant):
    x = minilm["minilm/layer3/ffn_down.weight"]
    a = analyze(x, E4M3, "percentile", percentile=99.9)
    amax = np.float32(a.calibration.threshold[0])
    assert amax < np.abs(x).max()
    ref = modelopt_tensor_quant.scaled_e4m3(torch.from_numpy(x), torch.tensor(amax), None, 4, 3).numpy()
    np.testing.assert_array_equal(a.dequantized(), ref)
    assert a.report.clipped_fraction > 0 and a.report.clip_mse > 0


@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1"])
def test_round_trip_is_cast_of_scaled_values(name):
    """x_hat = cast(clamp(x m)) (1 / m) with m = fmax (1 / T) per row (hand rule), saturating beyond T."""
    elem = ELEMENTS[name.split("_")[1]]
    x = (np.random.default_rng(3).standard_normal((4, 64)) * [[1], [10], [0.01], [100]]).astype(np.float32)
    a = analyze(x, QuantScheme(bits=elem.bits, format=name, granularity="channel"))
    m = np.float32(elem.max) * (np.float32(1) / np.abs(x).max(axis=1).astype(np.float32))
    e = np.clip(x * m[:, None], -elem.max, elem.max).astype(elem.dtype).astype(np.float32)
    np.testing.assert_array_equal(a.dequantized(), e * (np.float32(1) / m)[:, None])
    np.testing.assert_array_equal(a.encoding.arrays()["codes"], e.astype(elem.dtype).view(np.uint8))
    assert a.report.clipped_fraction == 0.0


def test_all_zero_tensor_and_missing_values():
    a = analyze(np.zeros((2, 8), np.float32), E4M3)
    assert np.all(a.dequantized() == 0) and a.report.mse == 0
    x = np.array([1.0, np.nan, -2.0, np.inf], np.float32)
    b = analyze(x, E4M3)
    assert np.isnan(b.dequantized()[[1, 3]]).all() and b.rows.nonfinite_count == 2
    np.testing.assert_array_equal(b.dequantized()[[0, 2]], [1.0, -2.0])


@pytest.mark.parametrize("name", ["fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1"])
def test_a_range_near_float32_max_saturates_the_decode(name: str) -> None:
    """``f_max / m`` rounds past float32's max when ``T`` is near it: the round trip saturates, it is never inf."""
    fmax = float(np.finfo(np.float32).max)
    x = np.array([[fmax, -fmax, 1.0, 0.5], [2.0, -fmax, 3e38, 0.0]], np.float32)
    a = analyze(x, QuantScheme(bits=FORMATS[name].bits, format=name), "minmax")
    x_hat = a.dequantized()
    assert np.all(np.isfinite(x_hat)) and np.abs(x_hat).max() == np.float32(fmax)
    r = a.report
    assert np.isfinite(r.mse) and np.isfinite(r.cosine) and r.cosine > 0.99
