"""Error report measured element by element, block by block (blocks stay in cache).

For each block of rows and columns the round trip ``x_hat`` and the level index of every element are
reduced to the per-row sums of :class:`qcore.report.RowSums` (see :mod:`qcore.report` for the formulas).
The rounding-noise reference of a non-uniform grid is ``Delta_i^2 / 12`` per value inside the clip range,
``Delta_i`` the spacing of the cell between the value's level and the next distinct level on the value's
side (the cell holding the value when levels are rounded to nearest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .granularity import SHORT_ROW, Rows, row_reduce
from .params import QParams
from .quantize import dequantize_rows, quantize_rows
from .report import ErrorReport, RowSums, assemble, uniform_reference

BLOCK_ELEMENTS = 1 << 18
"""Elements per block of the error pass: blocks stay in cache, so the many element-wise steps cost ~one pass."""

DENSE_LEVELS = 1 << 24
"""Largest ``n_rows x levels`` for which used levels are tracked with a dense presence table."""

LEVEL_TABLE = 1 << 20
"""Largest ``n_rows x levels`` whose level values the INT pass computes once for all rows (else per block)."""

LEVEL_WORDS = (np.uint16, np.uint32, np.uint64)
"""Unsigned words that hold one bit per level for the presence bit masks (grids of up to 64 levels)."""

LevelGrid = Callable[[np.ndarray], np.ndarray]
"""``row indices (k,) -> levels (k, n_sub, levels_total)`` float64: level ``j`` of each sub-block's grid."""


@dataclass(frozen=True, eq=False)
class ScaledLevels:
    """Levels that are one unit grid times a per-row scale (plus any per-row offset): ``unit[j] * scale[r]``.

    The spacing of every level is then ``|scale[r]|`` times the unit grid's, with no per-row table. With a scale
    per sub-block (GGUF's K-quants: level ``k`` of sub-block ``j`` is ``a_j k + b_j``) the level of a value in
    sub-block ``j`` is ``unit[k] * scale[r, j]``; the row's columns are cut into ``n_sub`` equal consecutive parts,
    and the unit grid must then be uniform.

    Attributes
    ----------
    unit : ndarray of float64, shape (levels_total,)
        The unit grid in level-index order.
    scale : ndarray of float64, shape (n_rows,) or (n_rows, n_sub)
        Each row's (or each sub-block's) scale (a negative scale reverses the grid).
    """

    unit: np.ndarray
    scale: np.ndarray


def blocks(n_rows: int, length: int, block_elements: int | None = None) -> list[tuple[slice, slice]]:
    """Row/column slices of about ``block_elements`` (default :data:`BLOCK_ELEMENTS`) elements covering
    ``(n_rows, length)``: whole rows when a row fits, else pieces of one row."""
    block_elements = block_elements or BLOCK_ELEMENTS
    per_block = max(1, block_elements // max(length, 1))
    width = length if per_block > 1 else min(length, block_elements)
    return [
        (slice(r, r + per_block), slice(c, c + width))
        for r in range(0, n_rows, per_block)
        for c in range(0, max(length, 1), width)
    ]


IDENTITY_CONDITION = 4.0
"""Largest ``(sum x^2 + |x_hat|^2 + sum e^2) / |2 <x, x_hat>|`` for which ``<x, x_hat>`` comes from the identity
``2 <x, x_hat> = sum x^2 + |x_hat|^2 - sum e^2`` (its rounding then stays that of a direct sum)."""

IDENTITY_ROUNDING = 2.0**-36
"""Largest bound, relative to ``<x, x_hat>``, on what float32-rounded errors ``fl32(x_hat - x)`` change in the
identity (1.5e-11: below the 1e-10 to which the sorted path's exact report is checked against this one)."""


def uniform_report(rows: Rows, params: QParams) -> ErrorReport:
    """Quantize ``rows`` with uniform ``params`` and measure the error block by block (reference ``s^2/12``).

    One pass per block: codes, round trip, the error's float64 squares and, with a dense level table, the count
    of every ``(row, code)``: then ``|x_hat|^2 = sum_c count_c v_c^2`` from the codes' values ``v_c`` and
    ``2 <x, x_hat> = sum x^2 + |x_hat|^2 - sum e^2`` when the float32 errors are exact (or their rounding bound
    stays below :data:`IDENTITY_ROUNDING`) and the identity is well-conditioned (:data:`IDENTITY_CONDITION`; else
    a second pass sums ``<x, x_hat>`` directly). Rows whose
    values all lie inside the clip range (``min >= c_min``, ``max <= c_max``: always for minmax) skip the
    clipping split.
    """
    n_levels = params.qmax - params.qmin + 1
    sums = _uniform_sums(rows, params, identity=True)
    if sums is None:
        sums = _uniform_sums(rows, params, identity=False)
    return assemble(rows, replace(sums, reference=uniform_reference(rows, sums.outside, params.scale)), n_levels)


def _uniform_sums(rows: Rows, params: QParams, identity: bool) -> RowSums | None:
    """The per-row sums of :func:`uniform_report`; None when the identity for ``<x, x_hat>`` is ill-conditioned."""
    n_levels = params.qmax - params.qmin + 1
    n_rows, length = rows.values.shape
    acc = _Sums(rows, params.clip_min, params.clip_max, n_levels)
    codes_all = np.arange(params.qmin, params.qmax + 1, dtype=np.int64)
    whole = acc.dense and n_rows * n_levels <= LEVEL_TABLE
    if whole:  # every row's level values at once (small): the blocks only slice them
        table = dequantize_rows(np.broadcast_to(codes_all, (n_rows, n_levels)), params).astype(np.float64)
        sizes = np.where(table != 0, np.abs(table), np.inf)
    smallest = sizes.min(axis=1) if whole else np.full(n_rows, np.inf)  # smallest non-zero |level| per row
    at_smallest = np.zeros(n_rows)  # values on a level of that size
    for rs, cs in blocks(n_rows, length):
        sub = replace(params, scale=params.scale[rs], zero_point=params.zero_point[rs])
        codes = quantize_rows(rows.values[rs, cs], sub, rows.has_missing)
        x_hat = dequantize_rows(codes, sub)
        if acc.dense:
            k = codes.shape[0]
            base = (np.arange(k, dtype=np.intp) * n_levels - params.qmin)[:, None]
            flat = np.add(codes, base, dtype=np.intp)  # (row, code) index of the dense table
            if whole:
                level_values, size = table[rs], sizes[rs]
            else:
                level_values = dequantize_rows(np.broadcast_to(codes_all, (k, n_levels)), sub).astype(np.float64)
                size = np.where(level_values != 0, np.abs(level_values), np.inf)
                smallest[rs] = size.min(axis=1)
            counts = acc.add(rs, cs, x_hat, flat, level_values, dot=not identity)
            at_smallest[rs] += np.where(size == smallest[rs, None], counts, 0).sum(axis=1)
        else:
            acc.add(rs, cs, x_hat, np.subtract(codes, params.qmin, dtype=np.intp), None)
    sums = acc.finish()
    if identity and acc.dense:
        # fl32(x_hat - x) is exact (Sterbenz) where x_hat = 0 or |e| <= |x_hat| / 2; levels are multiples of the
        # smallest, so with max|e| <= smallest only values on the smallest levels may round, each by at most
        # |e| ulp(e) in e^2 <= max|e|^2 2^-23
        tight = sums.max_error <= smallest * (0.5 - 2.0**-20)
        if np.any(~tight & (sums.max_error > smallest * (1.0 - 2.0**-20))):
            return None
        inexact = float(np.sum(np.where(tight, 0.0, at_smallest * sums.max_error**2))) * 2.0**-23
        signal, error = float(rows.square_sum.sum()), float(sums.clip.sum() + sums.round.sum())
        dot2 = signal + sums.xh_sq - error
        if not (
            signal + sums.xh_sq + error <= IDENTITY_CONDITION * abs(dot2) and inexact <= IDENTITY_ROUNDING * abs(dot2)
        ):
            return None
        sums = replace(sums, dot=dot2 / 2.0)
    return sums


def measure(
    rows: Rows,
    x_hat: np.ndarray,
    level_index: np.ndarray,
    clip_min: np.ndarray,
    clip_max: np.ndarray,
    levels_total: int,
    levels: LevelGrid | ScaledLevels,
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
    levels : callable or ScaledLevels
        :data:`LevelGrid` of the rows: the value of every level index; a row's ``n_sub`` sub-blocks cut its
        columns in equal consecutive parts. Or :class:`ScaledLevels` (one unit grid, a scale per row).
    """
    acc = _Sums(rows, clip_min, clip_max, levels_total)
    scaled = isinstance(levels, ScaledLevels)
    if scaled:
        below, above = (w[0, 0] for w in cell_widths(levels.unit[None, None, :]))
        # a uniform unit grid (GGUF's affine blocks, MXINT8): Delta = |s| step for every value, no per-value lookup
        step = float(below[0]) if np.all(below == below[0]) and np.all(above == below[0]) else None
        squares = np.stack([below, above], axis=1).ravel() ** 2  # level j: [2j] below, [2j + 1] above
        if step is None and levels.scale.ndim == 2:
            raise ValueError("a scale per sub-block needs a uniform unit grid")
    for rs, cs in blocks(*rows.values.shape):
        idx = level_index[rs, cs]
        if acc.level_bits is not None:  # the presence table from bit masks: no per-element table index
            acc.mark_levels(rs, cs, idx)
            flat = None
        else:
            idx = np.asarray(idx, dtype=np.intp)
            flat = idx + (np.arange(idx.shape[0], dtype=np.intp) * levels_total)[:, None] if acc.dense else idx
        xh = x_hat[rs, cs]
        x = rows.values[rs, cs]
        if not scaled or step is None:
            idx = np.asarray(idx, dtype=np.intp)
        if not scaled:
            acc.add(rs, cs, xh, flat, None, _cell_reference(levels, rs, cs, rows.values.shape[1], x, xh, idx))
        elif levels.scale.ndim == 2 and x.shape[1] == rows.values.shape[1] and x.shape[1] % levels.scale.shape[1] == 0:
            a = levels.scale[rs]  # whole rows, whole sub-blocks: Delta^2 / 12 per sub-block times its count inside
            acc.add(rs, cs, xh, flat, None, sub_reference=a * a * (step * step / 12.0))
        elif levels.scale.ndim == 2:
            n_sub = levels.scale.shape[1]
            sub = (np.arange(cs.start, cs.start + x.shape[1]) * n_sub) // rows.values.shape[1]
            cell = levels.scale[rs][:, sub]
            acc.add(rs, cs, xh, flat, None, cell * cell * (step * step / 12.0))
        elif step is None:
            scale = levels.scale[rs]
            side = (x >= xh) != (scale < 0)[:, None]  # the level above in value: above in the unit grid unless s < 0
            index = np.left_shift(idx, 1)
            index += side
            acc.add(rs, cs, xh, flat, None, squares[index], scale * scale / 12.0)
        else:
            acc.add(rs, cs, xh, flat, None)
    sums = acc.finish()
    if scaled and step is not None and levels.scale.ndim == 1:
        inside = rows.count - sums.outside
        sums = replace(sums, reference=inside * (step * levels.scale) ** 2 / 12.0)
    return assemble(rows, sums, levels_total)


def row_abs_max(a: np.ndarray) -> np.ndarray:
    """``max_j |a[i, j]|`` per row (float32 in, float32 out; NaN-free input), short rows via :func:`row_reduce`."""
    return row_reduce(np.abs(a), np.maximum)[0]


def row_sum(a: np.ndarray) -> np.ndarray:
    """``sum_j a[i, j]`` per row of a float array, float64: short rows through :func:`row_reduce` (in column
    order), longer ones by ``a.sum(axis=1)`` (pairwise)."""
    if a.shape[1] > SHORT_ROW or a.shape[1] == 0:
        return a.sum(axis=1, dtype=np.float64)
    return row_reduce(np.asarray(a, dtype=np.float64), np.add)[0]


def row_count(mask: np.ndarray) -> np.ndarray:
    """``sum_j mask[i, j]`` per row of a boolean array, int64 (short rows as uint8 through :func:`row_reduce`)."""
    if mask.shape[1] > SHORT_ROW or mask.shape[1] == 0:
        return np.count_nonzero(mask, axis=1).astype(np.int64)
    return row_reduce(mask.view(np.uint8), np.add)[0].astype(np.int64)


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
    levels: LevelGrid, rs: slice, cs: slice, length: int, x: np.ndarray, xh: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """Per element of the block: ``Delta^2 / 12``, ``Delta`` the spacing on the value's side of its level
    (float64; the caller keeps the values inside the clip range)."""
    k = x.shape[0]
    table = levels(np.arange(rs.start, rs.start + k))
    n_sub, n_levels = table.shape[1], table.shape[2]
    squares = np.stack(cell_widths(table), axis=-1).ravel() ** 2 / 12.0  # level j: [2j] below, [2j + 1] above
    index = np.left_shift(idx, 1)
    if k > 1 or n_sub > 1:
        sub = (np.arange(cs.start, cs.start + x.shape[1]) * n_sub) // max(length, 1)
        index += (np.arange(k)[:, None] * n_sub + sub[None, :]) * (2 * n_levels)
    index += x >= xh
    return squares[index]


class _Sums:
    """Per-row sums accumulated block by block (:class:`qcore.report.RowSums` at the end).

    ``add`` takes a block's round trip and its level indices, offset to the block's dense ``(row, level)`` table
    when :attr:`dense` (kept for the whole tensor's distinct count otherwise).
    """

    def __init__(self, rows: Rows, clip_min: np.ndarray, clip_max: np.ndarray, levels_total: int) -> None:
        n_rows = rows.n_rows
        self.rows, self.levels_total = rows, levels_total
        self.clip, self.round = np.zeros(n_rows), np.zeros(n_rows)
        self.max_error, self.reference, self.xh_sq = np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows)
        self.outside = np.zeros(n_rows, dtype=np.int64)
        self.dot = 0.0
        self.dense = n_rows * levels_total <= DENSE_LEVELS
        self.present = np.zeros((n_rows, levels_total), dtype=bool) if self.dense else None
        # grids of at most 64 levels whose counts are not needed (measure): one bit per level, OR-ed along rows
        self.level_bits = (
            next((t for t in LEVEL_WORDS if levels_total <= 8 * t().itemsize), None) if self.dense else None
        )
        self.sparse: list[tuple[slice, slice, np.ndarray]] = []  # blocks of part of a row: counted at the end
        self.narrow = np.int16 if levels_total < 2**15 else np.int32  # sorting int16 rows is ~10x faster than intp
        self.levels_row = np.zeros(n_rows, dtype=np.int64)
        self.seen = None if self.dense else np.zeros(levels_total, dtype=bool)
        self.lo32, self.hi32 = clip_min.astype(np.float32)[:, None], clip_max.astype(np.float32)[:, None]
        # NaN compares False, so missing values are never "outside"; an empty row has min = max = 0
        self.may_clip = (rows.min < self.lo32[:, 0]) | (rows.max > self.hi32[:, 0])

    def add(
        self,
        rs: slice,
        cs: slice,
        xh: np.ndarray,
        idx: np.ndarray | None,
        level_values: np.ndarray | None,
        reference: np.ndarray | None = None,
        reference_scale: np.ndarray | None = None,
        dot: bool = True,
        sub_reference: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """One block: ``xh`` its round trip, ``idx`` its level indices (offset by ``row * levels_total`` when
        dense; None when :meth:`mark_levels` marked them), ``level_values`` (float64, (k, levels_total)) the values
        of the levels when known (then ``|x_hat|^2`` comes from the level counts), ``reference`` the per-element
        reference when measured (times ``reference_scale`` per row) or ``sub_reference`` the reference of every
        element of each of the rows' ``n_sub`` equal consecutive sub-blocks (k, n_sub) when the block holds whole
        rows; ``<x, x_hat>`` is summed when ``dot``. Returns the block's ``(row, level)`` counts when dense."""
        rows = self.rows
        x = rows.values[rs, cs]
        mask = rows.finite_mask[rs, cs] if rows.finite_mask is not None else None
        err = np.subtract(xh, x)
        if mask is not None:
            np.copyto(err, np.float32(0.0), where=~mask)
            xh = np.where(mask, xh, np.float32(0.0))
        if err.shape[1]:
            self.max_error[rs] = np.maximum(self.max_error[rs], row_abs_max(err))
        err64 = err.astype(np.float64)
        inside = mask
        if self.may_clip[rs].any():
            outside = (x < self.lo32[rs]) | (x > self.hi32[rs])
            self.outside[rs] += row_count(outside)
            clipped = np.zeros_like(err64)
            np.copyto(clipped, err64, where=outside)
            self.clip[rs] += np.einsum("ij,ij->i", clipped, clipped)
            np.copyto(err64, 0.0, where=outside)
            inside = ~outside if mask is None else mask & ~outside
        self.round[rs] += np.einsum("ij,ij->i", err64, err64)
        if reference is not None:
            row_total = row_sum(reference if inside is None else reference * inside)
            self.reference[rs] += row_total if reference_scale is None else row_total * reference_scale
        if sub_reference is not None:
            k, n_sub = sub_reference.shape
            if inside is None:
                self.reference[rs] += row_sum(sub_reference) * float(x.shape[1] // n_sub)
            else:
                counts = row_count(inside.reshape(k * n_sub, -1)).reshape(k, n_sub)
                self.reference[rs] += np.einsum("ij,ij->i", counts.astype(np.float64), sub_reference)
        if dot:
            self.dot += float(np.einsum("ij,ij->", rows.zero_filled[rs, cs], xh, dtype=np.float64))
        counts = None
        if self.dense and idx is not None:  # (idx None: the levels were marked by mark_levels)
            k = xh.shape[0]
            flat = idx[mask] if mask is not None else idx.ravel()
            counts = np.bincount(flat, minlength=k * self.levels_total).reshape(k, self.levels_total)
            self.present[rs] |= counts > 0
            if level_values is not None:
                self.xh_sq[rs] += np.einsum("ij,ij->i", counts.astype(np.float64), level_values * level_values)
                return counts
        elif not self.dense:
            if idx.shape[1] == rows.values.shape[1]:  # whole rows: count their distinct levels now
                self.levels_row[rs] = _levels_used(idx, self.seen, mask, self.narrow)
            else:
                self.sparse.append((rs, cs, idx.astype(self.narrow)))
        self.xh_sq[rs] += np.einsum("ij,ij->i", xh, xh, dtype=np.float64)
        return counts

    def mark_levels(self, rs: slice, cs: slice, codes: np.ndarray) -> None:
        """Mark the levels present in a block (codes ``0 .. levels_total - 1``) in the dense table through bit masks:
        ``OR_j 2^{code_j}`` per row (missing values contribute nothing), then bit ``l`` of it is level ``l``."""
        word = self.level_bits
        if codes.dtype.kind != "u" or codes.dtype.itemsize > word().itemsize:
            codes = codes.astype(word)
        bits = np.left_shift(word(1), codes, dtype=word)
        if self.rows.finite_mask is not None:
            np.copyto(bits, word(0), where=~self.rows.finite_mask[rs, cs])
        masks = row_reduce(bits, np.bitwise_or)[0]
        levels = np.arange(self.levels_total, dtype=word)
        self.present[rs] |= ((masks[:, None] >> levels) & word(1)).astype(bool)

    def finish(self) -> RowSums:
        """The accumulated :class:`qcore.report.RowSums` (distinct levels counted)."""
        if self.dense:
            levels_row, levels_all = row_count(self.present), int(self.present.any(axis=0).sum())
        elif self.sparse:
            full = np.empty(self.rows.values.shape, dtype=self.narrow)
            for rs, cs, codes in self.sparse:
                full[rs, cs] = codes
            self.levels_row = _levels_used(full, self.seen, self.rows.finite_mask, self.narrow)
        if not self.dense:
            levels_row, levels_all = self.levels_row, int(np.count_nonzero(self.seen))
        return RowSums(
            self.clip,
            self.round,
            self.max_error,
            self.outside,
            self.reference,
            levels_row,
            levels_all,
            self.dot,
            float(self.xh_sq.sum()),
        )


def _levels_used(idx: np.ndarray, seen: np.ndarray, mask: np.ndarray | None, narrow: type) -> np.ndarray:
    """Distinct level indices per row of ``idx`` (whole rows; for grids too large for a dense ``(row, level)``
    table), from the rows sorted as ``narrow`` ints (int16 rows sort ~10x faster than intp ones):
    ``1 + #(s_j != s_{j-1})``; marks each present level in ``seen`` (a scatter, fastest with intp indices)."""
    seen[idx[mask] if mask is not None else idx.ravel()] = True
    codes = idx.astype(narrow, copy=False)
    ordered = np.sort(np.where(mask, codes, -1) if mask is not None else codes, axis=1)
    per_row = 1 + row_count(ordered[:, 1:] != ordered[:, :-1]) - (ordered[:, 0] < 0)
    return per_row
