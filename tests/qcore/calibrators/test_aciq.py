"""ACIQ: the derived optimum reproduces the published table; estimators, auto choice, clamps."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze, make_calibrator
from qcore.calibrators import CalibrationData
from qcore.calibrators.aciq import PUBLISHED, RANGE_C, expected_mse, optimal_ratio
from qcore.granularity import to_rows


@pytest.mark.parametrize("distribution", ["gaussian", "laplace"])
def test_derivation_reproduces_published_table(distribution):
    for bits, published in PUBLISHED[distribution].items():
        assert optimal_ratio(bits, distribution) == pytest.approx(published, abs=0.01)


@pytest.mark.parametrize("distribution", ["gaussian", "laplace"])
def test_every_width_is_a_minimum_and_grows_with_bits(distribution):
    ratios = [optimal_ratio(b, distribution) for b in range(2, 18)]
    assert np.all(np.diff(ratios) > 0)
    for bits, r in zip(range(2, 18), ratios, strict=True):
        e = expected_mse(np.array([r - 1e-3, r, r + 1e-3]), bits, distribution)
        assert e[1] <= e[0] and e[1] <= e[2]


def test_laplace_expected_mse_by_hand():
    # 2 e^-3 + 9 / (3 * 16) at alpha = 3 b, M = 2
    assert expected_mse(3.0, 2, "laplace") == pytest.approx(2 * np.exp(-3.0) + 9 / 48)


def test_thresholds_on_known_distributions():
    rng = np.random.default_rng(0)
    g = rng.normal(0.0, 2.0, 200_000).astype(np.float32)
    lap = rng.laplace(0.0, 0.5, 200_000).astype(np.float32)
    s4 = QuantScheme(bits=4)
    assert analyze(g, s4, "aciq").calibration.hi[0] == pytest.approx(2.0 * optimal_ratio(4, "gaussian"), rel=0.02)
    assert analyze(lap, s4, "aciq", distribution="laplace").calibration.hi[0] == pytest.approx(
        0.5 * optimal_ratio(4, "laplace"), rel=0.02
    )
    assert analyze(lap, s4, "aciq", distribution="auto").calibration.details["distribution"][0] == "laplace"
    assert analyze(g, s4, "aciq", distribution="auto").calibration.details["distribution"][0] == "gaussian"


def test_unsigned_uses_next_row_and_range_estimator():
    x = np.array([0.0, 1.0, 2.0, 3.0, 10.0], dtype=np.float32)
    cal = analyze(x, QuantScheme(bits=4, signed=False), "aciq", sigma_estimator="range").calibration
    assert cal.details["model_bits"] == 5
    sigma = 10.0 * RANGE_C / np.sqrt(2 * np.log(5))
    assert cal.details["sigma"][0] == pytest.approx(sigma)
    assert cal.hi[0] == pytest.approx(min(3.2 + optimal_ratio(5, "gaussian") * sigma, 10.0))
    assert cal.lo[0] == 0.0


def test_clamped_to_max_and_curve_minimum():
    x = np.random.default_rng(1).standard_normal(200).astype(np.float32)
    cal = analyze(x, QuantScheme(bits=8), "aciq").calibration
    assert cal.hi[0] == pytest.approx(np.abs(x).max())  # 3.92 sigma is beyond the sample max
    assert np.argmin(cal.curve.y[0]) == cal.curve.chosen[0]
    assert cal.curve.x[0, cal.curve.chosen[0]] == pytest.approx(cal.details["alpha"][0])


def test_asymmetric_centred_on_mean():
    x = np.random.default_rng(2).normal(5.0, 1.0, 10_000).astype(np.float32)
    cal = analyze(x, QuantScheme(bits=3, symmetric=False), "aciq").calibration
    r = optimal_ratio(3, "gaussian")
    assert cal.lo[0] == pytest.approx(x.mean() - r * x.std(), rel=1e-4)
    assert cal.hi[0] == pytest.approx(x.mean() + r * x.std(), rel=1e-4)


@pytest.mark.parametrize(
    ("x", "scheme"),
    [
        (np.full(50, -3.0, dtype=np.float32), QuantScheme()),
        (np.eye(1, 64, 5, dtype=np.float32)[0] * 2.0, QuantScheme()),
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
@pytest.mark.parametrize("distribution", ["gaussian", "laplace", "auto"])
def test_edge_inputs(x, scheme, distribution):
    before = x.copy()
    rows = to_rows(x, scheme)
    cal = make_calibrator("aciq", distribution=distribution).calibrate(CalibrationData(rows), scheme)
    np.testing.assert_array_equal(x, before)
    if scheme.symmetric:
        assert np.all(cal.hi > 0) and np.all(cal.hi <= rows.absmax)
    else:
        assert np.all(cal.lo >= rows.min) and np.all(cal.hi <= rows.max)


def test_bad_options():
    with pytest.raises(QuantOptionError):
        make_calibrator("aciq", distribution="cauchy")
    with pytest.raises(QuantOptionError):
        make_calibrator("aciq", sigma_estimator="mad")
