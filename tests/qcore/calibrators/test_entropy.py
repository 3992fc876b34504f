"""Entropy (KL) calibrator: modelopt's search, vectorised; checked against a port of its loop and the real one."""

from __future__ import annotations

from collections import Counter

import entropy_numpy
import numpy as np
import pytest
from scipy.stats import entropy as scipy_kl

from qcore import Histogram, QuantOptionError, QuantScheme, abs_histogram, to_rows
from qcore.calibrators import CalibrationData, make_calibrator
from qcore.calibrators import entropy as entropy_module
from qcore.calibrators.entropy import (
    START_BIN,
    entropy_threshold,
    kl_curve,
    kl_distributions,
    pick_largest_min,
    search_counts,
)
from qcore.histogram import one_sided_histograms


def modelopt_entropy_oracle(hist: np.ndarray, num_bits: int = 8, unsigned: bool = False, zero_bin: bool = True):
    """Port of ``_compute_amax_entropy`` (NVIDIA/TensorRT-Model-Optimizer,
    modelopt/torch/quantization/calib/histogram.py, 0.47): same loop, same digitize, same scipy call.

    Returns ``(i*, divergences)``; ``zero_bin=False`` drops the ``bins[0] = bins[1]`` line.
    """
    bins = np.array(hist, dtype=np.int64)
    if zero_bin:
        bins[0] = bins[1]
    nbins = 1 << (num_bits - 1 + int(unsigned))
    divergences = []
    for i in range(START_BIN, len(bins) + 1):
        new_density_counts = np.zeros(nbins, dtype=np.float64)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        for key, val in Counter(digitized_space).items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        reference_density = np.array(bins[:i], dtype=np.float64)
        reference_density[-1] += np.sum(bins[i:])
        with np.errstate(invalid="ignore", divide="ignore"):
            divergences.append(scipy_kl(reference_density, new_density))
    divergences = np.array(divergences)
    return START_BIN + len(divergences) - 1 - int(np.argmin(divergences[::-1])), divergences


def _abs_hist(x: np.ndarray, bins: int) -> Histogram:
    scheme = QuantScheme()
    return CalibrationData(to_rows(x, scheme)).abs_histogram(bins)


def _samples() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    relu = np.maximum(rng.standard_normal(30_000), 0)
    return {
        "normal": rng.standard_normal(40_000),
        "laplace": rng.laplace(size=40_000),
        "relu": relu,
        "sparse": rng.standard_t(2, size=3_000),
    }


@pytest.mark.parametrize(
    ("name", "bits", "unsigned"),
    [
        ("normal", 8, False),
        ("laplace", 8, False),
        ("relu", 8, False),
        ("sparse", 8, False),
        ("laplace", 4, False),
        ("laplace", 2, False),
        ("relu", 8, True),
        ("normal", 9, False),
        ("sparse", 10, False),
    ],
)
def test_search_matches_modelopt_loop(name: str, bits: int, unsigned: bool) -> None:
    counts = _abs_hist(_samples()[name].astype(np.float32), 320).counts[0]
    expected, divergences = modelopt_entropy_oracle(counts, bits, unsigned)
    kl = kl_curve(search_counts(counts[None, :]), 1 << (bits - 1 + unsigned))[0]
    finite = np.isfinite(divergences)
    np.testing.assert_array_equal(np.isfinite(kl), finite)
    np.testing.assert_allclose(kl[finite], divergences[finite], rtol=1e-9, atol=1e-12)
    assert START_BIN + int(pick_largest_min(kl[None, :])[0]) == expected


def test_long_search_matches_modelopt_loop() -> None:
    x = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    hist = _abs_hist(x, 1024)
    expected, _ = modelopt_entropy_oracle(hist.counts[0])
    threshold, curve = entropy_threshold(hist, 128)
    assert START_BIN + int(curve.chosen[0]) == expected
    assert threshold[0] == pytest.approx(expected * hist.width[0], rel=1e-12)


def test_without_zero_bin_quirk_matches_loop_without_that_line() -> None:
    counts = _abs_hist(_samples()["relu"].astype(np.float32), 256).counts[0]
    expected, _ = modelopt_entropy_oracle(counts, zero_bin=False)
    kl = kl_curve(search_counts(counts[None, :], modelopt_zero_bin=False), 128)
    assert START_BIN + int(pick_largest_min(kl)[0]) == expected
    quirk, _ = modelopt_entropy_oracle(counts)
    assert quirk != expected  # the quirk matters on a ReLU zero spike, so both settings are really exercised


def test_rows_with_few_values_match_modelopt_loop() -> None:
    """Rows far shorter than the bin count take the finite-candidates-only path; same KL as the loop."""
    rng = np.random.default_rng(11)
    x = (rng.standard_t(3, size=(40, 12)) * rng.uniform(0.5, 2.0, (40, 1))).astype(np.float32)
    scheme = QuantScheme(granularity="channel")
    counts = CalibrationData(to_rows(x, scheme)).abs_histogram(512).counts
    kl = kl_curve(search_counts(counts), 128)
    chosen = pick_largest_min(kl)
    for r in (0, 17, 39):
        expected, divergences = modelopt_entropy_oracle(counts[r])
        finite = np.isfinite(divergences)
        np.testing.assert_array_equal(np.isfinite(kl[r]), finite)
        np.testing.assert_allclose(kl[r, finite], divergences[finite], rtol=1e-9, atol=1e-12)
        assert START_BIN + int(chosen[r]) == expected


def test_warning_on_sparse_histograms_only() -> None:
    rng = np.random.default_rng(12)
    short = rng.standard_normal((8, 300)).astype(np.float32)
    for scheme in (QuantScheme(granularity="channel"), QuantScheme(granularity="channel", symmetric=False)):
        cal = make_calibrator("entropy").calibrate(CalibrationData(to_rows(short, scheme)), scheme)
        assert cal.details["warning"].startswith("rows hold 300 values for 2048 bins")
    long = rng.standard_normal(5000).astype(np.float32)
    cal = make_calibrator("entropy").calibrate(CalibrationData(to_rows(long, QuantScheme())), QuantScheme())
    assert "warning" not in cal.details


def _reference_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    outliers = rng.standard_normal(200_000).astype(np.float32)
    outliers[rng.choice(outliers.size, 8, replace=False)] = rng.uniform(20, 60, 8).astype(np.float32)
    return {
        "laplace": rng.laplace(size=50_000).astype(np.float32),
        "gaussian_outliers": outliers,
        "relu": np.maximum(rng.standard_normal(80_000), 0).astype(np.float32),
    }


@pytest.mark.parametrize(
    ("name", "bits", "unsigned"),
    [
        ("laplace", 8, False),
        ("laplace", 4, False),
        ("gaussian_outliers", 8, False),
        ("gaussian_outliers", 6, False),
        ("relu", 8, True),
        ("relu", 8, False),
    ],
)
def test_real_modelopt_histogram_calibrator(modelopt_collect, name: str, bits: int, unsigned: bool) -> None:
    """NVIDIA modelopt 0.47 ``HistogramCalibrator.compute_amax('entropy')``, collected with its torch.histc.

    On modelopt's own histogram our search picks the same threshold (``edges[i*] = i* w``); end to end
    (our histogram, our search) within one bin: the two histograms bin a few edge values differently.
    """
    x = _reference_tensors()[name]
    reference = modelopt_collect(x, bits, unsigned)
    theirs = float(reference.compute_amax("entropy"))
    counts = reference._calib_hist.int().numpy().astype(np.int64)
    edges = reference._calib_bin_edges.numpy().astype(np.float64)
    levels = 1 << (bits - 1 + int(unsigned))
    same_hist = Histogram(counts[None, :], np.zeros(1), np.array([edges[-1] / counts.size]), absolute=True)
    threshold, _ = entropy_threshold(same_hist, levels)
    assert threshold[0] == pytest.approx(theirs, rel=1e-6)
    scheme = QuantScheme(bits=bits, signed=not unsigned)
    ours = make_calibrator("entropy").calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    assert abs(ours.hi[0] - theirs) <= same_hist.width[0] * 1.0001
    assert 0 < theirs < float(np.abs(x).max()) or name == "relu"


def test_golden_modelopt_values_on_torch_randn() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(100000).numpy()
    for bits, golden in ((8, 4.3444), (4, 3.5290)):
        scheme = QuantScheme(bits=bits)
        cal = make_calibrator("entropy").calibrate(CalibrationData(to_rows(x, scheme)), scheme)
        assert cal.hi[0] == pytest.approx(golden, abs=5e-5)


def test_kl_distributions_by_hand() -> None:
    counts = np.array([0.0, 4, 2, 0, 6, 1, 3, 2])
    p, q, tail = kl_distributions(counts, 4, 2)
    # P: first 4 bins, tail 6+1+3+2=12 folded into bin 3 -> [0, 4, 2, 12] / 18
    assert tail == 12
    np.testing.assert_allclose(p, np.array([0, 4, 2, 12]) / 18)
    # Q: groups {0,1} -> 4 over one non-empty bin, {2,3} -> 2 over one non-empty bin -> [0, 4, 2, 0] / 6
    np.testing.assert_allclose(q, np.array([0, 4, 2, 0]) / 6)
    assert np.isinf(scipy_kl(p, q))  # p > 0 where q == 0: no smoothing
    p, q, _ = kl_distributions(counts, 8, 2)
    np.testing.assert_allclose(q, np.array([0, 3, 3, 0, 3, 3, 3, 3]) / 18)
    kl = kl_curve(counts[None, :], 2, start_bin=4)[0]
    assert np.isinf(kl[0])
    assert kl[-1] == pytest.approx(scipy_kl(p, q), rel=1e-12)


def test_ties_go_to_the_largest_candidate() -> None:
    counts = np.zeros((2, 512))
    counts[0, :128] = 5  # every candidate has Q == P: KL = 0 everywhere
    counts[1, 0] = 7  # zeros (removed by the quirk) and one value in the last bin: only i = bins is finite
    counts[1, 511] = 1
    hist = Histogram(counts, np.zeros(2), np.array([0.01, 0.01]), absolute=True)
    threshold, curve = entropy_threshold(hist, 128)
    np.testing.assert_allclose(curve.y[0], 0.0, atol=1e-12)
    assert curve.chosen[0] == curve.x.shape[1] - 1
    assert threshold[0] == pytest.approx(512 * 0.01)
    assert modelopt_entropy_oracle(counts[0].astype(np.int64))[0] == 512
    assert np.isinf(curve.y[1, :-1]).all()
    assert threshold[1] == pytest.approx(512 * 0.01)


def test_variant_tensorrt_reports_half_bin_more() -> None:
    x = np.random.default_rng(1).standard_normal(20_000).astype(np.float32)
    data = CalibrationData(to_rows(x, QuantScheme()))
    base = make_calibrator("entropy").calibrate(data, QuantScheme())
    trt = make_calibrator("entropy", variant="tensorrt").calibrate(data, QuantScheme())
    w = data.abs_histogram(2048).width[0]
    assert trt.hi[0] == pytest.approx(min(base.hi[0] + 0.5 * w, float(np.abs(x).max())))


def test_per_channel_rows_equal_independent_runs() -> None:
    rng = np.random.default_rng(2)
    w = (rng.standard_normal((6, 3000)) * np.array([0.1, 1, 3, 10, 0.01, 2])[:, None]).astype(np.float32)
    w[4, :2000] = 0.0
    scheme = QuantScheme(granularity="channel")
    cal = make_calibrator("entropy", bins=256).calibrate(CalibrationData(to_rows(w, scheme)), scheme)
    for r in range(w.shape[0]):
        single = make_calibrator("entropy", bins=256).calibrate(
            CalibrationData(to_rows(w[r], QuantScheme())), QuantScheme()
        )
        assert cal.hi[r] == single.hi[0]
        assert cal.lo[r] == -cal.hi[r]


def test_asymmetric_runs_the_search_on_each_side() -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([-rng.exponential(0.5, 20_000), rng.exponential(2.0, 20_000)]).astype(np.float32)
    scheme = QuantScheme(symmetric=False)
    cal = make_calibrator("entropy", bins=512).calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    pos = make_calibrator("entropy", bins=512).calibrate(
        CalibrationData(to_rows(x[x > 0], QuantScheme())), QuantScheme()
    )
    neg = make_calibrator("entropy", bins=512).calibrate(
        CalibrationData(to_rows(-x[x < 0], QuantScheme())), QuantScheme()
    )
    assert cal.hi[0] == pos.hi[0]
    assert cal.lo[0] == -neg.hi[0]
    assert x.min() <= cal.lo[0] < 0 < cal.hi[0] <= x.max()
    assert "lower_curve" in cal.details
    relu = np.abs(x)
    cal = make_calibrator("entropy", bins=512).calibrate(CalibrationData(to_rows(relu, scheme)), scheme)
    assert cal.lo[0] == relu.min()


def test_search_leaves_the_shared_histogram_untouched() -> None:
    x = np.random.default_rng(5).standard_normal(5000).astype(np.float32)
    data = CalibrationData(to_rows(x, QuantScheme()))
    before = data.abs_histogram(2048).counts.copy()
    make_calibrator("entropy").calibrate(data, QuantScheme())
    np.testing.assert_array_equal(data.abs_histogram(2048).counts, before)


@pytest.mark.parametrize("options", [{"bins": 127}, {"bins": 0}, {"variant": "ncnn"}])
def test_impossible_options(options: dict) -> None:
    with pytest.raises(QuantOptionError):
        make_calibrator("entropy", **options)


@pytest.mark.parametrize("mean", [3.0, 0.2])  # dense rows (the sparse product) and rows of few values (finite pairs)
def test_table_lookups_give_the_logs_they_replace(monkeypatch, mean: float) -> None:
    """``S log(S/n)`` and ``xlogy`` from lookup tables of integer counts equal the computed logs."""
    counts = np.random.default_rng(5).poisson(mean, size=(300, 512)).astype(np.float64)
    with_tables = kl_curve(counts, 128)
    monkeypatch.setattr(entropy_module, "_TABLE_ENTRIES", 0)  # no table fits: every log computed
    computed = kl_curve(counts, 128)
    if mean > 1:
        np.testing.assert_array_equal(with_tables, computed)  # the same float64 expressions: the same bits
    else:
        np.testing.assert_allclose(with_tables, computed, rtol=1e-12)  # only the summation order differs
    np.testing.assert_array_equal(pick_largest_min(with_tables), pick_largest_min(computed))


# ---------------------------------------------------------------- rows shorter than the histogram: sparse search


def _adversarial_groups(seed: int) -> np.ndarray:
    """24 groups of 64 (every third padded with NaN): Gaussian, ties, constant, outlier, zeros, two values..."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((24, 64))
    x[1] = np.round(x[1] * 2) / 2
    x[2] = 0.75
    x[3, 5] = 80.0
    x[4] = 0.0
    x[7] = rng.choice([-1.0, 2.0], 64)
    x[8, :63] = 0.0
    x[9] = rng.laplace(size=64) ** 3
    x[11, :10] = 0.0  # a spike of exact zeros (modelopt's bin-0 quirk)
    x[12] = np.abs(x[12]) * 1e-3 + 1.0  # every value in the top bins
    return x.reshape(8, 192)[:, :189].astype(np.float32)


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("levels", [2, 8, 127, 128, 256])
@pytest.mark.parametrize("bins", [128, 256, 2048])
@pytest.mark.parametrize("zero_bin", [True, False])
@pytest.mark.parametrize("variant", ["modelopt", "tensorrt"])
def test_sparse_search_equals_the_dense_search(
    compiled: bool, seed: int, levels: int, bins: int, zero_bin: bool, variant: str
) -> None:
    if levels >= bins:
        pytest.skip("the sparse search needs fewer levels than bins")
    rows = to_rows(_adversarial_groups(seed), QuantScheme(granularity="group", axis=1, group_size=64))
    search = entropy_module if compiled else entropy_numpy  # the kernel, or the numpy steps (the reference)
    sparse, curve = search.sparse_entropy_threshold(rows, bins, levels, zero_bin, variant)
    dense, dense_curve = entropy_threshold(abs_histogram(rows, bins), levels, zero_bin, variant)
    np.testing.assert_array_equal(sparse, dense)
    n = rows.n_rows
    picked = curve.y[np.arange(n), curve.chosen]
    want = dense_curve.y[np.arange(n), dense_curve.chosen]
    np.testing.assert_allclose(picked, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("levels", [8, 128, 256])
@pytest.mark.parametrize("zero_bin", [True, False])
def test_sparse_side_search_equals_the_dense_search_of_that_side(
    compiled: bool, seed: int, levels: int, zero_bin: bool
) -> None:
    """Each side of the asymmetric search (one sort per row block) against the histogram of that side's values."""
    x = _adversarial_groups(seed)
    x[2, 20:40] = -x[2, 20:40]  # a few rows with both signs among the constant and one-signed ones
    rows = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=64))
    search = entropy_module if compiled else entropy_numpy  # the kernel, or the numpy steps (the reference)
    for side, positive in (("positive", True), ("negative", False)):
        got, curve = search.sparse_side_threshold(rows, side, 2048, levels, zero_bin)
        one_side = one_sided_histograms(rows, 2048)[0 if positive else 1]
        want, dense_curve = entropy_threshold(one_side, levels, zero_bin)
        np.testing.assert_array_equal(got, want)
        n = rows.n_rows
        picked = curve.y[np.arange(n), curve.chosen]
        np.testing.assert_allclose(picked, dense_curve.y[np.arange(n), dense_curve.chosen], rtol=1e-9, atol=1e-12)


def test_calibrator_takes_the_sparse_search_on_short_rows(monkeypatch) -> None:
    x = np.random.default_rng(2).standard_normal((64, 256)).astype(np.float32)
    calls = []
    original = entropy_module.sparse_side_threshold

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(entropy_module, "sparse_side_threshold", spy)
    for symmetric in (True, False):
        scheme = QuantScheme(symmetric=symmetric, granularity="group", axis=1, group_size=128)
        data = CalibrationData(to_rows(x, scheme))
        cal = make_calibrator("entropy").calibrate(data, scheme)
        assert np.all(np.isfinite(cal.hi))
    assert len(calls) == 3  # symmetric once, asymmetric once per side


@pytest.mark.parametrize("levels", [8, 128, 256])
@pytest.mark.parametrize("zero_bin", [True, False])
def test_last_group_bound_never_exceeds_the_kl(levels: int, zero_bin: bool) -> None:
    """The three-part bound that prunes candidates is at most the exact KL of every finite candidate."""
    rng = np.random.default_rng(levels)
    x = np.concatenate([_adversarial_groups(0).reshape(-1, 63), rng.standard_normal((40, 63)).astype(np.float32)])
    rows = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=63))
    width = rows.absmax / 2048
    idx = entropy_numpy.unit_entries(entropy_numpy.sorted_magnitudes(rows.values, "abs"), width, 2048, zero_bin)
    tables = entropy_numpy.entry_tables(idx, 2048, levels)
    r, j = np.nonzero((tables.counts > 0) & (idx >= START_BIN - 1))
    kl = entropy_numpy._pair_kl(tables, r, j, levels)
    bound = entropy_numpy.last_group_bound(idx, tables.first, tables.counts, tables.total, levels, r, j)
    finite = np.isfinite(kl)
    assert finite.sum() > 1000
    assert np.all(bound[finite] <= kl[finite] + 1e-12 + 1e-9 * np.abs(kl[finite]))
    assert np.mean(bound[finite] > 0.5 * kl[finite]) > 0.3  # and it is not trivially small


# ---------------------------------------------------------------- per channel: pruned search, summarised curve


def _adversarial_channels(seed: int) -> np.ndarray:
    """20 channels of 3000 values (longer than the histogram): Gaussian, ties, constant, outliers, zeros, NaN..."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((20, 3000))
    x[1] = np.round(x[1] * 2) / 2
    x[2] = 0.75
    x[3, 5] = 80.0
    x[4] = 0.0
    x[5] = rng.choice([-1.0, 2.0], 3000)
    x[6, :2999] = 0.0
    x[7] = rng.laplace(size=3000) ** 3
    x[8, :1000] = 0.0  # a spike of exact zeros (modelopt's bin-0 quirk)
    x[9] = np.abs(x[9]) * 1e-3 + 1.0  # every value in the top bins
    x[10, ::2] = np.nan
    x[11] = rng.uniform(-1, 1, 3000)  # flat: many near-equal KL values
    x[12] = rng.exponential(size=3000)
    x[13] = rng.standard_t(2, size=3000)
    x[14, :2990] = np.nan  # ten values left
    return x.astype(np.float32)


def _check_summarised(hist: Histogram, levels: int, zero_bin: bool, variant: str, compiled: bool, monkeypatch) -> None:
    """Same thresholds as the dense search; the curve is the dense curve at the grid columns plus the chosen point."""
    if not compiled:  # the numpy steps (the reference) in place of the kernel
        monkeypatch.setattr(entropy_module, "pruned_kl_search", entropy_numpy.pruned_kl_search)
    dense, dense_curve = entropy_threshold(hist, levels, zero_bin, variant)
    got, curve = entropy_threshold(hist, levels, zero_bin, variant, curve_step=16)
    np.testing.assert_array_equal(got, dense)
    n = np.arange(hist.n_rows)
    picked = curve.y[n, curve.chosen]
    np.testing.assert_allclose(picked, dense_curve.y[n, dense_curve.chosen], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(curve.x[n, curve.chosen], got)
    grid = entropy_module.grid_columns(hist.bins - START_BIN + 1, 16)
    assert curve.x.shape == (hist.n_rows, grid.size + 1) and grid[-1] == hist.bins - START_BIN
    assert np.all(np.diff(curve.x, axis=1) >= 0)  # in order: the chosen point sits between its grid neighbours
    shown = np.ones(curve.x.shape, dtype=bool)
    shown[n, curve.chosen] = False
    on_grid = curve.y[shown].reshape(hist.n_rows, grid.size)
    want = dense_curve.y[:, grid]
    np.testing.assert_array_equal(np.isfinite(on_grid), np.isfinite(want))
    np.testing.assert_allclose(on_grid[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(curve.x[shown].reshape(hist.n_rows, grid.size), dense_curve.x[:, grid])


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("levels", [2, 8, 127, 128, 256])
@pytest.mark.parametrize("bins", [256, 2048])
@pytest.mark.parametrize(("zero_bin", "variant"), [(True, "modelopt"), (False, "tensorrt")])
def test_pruned_search_equals_the_dense_search(
    monkeypatch, compiled: bool, levels: int, bins: int, zero_bin: bool, variant: str
) -> None:
    if levels >= bins:
        pytest.skip("the pruned search needs fewer levels than bins")
    x = _adversarial_channels(levels + bins)
    rows = to_rows(x, QuantScheme(granularity="channel", axis=0))
    _check_summarised(abs_histogram(rows, bins), levels, zero_bin, variant, compiled, monkeypatch)
    for side in one_sided_histograms(rows, bins):
        _check_summarised(side, levels, zero_bin, variant, compiled, monkeypatch)


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "numpy"])
def test_pruned_search_on_ties_and_non_integer_counts(monkeypatch, compiled: bool) -> None:
    """KL 0 at every candidate (ties: the largest wins), only ``i = bins`` finite, an empty row, fractional counts."""
    counts = np.zeros((5, 512))
    counts[0, :128] = 5
    counts[1, 0], counts[1, 511] = 7, 1
    counts[3] = np.random.default_rng(3).poisson(0.7, 512)
    counts[4] = counts[3] * 0.37  # not integers: the logs are computed, not looked up
    hist = Histogram(counts, np.zeros(5), np.full(5, 0.01), absolute=True)
    for levels in (8, 128):
        _check_summarised(hist, levels, True, "modelopt", compiled, monkeypatch)
    _, curve = entropy_threshold(hist, 128, curve_step=16)
    assert curve.chosen[0] == curve.x.shape[1] - 2  # i = bins, inserted before the grid's own last point
    np.testing.assert_array_equal(curve.y[2], 0.0)  # nothing to search: KL 0, T = 0


def test_calibrator_summarises_the_curve_per_channel_only() -> None:
    x = np.random.default_rng(6).standard_normal((8, 4096)).astype(np.float32)
    for symmetric in (True, False):
        tensor = QuantScheme(symmetric=symmetric)
        channel = QuantScheme(symmetric=symmetric, granularity="channel", axis=0)
        whole = make_calibrator("entropy").calibrate(CalibrationData(to_rows(x[3], tensor)), tensor)
        rows = make_calibrator("entropy").calibrate(CalibrationData(to_rows(x, channel)), channel)
        assert whole.curve.x.shape == (1, 2048 - START_BIN + 1)
        assert rows.curve.x.shape == (8, entropy_module.grid_columns(1921, entropy_module.CURVE_STEP).size + 1)
        assert rows.hi[3] == whole.hi[0] and rows.lo[3] == whole.lo[0]
        if not symmetric:
            assert rows.details["lower_curve"].x.shape == rows.curve.x.shape


@pytest.mark.parametrize("side", ["abs", "positive", "negative"])
@pytest.mark.parametrize("levels", [2, 8, 128, 256])
def test_sparse_kernel_evaluates_what_numpy_evaluates(side: str, levels: int) -> None:
    """The compiled row loop keeps the same candidates (same bounds) with the same KL as the numpy steps."""
    x = np.concatenate([_adversarial_groups(s) for s in range(3)])
    x[2, 20:40] = -x[2, 20:40]
    x[3, :63] = 1.5 / 2048  # bin 1 full, bin 0 empty: modelopt's quirk adds entries ...
    x[3, 0], x[3, 1:5] = 1.0, -1.5 / 2048
    x[4, :63] = 0.0  # ... or removes them (a spike of zeros, the rest in bin 1)
    x[4, 5:8], x[4, 8], x[4, 9:12] = 1.5 / 2048, 1.0, -1.0
    rows = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=63))
    for zero_bin in (True, False):
        kernel = entropy_module.sparse_side_threshold(rows, side, 2048, levels, zero_bin)
        numpy_ = entropy_numpy.sparse_side_threshold(rows, side, 2048, levels, zero_bin)
        np.testing.assert_array_equal(kernel[0], numpy_[0])
        np.testing.assert_array_equal(kernel[1].x, numpy_[1].x)  # the same candidates, NaN in the same places
        np.testing.assert_array_equal(kernel[1].chosen, numpy_[1].chosen)
        np.testing.assert_allclose(kernel[1].y, numpy_[1].y, rtol=1e-12, atol=1e-14)


def test_load_kernels_prepares_every_compiled_path() -> None:
    """The warm-up the app and browser suites run first covers both lookup paths and the sparse loop."""
    from qcore.kernels import entropy as kernels

    entropy_module.load_kernels()
    assert len(kernels.pruned_rows.signatures) >= 2  # read-only lookup tables, and empty ones (computed logs)
    assert kernels.sparse_rows.signatures and kernels.entry_counts.signatures


@pytest.mark.parametrize(
    ("shape", "granularity", "points"),
    [((4096,), "tensor", "all"), ((4, 4096), "channel", "grid"), ((4, 600), "channel", "could_win")],
)
@pytest.mark.parametrize("symmetric", [True, False])
def test_details_say_how_many_candidates_were_searched_and_what_the_curve_keeps(
    shape, granularity, points, symmetric
) -> None:
    """``candidates``: thresholds ``i w``, ``i = 128 .. bins``, per side; ``curve_points``: which of them are drawn."""
    x = np.random.default_rng(11).standard_normal(shape).astype(np.float32)
    scheme = QuantScheme(symmetric=symmetric, granularity=granularity, axis=0)
    cal = make_calibrator("entropy").calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    assert cal.details["candidates"] == 2048 - 128 + 1 and cal.details["curve_points"] == points
    curves = [cal.curve] + ([] if symmetric else [cal.details["lower_curve"]])
    for curve in curves:
        drawn = [np.unique(row[~np.isnan(row)]).size for row in curve.x]
        if points == "all":
            assert drawn == [1921] * len(drawn)
        else:  # every 16th (121), the last and the chosen one; or the few that could win
            assert all(1 <= n <= (122 if points == "grid" else 1921) for n in drawn)
            assert points != "grid" or all(n >= 121 for n in drawn)
