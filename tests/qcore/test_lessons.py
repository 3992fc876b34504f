"""Lesson numbers: hand-computed seed examples and agreement with the core."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze, error_report, qparams_from_range, to_rows
from qcore.calibrators.entropy import kl_distributions
from qcore.lessons import (
    SEED_001_WEIGHTS,
    admm_replay,
    cross_terms,
    kl_search,
    number_line,
    parse_vector,
    trace,
    worked_example,
)
from qcore.quantize import multiplier, quantize_rows


def test_seed_001_symmetric_int4_by_hand() -> None:
    # T = 2.5, s = 2.5 / (2^3 - 1) = 2.5 / 7; q = round(x / s)
    ex = worked_example(SEED_001_WEIGHTS, bits=4, symmetric=True)
    t = ex.trace
    assert t.scale == pytest.approx(2.5 / 7)
    assert t.zero_point == 0
    np.testing.assert_array_equal(t.codes, [0, 1, 3, 7, 6, -3, -6, -7])
    np.testing.assert_allclose(t.x_hat, np.array([0, 1, 3, 7, 6, -3, -6, -7]) * 2.5 / 7, rtol=1e-6)
    # |errors| = 0.1, 0.5/7 - ..., summing to 4.5 / 7
    assert t.abs_error_sum == pytest.approx(4.5 / 7, abs=1e-6)
    assert next(s.title for s in ex.steps) == "Observe the largest magnitude"


def test_seed_001_asymmetric_int4_by_hand() -> None:
    # range [-2.5, 2.5], s = 5 / 15 = 1/3, z = round(2.5 / (1/3)) = round(7.5) = 8 (half to even)
    ex = worked_example(SEED_001_WEIGHTS, bits=4, symmetric=False)
    t = ex.trace
    assert t.scale == pytest.approx(1 / 3)
    assert t.zero_point == 8
    # 2.5 -> round(7.5) + 8 = 16, clamped to 15: the rounded zero point shifts the grid and clips the maximum
    np.testing.assert_array_equal(t.codes, [8, 9, 12, 15, 14, 5, 2, 0])
    np.testing.assert_allclose(t.x_hat, (np.array([8, 9, 12, 15, 14, 5, 2, 0]) - 8) / 3, rtol=1e-6)
    assert t.abs_error_sum == pytest.approx(0.8, abs=1e-6)
    assert "= 8" in ex.steps[2].numbers


def test_cross_terms_symmetric_weight_asymmetric_input_by_hand() -> None:
    # 4-bit signed codes. W sym: T = 1.4, s_W = 0.2, codes [3, -7, 1], z_W = 0.
    # x asym over [0, 3]: s_x = 3/15 = 0.2, z_x = round(-8 - 0/0.2) = -8, codes [-8, -3, 7].
    ct = cross_terms([0.6, -1.4, 0.2], [0.0, 1.0, 3.0], bits=4, w_symmetric=True, x_symmetric=False)
    np.testing.assert_array_equal(ct.w.codes, [3, -7, 1])
    np.testing.assert_array_equal(ct.x.codes, [-8, -3, 7])
    assert (ct.w.zero_point, ct.x.zero_point) == (0, -8)
    values = [t.value for t in ct.terms]
    # s_W s_x = 0.04: 0.04 * 4, 0, -0.04 * (-8) * (-3), 0
    np.testing.assert_allclose(values, [0.16, 0.0, -0.96, 0.0], atol=1e-9)
    assert [t.present for t in ct.terms] == [True, False, True, False]
    assert ct.runtime_terms == 1
    assert ct.y_terms == pytest.approx(-0.8)
    assert ct.y_dequant == pytest.approx(-0.8, abs=1e-6)
    assert ct.y_float == pytest.approx(-0.8, abs=1e-6)


def test_cross_terms_both_asymmetric_by_hand() -> None:
    # W asym over [-1, 2]: s_W = 0.2, z_W = round(-8 + 5) = -3, codes [-8, -1, 7]; x as above.
    ct = cross_terms([-1.0, 0.4, 2.0], [0.0, 1.0, 3.0], bits=4, w_symmetric=False, x_symmetric=False)
    np.testing.assert_array_equal(ct.w.codes, [-8, -1, 7])
    assert ct.w.zero_point == -3
    # 0.04*116, -0.04*(-3)*(-4), -0.04*(-8)*(-2), 0.04*3*(-3)*(-8)
    np.testing.assert_allclose([t.value for t in ct.terms], [4.64, -0.48, -0.64, 2.88], atol=1e-9)
    assert all(t.present for t in ct.terms)
    assert ct.runtime_terms == 2
    assert ct.y_terms == pytest.approx(6.4)
    assert ct.y_dequant == pytest.approx(6.4, abs=1e-5)


def test_cross_terms_sum_is_the_dequantized_product() -> None:
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal(64), rng.standard_normal(64) + 1.0
    for ws in (True, False):
        for xs in (True, False):
            ct = cross_terms(w, x, bits=8, w_symmetric=ws, x_symmetric=xs)
            assert ct.y_terms == pytest.approx(ct.y_dequant, rel=1e-6)  # x_hat is float32
            assert ct.terms[1].present == (not ws)


def test_trace_is_the_core_round_trip() -> None:
    x = np.random.default_rng(1).standard_normal(50).astype(np.float32)
    scheme = QuantScheme(bits=3, symmetric=False, signed=False)
    tr = trace(x, -1.0, 1.2, scheme, convention="pytorch")
    rows = to_rows(x, scheme)
    params = qparams_from_range(-1.0, 1.2, scheme, "pytorch")
    report = error_report(rows, params)
    assert tr.round_sse / x.size == pytest.approx(report.round_mse, rel=1e-6)
    assert tr.clip_sse / x.size == pytest.approx(report.clip_mse, rel=1e-6)
    np.testing.assert_array_equal(np.clip(tr.rounded + tr.zero_point, params.qmin, params.qmax), tr.codes)


@pytest.mark.parametrize("convention", ["default", "onnxruntime", "pytorch", "tensorrt", "tensorrt_weight", "ncnn"])
def test_trace_scaled_is_what_the_quantizer_rounds(convention: str) -> None:
    """``scaled`` follows the convention's arithmetic: near-ties ``(k + 1/2) s`` round as ``quantize_rows`` does.

    With ``x * m`` (ncnn ``m = 127 / T``, TensorRT ``m = 127 * (1 / T)``) many of these values
    land on the other side of the tie than ``x / s``, so a trace built on ``x / s`` disagrees.
    """
    scheme = QuantScheme()
    for t in np.random.default_rng(5).uniform(0.5, 3.0, 8).astype(np.float32):
        params = qparams_from_range(-float(t), float(t), scheme, convention)
        step = params.scale.astype(np.float32)
        x = (np.arange(-127, 127, dtype=np.float32) + np.float32(0.5)) * step
        tr = trace(x, -float(t), float(t), scheme, convention=convention)
        codes = quantize_rows(x[None, :], tr.params)[0]
        np.testing.assert_array_equal(tr.codes, codes)
        np.testing.assert_array_equal(np.clip(tr.rounded + tr.zero_point, tr.params.qmin, tr.params.qmax), codes)
        if tr.params.arithmetic == "multiplier":
            np.testing.assert_array_equal(tr.scaled, x * multiplier(tr.params)[0])
            np.testing.assert_array_equal(tr.x_hat, codes.astype(np.float32) / multiplier(tr.params)[0])


def test_number_line_matches_minmax_analysis_and_clips_when_shrunk() -> None:
    x = np.random.default_rng(2).standard_normal(40)
    full = number_line(x, bits=4, clip_fraction=1.0)
    ref = analyze(x, QuantScheme(bits=4), "minmax")
    assert full.round_sse / x.size == pytest.approx(ref.report.mse, rel=1e-6)
    assert full.clip_sse == 0.0
    shrunk = number_line(x, bits=4, clip_fraction=0.5)
    assert shrunk.clipped.any()
    assert shrunk.clip_sse > 0
    assert np.all(np.abs(shrunk.error[~shrunk.clipped]) <= shrunk.scale / 2 + 1e-6)
    grid = shrunk.grid()
    assert grid.size == 16 and grid[0] == pytest.approx(-8 * shrunk.scale)


def test_bad_lesson_inputs_raise_clear_errors() -> None:
    with pytest.raises(QuantOptionError, match="not a number"):
        parse_vector("0.1, abc")
    with pytest.raises(QuantOptionError, match="empty"):
        parse_vector(" , ")
    with pytest.raises(QuantOptionError, match="non-finite"):
        parse_vector("1, inf")
    with pytest.raises(QuantOptionError, match="same length"):
        cross_terms([1.0, 2.0], [1.0])
    with pytest.raises(QuantOptionError, match="clip fraction"):
        number_line([1.0, 2.0], 4, clip_fraction=0.0)
    with pytest.raises(QuantOptionError, match="bits"):
        worked_example([1.0], bits=1)
    with pytest.raises(QuantOptionError, match="every value is 0"):
        kl_search(np.zeros(100))
    with pytest.raises(QuantOptionError, match="at most"):
        parse_vector(" ".join(["1"] * 5000))
    np.testing.assert_array_equal(parse_vector("1; 2,3  4"), [1, 2, 3, 4])


def test_kl_search_replays_the_entropy_calibrator() -> None:
    from scipy.stats import entropy as scipy_kl

    x = np.random.default_rng(4).laplace(size=20_000)
    for bits in (4, 8):
        search = kl_search(x, bits)
        cal = analyze(x, QuantScheme(bits=bits), "entropy").calibration
        assert search.thresholds[search.chosen] == pytest.approx(float(cal.hi[0]), rel=1e-12)
        assert search.levels == 2 ** (bits - 1)
        finite = np.flatnonzero(np.isfinite(search.kl))
        for idx in (finite[0], search.chosen, finite[-1]):
            p, q, tail = search.distributions(int(idx))
            assert p.size == search.candidates[idx]
            assert tail == pytest.approx(search.counts[search.candidates[idx] :].sum())
            assert scipy_kl(p, q) == pytest.approx(search.kl[idx], rel=1e-7, abs=1e-12)


def test_kl_search_by_hand_on_a_tiny_histogram() -> None:
    # counts [4, 2, 0, 2], keep i = 4 bins into 2 levels: Q groups {0,1} and {2,3};
    # group 0: 6 over 2 non-empty bins -> 3, 3; group 1: 2 over 1 non-empty bin -> 0, 2.
    p, q, tail = kl_distributions(np.array([4.0, 2.0, 0.0, 2.0]), 4, 2)
    np.testing.assert_allclose(p, [0.5, 0.25, 0.0, 0.25])
    np.testing.assert_allclose(q, [3 / 8, 3 / 8, 0.0, 2 / 8])
    assert tail == 0.0
    # keep i = 2: the tail (0 + 2) is folded into bin 1 of P
    p, q, tail = kl_distributions(np.array([4.0, 2.0, 0.0, 2.0]), 2, 2)
    np.testing.assert_allclose(p, [0.5, 0.5])
    np.testing.assert_allclose(q, [4 / 6, 2 / 6])
    assert tail == 2.0


def test_admm_replay_iterations_are_the_calibrators() -> None:
    replay = admm_replay(SEED_001_WEIGHTS, bits=4)
    # alpha_0 = max|w| / (1.25 * 7) = 2.5 / 8.75
    assert replay.alphas[0] == pytest.approx(2.5 / 8.75)
    w = np.asarray(SEED_001_WEIGHTS, dtype=np.float32).astype(np.float64)
    for k in range(len(replay.alphas) - 1):
        tr, new_alpha = replay.step(k)
        q = tr.codes.astype(np.float64)
        assert new_alpha == pytest.approx(float(w @ q / (q @ q)))
        assert replay.alphas[k + 1] == pytest.approx(new_alpha, rel=1e-9)
        assert replay.mse[k] == pytest.approx(float(np.mean((w - replay.alphas[k] * q) ** 2)), rel=1e-5)
    # first iteration by hand: w / (2/7) = [0.35, 0.7, 4.2, 8.75, 7.35, -3.5, -7, -8.75], rounded and clipped
    # to [-8, 7]; -1 / float32(2/7) = -3.4999998 in float32, so it rounds to -3
    tr0, _ = replay.step(0)
    np.testing.assert_array_equal(tr0.codes, [0, 1, 4, 7, 7, -3, -7, -8])
    ref = analyze(np.asarray(SEED_001_WEIGHTS), QuantScheme(bits=4), "admm")
    assert replay.scale == pytest.approx(float(ref.params.scale[0]))
    assert np.all(np.diff(replay.mse) <= 1e-12), "the error never increases"
