"""Error report measured element by element, block by block (blocks stay in cache).

For each block of rows and columns the round trip ``x_hat`` and the level index of every element are
reduced to the per-row sums of :class:`qcore.report.RowSums` (see :mod:`qcore.report` for the formulas).
The rounding-noise reference of a non-uniform grid is ``Delta_i^2 / 12`` per value inside the clip range,
``Delta_i`` the spacing of the cell between the value's level and the next distinct level on the value's
side (the cell holding the value when levels are rounded to nearest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np

from .granularity import Rows
from .params import QParams
from .quantize import dequantize_rows, quantize_rows
from .report import ErrorReport, RowSums, assemble, uniform_reference

BLOCK_ELEMENTS = 1 << 18
"""Elements per block of the error pass: blocks stay in cache, so the many element-wise steps cost ~one pass."""

DENSE_LEVELS = 1 << 24
"""Largest ``n_rows x levels`` for which used levels are tracked with a dense presence table."""

LevelGrid = Callable[[np.ndarray], np.ndarray]
"""``row indices (k,) -> levels (k, n_sub, levels_total)`` float64: level ``j`` of each sub-block's grid."""

Block = tuple[slice, slice, np.ndarray, np.ndarray]
"""``(row slice, column slice, x_hat block, level index block)``."""


def blocks(n_rows: int, length: int) -> list[tuple[slice, slice]]:
    """Row/column slices of about :data:`BLOCK_ELEMENTS` elements covering ``(n_rows, length)``."""
    per_block = max(1, BLOCK_ELEMENTS // max(length, 1))
    width = length if per_block > 1 else min(length, BLOCK_ELEMENTS)
    return [
        (slice(r, r + per_block), slice(c, c + width))
        for r in range(0, n_rows, per_block)
        for c in range(0, max(length, 1), width)
    ]


def uniform_report(rows: Rows, params: QParams) -> ErrorReport:
    """Quantize ``rows`` with uniform ``params`` and measure the error block by block (reference ``s^2/12``)."""
    n_levels = params.qmax - params.qmin + 1

    def round_trip() -> Iterator[Block]:
        for rs, cs in blocks(*rows.values.shape):
            sub = replace(params, scale=params.scale[rs], zero_point=params.zero_point[rs])
            codes = quantize_rows(rows.values[rs, cs], sub, rows.has_missing)
            yield rs, cs, dequantize_rows(codes, sub), np.subtract(codes, params.qmin, dtype=np.intp)

    sums = _measure_blocks(rows, round_trip(), params.clip_min, params.clip_max, n_levels, None)
    return assemble(rows, replace(sums, reference=uniform_reference(rows, sums.outside, params.scale)), n_levels)


def measure(
    rows: Rows,
    x_hat: np.ndarray,
    level_index: np.ndarray,
    clip_min: np.ndarray,
    clip_max: np.ndarray,
    levels_total: int,
    levels: LevelGrid,
) -> ErrorReport:
    """Error metrics of any quantizer given its round trip and its level grid (local-spacing reference).

    Parameters
    ----------
    rows : Rows
        Original values (NaN = missing).
    x_hat : ndarray, shape like ``rows.values``
        Dequantized values.
    level_index : ndarray of int, shape like ``rows.values``
        Index ``0 .. levels_total - 1`` of the level each value was mapped to.
    clip_min, clip_max : ndarray, shape (n_rows,)
        Range outside which an error counts as clipping error.
    levels_total : int
        Number of representable levels per row (per sub-block).
    levels : callable
        :data:`LevelGrid` of the rows: the value of every level index; a row's ``n_sub`` sub-blocks cut its
        columns in equal consecutive parts.
    """
    parts = ((rs, cs, x_hat[rs, cs], level_index[rs, cs]) for rs, cs in blocks(*rows.values.shape))
    return assemble(rows, _measure_blocks(rows, parts, clip_min, clip_max, levels_total, levels), levels_total)


def cell_widths(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spacing to the next distinct level below and above each level of ``table`` (any order, last axis).

    An end level takes its one neighbour's spacing on both sides; a grid of one distinct value has width 0.
    """
    order = np.argsort(table, axis=-1, kind="stable")
    s = np.take_along_axis(table, order, axis=-1)
    n = s.shape[-1]
    pos = np.arange(n)
    new = np.concatenate([np.ones((*s.shape[:-1], 1), dtype=bool), np.diff(s, axis=-1) > 0], axis=-1)
    last = np.concatenate([new[..., 1:], np.ones((*s.shape[:-1], 1), dtype=bool)], axis=-1)
    first_of_run = np.maximum.accumulate(np.where(new, pos, 0), axis=-1)
    last_of_run = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos, n - 1), axis=-1), axis=-1), axis=-1)
    prev = np.take_along_axis(s, np.maximum(first_of_run - 1, 0), axis=-1)
    nxt = np.take_along_axis(s, np.minimum(last_of_run + 1, n - 1), axis=-1)
    below = np.where(first_of_run > 0, s - prev, np.nan)
    above = np.where(last_of_run < n - 1, nxt - s, np.nan)
    below, above = np.where(np.isnan(below), above, below), np.where(np.isnan(above), below, above)
    below, above = np.nan_to_num(below, nan=0.0), np.nan_to_num(above, nan=0.0)
    out_below, out_above = np.empty_like(below), np.empty_like(above)
    np.put_along_axis(out_below, order, below, axis=-1)
    np.put_along_axis(out_above, order, above, axis=-1)
    return out_below, out_above


def _cell_reference(
    levels: LevelGrid, rs: slice, cs: slice, length: int, x: np.ndarray, xh: np.ndarray, idx: np.ndarray, inside
) -> np.ndarray:
    """Per row of the block: ``sum_inside Delta^2 / 12``, ``Delta`` the spacing on the value's side of its level."""
    k = x.shape[0]
    table = levels(np.arange(rs.start, rs.start + k))
    n_sub, n_levels = table.shape[1], table.shape[2]
    below, above = cell_widths(table)
    sub = (np.arange(cs.start, cs.start + x.shape[1]) * n_sub) // max(length, 1)
    flat = (np.arange(k)[:, None] * n_sub + sub[None, :]) * n_levels + idx
    width = np.where(x >= xh, above.reshape(-1)[flat], below.reshape(-1)[flat])
    width = np.where(inside, width, 0.0)
    return np.einsum("ij,ij->i", width, width) / 12.0


def _measure_blocks(
    rows: Rows,
    parts: Iterable[Block],
    clip_min: np.ndarray,
    clip_max: np.ndarray,
    levels_total: int,
    levels: LevelGrid | None,
) -> RowSums:
    """Accumulate the per-row sums over the blocks (``reference`` from ``levels``; zero when it is None)."""
    n_rows, length = rows.values.shape
    clip_row, round_row = np.zeros(n_rows), np.zeros(n_rows)
    max_row, ref_row = np.zeros(n_rows), np.zeros(n_rows)
    n_out_row = np.zeros(n_rows, dtype=np.int64)
    dot = xh_sq = 0.0
    dense = n_rows * levels_total <= DENSE_LEVELS
    present = np.zeros((n_rows, levels_total), dtype=bool) if dense else None
    sparse_levels = []
    lo32, hi32 = clip_min.astype(np.float32)[:, None], clip_max.astype(np.float32)[:, None]
    for rs, cs, xh, idx in parts:
        x = rows.values[rs, cs]
        mask = rows.finite_mask[rs, cs] if rows.finite_mask is not None else None
        err = xh - x  # a fresh array: zeroed where missing, later where clipped
        if mask is not None:
            np.copyto(err, np.float32(0.0), where=~mask)
            xh = np.where(mask, xh, np.float32(0.0))
        if err.shape[1]:
            max_row[rs] = np.maximum(max_row[rs], np.maximum(err.max(axis=1), -err.min(axis=1)))
        # NaN compares False, so missing values are never "outside"
        outside = (x < lo32[rs]) | (x > hi32[rs])
        clipped = np.where(outside, err, np.float32(0.0))
        clip_row[rs] += np.einsum("ij,ij->i", clipped, clipped, dtype=np.float64)
        np.copyto(err, np.float32(0.0), where=outside)
        round_row[rs] += np.einsum("ij,ij->i", err, err, dtype=np.float64)
        n_out_row[rs] += np.count_nonzero(outside, axis=1)
        dot += float(np.einsum("ij,ij->", rows.zero_filled[rs, cs], xh, dtype=np.float64))
        xh_sq += float(np.einsum("ij,ij->", xh, xh, dtype=np.float64))
        if levels is not None:
            inside = ~outside if mask is None else mask & ~outside
            ref_row[rs] += _cell_reference(levels, rs, cs, length, x, xh, idx, inside)
        if dense:
            k = idx.shape[0]
            flat = idx + (np.arange(k) * levels_total)[:, None] if k > 1 else idx
            flat = flat[mask] if mask is not None else flat.ravel()
            present[rs] |= np.bincount(flat, minlength=k * levels_total).reshape(k, levels_total) > 0
        else:
            sparse_levels.append((rs, cs, idx))
    if dense:
        levels_row, levels_all = present.sum(axis=1), int(present.any(axis=0).sum())
    else:
        # the narrowest signed type: sorting int16 rows is ~10x faster than intp ones
        full = np.empty(rows.values.shape, dtype=np.int16 if levels_total < 2**15 else np.int32)
        for rs, cs, idx in sparse_levels:
            full[rs, cs] = idx
        levels_row, levels_all = _levels_used(full, levels_total, rows.finite_mask)
    return RowSums(clip_row, round_row, max_row, n_out_row, ref_row, levels_row, levels_all, dot, xh_sq)


def _levels_used(offset: np.ndarray, n_levels: int, mask: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Distinct level indices per row and over the whole tensor, for grids too large for a dense table."""
    flat = offset[mask] if mask is not None else offset.ravel()
    seen = np.zeros(n_levels, dtype=bool)
    seen[flat] = True  # a scatter: cheaper than bincount, which first widens narrow codes to intp
    overall = int(np.count_nonzero(seen))
    ordered = np.sort(np.where(mask, offset, -1) if mask is not None else offset, axis=1)
    per_row = 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1) - (ordered[:, 0] < 0)
    return per_row, overall
