r"""MX (OCP Microscaling Formats v1.0): blocks of 32 elements sharing one E8M0 power-of-two scale.

§6.3 of the spec (and torchao ``to_mx``, ``mx_formats/mx_tensor.py``): per block

.. math::

    e = \lfloor \log_2 \max_i |x_i| \rfloor - e_{max}, \qquad X = 2^{\operatorname{clamp}(e,\,-127,\,127)}, \qquad
    P_i = \operatorname{cast}(\operatorname{clamp}(x_i / X, -f_{max}, f_{max})), \qquad \hat x_i = P_i X

with ``e_max`` the element's largest power of two (E4M3 8, E5M2 15, E3M2 4, E2M3 2, E2M1 2, INT8 0) and the
E8M0 scale stored biased by 127 (``e + 127``; an all-zero block gets ``X = 2^-127``). The floor rule can
clip: ``max|x| / X`` lies in ``[2^e_max, 2^(e_max + 1))``, above ``f_max`` (448 for E4M3) near the top.
``scale_rounding`` offers torchao's other choices: ``ceil`` (``ceil(log2 max|x|)``, never clips) and
``even`` (``max|x|`` first rounded to the element's mantissa width, half up, then floor). The spec's NaN
scale (0xFF) is never produced: exponents are clamped to 127 (only MXINT8 with ``ceil`` and
``max|x| > 2^127`` would reach it). MXINT8: ``P = clamp(round_half_even(x / X * 64), -127, 127)``,
``x_hat = P X / 64`` (8-bit two's complement with an implicit ``2^-6``, the symmetric range of the spec).
Storage: element bits plus 8 bits per block of 32 (MXFP4 4.25, MXFP6 6.25, MXFP8 / MXINT8 8.25 bits per weight).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..calibrators import Calibration
from ..constraints import Constraint, Options
from ..granularity import Rows
from ..params import QParams
from .base import NumberFormat, TableEncoding, register, zero_filled
from .elements import ELEMENTS

BLOCK = 32
SCALE_ROUNDINGS: tuple[str, ...] = ("floor", "ceil", "even")
E8M0_BIAS = 127
INT8_FRACTION_BITS = 6
"""MXINT8 elements are ``q / 2^6``, ``q`` in ``[-127, 127]``: values in ``[-1.984375, 1.984375]``."""

_F32_MANT = 23


def scale_exponent(amax: np.ndarray, emax: int, mantissa_bits: int, rounding: str) -> np.ndarray:
    """Unbiased block scale exponent ``e`` (int32) from float32 ``amax`` per block.

    ``floor``: ``floor(log2 amax) - emax``; ``ceil``: ``ceil(log2 amax) - emax``; ``even``: ``amax`` rounded to
    ``mantissa_bits`` (adding half an ulp of that width to its float32 pattern), then ``floor``. The exponent of
    ``amax`` is read from its float32 pattern (subnormals and 0 give -127, as torchao), then clamped to ``[-127, 127]``.
    """
    bits = np.ascontiguousarray(amax, dtype=np.float32).view(np.int32)
    if rounding == "even":
        bits = (bits + np.int32(1 << (_F32_MANT - mantissa_bits - 1))) & np.int32(0x7F800000)
    exponent = ((bits >> _F32_MANT) & 0xFF) - E8M0_BIAS
    if rounding == "ceil":
        exponent = exponent + ((bits & 0x7FFFFF) > 0)
    return np.clip(exponent - emax, -E8M0_BIAS, E8M0_BIAS).astype(np.int32)


@dataclass(frozen=True)
class MXFormat(NumberFormat):
    """An OCP MX format: 32 elements of ``element`` (or INT8) and one E8M0 scale."""

    element: str = "e2m1"
    scale_rounding: str = "floor"

    option_names: ClassVar[tuple[str, ...]] = ("scale_rounding",)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"scale_rounding": Options(*SCALE_ROUNDINGS)}

    def _element_params(self) -> tuple[int, int, float]:
        """``(emax, mantissa bits, f_max)`` of the element."""
        if self.element == "int8":
            return 0, INT8_FRACTION_BITS, 127.0 / 2**INT8_FRACTION_BITS
        elem = ELEMENTS[self.element]
        return elem.emax, elem.mantissa_bits, elem.max

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> TableEncoding:
        values = zero_filled(rows)
        emax, mbits, fmax = self._element_params()
        amax = rows.absmax.astype(np.float32)  # cached by the calibration; exact (a float32 value held in float64)
        exponent = scale_exponent(amax, emax, mbits, self.scale_rounding)
        x_scale = np.ldexp(np.float32(1.0), exponent).astype(np.float32)  # 2^-127 is a float32 subnormal
        if self.element == "int8":
            steps = np.float32(2**INT8_FRACTION_BITS)
            p = np.clip(np.rint((values / x_scale[:, None]) * steps), -127, 127)
            x_hat = (p / steps) * x_scale[:, None]
            level_index = (p + 127).astype(np.uint8)
            codes = p.astype(np.int8)
            levels = np.arange(-127, 128, dtype=np.float64) / 2**INT8_FRACTION_BITS
        else:
            elem = ELEMENTS[self.element]
            # x / 2^e is x 2^-e exactly (both the correctly rounded value of the same real; 2^-e is a float32)
            inverse = np.ldexp(np.float32(1.0), -exponent).astype(np.float32)
            codes, level_index, x_hat = elem.scaled_encode(values, inverse, x_scale)
            levels = elem.values
        scale64 = x_scale.astype(np.float64)

        def level_table(idx: np.ndarray) -> np.ndarray:
            return levels[None, :] * scale64[idx, None]

        top = fmax * scale64
        return TableEncoding(
            rows=rows,
            x_hat=x_hat,
            level_index=level_index,
            scale=scale64,
            zero_point=np.zeros(rows.n_rows, dtype=np.int64),
            clip_min=-top,
            clip_max=top,
            levels_total=levels.size,
            storage={"codes": rows.restore(codes), "scale_e8m0": (exponent + E8M0_BIAS).astype(np.uint8)},
            level_table=level_table,
            unit_levels=levels,
            level_scale=scale64,
        )


def _mx(name: str, element: str, bits: int, label: str) -> MXFormat:
    return register(
        MXFormat(
            name,
            label,
            f"OCP MX: blocks of {BLOCK} {label.split(' ')[0]} elements sharing a power-of-two E8M0 scale "
            "2^(floor(log2 amax) - emax).",
            bits,
            block_sizes=(BLOCK,),
            row_bits=8.0,
            source="OCP Microscaling Formats (MX) v1.0 §6.3; torchao mx_formats/mx_tensor.py to_mx",
            family="mx",
            element=element,
        )
    )


MXFP8_E4M3 = _mx("mxfp8_e4m3", "e4m3", 8, "MXFP8 E4M3 (OCP MX)")
MXFP8_E5M2 = _mx("mxfp8_e5m2", "e5m2", 8, "MXFP8 E5M2 (OCP MX)")
MXFP6_E2M3 = _mx("mxfp6_e2m3", "e2m3", 6, "MXFP6 E2M3 (OCP MX)")
MXFP6_E3M2 = _mx("mxfp6_e3m2", "e3m2", 6, "MXFP6 E3M2 (OCP MX)")
MXFP4 = _mx("mxfp4", "e2m1", 4, "MXFP4 E2M1 (OCP MX)")
MXINT8 = _mx("mxint8", "int8", 8, "MXINT8 (OCP MX)")
