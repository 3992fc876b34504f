"""One call from a tensor and options to parameters, codes and errors.

This is what the CLI, the app and the tests use:
``x -> Rows -> CalibrationData -> Calibration -> QParams -> ErrorReport``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import chunked
from .calibrators import Calibration, CalibrationData, make_calibrator
from .chunked import Progress
from .formats import Encoding, NumberFormat, get_format
from .granularity import Rows, to_rows
from .grid import grid_index  # noqa: F401  (re-exported: callers map values to a grid through analysis)
from .metrics import ErrorReport
from .params import QParams, effective_scheme, qparams_from_range, with_scale
from .scheme import QuantScheme
from .sorted_rows import SortedRows


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything about one tensor under one scheme, format and method.

    ``params`` are the integer-grid parameters of the calibrated range (the INT format's codes; for other
    formats the calibrators' view of the range); ``encoding`` is what the format made of the tensor.
    """

    rows: Rows
    calibration: Calibration
    params: QParams
    report: ErrorReport
    encoding: Encoding
    format: NumberFormat

    def codes(self) -> np.ndarray:
        """Codes in the tensor's shape: integer codes for INT, level indices for the other formats."""
        return self.encoding.codes()

    def dequantized(self) -> np.ndarray:
        """Float32 round trip in the tensor's shape."""
        return self.encoding.dequantized()

    def bits_per_weight(self) -> float:
        """Exact storage of this tensor per element, scales and zero points included."""
        return self.format.bits_per_weight(self.params.scheme.with_(format=self.format.name), self.rows.shape)


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
    progress: Progress | None = None,
    **options: Any,
) -> Analysis:
    """Calibrate ``x`` with ``method`` and measure the quantization error.

    Parameters
    ----------
    x : ndarray, Rows or CalibrationData
        The tensor; pass a :class:`CalibrationData` to reuse its histograms
        across methods (it must have been built for ``scheme``'s granularity).
    scheme : QuantScheme
        Bits, symmetry, granularity, rounding, number format (``scheme.format``; block formats lay
        their blocks along the last axis when the granularity is ``'tensor'``).
    method : str
        Registered calibrator name.
    convention : str
        Scale/zero-point convention (:data:`qcore.params.CONVENTIONS`).
    sorted_rows : SortedRows, optional
        The rows sorted once (:class:`qcore.sorted_rows.SortedRows`, built from the
        same rows): the error report then costs no pass over the elements (same numbers),
        and searches that use sorted rows (ADMM) reuse them.
    progress : callable, optional
        ``progress(rows_done, rows_total)`` between chunks of rows: the calibration then runs a chunk at a time
        (:func:`qcore.chunked.calibrate`, the same result); the callback may raise
        :class:`qcore.chunked.Cancelled` to stop.
    **options
        Calibrator and format options (``percentile``, ``bins``, ``scale_rounding``, ...); the ones
        the method or format does not take are ignored.
    """
    fmt = get_format(scheme.format, **options)
    scheme = fmt.scheme_for(scheme)
    fmt.check_method(method, convention)
    if isinstance(x, CalibrationData):
        data = x
    else:
        data = CalibrationData(x if isinstance(x, Rows) else to_rows(x, scheme))
    fmt.check_rows(data.rows)
    if sorted_rows is not None:
        data.keep_sorted_rows(sorted_rows)
    calibrator, effective = make_calibrator(method, **options), effective_scheme(scheme, convention)
    if progress is None:
        calibration = calibrator.calibrate(data, effective)
    else:
        calibration = chunked.calibrate(calibrator, data, effective, progress)
    params = params_for(calibration, scheme, convention)
    encoding = fmt.encode(data.rows, calibration, params)
    return Analysis(data.rows, calibration, params, encoding.report(sorted_rows), encoding, fmt)
