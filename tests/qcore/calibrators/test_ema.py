"""EMA calibrator: moving-average min/max over batches, checked against PyTorch's observers."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, to_rows
from qcore.calibrators import CalibrationData, make_calibrator
from qcore.calibrators.ema import moving_average


def _calibrate(x: np.ndarray, scheme: QuantScheme | None = None, **options):
    scheme = scheme or QuantScheme(symmetric=False)
    return make_calibrator("ema", **options).calibrate(CalibrationData(to_rows(x, scheme)), scheme)


@pytest.fixture(scope="module")
def batches() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((40, 6, 10)) * rng.uniform(0.5, 3.0, (40, 1, 1))).astype(np.float32)


def test_recurrence_by_hand() -> None:
    x = np.array([[1.0, -1.0], [3.0, -5.0], [0.0, 2.0]], dtype=np.float32)  # batch mins -1, -5, 0; maxes 1, 3, 2
    cal = _calibrate(x, averaging_constant=0.5)
    # min: -1 -> -1 + 0.5 (-5 + 1) = -3 -> -3 + 0.5 (0 + 3) = -1.5; max: 1 -> 2 -> 2
    assert (cal.lo[0], cal.hi[0]) == (pytest.approx(-1.5), pytest.approx(2.0))
    np.testing.assert_allclose(cal.details["running_min"][0], [-1, -3, -1.5])
    sym = _calibrate(x, QuantScheme(), averaging_constant=0.5)
    assert (sym.lo[0], sym.hi[0]) == (pytest.approx(-2.0), pytest.approx(2.0))
    assert sym.details["running_curve"].y[0, -1] == pytest.approx(2.0)


def _loop(values: np.ndarray, constant: float) -> np.ndarray:
    """The recurrence written out in float64, one batch at a time, every batch present."""
    expected = np.empty(values.shape)
    current = values[:, 0].astype(np.float64)
    for k in range(values.shape[1]):
        current = current + constant * (values[:, k] - current) if k else current
        expected[:, k] = current
    return expected


def test_lfilter_equals_the_loop() -> None:
    values = np.random.default_rng(1).standard_normal((3, 50))
    expected = _loop(values, 0.01)
    curve, last = moving_average(values, 0.01, np.full(3, -np.inf), np.full(3, np.inf))
    np.testing.assert_allclose(last, expected[:, -1], rtol=1e-12)
    assert curve.dtype == np.float32 and last.dtype == np.float64
    np.testing.assert_array_equal(curve, expected.astype(np.float32))  # rtol 1e-12 is far inside float32 rounding


@pytest.mark.parametrize("missing", [False, True])
def test_running_values_are_float32_and_the_range_float64(missing: bool) -> None:
    """The averages run in float64: the range is the float64 final value (clipped to the data) and the curves and
    running values kept are float32 roundings of the float64 ones, on both paths (lfilter; loop over batches)."""
    x = np.random.default_rng(8).standard_normal((300, 4)).astype(np.float32) * np.float32(3)
    if missing:
        x[0, 1] = np.nan  # the loop path (a missing value: batch 0's min and max still exist)
    scheme = QuantScheme(symmetric=False, granularity="channel", axis=1)
    cal = _calibrate(x, scheme, averaging_constant=0.05)
    if not missing:  # one element per batch: the rows (channels) are the batch sequences
        np.testing.assert_allclose(cal.hi, _loop(x.T, 0.05)[:, -1], rtol=1e-12)
    rows = to_rows(x, scheme)
    running = cal.details["running_max"]
    assert running.dtype == np.float32 and cal.details["running_curve"].y.dtype == np.float32
    assert cal.hi.dtype == np.float64 and np.all(cal.hi <= rows.max)
    np.testing.assert_array_equal(running[:, -1], cal.hi.astype(np.float32))
    sym = _calibrate(x, QuantScheme(granularity="channel", axis=1), averaging_constant=0.05)
    np.testing.assert_array_equal(sym.hi, np.maximum(np.abs(cal.lo), np.abs(cal.hi)))
    np.testing.assert_array_equal(sym.details["running_curve"].y[:, -1], sym.hi.astype(np.float32))


def test_per_tensor_matches_torch_observer(batches: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import MovingAverageMinMaxObserver

    observer = MovingAverageMinMaxObserver()
    for batch in batches:
        observer(torch.from_numpy(batch))
    cal = _calibrate(batches)
    assert cal.lo[0] == pytest.approx(observer.min_val.item(), rel=1e-6)
    assert cal.hi[0] == pytest.approx(observer.max_val.item(), rel=1e-6)
    sym = _calibrate(batches, QuantScheme())
    assert sym.hi[0] == pytest.approx(max(-observer.min_val.item(), observer.max_val.item()), rel=1e-6)


@pytest.mark.parametrize(("channel_axis", "batch_axis"), [(1, 0), (2, 0), (2, 1), (0, 2)])
def test_per_channel_matches_torch_observer(batches: np.ndarray, channel_axis: int, batch_axis: int) -> None:
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import MovingAveragePerChannelMinMaxObserver

    moved = np.moveaxis(batches, batch_axis, 0)  # torch sees one batch at a time
    ch_axis = channel_axis - (channel_axis > batch_axis)
    observer = MovingAveragePerChannelMinMaxObserver(ch_axis=ch_axis)
    for batch in moved:
        observer(torch.from_numpy(np.ascontiguousarray(batch)))
    scheme = QuantScheme(symmetric=False, granularity="channel", axis=channel_axis)
    cal = _calibrate(batches, scheme, batch_axis=batch_axis)
    np.testing.assert_allclose(cal.lo, observer.min_val.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cal.hi, observer.max_val.numpy(), rtol=1e-5, atol=1e-6)


def test_missing_batches_are_skipped(batches: np.ndarray) -> None:
    x = batches.copy()
    x[3] = np.nan
    x[7, 0, 0] = np.inf
    cal = _calibrate(x)
    kept = np.delete(batches, 3, axis=0)
    kept_x = kept.copy()
    kept_x[6, 0, 0] = np.nan
    expected = _calibrate(kept_x)
    assert (cal.lo[0], cal.hi[0]) == (pytest.approx(expected.lo[0]), pytest.approx(expected.hi[0]))


def test_range_stays_inside_the_data(batches: np.ndarray) -> None:
    cal = _calibrate(batches)
    assert batches.min() <= cal.lo[0] <= cal.hi[0] <= batches.max()
    spike = np.zeros((20, 5), dtype=np.float32)
    spike[10, 2] = 4.0
    sym = _calibrate(spike, QuantScheme())
    assert 0 < sym.hi[0] <= 4.0


def test_impossible_options(batches: np.ndarray) -> None:
    with pytest.raises(QuantOptionError, match="group"):
        _calibrate(batches, QuantScheme(granularity="group", axis=2, group_size=5))
    with pytest.raises(QuantOptionError, match="channel axis"):
        _calibrate(batches, QuantScheme(granularity="channel", axis=0))
    with pytest.raises(QuantOptionError):
        _calibrate(batches, batch_axis=3)
    for constant in (0, 1.5, -0.1):
        with pytest.raises(QuantOptionError):
            make_calibrator("ema", averaging_constant=constant)


def test_symmetric_threshold_of_one_element_per_batch() -> None:
    """Per channel on a 2-D tensor min and max are one sequence: the running threshold is its absolute value."""
    x = np.random.default_rng(7).standard_normal((50, 3)).astype(np.float32)
    cal = _calibrate(x, QuantScheme(granularity="channel", axis=1), averaging_constant=0.3)
    running = cal.details["running_min"]
    assert running is cal.details["running_max"]
    expected = np.maximum(np.abs(running), np.abs(cal.details["running_max"]))
    np.testing.assert_array_equal(cal.details["running_curve"].y, expected)
    np.testing.assert_array_equal(cal.hi.astype(np.float32), expected[:, -1])  # the curve: float32 of the range
