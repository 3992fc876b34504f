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
from .metrics import ErrorReport, error_report
from .params import QParams, qparams_from_range, with_scale
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
        """Integer codes in the tensor's shape."""
        return quantize(self.rows, self.params)

    def dequantized(self) -> np.ndarray:
        """Float32 round trip in the tensor's shape."""
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
    calibration = make_calibrator(method, **options).calibrate(data, scheme)
    params = params_for(calibration, scheme, convention)
    return Analysis(data.rows, calibration, params, error_report(data.rows, params))
