"""Histograms collected once per tensor and shared by every search ("collect once, search many").

All histograms are batched: one row of counts per quantization range, built with
one ``np.bincount`` over integer bin indices (no Python loop over channels).

- :func:`abs_histogram`: ``|x|`` over ``[0, max|x|]`` per row (TensorRT, modelopt, ncnn, MNN).
- :func:`signed_histogram`: ``x`` over ``[min x, max x]`` per row (asymmetric searches).

Bin index of a value ``v`` in a row with first edge ``e0`` and width ``w``:
``i = min(floor((v - e0) / w), bins - 1)``, computed in float32 (in float64 for rows whose
``1 / w`` or ``v - e0`` would overflow float32: widths below ~1e-36, ranges beyond 1.7e38).
Every histogram is checked against the memory budget (:mod:`qcore.budget`) before it is counted.
The arrays of a :class:`Histogram` are read-only: searches are pure functions of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import budget
from .granularity import Rows
from .scheme import QuantOptionError

START_BIN = 128
"""First candidate: keep at least 128 bins (modelopt's ``start_bin``, TensorRT's 128 target bins)."""
MAX_SEARCH_BINS = 4096
"""Upper bound of ``bins`` for the KL and MSE searches (their work grows as ``bins^2``; the MSE matrix is 130 MB)."""

_FLOAT32_SAFE = 2.0**100
"""Largest ``1 / width`` and ``max - lo`` the float32 index pass takes (far from float32's 3.4e38 limit)."""


@dataclass(frozen=True, eq=False)
class Histogram:
    """Per-row histogram with uniform bins.

    Attributes
    ----------
    counts : ndarray of int64, shape (n_rows, bins)
        Read-only counts.
    lo : ndarray of float64, shape (n_rows,)
        First bin edge per row (0 for an ``|x|`` histogram).
    width : ndarray of float64, shape (n_rows,)
        Bin width per row (0 when the row is constant).
    absolute : bool
        True for a histogram of ``|x|``.
    """

    counts: np.ndarray
    lo: np.ndarray
    width: np.ndarray
    absolute: bool

    @property
    def bins(self) -> int:
        return self.counts.shape[1]

    @property
    def n_rows(self) -> int:
        return self.counts.shape[0]

    def edges(self) -> np.ndarray:
        """Bin edges, shape ``(n_rows, bins + 1)``: ``lo + i * width``."""
        return self.lo[:, None] + np.arange(self.bins + 1) * self.width[:, None]

    def centers(self) -> np.ndarray:
        """Bin centres, shape ``(n_rows, bins)``: ``lo + (i + 0.5) * width``."""
        return self.lo[:, None] + (np.arange(self.bins) + 0.5) * self.width[:, None]

    def total(self) -> np.ndarray:
        """Counted elements per row."""
        return self.counts.sum(axis=1)


def _check_bins(bins: int) -> None:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins <= 0:
        raise QuantOptionError(f"bins must be a positive integer, got {bins!r}")


def needs_float64(width: np.ndarray, bins: int) -> bool:
    """Whether :func:`bin_indices` takes the range-safe float64 pass for rows of these widths."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        norm64 = np.where(width > 0, 1.0 / width, 0.0)
    return bool(norm64.size and (norm64.max() > _FLOAT32_SAFE or float(np.max(width)) * bins > _FLOAT32_SAFE))


def bin_indices(
    values: np.ndarray, lo: np.ndarray, width: np.ndarray, bins: int, wide: bool | None = None
) -> np.ndarray:
    """``min(floor((v - lo) / width), bins - 1)`` per value (float32), the bin every histogram here counts it in.

    ``np.intp`` (what ``np.bincount`` takes without a converting copy); undefined for missing (NaN) values.
    ``wide``: force (or not) the float64 pass (default :func:`needs_float64` of these rows' widths).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        norm64 = np.where(width > 0, 1.0 / width, 0.0)
    if needs_float64(width, bins) if wide is None else wide:
        shifted = (values.astype(np.float64) - lo[:, None]) * norm64[:, None]  # range-safe, rare
    elif np.any(lo):
        shifted = values - lo.astype(np.float32)[:, None]
        shifted *= norm64.astype(np.float32)[:, None]
    else:
        shifted = values * norm64.astype(np.float32)[:, None]
    np.clip(shifted, 0, bins - 1, out=shifted)
    with np.errstate(invalid="ignore"):  # missing (NaN) entries: the caller masks them
        return shifted.astype(np.intp)


_BLOCK_ELEMENTS = 1 << 17
"""Elements binned at once by :func:`_bin_counts` (its temporaries stay in cache; no fresh pages per tensor)."""


def _bin_counts(
    values: np.ndarray,
    lo: np.ndarray,
    width: np.ndarray,
    bins: int,
    mask: np.ndarray | None,
    absolute: bool = False,
) -> np.ndarray:
    """Batched ``bincount`` of :func:`bin_indices` (of ``|values|`` if ``absolute``), block by block."""
    n_rows, length = values.shape
    budget.check_work(
        (values.size * 8 + n_rows * bins * 8),
        values.size,
        f"a histogram of {n_rows:,} rows x {bins:,} bins",
        option="bins (or use a larger group size)",
    )
    wide = needs_float64(width, bins)
    counts = (np.empty if length else np.zeros)((n_rows, bins), dtype=np.intp)
    per_block = max(1, _BLOCK_ELEMENTS // max(length, 1))
    columns = max(1, min(length, _BLOCK_ELEMENTS))
    for first in range(0, n_rows, per_block):
        rs = slice(first, min(first + per_block, n_rows))
        block_rows = rs.stop - rs.start
        offsets = (np.arange(block_rows, dtype=np.intp) * bins)[:, None]
        for start in range(0, length, columns):
            cs = slice(start, start + columns)
            block = np.abs(values[rs, cs]) if absolute else values[rs, cs]
            idx = bin_indices(block, lo[rs], width[rs], bins, wide)
            if block_rows > 1:
                idx += offsets
            if mask is not None:
                idx = idx[mask[rs, cs]]
            block_counts = np.bincount(idx.ravel(), minlength=block_rows * bins).reshape(block_rows, bins)
            if start == 0:
                counts[rs] = block_counts
            else:
                counts[rs] += block_counts
    counts.flags.writeable = False
    return counts


def abs_histogram(rows: Rows, bins: int = 2048) -> Histogram:
    """Histogram of ``|x|`` per row over ``[0, max|x|]`` with ``bins`` bins."""
    _check_bins(bins)
    width = rows.absmax / bins
    counts = _bin_counts(rows.values, np.zeros(rows.n_rows), width, bins, rows.finite_mask, absolute=True)
    return Histogram(counts, np.zeros(rows.n_rows), width, absolute=True)


def signed_histogram(rows: Rows, bins: int = 2048) -> Histogram:
    """Histogram of ``x`` per row over ``[min x, max x]`` with ``bins`` bins."""
    _check_bins(bins)
    lo = rows.min
    width = (rows.max - lo) / bins
    counts = _bin_counts(rows.values, lo, width, bins, rows.finite_mask)
    return Histogram(counts, lo.copy(), width, absolute=False)


def one_sided_histograms(rows: Rows, bins: int = 2048) -> tuple[Histogram, Histogram]:
    """Per row, :func:`abs_histogram` of the values ``x > 0`` and of ``-x`` for the values ``x < 0``, from one read.

    Widths ``w+ = max(max x, 0) / bins`` and ``w- = max(-min x, 0) / bins``; exact zeros and missing values
    are in neither. Each value is counted as :func:`bin_indices` counts it in the histogram of its side alone
    (``min(floor(|x| / w), bins - 1)``, float32 unless that side's widths need float64), one ``bincount`` of
    ``2 bins`` per row covering both sides (no one-sided copy of the rows).
    """
    _check_bins(bins)
    n_rows = rows.n_rows
    budget.check_work(
        (rows.values.size * 8 + 2 * n_rows * bins * 8),
        rows.values.size,
        f"two one-sided histograms of {n_rows:,} rows x {bins:,} bins",
        option="bins (or use a larger group size)",
    )
    widths = (np.maximum(rows.max, 0.0) / bins, np.maximum(-rows.min, 0.0) / bins)
    wide = tuple(needs_float64(w, bins) for w in widths)
    counts = np.zeros((2, n_rows, bins), dtype=np.intp)
    for sides in ((True, True),) if wide[0] == wide[1] else ((True, False), (False, True)):
        dtype = np.float64 if wide[sides.index(True)] else np.float32
        with np.errstate(divide="ignore", over="ignore"):  # the side not counted in this pass may overflow float32
            norm = [np.where(w > 0, 1.0 / w, 0.0).astype(dtype)[:, None] for w in widths]
        _count_sides(rows.values, norm[0], -norm[1], bins, sides, counts)
    counts.flags.writeable = False
    return tuple(  # type: ignore[return-value]
        Histogram(counts[side], np.zeros(n_rows), widths[side], absolute=True) for side in (0, 1)
    )


def _count_sides(
    values: np.ndarray, norm: np.ndarray, neg_norm: np.ndarray, bins: int, sides: tuple[bool, bool], out: np.ndarray
) -> None:
    """Add to ``out`` (2, rows, bins) the bins ``x * norm`` of ``x > 0`` and ``x * neg_norm`` of ``x < 0`` (``sides``).

    ``x * (-1 / w)`` is bit for bit ``(-x) * (1 / w)``: the negative side's bin as its own histogram computes it.
    """
    n_rows, length = values.shape
    per_block = max(1, _BLOCK_ELEMENTS // max(length, 1))
    columns = max(1, min(length, _BLOCK_ELEMENTS))
    with np.errstate(invalid="ignore"):
        for first in range(0, n_rows, per_block):
            rs = slice(first, min(first + per_block, n_rows))
            block_rows = rs.stop - rs.start
            offsets = (np.arange(block_rows, dtype=np.intp) * (2 * bins))[:, None]
            for start in range(0, length, columns):
                block = values[rs, start : start + columns].astype(norm.dtype, copy=False)
                positive, negative = (block > 0) & sides[0], (block < 0) & sides[1]
                shifted = block * np.where(positive, norm[rs], neg_norm[rs])
                np.clip(shifted, 0, bins - 1, out=shifted)
                idx = shifted.astype(np.intp)
                idx += offsets + negative * bins
                block_counts = np.bincount(idx[positive | negative], minlength=block_rows * 2 * bins)
                out[:, rs] += block_counts.reshape(block_rows, 2, bins).transpose(1, 0, 2)
