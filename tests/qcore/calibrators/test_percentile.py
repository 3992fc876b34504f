"""Percentile calibrator: lower edge of the crossing bin, as ONNX Runtime and modelopt."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, to_rows
from qcore.calibrators import CalibrationData, make_calibrator
from qcore.calibrators import percentile as percentile_module


def _calibrate(x: np.ndarray, scheme: QuantScheme | None = None, **options):
    scheme = scheme or QuantScheme()
    data = CalibrationData(to_rows(np.asarray(x, dtype=np.float32), scheme))
    return data, make_calibrator("percentile", **options).calibrate(data, scheme)


def _binned(counts: list[int], bins: int) -> np.ndarray:
    """Values at the centres of bins of width 1/bins over [0, 1], plus the max 1.0 (last bin)."""
    centres = (np.arange(bins) + 0.5) / bins
    return np.concatenate([np.repeat(centres, counts), [1.0]])


def test_lower_edge_of_the_crossing_bin_by_hand() -> None:
    # 10 bins of width 0.1; counts 50,20,10,10,5,2,1,1,0 and the max (1.0) in the last bin: 100 values
    x = _binned([50, 20, 10, 10, 5, 2, 1, 1, 0, 0], 10)
    for p, expected in ((75, 0.2), (85, 0.3), (96, 0.5), (98.5, 0.7)):
        _, cal = _calibrate(x, bins=10, percentile=p)
        assert cal.hi[0] == pytest.approx(expected), p
        assert cal.lo[0] == -cal.hi[0]


def test_guard_when_the_crossing_bin_is_bin_zero() -> None:
    x = _binned([50, 20, 10, 10, 5, 2, 1, 1, 0, 0], 10)
    _, cal = _calibrate(x, bins=10, percentile=40)  # cdf[0] = 0.5 >= 0.4: lower edge 0 -> upper edge 0.1
    assert cal.hi[0] == pytest.approx(0.1)
    spike = np.zeros(100_000, dtype=np.float32)
    spike[17] = 3.0
    _, cal = _calibrate(spike)
    assert cal.hi[0] == pytest.approx(3.0 / 2048)
    _, cal = _calibrate(np.zeros(10))
    assert cal.hi[0] == 0.0


def test_unsigned_symmetric_range_starts_at_zero() -> None:
    x = _binned([50, 20, 10, 10, 5, 2, 1, 1, 0, 0], 10)
    _, cal = _calibrate(x, QuantScheme(signed=False), bins=10, percentile=75)
    assert (cal.lo[0], cal.hi[0]) == (0.0, pytest.approx(0.2))


def _ort(x: np.ndarray, symmetric: bool, percentile: float, bins: int = 2048) -> tuple[float, float]:
    calibrate = pytest.importorskip("onnxruntime.quantization.calibrate")
    collector = calibrate.HistogramCollector("percentile", symmetric, bins, 128, percentile, "same")
    with contextlib.redirect_stdout(io.StringIO()):
        collector.collect({"t": [x]})
        lo, hi = collector.compute_collection_result()["t"][:2]
    return float(lo), float(hi)


@pytest.mark.parametrize("percentile", [99.99, 99.9, 99.0, 90.0])
def test_symmetric_matches_onnxruntime_on_non_negative_data(percentile: float) -> None:
    # ORT's |x| histogram spans [min|x|, max|x|]; with a 0 in the data it is our [0, max|x|].
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal(100_000)).astype(np.float32)
    x[0] = 0.0
    _, cal = _calibrate(x, percentile=percentile)
    lo, hi = _ort(x, True, percentile)
    assert lo == 0.0  # ORT clips -T to the signed min
    assert cal.hi[0] == pytest.approx(hi, rel=1e-6)  # same bin; ORT's edges are float32


@pytest.mark.parametrize("percentile", [99.999, 99.9, 95.0])
def test_asymmetric_matches_onnxruntime_when_ranges_coincide(percentile: float) -> None:
    # ORT's signed histogram spans [-A, A]; with min = -max it is our [min, max].
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(100_000) * 1.5 + 0.4).astype(np.float32)
    a = np.abs(x).max()
    x[:2] = -a, a
    scheme = QuantScheme(symmetric=False)
    _, cal = _calibrate(x, scheme, percentile=percentile)
    lo, hi = _ort(x, False, percentile)
    assert cal.lo[0] == pytest.approx(lo, rel=1e-6)
    assert cal.hi[0] == pytest.approx(hi, rel=1e-6)
    assert x.min() <= cal.lo[0] <= cal.hi[0] <= x.max()
    assert cal.details["share_curve"].goal == "none"


def test_golden_modelopt_percentile_on_torch_randn() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(100000).numpy()
    _, cal = _calibrate(x)
    assert cal.hi[0] == pytest.approx(3.9300, abs=5e-5)


def test_per_channel_rows_equal_independent_runs() -> None:
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((5, 2000)) * np.array([0.01, 1, 5, 100, 0.5])[:, None]).astype(np.float32)
    scheme = QuantScheme(granularity="channel")
    _, cal = _calibrate(w, scheme, percentile=99.0)
    for r in range(5):
        _, single = _calibrate(w[r], percentile=99.0)
        assert cal.hi[r] == single.hi[0]
    share = cal.details["share_curve"]
    assert cal.curve is None  # not a search
    assert share.goal == "none"  # a CDF crossing a target, not an optimum of y
    assert share.y.shape == (5, 2048)
    assert np.all(np.diff(share.y, axis=1) >= 0)
    rows = np.arange(5)
    np.testing.assert_allclose(share.x[rows, share.chosen], cal.hi)  # the marked point is T
    # T is the lower edge of the crossing bin (below 0.99 in float64; the float32 curve may round up to it)
    assert np.all(share.y[rows, share.chosen] <= np.float32(0.99))


def test_histogram_and_input_untouched() -> None:
    x = np.random.default_rng(4).standard_normal(3000).astype(np.float32)
    keep = x.copy()
    data, _ = _calibrate(x)
    before = data.abs_histogram(2048).counts.copy()
    make_calibrator("percentile").calibrate(data, QuantScheme())
    np.testing.assert_array_equal(data.abs_histogram(2048).counts, before)
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("options", [{"percentile": 0}, {"percentile": 100.5}, {"percentile": -1}, {"bins": 0}])
def test_impossible_options(options: dict) -> None:
    with pytest.raises(QuantOptionError):
        make_calibrator("percentile", **options)


@pytest.mark.parametrize("name", ["laplace", "student_t", "relu"])
def test_real_modelopt_percentile_same_bin(modelopt_collect, name: str) -> None:
    """NVIDIA modelopt 0.47 ``HistogramCalibrator.compute_amax('percentile')`` (torch.histc, 2048 bins)."""
    rng = np.random.default_rng(3)
    x = {
        "laplace": rng.laplace(size=50_000),
        "student_t": rng.standard_t(3, size=100_000),
        "relu": np.maximum(rng.standard_normal(80_000), 0),
    }[name].astype(np.float32)
    reference = modelopt_collect(x)
    width = float(reference._calib_bin_edges[-1]) / 2048
    for p in (99.0, 99.9, 99.99):
        theirs = float(reference.compute_amax("percentile", percentile=p))
        _, cal = _calibrate(x, percentile=p)
        assert abs(cal.hi[0] - theirs) < 1e-3 * width, p  # the same bin edge, up to float32 rounding


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("percentile", [50.0, 99.0, 99.99, 100.0])
def test_short_rows_without_the_dense_histogram_give_the_same_bins(monkeypatch, symmetric: bool, percentile: float):
    """Many rows shorter than ``bins``: crossings from sorted bin indices equal the dense histogram's."""
    rng = np.random.default_rng(6)
    x = rng.standard_t(3, size=(64, 200)).astype(np.float32)
    x[0] = 2.5  # constant row
    x[1] = 0.0  # all-zero row
    x[2, :150] = np.nan  # mostly missing
    x[3] = np.round(x[3] * 4) / 4  # many values in the same bins
    x[4, :] = np.nan  # nothing present
    scheme = QuantScheme(granularity="channel", symmetric=symmetric)
    rows = to_rows(x, scheme)
    dense = make_calibrator("percentile", percentile=percentile).calibrate(CalibrationData(rows), scheme)
    monkeypatch.setattr(percentile_module, "MAX_CURVE_ELEMENTS", 0)
    monkeypatch.setattr(percentile_module, "_BLOCK_ELEMENTS", 7 * 200)  # blocks of 7 rows (the last shorter)
    short = make_calibrator("percentile", percentile=percentile).calibrate(CalibrationData(rows), scheme)
    assert "share_curve" in dense.details and "share_curve" not in short.details
    for key in ("bin",) if symmetric else ("bin_lo", "bin_hi"):
        np.testing.assert_array_equal(short.details[key], dense.details[key])
    np.testing.assert_array_equal(short.lo, dense.lo)
    np.testing.assert_array_equal(short.hi, dense.hi)


@pytest.mark.parametrize("symmetric", [True, False])
def test_share_curve_is_float32_of_the_float64_cdf_in_row_blocks(monkeypatch, symmetric: bool) -> None:
    """The crossing is found on the float64 cdf of the whole row; the curve kept is its float32 rounding (and the
    upper edges'), the same when the rows are processed a few at a time."""
    rng = np.random.default_rng(9)
    x = (rng.standard_t(3, size=(11, 3000)) * rng.uniform(0.01, 50, (11, 1))).astype(np.float32)
    x[4] = np.nan  # an empty row: an all-zero cdf
    scheme = QuantScheme(granularity="channel", symmetric=symmetric)
    monkeypatch.setattr(percentile_module, "_CDF_BLOCK_ELEMENTS", 3 * 256)  # blocks of 3 rows (the last shorter)
    data, cal = _calibrate(x, scheme, bins=256, percentile=99.0)
    hist = data.abs_histogram(256) if symmetric else data.signed_histogram(256)
    cdf = percentile_module.cumulative_share(hist.counts)  # float64, every row at once
    share = cal.details["share_curve"]
    assert share.x.dtype == share.y.dtype == np.float32 == make_calibrator("percentile").curve_dtype
    np.testing.assert_array_equal(share.y, cdf.astype(np.float32))
    np.testing.assert_array_equal(share.x, hist.edges()[:, 1:].astype(np.float32))
    key = "bin" if symmetric else "bin_hi"
    np.testing.assert_array_equal(cal.details[key], percentile_module.crossing_bin(cdf, 0.99 if symmetric else 0.995))
