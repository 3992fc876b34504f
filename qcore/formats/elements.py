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

from ..elementwise_metrics import blocks


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

    @cached_property
    def _nan_patterns(self) -> tuple[int, int]:
        """Patterns ``ml_dtypes`` gives ``+NaN`` and ``-NaN`` (types without NaN map it to a zero pattern)."""
        nan = np.array([np.nan, -np.nan], dtype=np.float32).astype(self.dtype).view(np.uint8)
        return int(nan[0]), int(nan[1])

    def to_float32(self, elements: np.ndarray) -> np.ndarray:
        """The float32 values of an array of this type (``elements.astype(float32)``, by table)."""
        return self.table32[elements.view(np.uint8)]

    def encode(self, values: np.ndarray) -> np.ndarray:
        r"""Bit patterns (uint8) of the saturating round-to-nearest-even cast of float32 ``values``.

        The same patterns as ``clamp(values, -max, max).astype(dtype)`` (``ml_dtypes``; checked on every float32),
        computed on the float32 bits ``b`` of ``a = min(|v|, max)``, with ``m`` mantissa bits, exponent bias
        ``B``, smallest normal ``t = 2^{1-B}`` and ``s = 23 - m``:

        .. math::

            p_{normal} = (b - (127 - B)\,2^{23} + 2^{s-1} - 1 + \lfloor b / 2^s \rfloor \bmod 2) \gg s, \qquad
            p_{sub} = \operatorname{bits}(\min(a, t) + M) - \operatorname{bits}(M), \quad M = 2^{23}\,t\,2^{-m}

        and ``p = max(p_normal, p_sub)`` plus the sign bit. ``p_normal`` is the rebiased field rounded half to
        even (a mantissa carry moves into the exponent, as it should) and is below ``p_sub`` for ``a < t``;
        ``p_sub`` is the float32 addition rounding ``min(a, t)`` to the subnormal step ``t 2^-m`` and is at
        most ``2^m``, the smallest normal pattern. NaN gets ``ml_dtypes``' NaN pattern. About a fifth of the
        cost of the ``ml_dtypes`` cast.
        """
        v = np.asarray(values, dtype=np.float32)
        code, sign = self._magnitude_codes(v)
        sign &= np.int32(1 << (self.bits - 1))
        code |= sign
        self._mark_nan(v, code)
        return code.astype(np.uint8)

    def _mark_nan(self, v: np.ndarray, code: np.ndarray, level: np.ndarray | None = None) -> None:
        """Give NaN inputs ``ml_dtypes``' NaN pattern (by sign) in ``code`` and level index -1 in ``level``."""
        nan = np.isnan(v)
        if nan.any():
            pos, neg = self._nan_patterns
            np.copyto(code, np.where(np.signbit(v), neg, pos), where=nan)
            if level is not None:
                level[nan] = -1

    def _magnitude_codes(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p, sign)`` int32: the pattern of ``min(|v|, max)`` (see :meth:`encode`) and -1 / 0 for a set / clear
        sign bit of ``v``."""
        info = ml_dtypes.finfo(self.dtype)
        mant, emin = int(info.nmant), int(info.minexp)
        shift = 23 - mant
        with np.errstate(invalid="ignore"):  # signalling NaN inputs
            a = np.abs(v)
            np.clip(a, np.float32(0), np.float32(self.max), out=a)  # NaN stays NaN; faster than np.minimum
        bits = a.view(np.int32)
        odd = bits >> shift
        odd &= 1  # ties to the even pattern
        code = bits + np.int32((1 << (shift - 1)) - 1 - ((127 - (1 - emin)) << 23))  # exponent rebiased
        code += odd
        code >>= shift
        magic = np.float32(2.0 ** (emin - mant + 23))
        with np.errstate(invalid="ignore"):
            np.clip(a, np.float32(0), np.float32(2.0**emin), out=a)
            a += magic
        bits -= magic.view(np.int32)
        np.maximum(code, bits, out=code)
        return code, v.view(np.int32) >> 31

    def cast(self, values: np.ndarray) -> np.ndarray:
        """Saturating round-to-nearest-even cast of float32 ``values`` (NaN stays NaN where the type has one)."""
        return self.encode(values).view(self.dtype)

    def scaled_encode(
        self, values: np.ndarray, multiplier: np.ndarray, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row ``p = encode(x m_r)`` and ``x_hat = value(p) s_r``, block by block of rows (in cache).

        Parameters
        ----------
        values : ndarray of float32, shape (n_rows, length)
        multiplier, scale : ndarray of float32, shape (n_rows,)

        Returns
        -------
        patterns : ndarray of uint8, level index : ndarray of int16, x_hat : ndarray of float32
            Each shaped like ``values``.
        """
        values = np.asarray(values, dtype=np.float32)
        patterns = np.empty(values.shape, dtype=np.uint8)
        level = np.empty(values.shape, dtype=np.int16)
        x_hat = np.empty(values.shape, dtype=np.float32)
        multiplier = np.asarray(multiplier, dtype=np.float32)[:, None]
        scale = np.asarray(scale, dtype=np.float32)[:, None]
        zero = np.int32(np.searchsorted(self.values, 0.0))  # level of 0; the levels are symmetric around it
        sign_bit = np.int32(1 << (self.bits - 1))
        for rs, cs in blocks(*values.shape, BLOCK_ELEMENTS):
            v = values[rs, cs] * multiplier[rs]
            code, sign = self._magnitude_codes(v)
            index = code ^ sign  # level = zero +- magnitude pattern (-sign two's complement): no table lookup
            index -= sign
            index += zero
            code |= sign & sign_bit
            self._mark_nan(v, code, index)
            level[rs, cs] = index
            patterns[rs, cs] = p = code.astype(np.uint8)
            xh = x_hat[rs, cs]
            # mode "wrap" (every pattern is in the table): "raise" would buffer the output
            np.take(self.table32, p, out=xh, mode="wrap")
            xh *= scale[rs]
        return patterns, level, x_hat

    def patterns(self, elements: np.ndarray) -> np.ndarray:
        """Bit patterns (uint8) of an array of this type."""
        return elements.view(np.uint8)

    def levels(self, elements: np.ndarray) -> np.ndarray:
        """Index into :attr:`values` of each element (int16)."""
        return self.level_of_pattern[elements.view(np.uint8)]


BLOCK_ELEMENTS = 1 << 16
"""Elements per block of :meth:`FloatElement.scaled_encode`: its dozen temporaries stay in the L2 cache."""


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
