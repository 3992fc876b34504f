"""MinMax: the observed range itself."""

from __future__ import annotations

from dataclasses import dataclass

from ..scheme import QuantScheme
from .base import Calibration, CalibrationData, Calibrator, register, symmetric_range


@register
@dataclass(frozen=True)
class MinMax(Calibrator):
    """Clip range = observed range.

    Symmetric: ``T = max|x|``; asymmetric: ``[min x, max x]``. Nothing is clipped;
    one outlier stretches the step ``s`` for every other value.
    """

    name = "minmax"
    label = "MinMax"
    summary = "Use the full observed range: nothing is clipped, but one outlier widens the step for all values."
    formula = r"T = \max_i |x_i| \quad\text{or}\quad [\min_i x_i,\ \max_i x_i]"

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        if scheme.symmetric:
            lo, hi = symmetric_range(rows.absmax, scheme)
        else:
            lo, hi = rows.min.copy(), rows.max.copy()
        return Calibration(self.name, lo, hi)
