"""The seeds' worked examples, reproduced by the core with numbers computed by hand.

Seed 001 (INT4 on ``[0.1, 0.2, 1.2, 2.5, 2.1, -1.0, -2.0, -2.5]``): symmetric codes -8..7 with
``s = max|x| / (2^(4-1) - 1)``; asymmetric codes 0..15 with ``s = (max - min) / 15``, ``z = round(-min / s)``.
Seed 000: int8 symmetric ``S = max|W| / 127``, uint8 ``/ 255``; asymmetric ``zp = qmin - round(min / S)``
(the seed writes ``/ 127`` for int8 asymmetric; int8 has 255 steps, which qcore uses).
"""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, analyze, qparams_from_range, to_rows
from qcore.quantize import dequantize_rows, quantize_rows

SEED_001 = np.array([0.1, 0.2, 1.2, 2.5, 2.1, -1.0, -2.0, -2.5], dtype=np.float32)


def _round_trip(x: np.ndarray, lo: float, hi: float, scheme: QuantScheme):
    p = qparams_from_range(lo, hi, scheme)
    codes = quantize_rows(x[None, :], p)[0].astype(np.int64)
    return p, codes, dequantize_rows(codes[None, :], p)[0]


def test_seed_001_int4_symmetric() -> None:
    # max|x| = 2.5; s = 2.5 / 7 = 0.357142857; x / s = 2.8 x
    # = [0.28, 0.56, 3.36, 7, 5.88, -2.8, -5.6, -7] -> round -> [0, 1, 3, 7, 6, -3, -6, -7]
    p, codes, x_hat = _round_trip(SEED_001, -2.5, 2.5, QuantScheme(bits=4))
    assert (p.qmin, p.qmax) == (-8, 7)
    assert p.scale[0] == pytest.approx(2.5 / 7, rel=1e-15) and p.zero_point[0] == 0
    np.testing.assert_array_equal(codes, [0, 1, 3, 7, 6, -3, -6, -7])
    # x_hat = q s = [0, 0.357143, 1.071429, 2.5, 2.142857, -1.071429, -2.142857, -2.5]
    np.testing.assert_allclose(x_hat, [0, 2.5 / 7, 7.5 / 7, 2.5, 15 / 7, -7.5 / 7, -15 / 7, -2.5], rtol=1e-6)
    # |x - x_hat| = [0.1, 0.157143, 0.128571, 0, 0.042857, 0.071429, 0.142857, 0]; sum = 4.5 / 7
    assert float(np.abs(x_hat - SEED_001).sum()) == pytest.approx(4.5 / 7, rel=1e-6)


def test_seed_001_int4_asymmetric_0_to_15() -> None:
    # s = (2.5 - (-2.5)) / 15 = 1/3; z = round(0 - (-2.5) / (1/3)) = round(7.5) = 8
    # x / s = 3x = [0.3, 0.6, 3.6, 7.5, 6.3, -3, -6, -7.5] -> round half even -> [0, 1, 4, 8, 6, -3, -6, -8]
    # + z = [8, 9, 12, 16, 14, 5, 2, 0] -> clamp to [0, 15] -> 16 becomes 15
    p, codes, x_hat = _round_trip(SEED_001, -2.5, 2.5, QuantScheme(bits=4, symmetric=False, signed=False))
    assert (p.qmin, p.qmax) == (0, 15)
    assert p.scale[0] == pytest.approx(1 / 3, rel=1e-15) and p.zero_point[0] == 8
    np.testing.assert_array_equal(codes, [8, 9, 12, 15, 14, 5, 2, 0])
    # x_hat = (q - 8) / 3 = [0, 1/3, 4/3, 7/3, 2, -1, -2, -8/3]
    np.testing.assert_allclose(x_hat, [0, 1 / 3, 4 / 3, 7 / 3, 2, -1, -2, -8 / 3], rtol=1e-6)
    # |x - x_hat| = [0.1, 0.13333, 0.13333, 0.16667, 0.1, 0, 0, 0.16667]; sum = 0.8
    assert float(np.abs(x_hat - SEED_001).sum()) == pytest.approx(0.8, rel=1e-6)


def test_seed_001_through_analyze_minmax() -> None:
    sym = analyze(SEED_001, QuantScheme(bits=4), "minmax")
    np.testing.assert_array_equal(sym.codes(), [0, 1, 3, 7, 6, -3, -6, -7])
    asym = analyze(SEED_001, QuantScheme(bits=4, symmetric=False, signed=False), "minmax")
    np.testing.assert_array_equal(asym.codes(), [8, 9, 12, 15, 14, 5, 2, 0])
    # the seed's point: summed |error| of symmetric 4.5/7 = 0.643 vs asymmetric 0.8 on this vector
    assert float(np.abs(sym.dequantized() - SEED_001).sum()) < float(np.abs(asym.dequantized() - SEED_001).sum())


def test_seed_001_positive_weights_favour_asymmetric() -> None:
    """The seed's remark: all-positive weights waste the sign bit of a symmetric signed grid."""
    w = np.abs(SEED_001)
    sym = analyze(w, QuantScheme(bits=4), "minmax")
    asym = analyze(w, QuantScheme(bits=4, symmetric=False, signed=False), "minmax")
    assert sym.codes().min() >= 0  # half of the signed grid is unused
    assert asym.report.mse < sym.report.mse


W = np.array([-1.0, 0.0, 0.3, 0.7, 2.0], dtype=np.float32)


def test_seed_000_int8_symmetric() -> None:
    # S = max|W| / 127 = 2 / 127; W / S = 63.5 W = [-63.5, 0, 19.05, 44.45, 127]
    # round half to even: -63.5 -> -64 (a tie), 19.05 -> 19, 44.45 -> 44
    p, codes, _ = _round_trip(W, -2.0, 2.0, QuantScheme())
    assert p.scale[0] == 2.0 / 127
    np.testing.assert_array_equal(codes, [-64, 0, 19, 44, 127])


def test_seed_000_int8_asymmetric() -> None:
    # S = (2 - (-1)) / 255 = 3/255; zp = -128 - round(-1 / S) = -128 - (-85) = -43
    # W / S = 85 W = [-85, 0, 25.5, 59.5, 170]; in float32 0.7/S = 59.499996 -> 59; 25.5 -> 26 (even)
    # + zp = [-128, -43, -17, 16, 127]
    p, codes, _ = _round_trip(W, -1.0, 2.0, QuantScheme(symmetric=False))
    assert p.scale[0] == 3.0 / 255 and p.zero_point[0] == -43
    np.testing.assert_array_equal(codes, [-128, -43, -17, 16, 127])


def test_seed_000_uint8_asymmetric_and_symmetric() -> None:
    # uint8 asymmetric: "-128 -> 0, 127 -> 255": zp = 0 - round(-1 / (3/255)) = 85; codes = previous + 128
    p, codes, _ = _round_trip(W, -1.0, 2.0, QuantScheme(symmetric=False, signed=False))
    assert p.scale[0] == 3.0 / 255 and p.zero_point[0] == 85
    np.testing.assert_array_equal(codes, [0, 85, 111, 144, 255])
    # uint8 symmetric on non-negative data: S = max / 255 = 3/255; V / S = [0, 34, 93.5, 255] -> 93.5 -> 94
    v = np.array([0.0, 0.4, 1.1, 3.0], dtype=np.float32)
    p, codes, _ = _round_trip(v, 0.0, 3.0, QuantScheme(signed=False))
    assert p.scale[0] == 3.0 / 255 and p.zero_point[0] == 0
    np.testing.assert_array_equal(codes, [0, 34, 94, 255])


def test_seed_000_per_channel_vs_per_tensor() -> None:
    """Per channel is finer: a small channel keeps its own step instead of the big channel's."""
    w = np.array([[0.01, -0.02, 0.015, 0.005], [1.0, -2.0, 1.5, 0.5]], dtype=np.float32)
    per_tensor = analyze(w, QuantScheme(), "minmax")
    per_channel = analyze(w, QuantScheme(granularity="channel", axis=0), "minmax")
    np.testing.assert_allclose(per_channel.params.scale, [0.02 / 127, 2.0 / 127], rtol=1e-7)
    small_channel_mse = float(np.mean((per_tensor.dequantized()[0] - w[0]).astype(np.float64) ** 2))
    assert per_channel.report.rows.mse[0] < small_channel_mse / 1000
    assert to_rows(w, QuantScheme(granularity="channel", axis=0)).n_rows == 2
