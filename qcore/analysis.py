"""One call from a tensor and options to parameters, codes and errors.

This is what the CLI, the app and the tests use:
``x -> Rows -> CalibrationData -> Calibration -> QParams -> ErrorReport``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .calibrators import Calibration, CalibrationData, make_calibrator
from .granularity import Rows, to_rows
from .metrics import ErrorReport, error_report, measure
from .params import QParams, effective_scheme, qparams_from_range, with_scale
from .quantize import fake_quantize, quantize
from .scheme import QuantScheme


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything about one tensor under one scheme and method."""

    rows: Rows
    calibration: Calibration
    params: QParams
    report: ErrorReport

    def codes(self) -> np.ndarray:
        """Integer codes in the tensor's shape (grid indices for a non-uniform grid)."""
        if self.calibration.grid is not None:
            return self.rows.restore(grid_index(self.rows.values, self.calibration.splits))
        return quantize(self.rows, self.params)

    def dequantized(self) -> np.ndarray:
        """Float32 round trip in the tensor's shape."""
        if self.calibration.grid is not None:
            return self.rows.restore(grid_round_trip(self.rows.values, self.calibration)[1])
        return fake_quantize(self.rows, self.params)


def grid_index(values: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Level index per value for a per-row non-uniform grid (batched ``searchsorted``).

    ``i = #{j : splits[j] <= x}`` for float32 ``values`` (NaN counts as 0). One
    ``searchsorted`` serves all rows, exactly: values and splits become
    order-preserving integer keys of their float32 bit patterns (a split is first
    rounded up to float32, which keeps ``x >= split`` for every float32 ``x``), and row
    ``r`` is offset by ``r * 2^33``. Offsetting the floats themselves would merge
    splits far below the row spacing (e.g. power-of-two levels near 0).
    """
    n_rows, n_splits = splits.shape
    split32 = splits.astype(np.float32)
    split32 = np.where(split32 < splits, np.nextafter(split32, np.float32(np.inf)), split32)
    offsets = (np.arange(n_rows, dtype=np.int64) << 33)[:, None]
    flat_splits = (_order_key(split32) + offsets).ravel()
    flat_values = _order_key(np.where(np.isnan(values), 0.0, values).astype(np.float32)) + offsets
    idx = np.searchsorted(flat_splits, flat_values.ravel(), side="right").reshape(values.shape)
    return idx - (np.arange(n_rows) * n_splits)[:, None]


def _order_key(v: np.ndarray) -> np.ndarray:
    """int64 keys with the order of the float32 values (``-0.0`` and ``0.0`` equal)."""
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def grid_round_trip(values: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """``(level index, dequantized float32)`` of ``values`` on the calibration's grid."""
    idx = grid_index(values, calibration.splits)
    x_hat = np.take_along_axis(calibration.grid, idx, axis=1).astype(np.float32)
    return idx, np.where(np.isnan(values), np.float32(np.nan), x_hat)


def params_for(calibration: Calibration, scheme: QuantScheme, convention: str = "default") -> QParams:
    """QParams of a calibration under a convention (a method's own scale wins)."""
    params = qparams_from_range(calibration.lo, calibration.hi, scheme, convention)
    if calibration.scale is not None:
        params = with_scale(params, calibration.scale)
    return params


def analyze(
    x: np.ndarray | Rows | CalibrationData,
    scheme: QuantScheme,
    method: str = "minmax",
    convention: str = "default",
    **options: Any,
) -> Analysis:
    """Calibrate ``x`` with ``method`` and measure the quantization error.

    Parameters
    ----------
    x : ndarray, Rows or CalibrationData
        The tensor; pass a :class:`CalibrationData` to reuse its histograms
        across methods (it must have been built for ``scheme``'s granularity).
    scheme : QuantScheme
        Bits, symmetry, granularity, rounding.
    method : str
        Registered calibrator name.
    convention : str
        Scale/zero-point convention (:data:`qcore.params.CONVENTIONS`).
    **options
        Calibrator options (``percentile``, ``bins``, ...); the ones the method
        does not take are ignored.
    """
    if isinstance(x, CalibrationData):
        data = x
    else:
        data = CalibrationData(x if isinstance(x, Rows) else to_rows(x, scheme))
    calibration = make_calibrator(method, **options).calibrate(data, effective_scheme(scheme, convention))
    params = params_for(calibration, scheme, convention)
    if calibration.grid is None:
        return Analysis(data.rows, calibration, params, error_report(data.rows, params))
    idx, x_hat = grid_round_trip(data.rows.values, calibration)
    report = measure(data.rows, x_hat, idx, calibration.lo, calibration.hi, calibration.grid.shape[1], None)
    return Analysis(data.rows, calibration, params, report)
