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
from .grid import grid_index, grid_round_trip
from .metrics import ErrorReport, error_report, measure
from .params import QParams, effective_scheme, qparams_from_range, with_scale
from .quantize import fake_quantize, quantize
from .scheme import QuantScheme
from .sorted_metrics import error_report as sorted_error_report
from .sorted_metrics import fast_grid_report
from .sorted_rows import SortedRows


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
    *,
    sorted_rows: SortedRows | None = None,
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
    sorted_rows : SortedRows, optional
        The rows sorted once (:class:`qcore.sorted_rows.SortedRows`, built from the
        same rows): the error report then costs no pass over the elements (same numbers),
        and searches that use sorted rows (ADMM) reuse them.
    **options
        Calibrator options (``percentile``, ``bins``, ...); the ones the method
        does not take are ignored.
    """
    if isinstance(x, CalibrationData):
        data = x
    else:
        data = CalibrationData(x if isinstance(x, Rows) else to_rows(x, scheme))
    if sorted_rows is not None:
        data.keep_sorted_rows(sorted_rows)
    calibration = make_calibrator(method, **options).calibrate(data, effective_scheme(scheme, convention))
    params = params_for(calibration, scheme, convention)
    if calibration.grid is None:
        report = error_report(data.rows, params) if sorted_rows is None else sorted_error_report(sorted_rows, params)
        return Analysis(data.rows, calibration, params, report)
    report = None if sorted_rows is None else fast_grid_report(sorted_rows, calibration)
    if report is None:
        idx, x_hat = grid_round_trip(data.rows.values, calibration)
        report = measure(data.rows, x_hat, idx, calibration.lo, calibration.hi, calibration.grid.shape[1], None)
    return Analysis(data.rows, calibration, params, report)
