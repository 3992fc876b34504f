"""Calibrators behind one registry (:data:`CALIBRATORS`)."""

from . import aciq, admm, easyquant, ema, entropy, minmax, mse, percentile  # noqa: F401  (they register)
from .base import (
    CALIBRATORS,
    Calibration,
    CalibrationData,
    Calibrator,
    Curve,
    make_calibrator,
    register,
    symmetric_range,
)

__all__ = [
    "CALIBRATORS",
    "Calibration",
    "CalibrationData",
    "Calibrator",
    "Curve",
    "make_calibrator",
    "register",
    "symmetric_range",
]
