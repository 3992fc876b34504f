"""Non-uniform grids (e.g. log2): map values to per-row sorted levels and back."""

from __future__ import annotations

import sys

import numpy as np

from .calibrators.base import Calibration

#: Leading bits of a float32 pattern that pick its bucket in :func:`grid_index`'s lookup table.
BUCKET_BITS = 16
#: Shortest row for which :func:`grid_index` builds its table (``2^(BUCKET_BITS + 1)`` end searches per row).
TABLE_MIN_LENGTH = 1 << 19


def grid_index(values: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Level index per value for a per-row non-uniform grid (batched ``searchsorted``).

    ``i = #{j : splits[j] <= x}`` for float32 ``values`` (NaN counts as 0, ``-0.0`` as
    ``0.0``). Each split is first rounded up to float32, which keeps ``x >= split`` for
    every float32 ``x``. The float32 values whose bit patterns share their leading
    :data:`BUCKET_BITS` bits form an interval; for rows of :data:`TABLE_MIN_LENGTH` or more, a table
    of ``i`` per row and bucket (exact where both ends of the interval give the same
    ``i``) maps most values in one gather, and only values in a bucket that holds a
    split (or ``+-inf``) are searched (:func:`_search_rows`). Otherwise every value is
    searched.
    """
    n_rows, length = values.shape
    split32 = splits.astype(np.float32)
    split32 = np.where(split32 < splits, np.nextafter(split32, np.float32(np.inf)), split32)
    if length < TABLE_MIN_LENGTH or n_rows == 0:
        return _search_rows(values, np.arange(n_rows)[:, None], split32)
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(n_rows, length)
    high = flat.view(np.uint16)[:, 1::2] if sys.byteorder == "little" else flat.view(np.uint16)[:, ::2]
    table = _bucket_table(split32)
    idx = table[0][high] if n_rows == 1 else np.take_along_axis(table, high, axis=1)
    todo = np.flatnonzero(idx < 0)
    idx.ravel()[todo] = _search_rows(flat.ravel()[todo], todo // max(length, 1), split32)
    return idx


def _bucket_table(split32: np.ndarray) -> np.ndarray:
    """``i`` per row and bucket of float32 bit patterns, ``-1`` where it is not one value.

    Bucket ``b`` holds the patterns ``b 2^16 .. b 2^16 + 2^16 - 1``: an interval of floats
    (with ``+-0`` adjacent), so ``i`` is constant on it when both ends give the same ``i``.
    Buckets of NaN patterns only map to the index of 0; the two holding ``+-inf`` and NaNs
    are left to the search.
    """
    n_rows = split32.shape[0]
    starts = np.arange(1 << BUCKET_BITS, dtype=np.uint32) << (32 - BUCKET_BITS)
    ends = starts | np.uint32((1 << (32 - BUCKET_BITS)) - 1)
    ends_f = np.stack([starts, ends]).view(np.float32)
    nan = np.isnan(ends_f)
    n_ends = ends_f.size
    row_of = np.repeat(np.arange(n_rows), n_ends)
    counts = _search_rows(np.tile(ends_f.ravel(), n_rows), row_of, split32).reshape(n_rows, 2, -1)
    table = np.where(counts[:, 0] == counts[:, 1], counts[:, 0], -1)
    return np.where(nan.all(axis=0), counts[:, 0], np.where(nan.any(axis=0), -1, table))


def _search_rows(values: np.ndarray, row_of: np.ndarray, split32: np.ndarray) -> np.ndarray:
    """``#{j : split32[r, j] <= x}`` for float32 ``values`` of rows ``r = row_of`` (broadcast; NaN counts as 0).

    One ``searchsorted`` serves all rows: values and splits become order-preserving
    integer keys of their float32 bit patterns, and row ``r`` is offset by ``r * 2^33``.
    Offsetting the floats themselves would merge splits far below the row spacing
    (e.g. power-of-two levels near 0).
    """
    n_rows, n_splits = split32.shape
    offsets = np.arange(n_rows, dtype=np.int64) << 33
    flat_splits = (_order_key(split32) + offsets[:, None]).ravel()
    keys = _order_key(np.where(np.isnan(values), np.float32(0.0), values)) + offsets[row_of]
    return np.searchsorted(flat_splits, keys, side="right") - row_of * n_splits


def _order_key(v: np.ndarray) -> np.ndarray:
    """int64 keys with the order of the float32 values (``-0.0`` and ``0.0`` equal)."""
    bits = np.ascontiguousarray(v, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def grid_round_trip(values: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray]:
    """``(level index, dequantized float32)`` of ``values`` on the calibration's grid (NaN stays NaN).

    The grid is rounded to float32 before the gather (the same values as rounding after it).
    """
    idx = grid_index(values, calibration.splits)
    grid32 = calibration.grid.astype(np.float32)
    x_hat = grid32[0][idx] if grid32.shape[0] == 1 else np.take_along_axis(grid32, idx, axis=1)
    np.copyto(x_hat, np.float32(np.nan), where=np.isnan(values))
    return idx, x_hat
