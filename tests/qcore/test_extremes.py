"""Valid extreme inputs (issue 9): float32's largest and tiniest finite values are computed range-safely.

Scale, error and SQNR stay finite and match a float64 recomputation from the codes; the
round trip of finite input is finite; JSON never holds NaN/Infinity.
"""

from __future__ import annotations

import numpy as np
import pytest

from qcore import CALIBRATORS, QuantScheme, analyze, strict_json

FMAX = float(np.finfo(np.float32).max)
EXTREMES = {
    "float32 max": np.array([[FMAX, -FMAX, 1.0, 0.5], [2.0, -FMAX, 3e38, 0.0]], np.float32),
    "tiny": np.array([[1e-37, -5e-38], [2e-38, 0.0]], np.float32),  # max|x| below 6e-36
    "subnormal": np.array([[1e-45, -3e-45], [0.0, 1e-44]], np.float32),
    "both ends": np.array([[FMAX, 1e-45], [-1e-30, 0.0]], np.float32),
}
SCHEMES = {
    "symmetric": QuantScheme(),
    "asymmetric": QuantScheme(symmetric=False),
    "per-channel": QuantScheme(granularity="channel"),
    "int16": QuantScheme(bits=16),
}


@pytest.mark.parametrize("data", list(EXTREMES))
@pytest.mark.parametrize("method", [m for m in CALIBRATORS if m != "ema"])
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_extreme_values_give_finite_correct_results(data: str, method: str, scheme: str) -> None:
    x = EXTREMES[data]
    a = analyze(x, SCHEMES[scheme], method)
    x_hat = a.dequantized()
    assert np.isfinite(x_hat).all()
    assert np.isfinite(a.params.scale).all() and (a.params.scale > 0).all()
    r = a.report
    for value in (r.mse, r.clip_mse, r.round_mse, r.cosine, r.max_abs_error):
        assert np.isfinite(value)
    assert r.sqnr_db is None or np.isfinite(r.sqnr_db)
    # the error metrics equal a float64 recomputation from the (saturated) round trip
    err = x_hat.astype(np.float64) - x.astype(np.float64)
    np.testing.assert_allclose(r.mse, np.mean(err**2), rtol=1e-6, atol=0)
    assert r.max_abs_error == pytest.approx(np.max(np.abs(err)), rel=1e-6)


def test_round_trip_saturates_at_float32_max_instead_of_overflowing() -> None:
    x = np.array([FMAX, -FMAX, 1.0], np.float32)
    a = analyze(x, QuantScheme(), "minmax")
    # 127 * float32(T / 127) rounds above FMAX: the dequantized end value saturates, the error stays tiny
    assert a.dequantized()[0] == np.float32(FMAX) and a.dequantized()[1] == -np.float32(FMAX)
    assert a.report.max_abs_error < 1e-6 * FMAX


def test_strict_json_names_why_a_value_is_null() -> None:
    text = strict_json.dumps({"metrics": {"sqnr_db": float("inf"), "mse": 1.0}, "scale": [1.0, float("nan")]})
    obj = __import__("json").loads(text, parse_constant=lambda c: pytest.fail(c))
    assert obj["metrics"]["sqnr_db"] is None and obj["scale"][1] is None
    assert obj["null_reasons"] == {"metrics.sqnr_db": "inf", "scale[1]": "nan"}
