"""qcore: the numerical core of Quantization Explorer (numpy/scipy only, no UI)."""

from .analysis import Analysis, analyze, params_for
from .calibrators import CALIBRATORS, Calibration, CalibrationData, Curve, make_calibrator
from .granularity import Rows, to_rows
from .histogram import Histogram, abs_histogram, signed_histogram
from .metrics import ErrorReport, error_report
from .params import CONVENTIONS, QParams, effective_scheme, qparams_from_range
from .quantize import dequantize_rows, fake_quantize, fake_quantize_rows, quantize, quantize_rows
from .scheme import QuantOptionError, QuantScheme

__all__ = [
    "CALIBRATORS",
    "CONVENTIONS",
    "Analysis",
    "Calibration",
    "CalibrationData",
    "Curve",
    "ErrorReport",
    "Histogram",
    "QParams",
    "QuantOptionError",
    "QuantScheme",
    "Rows",
    "abs_histogram",
    "analyze",
    "dequantize_rows",
    "effective_scheme",
    "error_report",
    "fake_quantize",
    "fake_quantize_rows",
    "make_calibrator",
    "params_for",
    "qparams_from_range",
    "quantize",
    "quantize_rows",
    "signed_histogram",
    "to_rows",
]
