"""Element types of the float formats: FP8 E4M3FN / E5M2, FP6 E2M3 / E3M2, FP4 E2M1 (``ml_dtypes`` casts).

An element type ``EeMm`` holds ``sign * 2^(E - bias) * 1.m`` (normal) or ``sign * 2^(1 - bias) * 0.m``
(subnormal). The casts round to nearest even; :meth:`FloatElement.cast` clamps to ``+-max`` first, because
``ml_dtypes`` casts do not saturate E4M3FN (``479.9 -> NaN``) nor E5M2 (``61440 -> inf``) (onnx's float8
note: "saturating cast: beyond max -> +-max").

===========  ====  =======  ================  ==================================
element      bits  max      emax (OCP MX)     ml_dtypes type
===========  ====  =======  ================  ==================================
``e4m3``     8     448      8                 ``float8_e4m3fn`` (no inf, NaN 0x7F)
``e5m2``     8     57344    15                ``float8_e5m2``
``e2m3``     6     7.5      2                 ``float6_e2m3fn``
``e3m2``     6     28       4                 ``float6_e3m2fn``
``e2m1``     4     6        2                 ``float4_e2m1fn`` ({0, .5, 1, 1.5, 2, 3, 4, 6})
===========  ====  =======  ================  ==================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class FloatElement:
    """One small float type: its cast, its values and its code table.

    Attributes
    ----------
    name : str
        ``'e4m3'``, ``'e5m2'``, ``'e2m3'``, ``'e3m2'`` or ``'e2m1'``.
    dtype_name : str
        The ``ml_dtypes`` type.
    """

    name: str
    dtype_name: str

    @cached_property
    def dtype(self) -> np.dtype:
        return np.dtype(getattr(ml_dtypes, self.dtype_name))

    @cached_property
    def bits(self) -> int:
        return int(ml_dtypes.finfo(self.dtype).bits)

    @cached_property
    def mantissa_bits(self) -> int:
        return int(ml_dtypes.finfo(self.dtype).nmant)

    @cached_property
    def max(self) -> float:
        """Largest finite value (448 for E4M3FN)."""
        return float(ml_dtypes.finfo(self.dtype).max)

    @cached_property
    def emax(self) -> int:
        """Exponent of the largest power of two it holds, ``floor(log2 max)`` (OCP MX ``emax_elem``)."""
        return int(np.floor(np.log2(self.max)))

    @cached_property
    def _patterns(self) -> np.ndarray:
        """float64 value of every bit pattern ``0 .. 2^bits - 1`` (NaN/inf patterns included)."""
        return np.arange(1 << self.bits, dtype=np.uint8).view(self.dtype).astype(np.float64)

    @cached_property
    def values(self) -> np.ndarray:
        """Sorted distinct finite values (``-0`` and ``0`` merged), float64."""
        v = self._patterns
        return np.unique(v[np.isfinite(v)] + 0.0)

    @cached_property
    def level_of_pattern(self) -> np.ndarray:
        """Index into :attr:`values` of each bit pattern (``-1`` for NaN / inf patterns), int16."""
        v = self._patterns
        idx = np.searchsorted(self.values, np.where(np.isfinite(v), v + 0.0, 0.0))
        return np.where(np.isfinite(v), idx, -1).astype(np.int16)

    @cached_property
    def table32(self) -> np.ndarray:
        """float32 value of every bit pattern (a gather is much cheaper than ``astype`` from the small type)."""
        return np.arange(1 << self.bits, dtype=np.uint8).view(self.dtype).astype(np.float32)

    def to_float32(self, elements: np.ndarray) -> np.ndarray:
        """The float32 values of an array of this type (``elements.astype(float32)``, by table)."""
        return self.table32[elements.view(np.uint8)]

    def cast(self, values: np.ndarray) -> np.ndarray:
        """Saturating round-to-nearest-even cast of float32 ``values`` (NaN stays NaN where the type has one)."""
        top = np.float32(self.max)
        clamped = np.minimum(values, top)  # NaN stays NaN (np.clip's ufunc path is slower for scalar bounds)
        np.maximum(clamped, -top, out=clamped)
        return clamped.astype(self.dtype)

    def patterns(self, elements: np.ndarray) -> np.ndarray:
        """Bit patterns (uint8) of an array of this type."""
        return elements.view(np.uint8)

    def levels(self, elements: np.ndarray) -> np.ndarray:
        """Index into :attr:`values` of each element (int16)."""
        return self.level_of_pattern[elements.view(np.uint8)]


ELEMENTS: dict[str, FloatElement] = {
    e.name: e
    for e in (
        FloatElement("e4m3", "float8_e4m3fn"),
        FloatElement("e5m2", "float8_e5m2"),
        FloatElement("e2m3", "float6_e2m3fn"),
        FloatElement("e3m2", "float6_e3m2fn"),
        FloatElement("e2m1", "float4_e2m1fn"),
    )
}
