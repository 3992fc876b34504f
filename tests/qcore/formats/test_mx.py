"""OCP MX against torchao's to_mx / to_dtype (CPU), and the spec's rules on hand-computed blocks."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze
from qcore.formats.mx import scale_exponent

FLOATS = {"mxfp8_e4m3": 8, "mxfp8_e5m2": 8, "mxfp6_e2m3": 6, "mxfp6_e3m2": 6, "mxfp4": 4}


def _mx(name: str) -> QuantScheme:
    return QuantScheme(bits=FLOATS.get(name, 8), format=name)


def _torchao_dtype(torch, name: str):
    from torchao.prototype.mx_formats.constants import DTYPE_FP6_E2M3, DTYPE_FP6_E3M2

    return {
        "mxfp8_e4m3": torch.float8_e4m3fn,
        "mxfp8_e5m2": torch.float8_e5m2,
        "mxfp6_e2m3": DTYPE_FP6_E2M3,
        "mxfp6_e3m2": DTYPE_FP6_E3M2,
        "mxfp4": torch.float4_e2m1fn_x2,
    }[name]


@pytest.mark.parametrize("rounding", ["floor", "ceil", "even"])
@pytest.mark.parametrize("name", list(FLOATS))
def test_matches_torchao_to_mx(minilm, torch, torchao_mx, name, rounding):
    from torchao.prototype.mx_formats.config import ScaleCalculationMode

    dtype = _torchao_dtype(torch, name)
    mode = ScaleCalculationMode(rounding)
    for x in minilm.values():
        a = analyze(x, _mx(name), scale_rounding=rounding)
        scale, data = torchao_mx.to_mx(torch.from_numpy(x), dtype, 32, mode)
        np.testing.assert_array_equal(a.encoding.arrays()["scale_e8m0"], scale.view(torch.uint8).numpy().ravel())
        ref = torchao_mx.to_dtype(data, scale, dtype, 32, torch.float32).numpy()
        np.testing.assert_array_equal(a.dequantized(), ref)


def test_floor_rule_by_hand():
    # E2M1 (emax 2): amax 1.0 -> X = 2^(0 - 2) = 0.25; 0.3 / 0.25 = 1.2 -> 1.0; 0.55 / 0.25 = 2.2 -> 2
    # amax 7 in the second block: X = 2^(2 - 2) = 1, 7 saturates to 6 (the floor rule clips)
    x = np.zeros((2, 32), np.float32)
    x[0, :3] = [1.0, 0.3, -0.55]
    x[1, :2] = [7.0, 2.5]
    a = analyze(x, _mx("mxfp4"))
    np.testing.assert_array_equal(a.encoding.arrays()["scale_e8m0"], [125, 127])
    np.testing.assert_array_equal(a.dequantized()[0, :3], [1.0, 0.25, -0.5])
    np.testing.assert_array_equal(a.dequantized()[1, :2], [6.0, 2.0])  # 2.5 is a tie: even mantissa, 2
    assert a.report.clipped_fraction == pytest.approx(1 / 64)


def test_all_zero_block_and_exponent_clamps():
    x = np.zeros((3, 32), np.float32)
    x[1, 0] = 2.0**-140  # floor(log2) - 2 = -142: clamped to -127 (biased 0)
    x[2, 0] = 3.0e38  # floor(log2) = 127, E4M3 emax 8: 119
    a = analyze(x, _mx("mxfp4"))
    np.testing.assert_array_equal(a.encoding.arrays()["scale_e8m0"][:2], [0, 0])
    assert np.all(a.dequantized()[0] == 0)
    b = analyze(x, _mx("mxfp8_e4m3"))
    assert b.encoding.arrays()["scale_e8m0"][2] == 127 + 119
    assert b.dequantized()[2, 0] == np.float32(448 * 2.0**119)  # 3e38 / 2^119 = 451.4 saturates to 448
    assert int(scale_exponent(np.array([3.0e38], np.float32), 0, 6, "ceil")[0]) == 127  # 128 clamped (no NaN)


def test_mxint8_by_hand():
    # emax 0: amax 1.5 -> X = 2^0; P = round(x * 64) clamped to 127: 1.5 -> 96 -> 1.5; 1/3 -> 21 -> 0.328125
    x = np.zeros(32, np.float32)
    x[:3] = [1.5, 1 / 3, -1.5]
    a = analyze(x, QuantScheme(bits=8, format="mxint8"))
    np.testing.assert_array_equal(a.dequantized()[:3], [1.5, 21 / 64, -1.5])
    np.testing.assert_array_equal(a.encoding.arrays()["codes"][:3], [96, 21, -96])


def test_scale_rounding_option_is_checked():
    with pytest.raises(QuantOptionError, match="scale_rounding"):
        analyze(np.ones(32, np.float32), _mx("mxfp4"), scale_rounding="nearest")


def test_bits_per_weight():
    x = np.ones((4, 64), np.float32)
    assert analyze(x, _mx("mxfp4")).bits_per_weight() == 4.25
    assert analyze(x, _mx("mxfp6_e2m3")).bits_per_weight() == 6.25
    assert analyze(x, QuantScheme(bits=8, format="mxint8")).bits_per_weight() == 8.25
