"""EasyQuant (single tensor): grids, the curve against a brute-force round trip, histogram mode, compiled sums."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import CALIBRATORS, QuantOptionError, QuantScheme, analyze, make_calibrator
from qcore.calibrators import CalibrationData
from qcore.calibrators import easyquant as easyquant_module
from qcore.calibrators.easyquant import multipliers
from qcore.granularity import to_rows
from qcore.params import qparams_from_range, with_scale
from qcore.quantize import fake_quantize_rows


def test_grids():
    paper = multipliers("paper")
    assert paper.size == 100 and paper[0] == 0.5 and paper[-1] == 2.0
    ncnn = multipliers("ncnn")
    # ncnn: multiplier 1/s over (0.5 + 0.015 k) / s0, k = 0..99: s = s0 / 0.5 is tried, s0 itself and s0 / 2 are not
    np.testing.assert_allclose(np.sort(1.0 / ncnn), 0.5 + 0.015 * np.arange(100))
    assert ncnn[-1] == 2.0 and not np.any(np.isclose(ncnn, 1.0)) and ncnn[0] > 0.5
    with pytest.raises(QuantOptionError):
        multipliers("coarse")


def test_curve_matches_brute_force_round_trip():
    x = np.random.default_rng(0).standard_normal((3, 300)).astype(np.float32)
    scheme = QuantScheme(bits=4, granularity="channel")
    a = analyze(x, scheme, "easyquant", steps=20)
    curve = a.calibration.curve
    absmax = np.abs(x).max(axis=1)
    base = qparams_from_range(-absmax, absmax, scheme)
    for k in range(20):
        x_hat = fake_quantize_rows(a.rows.values, with_scale(base, curve.x[:, k] * absmax / scheme.qmax))
        x64, h64 = x.astype(np.float64), x_hat.astype(np.float64)
        cos = np.sum(x64 * h64, axis=1) / np.linalg.norm(x64, axis=1) / np.linalg.norm(h64, axis=1)
        np.testing.assert_allclose(curve.y[:, k], cos, rtol=1e-7)  # x_hat = q s is float32
    np.testing.assert_array_equal(curve.chosen, np.argmax(curve.y, axis=1))
    np.testing.assert_allclose(a.params.scale, curve.x[np.arange(3), curve.chosen] * absmax / scheme.qmax)


def test_better_cosine_than_minmax_and_reported_by_metrics():
    x = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    eq = analyze(x, QuantScheme(bits=4), "easyquant")
    assert eq.report.cosine > analyze(x, QuantScheme(bits=4), "minmax").report.cosine
    assert eq.report.cosine == pytest.approx(eq.calibration.details["cosine"][0], rel=1e-9)


def test_histogram_mode_is_close_to_raw():
    """Above ``max_raw`` the cosines are computed on bin centres: bounded against the raw search."""
    x = np.random.default_rng(2).standard_normal(300_000).astype(np.float32)
    raw = analyze(x, QuantScheme(), "easyquant")
    hist = analyze(x, QuantScheme(), "easyquant", max_raw=1000)
    assert hist.calibration.details["histogram"] and not raw.calibration.details["histogram"]
    assert np.max(np.abs(hist.calibration.curve.y - raw.calibration.curve.y)) < 1e-6
    assert hist.report.cosine == pytest.approx(raw.report.cosine, abs=1e-7)


@pytest.mark.skipif("entropy" not in CALIBRATORS, reason="entropy calibrator not available")
def test_entropy_start():
    x = np.random.default_rng(3).standard_normal(20_000).astype(np.float32)
    eq = analyze(x, QuantScheme(), "easyquant", init="entropy")
    kl = analyze(x, QuantScheme(), "entropy")
    assert eq.calibration.details["start_hi"][0] == kl.calibration.hi[0]
    assert eq.report.cosine >= kl.report.cosine - 1e-9


def test_asymmetric_candidates_are_ranges():
    x = np.random.default_rng(4).gamma(2.0, 1.0, 20_000).astype(np.float32)
    scheme = QuantScheme(bits=4, symmetric=False)
    a = analyze(x, scheme, "easyquant")
    cal = a.calibration
    assert cal.scale is None and x.min() <= cal.lo[0] < cal.hi[0] <= x.max()
    assert a.report.cosine == pytest.approx(cal.details["cosine"][0], rel=1e-9)
    assert a.report.cosine >= analyze(x, scheme, "minmax").report.cosine


@pytest.mark.parametrize(
    ("x", "scheme"),
    [
        (np.full(50, 3.0, dtype=np.float32), QuantScheme()),
        (np.eye(1, 64, 5, dtype=np.float32)[0] * -2.0, QuantScheme()),
        (
            np.random.default_rng(5).standard_normal((8, 40)).astype(np.float32) * 1e-6,
            QuantScheme(granularity="channel"),
        ),
        (
            np.random.default_rng(6).standard_normal((6, 50)).astype(np.float32) * 1e4,
            QuantScheme(granularity="group", axis=1, group_size=16, symmetric=False),
        ),
        (np.zeros((2, 8), dtype=np.float32), QuantScheme(granularity="channel")),
    ],
)
def test_edge_inputs(x, scheme):
    before = x.copy()
    rows = to_rows(x, scheme)
    cal = make_calibrator("easyquant", grid="ncnn").calibrate(CalibrationData(rows), scheme)
    again = make_calibrator("easyquant", grid="ncnn").calibrate(CalibrationData(rows), scheme)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(cal.hi, again.hi)
    if not x.any():
        assert np.all(cal.hi == 0)
    elif scheme.symmetric:
        assert np.all(cal.hi > 0) and np.all(cal.hi <= rows.absmax)
    else:
        assert np.all(cal.lo >= rows.min) and np.all(cal.hi <= rows.max)
    assert np.all(np.isfinite(analyze(x, scheme, "easyquant").dequantized()))


def test_bad_options():
    for bad in ({"init": "percentile"}, {"grid": "fine"}, {"lower": 2.0, "upper": 1.0}, {"steps": 0}):
        with pytest.raises(QuantOptionError):
            make_calibrator("easyquant", **bad)


@pytest.mark.parametrize("symmetric", [True, False])
def test_codes_clip_only_candidates_that_may_clip(symmetric):
    """The numpy reference: clipping only the candidates between the first and last that may clip is a full clip."""
    from easyquant_numpy import _clip_free, _shifted_codes

    from qcore.rounding import codes

    scheme = QuantScheme(bits=4, symmetric=symmetric)
    rng = np.random.default_rng(2)
    v = rng.standard_normal((3, 200)).astype(np.float32)
    scale = (np.abs(v).max(axis=1)[:, None] / scheme.qmax * np.linspace(0.3, 2.0, 12)[None, :]).astype(np.float32)
    zero = None if symmetric else np.full(scale.shape, 3.0, dtype=np.float32)
    clip_free = _clip_free(v, scale, zero, scheme)
    assert clip_free.any() and not clip_free.all()
    z = None if zero is None else zero[:, :, None]
    scaled = v[:, None, :] / scale[:, :, None]
    got = _shifted_codes(scaled.copy(), z, scheme, clip_free)
    expected = codes(scaled.copy(), 0.0 if z is None else z, scheme) - (0.0 if z is None else z)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "scheme",
    [
        QuantScheme(granularity="channel"),
        QuantScheme(granularity="channel", symmetric=False),
        QuantScheme(granularity="channel", symmetric=False, signed=False),
    ],
)
def test_long_rows_cosines_match_float64(scheme):
    """Rows of 4096 positive values: signed asymmetric codes q - z reach 255 (z = -128); cosines to 1e-12."""
    from qcore.calibrators.easyquant import affine_step

    x = np.random.default_rng(8).uniform(0.0, 1.0, (3, 4096)).astype(np.float32)
    cal = make_calibrator("easyquant", steps=7).calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    m = multipliers("paper", steps=7)
    if scheme.symmetric:
        scale, zero = (np.abs(x).max(axis=1) / scheme.qmax)[:, None] * m, np.zeros((3, 7))
    else:
        lo, hi = x.min(axis=1)[:, None], x.max(axis=1)[:, None]
        scale, zero = affine_step(np.clip(lo * m, lo, hi), np.clip(hi * m, lo, hi), scheme)
    z32 = zero.astype(np.float32)[:, :, None]
    q = np.rint(x[:, None, :] / scale.astype(np.float32)[:, :, None]) + z32
    q = (np.clip(q, scheme.qmin, scheme.qmax) - z32).astype(np.float64)
    x64 = x.astype(np.float64)[:, None, :]
    expected = np.sum(q * x64, axis=2) / np.sqrt(np.sum(q * q, axis=2) * np.sum(x64 * x64, axis=2))
    np.testing.assert_allclose(cal.curve.y, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "scheme",
    [QuantScheme(), QuantScheme(bits=4), QuantScheme(symmetric=False), QuantScheme(rounding="half_away")],
)
def test_long_rows_with_missing_values_equal_the_numpy_evaluation(monkeypatch, scheme: QuantScheme) -> None:
    """Rows of 40,000 (heavy tails, NaN): the same cosines, the same chosen step as the numpy evaluation."""
    from easyquant_numpy import numpy_cosines

    x = np.random.default_rng(9).standard_t(4, size=(2, 40_000)).astype(np.float32)
    x[0, :4] = np.nan
    channel = scheme.with_(granularity="channel")
    rows = to_rows(x, channel)
    fast = make_calibrator("easyquant").calibrate(CalibrationData(rows), channel)
    monkeypatch.setattr(easyquant_module, "cosines", numpy_cosines)
    slow = make_calibrator("easyquant").calibrate(CalibrationData(rows), channel)
    np.testing.assert_allclose(fast.curve.y, slow.curve.y, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(fast.curve.chosen, slow.curve.chosen)
    np.testing.assert_array_equal(fast.hi, slow.hi)


# ---------------------------------------------------------------- the compiled sums against the numpy evaluation

KERNEL_SCHEMES = [
    QuantScheme(bits=bits, symmetric=symmetric, rounding=rounding)
    for bits in (2, 4, 8)
    for symmetric in (True, False)
    for rounding in ("half_even", "half_away")
] + [
    QuantScheme(narrow_range=True),
    QuantScheme(bits=4, narrow_range=True, rounding="half_away"),
    QuantScheme(signed=False, symmetric=False),
    QuantScheme(bits=4, signed=False, symmetric=False, rounding="half_away"),
]


def _adversarial_rows() -> np.ndarray:
    """Rows of 64: ties at every half step, zeros, constants, one outlier, one sign, tiny and huge values."""
    rng = np.random.default_rng(11)
    rows = [
        rng.standard_normal(64),
        np.zeros(64),
        np.full(64, 3.0),
        np.full(64, -0.75),
        np.where(np.arange(64) == 5, 50.0, rng.standard_normal(64) * 0.1),
        np.where(np.arange(64) == 9, -1.0, 0.0),
        np.abs(rng.standard_normal(64)),
        -np.abs(rng.standard_normal(64)),
        (np.arange(64) - 32) * 0.5,  # exact half steps of the start step: ties of half-even and half-away
        np.round(rng.standard_normal(64) * 4) / 8,  # many repeated values
        rng.standard_normal(64) * 1e-30,
        rng.standard_normal(64) * 1e30,
        # subnormal: steps below float32's smallest are 0 (x / 0 = +-inf, clipped; 0 / 0 = nan in both paths)
        np.where(np.arange(64) == 3, 0.0, rng.standard_normal(64) * 1e-44),
    ]
    return np.stack(rows).astype(np.float32)


def _candidates(x: np.ndarray, scheme: QuantScheme, m: np.ndarray):
    from qcore.calibrators.easyquant import CandidateGrid

    rows = to_rows(x, scheme.with_(granularity="channel"))
    lo0, hi0 = (-rows.absmax, rows.absmax) if scheme.symmetric else (rows.min, rows.max)
    return rows, CandidateGrid(lo0, hi0, rows.min, rows.max, scheme).steps(slice(None), m)


@pytest.mark.parametrize("scheme", KERNEL_SCHEMES, ids=repr)
def test_compiled_sums_equal_the_numpy_evaluation(scheme: QuantScheme) -> None:
    """Same cosines (1e-12 relative) and the same best candidate on adversarial rows, with missing values too."""
    from easyquant_numpy import numpy_cosines

    from qcore.calibrators.easyquant import cosines
    from qcore.weighted_samples import weighted_samples

    x = _adversarial_rows()
    x[3, 7] = np.nan  # a missing value: weight 0 in the samples
    # the paper grid, ncnn's, and one whose steps put the start step's half points exactly on the values
    for m in (multipliers("paper"), multipliers("ncnn"), np.array([0.25, 0.5, 1.0, 2.0, 4.0])):
        rows, (scale, zero) = _candidates(x, scheme, m)
        for sl, samples in weighted_samples(rows, None):
            new = cosines(samples, scale[sl], None if zero is None else zero[sl], scheme)
            old = numpy_cosines(samples, scale[sl], None if zero is None else zero[sl], scheme)
            np.testing.assert_allclose(new, old, rtol=1e-12, atol=0)
            np.testing.assert_array_equal(np.argmax(new, axis=1), np.argmax(old, axis=1))


@pytest.mark.parametrize("symmetric", [True, False])
def test_compiled_sums_on_histogram_samples(symmetric: bool) -> None:
    """Weighted samples (bin centres times counts): the same cosines as the numpy evaluation."""
    from easyquant_numpy import numpy_cosines

    from qcore.calibrators.easyquant import cosines
    from qcore.weighted_samples import weighted_samples

    scheme = QuantScheme(bits=4, symmetric=symmetric)
    x = np.random.default_rng(12).standard_t(3, size=(3, 5000)).astype(np.float32)
    rows, (scale, zero) = _candidates(x, scheme, multipliers("paper"))
    hist = CalibrationData(rows).signed_histogram(64)
    for sl, samples in weighted_samples(rows, hist):
        assert samples.weights is not None
        z = None if zero is None else zero[sl]
        new, old = cosines(samples, scale[sl], z, scheme), numpy_cosines(samples, scale[sl], z, scheme)
        np.testing.assert_allclose(new, old, rtol=1e-12, atol=0)


@pytest.mark.parametrize("sample", ["minilm/layer3/ffn_down.weight", "digits_mlp/fc1.input"])
@pytest.mark.parametrize("scheme", [QuantScheme(bits=4), QuantScheme(symmetric=False)], ids=repr)
def test_compiled_sums_on_bundled_tensors(monkeypatch, sample: str, scheme: QuantScheme) -> None:
    """Per channel and per group of 32 on the bundled tensors: the calibration equals the numpy evaluation's."""
    from easyquant_numpy import numpy_cosines

    from qcore.samples import load_sample

    x, _ = load_sample(sample)
    x = x.reshape(x.shape[0], -1)[:64, :256]
    for granularity in (dict(granularity="channel"), dict(granularity="group", axis=1, group_size=32)):
        grouped = scheme.with_(**granularity)
        rows = to_rows(x, grouped)
        fast = make_calibrator("easyquant").calibrate(CalibrationData(rows), grouped)
        with monkeypatch.context() as patch:
            patch.setattr(easyquant_module, "cosines", numpy_cosines)
            slow = make_calibrator("easyquant").calibrate(CalibrationData(rows), grouped)
        assert not fast.details["histogram"]
        np.testing.assert_allclose(fast.curve.y, slow.curve.y, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(fast.curve.chosen, slow.curve.chosen)
        np.testing.assert_array_equal(fast.lo, slow.lo)
        np.testing.assert_array_equal(fast.hi, slow.hi)


@pytest.mark.parametrize("scheme", KERNEL_SCHEMES, ids=repr)
def test_compiled_sums_at_exact_ties(scheme: QuantScheme) -> None:
    """Values on exact half steps (``x / s = k + 1/2``) and beyond the clip range, zero points across the grid."""
    from easyquant_numpy import numpy_cosines

    from qcore.calibrators.easyquant import cosines
    from qcore.weighted_samples import Samples

    top = scheme.qmax - scheme.qmin + 1
    halves = np.arange(-top, top + 1, dtype=np.float32) + np.float32(0.5)
    values = np.stack([halves, halves * 2, halves * 0.25, -halves]).astype(np.float32)
    steps = np.array([0.5, 1.0, 2.0, 0.25, 3.0, 1.0, 1.0])
    zeros = np.linspace(scheme.qmin, scheme.qmax, steps.size).round()
    scale = np.broadcast_to(steps, (values.shape[0], steps.size)).copy()
    zero = None if scheme.symmetric else np.broadcast_to(zeros, scale.shape).copy()
    samples = Samples(values, None, np.full(values.shape[0], float(values.shape[1])))
    new, old = cosines(samples, scale, zero, scheme), numpy_cosines(samples, scale, zero, scheme)
    np.testing.assert_allclose(new, old, rtol=1e-12, atol=0)


def test_compiled_sums_on_random_shapes_weights_and_steps() -> None:
    """Row lengths not a multiple of 4, candidate counts not a multiple of 8, random weights, steps and zero points."""
    from easyquant_numpy import numpy_cosines

    from qcore.calibrators.easyquant import cosines
    from qcore.weighted_samples import Samples

    rng = np.random.default_rng(13)
    for _ in range(150):
        symmetric = bool(rng.integers(2))
        scheme = QuantScheme(
            bits=int(rng.choice([2, 3, 4, 8])),
            symmetric=symmetric,
            signed=symmetric or bool(rng.integers(2)),
            rounding=str(rng.choice(["half_even", "half_away"])),
        )
        n_rows, length, n_cand = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 20))
        values = (rng.standard_t(2, (n_rows, length)) * 10.0 ** rng.uniform(-6, 6)).astype(np.float32)
        weights = None if rng.integers(2) else rng.integers(0, 4, (n_rows, length)).astype(np.float64)
        if weights is not None:
            values = np.where(weights > 0, values, np.float32(0.0))
        top = np.abs(values).max(axis=1, keepdims=True) + 1e-30
        scale = 10.0 ** rng.uniform(-1, 1, (n_rows, n_cand)) * top / scheme.qmax  # in any order
        zero = None if symmetric else rng.integers(scheme.qmin, scheme.qmax + 1, (n_rows, n_cand)).astype(float)
        count = np.full(n_rows, float(length)) if weights is None else weights.sum(axis=1)
        samples = Samples(values, weights, count)
        new, old = cosines(samples, scale, zero, scheme), numpy_cosines(samples, scale, zero, scheme)
        np.testing.assert_allclose(new, old, rtol=1e-12, atol=0)
