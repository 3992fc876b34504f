"""analyze(): the one entry point from a tensor to parameters, codes and errors."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import CalibrationData, QuantOptionError, QuantScheme, analyze, to_rows
from qcore.analysis import grid_index, params_for
from qcore.calibrators import Calibration


def _w() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8, 32)) * np.linspace(0.1, 2.0, 8)[:, None]).astype(np.float32)


def test_minmax_per_channel_end_to_end() -> None:
    w = _w()
    a = analyze(w, QuantScheme(granularity="channel", axis=0), "minmax")
    np.testing.assert_array_equal(a.calibration.hi, np.abs(w).max(axis=1))
    np.testing.assert_allclose(a.params.scale, np.abs(w).max(axis=1).astype(np.float64) / 127, rtol=1e-15)
    assert a.codes().shape == w.shape and a.codes().dtype == np.int8
    assert a.dequantized().shape == w.shape and a.dequantized().dtype == np.float32
    expected = (a.codes().astype(np.float32) * a.params.scale.astype(np.float32)[:, None]).astype(np.float32)
    np.testing.assert_array_equal(a.dequantized(), expected)
    err = a.dequantized().astype(np.float64) - w
    assert a.report.mse == pytest.approx(np.mean(err**2), rel=1e-9)
    assert a.report.clip_mse == 0.0 and a.report.clipped_fraction == 0.0


def test_shared_calibration_data_and_convention() -> None:
    w = _w()
    scheme = QuantScheme()
    data = CalibrationData(to_rows(w, scheme))
    first = analyze(data, scheme, "percentile", percentile=99.0, bins=512)
    assert 512 in data._abs  # the histogram stays cached for the next method
    again = analyze(data, scheme, "percentile", percentile=99.0, bins=512, not_an_option=1)
    np.testing.assert_array_equal(first.calibration.hi, again.calibration.hi)
    assert 0 < first.calibration.hi[0] < np.abs(w).max()
    ort = analyze(w, scheme, "minmax", convention="onnxruntime")
    assert ort.params.convention == "onnxruntime" and ort.params.scale[0] == pytest.approx(np.abs(w).max() / 127, 1e-7)


def test_a_method_scale_overrides_the_convention() -> None:
    cal = Calibration("x", np.array([-1.0]), np.array([1.0]), scale=np.array([0.5]))
    p = params_for(cal, QuantScheme(bits=4))
    assert p.scale[0] == 0.5 and p.clip_max[0] == 1.0


def test_grid_index_is_batched_searchsorted() -> None:
    splits = np.array([[-1.0, 0.0, 1.0], [10.0, 20.0, 30.0]])
    values = np.array([[-2.0, -1.0, 0.5, 3.0], [5.0, 20.0, 25.0, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(grid_index(values, splits), [[0, 1, 2, 3], [0, 2, 2, 0]])


def test_nonuniform_grid_through_analyze() -> None:
    a = analyze(_w(), QuantScheme(bits=4, format="log2"))
    grid = a.encoding.calibration.grid[0]
    assert np.all(np.isin(a.dequantized().astype(np.float32), grid.astype(np.float32)))
    assert a.report.round_mse_reference > 0 and a.report.levels_total == grid.size  # local-spacing reference


def test_errors_are_clear() -> None:
    with pytest.raises(QuantOptionError, match="unknown method"):
        analyze(_w(), QuantScheme(), "kmeans")
    with pytest.raises(QuantOptionError, match="convention"):
        analyze(_w(), QuantScheme(), "minmax", convention="tflite")
    with pytest.raises(QuantOptionError):
        analyze(np.array([np.nan]), QuantScheme())
