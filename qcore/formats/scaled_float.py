r"""Scaled float elements: FP8 E4M3 / E5M2, FP6 E2M3 / E3M2, FP4 E2M1 with one scale per tensor, channel or group.

The range ``T`` (amax) of each row comes from any calibrator, as NVIDIA modelopt quantizes with
``num_bits=(4, 3)``; then, in float32 as modelopt's ``scaled_e4m3`` (``_fp8_eager``):

.. math::

    m = f_{max} \cdot (1 / T), \qquad e = \operatorname{cast}(\operatorname{clamp}(x\,m,\ -f_{max},\ f_{max})), \qquad
    \hat x = \operatorname{clamp}(e \cdot (1 / m),\ \pm \text{float32 max})

with round to nearest even in the cast and ``T <= 2^-24`` treated as ``T = 1`` (modelopt's epsilon).
Storage: the elements plus a float32 scale per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..calibrators import Calibration
from ..granularity import Rows
from ..params import QParams
from ..quantize import FLOAT32_MAX
from .base import NumberFormat, TableEncoding, register, zero_filled
from .elements import ELEMENTS, FloatElement

AMAX_EPSILON = 2.0**-24
"""Ranges at or below this count as empty and get ``T = 1`` (modelopt ``_fp8_eager``)."""


def _multiplier(threshold: np.ndarray, fmax: float) -> np.ndarray:
    """``m = f_max (1 / T)`` in float32 per row (``T = 1`` for an empty range).

    As torch evaluates modelopt's ``448.0 / amax``: a scalar divided by a tensor is the tensor's reciprocal
    times the scalar (one float32 rounding more than a division; it changes ``m`` by an ulp at times).
    """
    t = threshold.astype(np.float32)
    t = np.where(t <= np.float32(AMAX_EPSILON), np.float32(1.0), t)
    return np.float32(fmax) * (np.float32(1.0) / t)


@dataclass(frozen=True)
class ScaledFloat(NumberFormat):
    """Float elements with a calibrated float32 scale ``T / f_max`` per tensor, channel or group."""

    element: str = "e4m3"

    @property
    def elem(self) -> FloatElement:
        return ELEMENTS[self.element]

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> TableEncoding:
        elem = self.elem
        m = _multiplier(calibration.threshold, elem.max)
        inv = np.float32(1.0) / m
        values = zero_filled(rows)
        with np.errstate(over="ignore"):  # a range near float32's max: 1 / m rounds up, f_max / m overflows
            codes, level_index, x_hat = elem.scaled_encode(values, m, inv)
        if float(inv.max(initial=0.0)) * elem.max >= FLOAT32_MAX * (1 - 2.0**-20):
            np.clip(x_hat, -FLOAT32_MAX, FLOAT32_MAX, out=x_hat)  # saturated as qcore.quantize.dequantize_rows
        levels = elem.values

        def level_table(idx: np.ndarray) -> np.ndarray:
            return levels[None, :] * inv[idx, None].astype(np.float64)

        top = calibration.threshold.astype(np.float64)  # beyond the calibrated T values saturate: clipping
        return TableEncoding(
            rows=rows,
            x_hat=x_hat,
            level_index=level_index,
            scale=inv.astype(np.float64),
            zero_point=np.zeros(rows.n_rows, dtype=np.int64),
            clip_min=-top,
            clip_max=top,
            levels_total=levels.size,
            storage={"codes": rows.restore(codes), "scale": inv},
            level_table=level_table,
            unit_levels=levels,
            level_scale=inv.astype(np.float64),
        )


def _scaled(name: str, element: str, label: str, note: str) -> ScaledFloat:
    elem = ELEMENTS[element]
    return register(
        ScaledFloat(
            name,
            label,
            f"{note} Scale T / {elem.max:g} per tensor, channel or group, T from the calibrator; "
            "saturating cast, round to nearest even.",
            elem.bits,
            calibrated=True,
            row_bits=32.0,
            source="NVIDIA modelopt scaled_e4m3 (num_bits=(4, 3)); onnx float8 note; ml_dtypes",
            family="float",
            element=element,
        )
    )


FP8_E4M3 = _scaled("fp8_e4m3", "e4m3", "FP8 E4M3FN (max 448)", "Hopper / Ada FP8 for weights and activations.")
FP8_E5M2 = _scaled("fp8_e5m2", "e5m2", "FP8 E5M2 (max 57344)", "FP8 with more range, less precision (gradients).")
FP6_E2M3 = _scaled("fp6_e2m3", "e2m3", "FP6 E2M3 (max 7.5)", "6-bit float, 3 mantissa bits.")
FP6_E3M2 = _scaled("fp6_e3m2", "e3m2", "FP6 E3M2 (max 28)", "6-bit float, 2 mantissa bits.")
FP4_E2M1 = _scaled("fp4_e2m1", "e2m1", "FP4 E2M1 (max 6)", "4-bit float {0, 0.5, 1, 1.5, 2, 3, 4, 6}.")
