"""MSE calibrator: histogram search (modelopt's intended histogram mse) and the exact search on raw values."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, to_rows
from qcore.calibrators import CalibrationData, make_calibrator
from qcore.calibrators.mse import START_BIN, centre_error_matrix, first_candidate, first_minimum, histogram_sse

CURVE_RTOL = 2.0**-23
"""The curve is the float32 rounding of the float64 objective (within 2^-24 relative, plus the search's round-off)."""


def _calibrate(x: np.ndarray, scheme: QuantScheme | None = None, **options):
    scheme = scheme or QuantScheme()
    data = CalibrationData(to_rows(np.asarray(x, dtype=np.float32), scheme))
    return data, make_calibrator("mse", **options).calibrate(data, scheme)


def _fake_quant_sym(v: np.ndarray, amax: float, q: int) -> np.ndarray:
    """modelopt ``fake_tensor_quant`` with narrow range (non-negative input): clamp(rint(v q / amax)) amax / q."""
    s = amax / q
    return np.clip(np.rint(v / s), -q, q) * s


def _sym_oracle(values: np.ndarray, weights: np.ndarray, candidates: np.ndarray, q: int) -> np.ndarray:
    """Loop over candidates: weighted mean squared error of the fake-quantized values."""
    return np.array([np.sum(weights * (_fake_quant_sym(values, t, q) - values) ** 2) for t in candidates]) / np.sum(
        weights
    )


def _asym_oracle(x: np.ndarray, bins: int, qmin: int, qmax: int, span: tuple[float, float]) -> np.ndarray:
    """Loop over shrink factors alpha of ``span = (min, max)`` of the data."""
    v = x.astype(np.float64)
    lo0, hi0 = min(span[0], 0.0), max(span[1], 0.0)
    out = []
    for k in range(START_BIN, bins):
        alpha = (k + 0.5) / bins
        s = alpha * (hi0 - lo0) / (qmax - qmin)
        zp = np.clip(np.rint(qmin - alpha * lo0 / s), qmin, qmax)
        out.append(np.mean(((np.clip(np.rint(v / s) + zp, qmin, qmax) - zp) * s - v) ** 2))
    return np.array(out)


@pytest.mark.parametrize(("bits", "signed"), [(8, True), (4, True), (8, False)])
def test_histogram_search_matches_a_loop_over_centres(bits: int, signed: bool) -> None:
    x = np.random.default_rng(0).laplace(size=30_000).astype(np.float32)
    scheme = QuantScheme(bits=bits, signed=signed)
    data, cal = _calibrate(x, scheme, bins=512, source="histogram")
    hist = data.abs_histogram(512)
    centres = hist.centers()[0]
    expected = _sym_oracle(centres, hist.counts[0], centres[START_BIN:], scheme.qmax)
    np.testing.assert_allclose(cal.curve.y[0], expected, rtol=CURVE_RTOL)
    assert cal.curve.chosen[0] == np.argmin(expected)
    assert cal.hi[0] == pytest.approx(centres[START_BIN + np.argmin(expected)], rel=1e-12)
    assert cal.details["source"] == "histogram"


def test_centre_error_matrix_is_read_only_and_row_independent() -> None:
    e = centre_error_matrix(256, 127)
    assert e.shape == (256 - START_BIN, 256)
    assert not e.flags.writeable
    centres = np.arange(256) + 0.5
    np.testing.assert_allclose(e[10], (_fake_quant_sym(centres, centres[START_BIN + 10], 127) - centres) ** 2)


def test_golden_intended_modelopt_mse_on_torch_randn() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(100000).numpy()
    _, cal = _calibrate(x, source="histogram")
    assert cal.hi[0] == pytest.approx(4.0603, abs=5e-5)  # anchors §2.5: modelopt with the call fixed


@pytest.mark.parametrize(("bits", "signed"), [(8, True), (3, True), (8, False), (13, True)])  # 13: direct path
def test_values_search_is_exact(bits: int, signed: bool) -> None:
    x = (np.random.default_rng(1).standard_t(4, size=4000) * 0.3).astype(np.float32)
    x[5] = np.nan
    scheme = QuantScheme(bits=bits, signed=signed)
    _, cal = _calibrate(x, scheme, bins=256, source="values")
    v = np.abs(x[np.isfinite(x)]).astype(np.float64)
    candidates = (np.arange(START_BIN, 256) + 0.5) / 256 * v.max()
    expected = _sym_oracle(v, np.ones_like(v), candidates, scheme.qmax)
    np.testing.assert_allclose(cal.curve.y[0], expected, rtol=CURVE_RTOL)
    assert cal.curve.chosen[0] == np.argmin(expected)
    assert cal.details["source"] == "values"


@pytest.mark.parametrize("bits", [8, 12])  # 12 bits: more levels than bins or values, the direct path
@pytest.mark.parametrize("source", ["values", "histogram"])
def test_asymmetric_shrink_search(source: str, bits: int) -> None:
    x = (np.random.default_rng(2).gamma(2.0, size=3000) - 1.0).astype(np.float32)
    scheme = QuantScheme(symmetric=False, bits=bits)
    data, cal = _calibrate(x, scheme, bins=256, source=source)
    span = (float(x.min()), float(x.max()))
    if source == "values":
        expected = _asym_oracle(x, 256, scheme.qmin, scheme.qmax, span)
        np.testing.assert_allclose(cal.curve.y[0], expected, rtol=CURVE_RTOL)
        assert cal.curve.chosen[0] == np.argmin(expected)
    else:
        hist = data.signed_histogram(256)
        centres = np.repeat(hist.centers()[0], hist.counts[0])
        np.testing.assert_allclose(
            cal.curve.y[0], _asym_oracle(centres, 256, scheme.qmin, scheme.qmax, span), rtol=CURVE_RTOL
        )
    alpha = (START_BIN + cal.curve.chosen[0] + 0.5) / 256
    assert cal.lo[0] == pytest.approx(alpha * x.min())
    assert cal.hi[0] == pytest.approx(alpha * x.max())
    assert x.min() <= cal.lo[0] < cal.hi[0] <= x.max()


@pytest.mark.parametrize("axis", [1, 0])  # 1: 6 groups of 64 values; 0: 64 groups of 6 values padded to 64
@pytest.mark.parametrize("bits", [8, 4])  # 8: levels outnumber each row's non-empty bins; 4: per-segment moments
def test_asymmetric_short_rows_histogram_search(bits: int, axis: int) -> None:
    """Groups much shorter than the bin count: the evaluated candidates' errors are the loop over all centres', the
    skipped ones cannot win, and the chosen shrink factor is the loop's first minimum."""
    x = (np.random.default_rng(5).gamma(2.0, size=(6, 64)) - 1.0).astype(np.float32)
    scheme = QuantScheme(symmetric=False, bits=bits, granularity="group", axis=axis, group_size=64)
    data, cal = _calibrate(x, scheme, bins=256, source="histogram")
    hist = data.signed_histogram(256)
    alpha = (np.arange(START_BIN, 256) + 0.5) / 256
    for r in range(data.rows.n_rows):
        centres = np.repeat(hist.centers()[r], hist.counts[r])
        span = (float(data.rows.min[r]), float(data.rows.max[r]))
        expected = _asym_oracle(centres, 256, scheme.qmin, scheme.qmax, span)
        evaluated = cal.details["evaluated"][r]
        assert np.all(np.isnan(cal.curve.x[r, evaluated:]))
        k = np.searchsorted(alpha, cal.curve.x[r, :evaluated])
        np.testing.assert_array_equal(alpha[k], cal.curve.x[r, :evaluated])
        np.testing.assert_allclose(cal.curve.y[r, :evaluated], expected[k], rtol=CURVE_RTOL, atol=1e-15)
        assert k[cal.curve.chosen[r]] == np.argmin(expected)
        assert np.all(np.delete(expected, k) > expected.min())


def test_asymmetric_one_sided_data_keeps_the_observed_end() -> None:
    x = np.random.default_rng(3).exponential(size=3000).astype(np.float32) + 0.5
    _, cal = _calibrate(x, QuantScheme(symmetric=False), bins=256)
    assert cal.lo[0] == pytest.approx(x.min())
    assert x.min() < cal.hi[0] <= x.max()


@pytest.mark.parametrize("dist", ["normal", "laplace"])
def test_histogram_approximation_is_close_to_the_exact_search(dist: str) -> None:
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(200_000) if dist == "normal" else rng.laplace(size=200_000)).astype(np.float32)
    _, exact = _calibrate(x, source="values")
    _, approx = _calibrate(x, source="histogram")
    # The histogram's pick, scored exactly, loses at most 1% of MSE against the exact minimum,
    # and lies within 2% of max|x| (about 40 bins) of the exact threshold.
    exact_mse = exact.curve.y[0]
    assert exact_mse[approx.curve.chosen[0]] <= 1.01 * exact_mse.min()
    assert abs(approx.hi[0] - exact.hi[0]) <= 0.02 * np.abs(x).max()


def test_auto_source() -> None:
    small = np.random.default_rng(5).standard_normal((64, 256)).astype(np.float32)
    _, cal = _calibrate(small)
    assert cal.details["source"] == "values"
    scheme = QuantScheme(granularity="channel")
    _, cal = _calibrate(small, scheme)  # rows of 64 values, shorter than the 2048 bins
    assert cal.details["source"] == "distinct"
    wide = np.random.default_rng(5).standard_normal((2100, 64)).astype(np.float32)
    _, cal = _calibrate(wide, QuantScheme(granularity="channel", axis=1))  # 64 rows x 1920 candidates x 128 levels
    assert cal.details["source"] == "histogram"


def test_per_channel_rows_equal_independent_runs() -> None:
    rng = np.random.default_rng(6)
    w = (rng.standard_normal((4, 1500)) * np.array([0.01, 1, 50, 3])[:, None]).astype(np.float32)
    scheme = QuantScheme(granularity="channel")
    for source in ("histogram", "values"):
        _, cal = _calibrate(w, scheme, bins=256, source=source)
        for r in range(4):
            _, single = _calibrate(w[r], bins=256, source=source)
            assert cal.hi[r] == pytest.approx(single.hi[0], rel=1e-12)


@pytest.mark.parametrize(
    "scheme",
    [
        QuantScheme(bits=2, symmetric=False, granularity="channel"),
        QuantScheme(bits=4, symmetric=False, granularity="channel", rounding="half_away"),
        QuantScheme(bits=8, symmetric=False, granularity="channel"),
        QuantScheme(bits=8, symmetric=False, granularity="channel", narrow_range=True),
    ],
    ids=lambda s: f"{s.bits}b-{s.rounding}-{s.narrow_range}",
)
def test_per_channel_histogram_search_equals_each_channel_alone(scheme: QuantScheme) -> None:
    """Per channel the histogram search skips candidates (compiled, bounded); each channel calibrated alone (per
    tensor: every candidate evaluated by the numpy formulas) gets the same range, on adversarial channels and on a
    bundled weight (float16: many ties)."""
    from safetensors.numpy import load_file

    from tests.qcore.kernels.test_mse_kernels import adversarial_channels

    weight = load_file("data/minilm_l6.safetensors")["minilm/layer3/ffn_down.weight"][::16].astype(np.float32)
    for x in (adversarial_channels(3), weight):
        _, cal = _calibrate(x, scheme, bins=512, source="histogram")
        assert cal.details["source"] == "histogram"
        assert cal.curve.x.shape[1] == cal.details["evaluated"].max()
        for r in range(x.shape[0]):
            alone = QuantScheme(bits=scheme.bits, symmetric=False, narrow_range=scheme.narrow_range)
            _, single = _calibrate(x[r], alone, bins=512, source="histogram")
            assert single.curve.y.shape[1] == 512 - START_BIN  # the exhaustive search
            assert (cal.lo[r], cal.hi[r]) == (single.lo[0], single.hi[0])
            assert cal.curve.y[r, cal.curve.chosen[r]] == pytest.approx(single.curve.y[0].min(), rel=CURVE_RTOL)


def _dense_symmetric_threshold(data: CalibrationData, scheme: QuantScheme, bins: int) -> tuple[np.ndarray, ...]:
    """The dense symmetric histogram search (the per-tensor path's matrix product over every row): per row the
    chosen threshold, its MSE and the whole MSE curve."""
    hist = data.abs_histogram(bins)
    sse = histogram_sse(hist.counts, hist.width, centre_error_matrix(bins, scheme.qmax))
    count = hist.total()
    with np.errstate(divide="ignore", invalid="ignore"):
        mse = np.where(count[:, None] > 0, sse / count[:, None], 0.0)
    chosen = first_minimum(mse)
    frac = (np.arange(first_candidate(bins), bins) + 0.5) / bins
    rows = np.arange(mse.shape[0])
    return data.rows.absmax * frac[chosen], mse[rows, chosen], mse


def _exact_bin_sse(counts: np.ndarray, i: int, q: int) -> Fraction:
    """The histogram SSE of candidate centre ``i`` in units of ``w^2``, in exact rational arithmetic:
    ``sum_j n_j (min(rint(c_j / s), q) s - c_j)^2``, ``c_j = j + 1/2``, ``s = c_i / q`` (``round``: half to even)."""
    s = Fraction(2 * i + 1, 2 * q)
    total = Fraction(0)
    for j in np.flatnonzero(counts):
        c = Fraction(2 * int(j) + 1, 2)
        total += int(counts[j]) * (min(round(c / s), q) * s - c) ** 2
    return total


def _assert_dense_choice(cal, data: CalibrationData, scheme: QuantScheme, bins: int, want: np.ndarray) -> None:
    """The pruned search's threshold is the dense search's, except on an exact tie: two candidates of equal error
    in rational arithmetic (e.g. 1/16-grid digits pixels) that the matrix product's round-off orders one way."""
    start = first_candidate(bins)
    frac = (np.arange(start, bins) + 0.5) / bins
    differ = np.flatnonzero(cal.hi != want)
    counts = data.abs_histogram(bins).counts
    for r in differ:
        k = np.searchsorted(frac * data.rows.absmax[r], cal.hi[r])
        assert frac[k] * data.rows.absmax[r] == cal.hi[r]
        k_dense = int(np.argmax(frac * data.rows.absmax[r] == want[r]))
        exact = [_exact_bin_sse(counts[r], start + c, scheme.qmax) for c in (k, k_dense)]
        assert exact[0] == exact[1], (r, cal.hi[r], want[r])
    assert differ.size <= max(1, want.size // 200)  # rare


def _adversarial_symmetric_channels(seed: int) -> np.ndarray:
    """The kernels' adversarial channels (ties, constant, one outlier, zeros, one sign, two values, a single
    non-zero, heavy tails, float16 values...) plus NaN entries, an all-NaN row, tiny and huge scales."""
    from tests.qcore.kernels.test_mse_kernels import adversarial_channels

    x = adversarial_channels(seed)
    rng = np.random.default_rng(seed)
    extra = rng.standard_normal((5, x.shape[1])).astype(np.float32)
    extra[0, ::7] = np.nan  # missing entries
    extra[1] = np.nan  # an all-missing row
    extra[2] *= np.float32(1e-30)  # tiny scale
    extra[3] *= np.float32(1e30)  # huge scale
    extra[4] = np.float32(-3.0)
    extra[4, 9] = np.float32(3.0)  # |x| constant, both signs
    return np.concatenate([x, extra])


SYMMETRIC_SCHEMES = [
    QuantScheme(bits=2, granularity="channel"),
    QuantScheme(bits=4, granularity="channel"),
    QuantScheme(bits=4, granularity="channel", narrow_range=True, rounding="half_away"),
    QuantScheme(bits=8, granularity="channel"),
    QuantScheme(bits=8, granularity="channel", narrow_range=True),
    QuantScheme(bits=8, signed=False, granularity="channel"),
    QuantScheme(bits=8, granularity="channel", reduce_range=True),  # q = 63
    QuantScheme(bits=8, quant_min=-64, quant_max=64, granularity="channel"),  # q = 64: even, ties in c_j / s
]


@pytest.mark.parametrize(
    "scheme", SYMMETRIC_SCHEMES, ids=lambda s: f"{s.bits}b-{s.signed}-{s.rounding}-{s.narrow_range}-{s.reduce_range}"
)
@pytest.mark.parametrize("bins", [128, 300, 512, 2048])  # 128: one candidate; 300: widths not powers of 2
def test_symmetric_per_channel_histogram_search_equals_the_dense_search(scheme: QuantScheme, bins: int) -> None:
    """Per channel the symmetric histogram search is pruned (compiled); on adversarial channels it chooses the dense
    matrix-product search's threshold, with its MSE, and the evaluated candidates' MSE are the dense curve's; each
    channel calibrated alone (per tensor: the dense search itself) gets the same range."""
    for seed in (0, 1):
        x = _adversarial_symmetric_channels(seed)
        data, cal = _calibrate(x, scheme, bins=bins, source="histogram")
        assert cal.details["source"] == "histogram"
        want, want_mse, dense = _dense_symmetric_threshold(data, scheme, bins)
        want_index = first_minimum(dense)
        _assert_dense_choice(cal, data, scheme, bins, want)
        evaluated = cal.details["evaluated"]
        assert cal.curve.x.shape[1] == evaluated.max()
        rows = np.arange(x.shape[0])
        assert cal.curve.y.dtype == (np.float64 if np.nanmax(data.rows.absmax) > 1e19 else np.float32)
        dense_curve = dense.astype(cal.curve.y.dtype)  # float64 with the huge row (its MSE ~1e59 is not a float32)
        got, best = (v.astype(np.float64) for v in (cal.curve.y[rows, cal.curve.chosen], dense_curve[rows, want_index]))
        roundoff = 1e-12 * data.rows.absmax**2  # e.g. a constant row's 0 of the dense product, ~1e-32 here
        assert np.all((got == best) | (np.abs(got - best) <= 1e-6 * np.abs(best) + roundoff))
        frac = (np.arange(first_candidate(bins), bins) + 0.5) / bins
        for r in rows:
            assert np.all(np.isnan(cal.curve.x[r, evaluated[r] :]))
            thresholds = (frac * data.rows.absmax[r]).astype(cal.curve.x.dtype)  # T = max|x| f, as the curve stores x
            k = np.searchsorted(thresholds, cal.curve.x[r, : evaluated[r]])
            np.testing.assert_array_equal(thresholds[k], cal.curve.x[r, : evaluated[r]])
            atol = 1e-9 * float(np.max(dense_curve[r], initial=0.0, where=np.isfinite(dense_curve[r])))
            np.testing.assert_allclose(cal.curve.y[r, : evaluated[r]], dense_curve[r, k], rtol=1e-6, atol=atol)
            assert np.all(np.delete(dense[r], k) >= want_mse[r])  # the skipped candidates cannot win
        assert evaluated.mean() < frac.size or frac.size == 1  # the bound skipped candidates
        if seed == 0:
            for r in (0, 3, 4, 16, 18, 19, 20):  # Gaussian, outlier, zeros, NaN, tiny, huge, |x| constant
                alone = QuantScheme(
                    bits=scheme.bits,
                    signed=scheme.signed,
                    narrow_range=scheme.narrow_range,
                    reduce_range=scheme.reduce_range,
                    quant_min=scheme.quant_min,
                    quant_max=scheme.quant_max,
                    rounding=scheme.rounding,
                )
                _, single = _calibrate(x[r], alone, bins=bins, source="histogram")
                assert single.curve.y.shape[1] == bins - first_candidate(bins)  # the exhaustive search
                assert (cal.lo[r], cal.hi[r]) == (single.lo[0], single.hi[0])


@pytest.mark.parametrize("scheme", SYMMETRIC_SCHEMES[:6], ids=lambda s: f"{s.bits}b-{s.signed}-{s.narrow_range}")
def test_symmetric_per_channel_histogram_search_on_bundled_tensors(scheme: QuantScheme) -> None:
    """Every bundled 2-D tensor (weights and activations; float16 values: many ties) per channel: the pruned search
    chooses the dense search's threshold (7 of about 60,000 channel searches at 512 and 2048 bins, INT2/4/8, differ
    on an exact tie)."""
    from safetensors.numpy import load_file

    for path in ("data/digits_mlp.safetensors", "data/minilm_l6.safetensors"):
        for name, tensor in load_file(path).items():
            if tensor.ndim != 2:
                continue
            data, cal = _calibrate(tensor.astype(np.float32), scheme, bins=512, source="histogram")
            want, want_mse, _ = _dense_symmetric_threshold(data, scheme, 512)
            _assert_dense_choice(cal, data, scheme, 512, want)
            got_mse = cal.curve.y[np.arange(want.size), cal.curve.chosen]  # float32
            np.testing.assert_allclose(got_mse, want_mse, rtol=1e-6, atol=0.0, err_msg=name)


@pytest.mark.parametrize("bits", [4, 8])
def test_symmetric_per_group_histogram_search_equals_the_dense_search(bits: int) -> None:
    """Per group on the histogram (``source='histogram'``, or 'auto' on a large tensor) the same pruned search."""
    x = np.random.default_rng(7).laplace(size=(8, 4096)).astype(np.float32)
    x[3, 100] = 40.0
    scheme = QuantScheme(bits=bits, granularity="group", axis=1, group_size=1024)
    data, cal = _calibrate(x, scheme, bins=512, source="histogram")
    assert cal.details["source"] == "histogram" and "evaluated" in cal.details
    want, _, _ = _dense_symmetric_threshold(data, scheme, 512)
    np.testing.assert_array_equal(cal.hi, want)


def test_degenerate_rows() -> None:
    _, cal = _calibrate(np.zeros(50))
    assert cal.hi[0] == 0.0
    _, cal = _calibrate(np.full(50, -2.5))
    assert 0 < cal.hi[0] <= 2.5


@pytest.mark.parametrize("options", [{"bins": 100}, {"bins": -3}, {"source": "exact"}])
def test_impossible_options(options: dict) -> None:
    with pytest.raises(QuantOptionError):
        make_calibrator("mse", **options)


@pytest.mark.parametrize(("name", "bits", "signed"), [("laplace", 8, True), ("laplace", 4, True), ("relu", 8, False)])
def test_real_modelopt_histogram_mse_with_its_call_fixed(
    modelopt_histogram, modelopt_collect, monkeypatch, name: str, bits: int, signed: bool
) -> None:
    """NVIDIA modelopt 0.47 ``compute_amax('mse')`` once its ``fake_tensor_quant`` call passes ``bias=None``.

    As shipped it passes ``num_bits`` as ``bias`` and returns the first candidate, bin 128's centre
    (anchors §2.5); with the call fixed it picks the same bin centre as our histogram search.
    """
    rng = np.random.default_rng(3)
    x = (rng.laplace(size=50_000) if name == "laplace" else np.maximum(rng.standard_normal(80_000), 0)).astype(
        np.float32
    )
    reference = modelopt_collect(x, bits, not signed)
    width = float(reference._calib_bin_edges[-1]) / 2048
    assert float(reference.compute_amax("mse")) == pytest.approx((START_BIN + 0.5) * width, rel=1e-6)
    real = modelopt_histogram.fake_tensor_quant
    monkeypatch.setattr(
        modelopt_histogram,
        "fake_tensor_quant",
        lambda v, amax, num_bits, unsigned: real(v, amax, None, num_bits, unsigned),
    )
    theirs = float(reference.compute_amax("mse"))
    _, cal = _calibrate(x, QuantScheme(bits=bits, signed=signed), source="histogram")
    assert abs(cal.hi[0] - theirs) < 1e-3 * width


# ---------------------------------------------------------------- rows shorter than the histogram: 'distinct'


def _exhaustive(rows, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct candidate of every row evaluated one by one: (chosen T or alpha, its SSE) per row."""
    best, best_sse = np.zeros(rows.n_rows), np.zeros(rows.n_rows)
    for r in range(rows.n_rows):
        v = rows.values[r][~np.isnan(rows.values[r])].astype(np.float64)
        if scheme.symmetric:
            m = np.abs(v)
            candidates = np.unique(m[m > 0])
            sse = [
                np.sum((np.minimum(np.rint(m / (t / scheme.qmax)), scheme.qmax) * (t / scheme.qmax) - m) ** 2)
                for t in candidates
            ]
        else:
            lo0, hi0 = min(v.min(initial=0.0), 0.0), max(v.max(initial=0.0), 0.0)
            candidates = np.unique(np.concatenate([v[v > 0] / hi0, v[v < 0] / lo0]))
            sse = []
            for a in candidates:
                s = a * (hi0 - lo0) / (scheme.qmax - scheme.qmin)
                z = np.clip(np.rint(scheme.qmin - a * lo0 / s), scheme.qmin, scheme.qmax)
                sse.append(np.sum(((np.clip(np.rint(v / s) + z, scheme.qmin, scheme.qmax) - z) * s - v) ** 2))
        if candidates.size:
            k = int(np.argmin(sse))
            best[r], best_sse[r] = candidates[k], sse[k]
    return best, best_sse


def _adversarial_groups(seed: int) -> np.ndarray:
    """24 groups of 64 (every third padded): Gaussian, ties, constant, one outlier, zeros, one sign, few values."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((24, 64))
    x[1] = np.round(x[1] * 2) / 2  # many ties
    x[2] = 0.75  # constant
    x[3, 5] = 80.0  # one outlier
    x[4] = 0.0
    x[5] = -np.abs(x[5])  # negative only
    x[6] = np.abs(x[6])  # positive only
    x[7] = rng.choice([-1.0, 2.0], 64)  # two values
    x[8, :63] = 0.0  # a single non-zero value
    x[9] = rng.laplace(size=64) ** 3  # heavy tails
    x[10] = -x[10, ::-1]
    return x.reshape(8, 192)[:, :189].astype(np.float32)  # groups of 64 along axis 1, the third padded


GRIDS = [(True, {}), (True, {"narrow_range": True, "rounding": "half_away"}), (False, {})]
GRIDS += [(False, {"narrow_range": True, "rounding": "half_away"}), (False, {"signed": False})]


@pytest.mark.parametrize(("symmetric", "grid"), GRIDS)
@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("seed", [0, 1])
def test_distinct_search_equals_the_exhaustive_search(symmetric: bool, grid: dict, bits: int, seed: int) -> None:
    scheme = QuantScheme(bits=bits, symmetric=symmetric, granularity="group", axis=1, group_size=64, **grid)
    data, cal = _calibrate(_adversarial_groups(seed), scheme)
    assert cal.details["source"] == "distinct"
    want, want_sse = _exhaustive(data.rows, scheme)
    if symmetric:
        got = cal.hi
    else:
        lo0 = np.minimum(data.rows.min, 0.0)
        hi0 = np.maximum(data.rows.max, 0.0)
        got = np.where(hi0 > 0, cal.hi / np.where(hi0 > 0, hi0, 1.0), cal.lo / np.where(lo0 < 0, lo0, 1.0))
    count = data.rows.count
    got_mse = cal.curve.y[np.arange(data.rows.n_rows), cal.curve.chosen]
    same = np.isclose(got, want, rtol=1e-12, atol=0.0)
    close = np.abs(got_mse - want_sse / count) <= 1e-6 * np.abs(want_sse / count) + 1e-300
    assert np.all(same | close), (np.nonzero(~(same | close)), got, want)
    assert np.all(cal.details["evaluated"] <= np.maximum(count, 1))


@pytest.mark.parametrize("bits", [4, 8])
def test_distinct_search_on_bundled_weights(bits: int) -> None:
    """Asymmetric per group of 128 on two bundled weights (float16 values: many ties) equals the exhaustive search."""
    from safetensors.numpy import load_file

    weights = (
        load_file("data/minilm_l6.safetensors")["minilm/layer3/ffn_down.weight"][::32].astype(np.float32),
        load_file("data/digits_mlp.safetensors")["digits_mlp/fc2.weight"],
    )
    for x in weights:
        scheme = QuantScheme(bits=bits, symmetric=False, granularity="group", axis=1, group_size=128)
        data, cal = _calibrate(x, scheme)
        assert cal.details["source"] == "distinct"
        want, want_sse = _exhaustive(data.rows, scheme)
        lo0, hi0 = np.minimum(data.rows.min, 0.0), np.maximum(data.rows.max, 0.0)
        got = np.where(hi0 > 0, cal.hi / np.where(hi0 > 0, hi0, 1.0), cal.lo / np.where(lo0 < 0, lo0, 1.0))
        got_mse = cal.curve.y[np.arange(data.rows.n_rows), cal.curve.chosen]
        same = np.isclose(got, want, rtol=1e-12, atol=0.0)
        close = np.abs(got_mse - want_sse / data.rows.count) <= 1e-9 * want_sse / data.rows.count
        assert np.all(same | close)


def test_distinct_skips_candidates_that_cannot_win() -> None:
    x = np.random.default_rng(3).standard_normal((512, 128)).astype(np.float32)
    scheme = QuantScheme(bits=8, granularity="group", axis=1, group_size=128)
    _, cal = _calibrate(x, scheme)
    assert cal.details["evaluated"].mean() < 10  # of about 128 distinct values per group


def test_distinct_explicit_source_on_long_rows() -> None:
    x = np.random.default_rng(4).standard_normal((2, 3000)).astype(np.float32)
    scheme = QuantScheme(bits=4, symmetric=False, granularity="channel", axis=0)
    data, cal = _calibrate(x, scheme, source="distinct")
    want, _ = _exhaustive(data.rows, scheme)
    got = cal.hi / data.rows.max
    assert np.allclose(got, want, rtol=1e-12) or np.allclose(cal.lo / data.rows.min, want, rtol=1e-12)


def test_per_channel_histogram_curve_is_float32_built_in_row_blocks(monkeypatch) -> None:
    """The symmetric per-channel histogram search (pruned) runs a few rows at a time in float64: the choice and the
    threshold are each channel's own (the loop over centres, in float64), the curve kept is the float32 rounding of
    the evaluated candidates."""
    from qcore.calibrators import mse as mse_module

    rng = np.random.default_rng(11)
    w = (rng.laplace(size=(7, 3000)) * rng.uniform(0.01, 20, (7, 1))).astype(np.float32)
    monkeypatch.setattr(mse_module, "_PRUNED_BLOCK_ELEMENTS", 3 * (256 - START_BIN))  # blocks of 3 rows
    data, cal = _calibrate(w, QuantScheme(granularity="channel"), bins=256, source="histogram")
    assert cal.curve.x.dtype == cal.curve.y.dtype == np.float32 == make_calibrator("mse").curve_dtype
    hist = data.abs_histogram(256)
    for r in range(7):
        centres = hist.centers()[r]
        expected = _sym_oracle(centres, hist.counts[r], centres[START_BIN:], 127)
        threshold = data.rows.absmax[r] * ((np.arange(START_BIN, 256) + 0.5) / 256)
        e = cal.details["evaluated"][r]
        k = np.searchsorted(threshold.astype(np.float32), cal.curve.x[r, :e])
        np.testing.assert_array_equal(cal.curve.x[r, :e], threshold[k].astype(np.float32))
        np.testing.assert_allclose(cal.curve.y[r, :e], expected[k], rtol=CURVE_RTOL)
        assert k[cal.curve.chosen[r]] == np.argmin(expected)
        assert cal.hi[r] == threshold[k[cal.curve.chosen[r]]]  # the float64 candidate, not the curve's rounding


@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
@pytest.mark.parametrize("symmetric", [True, False])
def test_huge_values_keep_a_float64_curve_without_overflow(granularity: str, symmetric: bool) -> None:
    """A squared error of |x| ~ 1e30 does not fit float32: the curve stays float64, finite, with no warning."""
    x = (np.random.default_rng(2).standard_normal((8, 4096)) * 1e30).astype(np.float32)
    scheme = QuantScheme(bits=4, symmetric=symmetric, granularity=granularity, axis=0, group_size=128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cal = make_calibrator("mse").calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    assert cal.curve.y.dtype == np.float64
    chosen = cal.curve.y[np.arange(cal.curve.y.shape[0]), cal.curve.chosen]
    assert np.all(np.isfinite(chosen)) and np.all(chosen > 1e50)
    small = make_calibrator("mse").calibrate(CalibrationData(to_rows(x * np.float32(1e-30), scheme)), scheme)
    assert small.curve.y.dtype == np.float32
