"""Non-uniform grids (e.g. log2): map values to per-row sorted levels and back."""

from __future__ import annotations

import numpy as np

from .calibrators import Calibration


def grid_index(values: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Level index per value for a per-row non-uniform grid (batched ``searchsorted``).

    ``i = #{j : splits[j] <= x}`` for float32 ``values`` (NaN counts as 0). One
    ``searchsorted`` serves all rows, exactly: values and splits become
    order-preserving integer keys of their float32 bit patterns (a split is first
    rounded up to float32, which keeps ``x >= split`` for every float32 ``x``), and row
    ``r`` is offset by ``r * 2^33``. Offsetting the floats themselves would merge
    splits far below the row spacing (e.g. power-of-two levels near 0).
    """
    n_rows, n_splits = splits.shape
    split32 = splits.astype(np.float32)
    split32 = np.where(split32 < splits, np.nextafter(split32, np.float32(np.inf)), split32)
    offsets = (np.arange(n_rows, dtype=np.int64) << 33)[:, None]
    flat_splits = (_order_key(split32) + offsets).ravel()
    flat_values = _order_key(np.where(np.isnan(values), 0.0, values).astype(np.float32)) + offsets
    idx = np.searchsorted(flat_splits, flat_values.ravel(), side="right").reshape(values.shape)
    return idx - (np.arange(n_rows) * n_splits)[:, None]


def _order_key(v: np.ndarray) -> np.ndarray:
    """int64 keys with the order of the float32 values (``-0.0`` and ``0.0`` equal)."""
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def grid_round_trip(values: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """``(level index, dequantized float32)`` of ``values`` on the calibration's grid."""
    idx = grid_index(values, calibration.splits)
    x_hat = np.take_along_axis(calibration.grid, idx, axis=1).astype(np.float32)
    return idx, np.where(np.isnan(values), np.float32(np.nan), x_hat)
