"""Calibrators behind one registry (:data:`CALIBRATORS`)."""

from . import minmax  # noqa: F401  (registers)
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
