"""INT: the integer grid of :mod:`qcore.scheme` (the default format), ``x_hat = (q - z) s``.

Storage: ``b`` bits per code, and per row (tensor, channel or group) a float32 scale plus, when
asymmetric, a ``b``-bit zero point (ONNX ``QuantizeLinear`` stores the zero point in the code's type).
INT4 per-group 128 asymmetric: ``4 + (32 + 4) / 128 = 4.28`` bits per weight.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..calibrators import Calibration
from ..granularity import Rows
from ..metrics import ErrorReport, error_report
from ..params import QParams
from ..quantize import _code_dtype, dequantize_rows, fake_quantize, quantize, quantize_rows
from ..scheme import QuantScheme
from ..sorted_rows import SortedRows
from .base import Encoding, NumberFormat, count_rows, register

SCALE_BITS = 32
"""Bits of one stored scale (float32, as qcore computes and ONNX stores it)."""


class IntEncoding(Encoding):
    """Integer codes under per-row :class:`QParams` (the sorted path measures them when sorted rows are given)."""

    uniform = True

    def __init__(self, rows: Rows, params: QParams) -> None:
        self.rows, self.params = rows, params
        self.scale, self.zero_point = params.scale, params.zero_point
        self.clip_min, self.clip_max = params.clip_min, params.clip_max
        self.levels_total = params.qmax - params.qmin + 1

    @property
    def qmin(self) -> int:
        return self.params.qmin

    @property
    def qmax(self) -> int:
        return self.params.qmax

    def dequantized_rows(self) -> np.ndarray:
        return dequantize_rows(quantize_rows(self.rows.values, self.params, self.rows.has_missing), self.params)

    def level_rows(self) -> np.ndarray:
        """``q - q_min`` in the smallest unsigned dtype that holds it (subtracted in int64: ``127 - (-128)``
        would wrap in int8)."""
        q = quantize_rows(self.rows.values, self.params, self.rows.has_missing)
        return np.subtract(q, self.params.qmin, dtype=np.int64).astype(code_dtype(self.levels_total))

    def codes(self) -> np.ndarray:
        """Integer codes ``q`` in ``[q_min, q_max]`` (the smallest integer dtype that holds them)."""
        return quantize(self.rows, self.params)

    def dequantized(self) -> np.ndarray:
        return fake_quantize(self.rows, self.params)

    def row_levels(self, row: int) -> np.ndarray:
        return self.level_grid(np.array([row]))[0, 0]

    def level_grid(self, idx: np.ndarray) -> np.ndarray:
        """``(q - z) fl32(s)`` of every code ``q`` of rows ``idx``, shape ``(len(idx), 1, levels_total)``."""
        p = self.params
        codes = np.arange(p.qmin, p.qmax + 1, dtype=np.float64)
        scale = p.scale[idx].astype(np.float32).astype(np.float64)
        return ((codes[None, :] - p.zero_point[idx, None]) * scale[:, None])[:, None, :]

    def round_trip(self, values: np.ndarray, row: int) -> np.ndarray:
        p, pick = self.params, slice(row, row + 1)
        one = replace(
            p, clip_min=p.clip_min[pick], clip_max=p.clip_max[pick], scale=p.scale[pick], zero_point=p.zero_point[pick]
        )
        v = np.asarray(values, dtype=np.float32).reshape(1, -1)
        return dequantize_rows(quantize_rows(v, one), one).ravel()

    def report(self, sorted_rows: SortedRows | None = None) -> ErrorReport:
        return error_report(self.rows, self.params, sorted_rows)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "q": self.codes(),
            "scale": np.asarray(self.params.scale, dtype=np.float64),
            "zero_point": np.asarray(self.params.zero_point, dtype=np.int64),
        }


@dataclass(frozen=True)
class IntFormat(NumberFormat):
    """Integer codes ``q = clamp(round(x / s) + z)`` with the scheme's width, grid, granularity and convention."""

    def scheme_for(self, scheme: QuantScheme) -> QuantScheme:
        return scheme

    def check_method(self, method: str, convention: str) -> None:
        """Every calibrator and every convention applies."""

    def check_rows(self, rows: Rows) -> None:
        """Any layout; the codes and the error report are computed block by block (no per-element arrays held)."""

    def storage_bits_for(self, scheme: QuantScheme, shape: tuple[int, ...]) -> int:
        """``n b + r (32 + b [asymmetric])``: codes, a float32 scale per row and a ``b``-bit zero point."""
        per_row = SCALE_BITS + (0 if scheme.symmetric else scheme.bits)
        return int(np.prod(shape, dtype=np.int64)) * scheme.bits + count_rows(scheme, shape) * per_row

    def bits_per_weight(self, scheme: QuantScheme, shape: tuple[int, ...] | None = None) -> float:
        per_row = SCALE_BITS + (0 if scheme.symmetric else scheme.bits)
        if shape is not None:
            return self.storage_bits_for(scheme, shape) / int(np.prod(shape, dtype=np.int64))
        return scheme.bits + (per_row / scheme.group_size if scheme.granularity == "group" else 0.0)

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> Encoding:
        return IntEncoding(rows, params)


INT = register(
    IntFormat(
        "int",
        "INT (integer grid)",
        "Uniform integer codes q = round(x / s) + z: the scheme's bits, symmetry, granularity and convention.",
        None,
        calibrated=True,
        affine=True,
        row_bits=SCALE_BITS,
        source="ONNX QuantizeLinear, PyTorch observers, TensorRT / modelopt",
        family="int",
    )
)


def code_dtype(levels_total: int) -> np.dtype:
    """Smallest unsigned integer dtype holding level indices ``0 .. levels_total - 1``."""
    return _code_dtype(0, levels_total - 1)
