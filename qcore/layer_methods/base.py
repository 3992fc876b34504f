r"""What every layer method shares: how one side is quantized, what a method returns, option checks.

A layer method changes ``W`` (out, K) and/or ``X`` (n, K) of ``Y = X W^T`` before (or while)
quantizing them and returns two effective operands with ``Y_hat = X_eff W_eff^T``. A side
that is not quantized stays float (transformed if the method transforms it).

A :class:`Side` is the scheme, calibrator, convention and calibrator options of one operand:
:func:`round_trip` hands them to :func:`qcore.analyze` unchanged, so every method composes
with every scheme and calibrator of the core (and any number format a scheme carries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis import Analysis, analyze
from ..budget import check_bytes
from ..formats.grid_encoding import GridEncoding
from ..grid import grid_round_trip
from ..quantize import dequantize_rows, quantize_rows
from ..scheme import QuantOptionError, QuantScheme


@dataclass(frozen=True)
class Side:
    """How one operand is quantized: ``analyze(a, scheme, method, convention, **options)``."""

    scheme: QuantScheme = field(default_factory=QuantScheme)
    method: str = "minmax"
    convention: str = "default"
    options: dict[str, Any] = field(default_factory=dict)

    def analyze(self, a: np.ndarray) -> Analysis:
        """The core's analysis of ``a`` under this side's choices."""
        return analyze(a, self.scheme, self.method, self.convention, **self.options)


def round_trip(a: np.ndarray, side: Side | None) -> np.ndarray:
    """``Q(a)`` dequantized (float32) under ``side``; ``a`` itself (float32) when ``side`` is None."""
    if side is None:
        return np.asarray(a, dtype=np.float32)
    return side.analyze(a).dequantized()


def column_quantizer(fitted: Analysis) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``quantize(values) -> (codes, dequantized float32)`` for ``values`` (rows, L) under the scales of ``fitted``.

    ``fitted`` was calibrated with one scale row per row of ``values`` (or one for all rows): GPTQ fits
    a group of columns, then quantizes each updated column with those scales. INT: ``q = clamp(round(x/s) + z)``;
    a non-uniform grid: its splits; any other format: the nearest of the row's levels, as
    :meth:`qcore.formats.Encoding.round_trip` maps values (codes are then indices into the sorted levels; the
    level table is built once per fit).
    """
    enc = fitted.encoding
    if enc.uniform:

        def uniform(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            codes = quantize_rows(np.ascontiguousarray(values, dtype=np.float32), fitted.params, missing=False)
            return codes, dequantize_rows(codes, fitted.params)

        return uniform
    if isinstance(enc, GridEncoding):  # log2: its own splits between levels
        return lambda values: grid_round_trip(np.ascontiguousarray(values, dtype=np.float32), enc.calibration)
    table = _level_table(enc)
    mids = (table[:, 1:] + table[:, :-1]) / 2.0

    def nearest(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.asarray(values, dtype=np.float32).astype(np.float64)
        if table.shape[0] not in (1, v.shape[0]):
            raise QuantOptionError(f"the fitted scales have {table.shape[0]} rows for {v.shape[0]} rows of values")
        idx = np.sum(mids[:, None, :] < v[:, :, None], axis=-1)
        return idx, np.take_along_axis(np.broadcast_to(table, (v.shape[0], table.shape[1])), idx, axis=1).astype(
            np.float32
        )

    return nearest


def apply_fitted(fitted: Analysis, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``column_quantizer(fitted)(values)``: one call."""
    return column_quantizer(fitted)(values)


def _level_table(enc: Any) -> np.ndarray:
    """Sorted levels of every scale row of an encoding, shape (rows, levels), float64."""
    rows = np.arange(enc.rows.n_rows)
    if hasattr(enc, "level_table"):
        return np.sort(np.asarray(enc.level_table(rows), dtype=np.float64), axis=1)
    return np.stack([np.sort(np.asarray(enc.row_levels(r), dtype=np.float64)) for r in rows])


@dataclass(frozen=True, eq=False)
class MethodOutput:
    """What a layer method returns.

    Attributes
    ----------
    x_eff, w_eff : ndarray of float32, shapes (n, K'), (out, K')
        Effective operands: ``Y_hat = X_eff W_eff^T`` (quantized sides round-tripped).
    details : dict
        JSON-safe numbers and short lists describing what the method chose.
    arrays : dict of ndarray
        Larger per-channel arrays for charts (not part of the CLI's JSON unless listed in ``details``).
    """

    x_eff: np.ndarray
    w_eff: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def layer_bytes(out: int, k: int, n: int) -> int:
    """Peak bytes of a layer method, estimated: float64 ``Y``, ``Y_hat`` and their difference
    (``24 n out``), float32 copies of the operands (``24 (n + out) K``) and GPTQ's ``H`` and factors (``12 K^2``)."""
    return 24 * n * out + 24 * (n + out) * k + 12 * k * k


def check_budget(w: np.ndarray, x: np.ndarray) -> None:
    """Refuse a layer whose work would exceed the memory budget (:mod:`qcore.budget`) before computing anything."""
    out, k = w.shape
    n = x.shape[0]
    check_bytes(layer_bytes(out, k, n), f"the layer Y = X W^T (W {out}x{k}, X {n}x{k})", "the number of samples of X")


def check_number(value: Any, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` when ``low_open``), else a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise QuantOptionError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v > high or v < low or (low_open and v == low):
        bracket = "(" if low_open else "["
        raise QuantOptionError(f"{name} must be in {bracket}{low:g}, {high:g}], got {value!r}")
    return v


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``, else a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise QuantOptionError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def channel_absmax(a: np.ndarray, axis: int) -> np.ndarray:
    """``max |a|`` along ``axis`` in float64 (per input channel: ``axis=0`` for X (n, K) and W (out, K))."""
    return np.max(np.abs(a), axis=axis).astype(np.float64)


def outlier_ratio(x: np.ndarray) -> float:
    """``max_j max|X_j| / median_j max|X_j|``: how far the largest input channel sticks out (0/0 -> 0)."""
    m = channel_absmax(x, 0)
    med = float(np.median(m))
    return float(np.max(m) / med) if med > 0 else 0.0


def kurtosis(a: np.ndarray) -> float:
    """Pearson kurtosis ``E[(a - mu)^4] / sigma^4`` of all elements (3 for a Gaussian; 0 for a constant)."""
    v = np.asarray(a, dtype=np.float64).ravel()
    d = v - v.mean()
    var = float(np.mean(d * d))
    return float(np.mean(d**4) / var**2) if var > 0 else 0.0
