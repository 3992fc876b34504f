"""Exact error report from rows sorted once (:class:`qcore.sorted_rows.SortedRows`): cost independent of ``N``.

Each code run ``[p_k, p_{k+1})`` of a row (:func:`qcore.sorted_rows.run_starts`) is cut by the clip
boundaries (``x < c_min`` / ``x > c_max``); every piece has one dequantized value ``x_hat`` and,
from prefix sums ``S0, S1 = sum x, S2 = sum x^2`` of the piece,

.. math::

    \\sum (x - \\hat x)^2 = S_2 - 2 \\hat x S_1 + S_0 \\hat x^2, \\qquad
    \\langle x, \\hat x\\rangle = \\hat x S_1, \\qquad |\\hat x|^2 = S_0 \\hat x^2

evaluated in double-double arithmetic (:mod:`qcore.exact_sums`), so the heavy cancellation of the
first formula at fine grids costs no accuracy (a piece's sum is exact to about ``N eps^2`` times its
row's ``sum x^2``, eps = 2^-53). The per-element errors ``fl32(x_hat - x)`` that
:mod:`qcore.elementwise_metrics` squares are exact (Sterbenz: ``x_hat / 2 <= x <= 2 x_hat``) inside
the pieces summed by formula; the few clamped values beyond that range are evaluated element by element.
Non-uniform grids (``Calibration.grid``, e.g. log2) use the same runs, cut at their float32 splits.
When a case does not fit (too many levels x rows, a threshold that cannot be bracketed,
many far-clipped values), the functions here return None and :func:`qcore.metrics.error_report` (or the
encoding) measures element by element. The local-spacing reference of a non-uniform grid counts the values
of each cell ``[L_k, L_{k+1})`` inside the clip range by the same search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .calibrators.base import Calibration
from .elementwise_metrics import cell_widths
from .exact_sums import dd_add, two_prod
from .grid import grid_round_trip
from .params import QParams
from .quantize import dequantize_rows, quantize_rows
from .report import ErrorReport, RowSums, assemble, uniform_reference
from .sorted_rows import MAX_SEGMENTS, SortedRows, run_starts, searchsorted_rows

MAX_DIRECT = 1 << 18
"""Largest number of far-clipped values evaluated one by one before falling back."""


RoundTrip = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(values of shape (D, 1), their row indices (D,)) -> dequantized float32 (D, 1)``."""


def fast_error_report(sorted_rows: SortedRows, params: QParams) -> ErrorReport | None:
    """The :func:`qcore.metrics.error_report` of uniform ``params`` from the sorted rows, or None (internal).

    Cost ``O(n_rows x levels x (BLOCK + log L))``. None when the case does not fit the sorted path
    (see the module docstring); the caller then measures element by element.
    """
    levels = params.qmax - params.qmin + 1
    if sorted_rows.rows.n_rows * levels > MAX_SEGMENTS:
        return None
    starts = run_starts(sorted_rows, params)
    if starts is None:
        return None
    grid = np.broadcast_to(np.arange(params.qmin, params.qmax + 1, dtype=np.int64), (params.n_rows, levels))

    def round_trip(x: np.ndarray, row: np.ndarray) -> np.ndarray:
        sub = replace(params, scale=params.scale[row], zero_point=params.zero_point[row])
        return dequantize_rows(quantize_rows(x, sub, missing=False), sub)

    x_hat = dequantize_rows(grid, params)  # (n_rows, levels) float32, as the quantizer dequantizes
    sums = _from_runs(sorted_rows, starts, x_hat, params.clip_min, params.clip_max, round_trip)
    if sums is None:
        return None
    reference = uniform_reference(sorted_rows.rows, sums.outside, params.scale)
    return assemble(sorted_rows.rows, replace(sums, reference=reference), levels)


def fast_grid_report(sorted_rows: SortedRows, calibration: Calibration) -> ErrorReport | None:
    """:func:`qcore.metrics.measure` of a non-uniform grid (``calibration.grid``/``splits``) from the sorted rows.

    Level ``i`` holds the values ``x >= splits[i - 1]`` (split rounded up to float32, as
    :func:`qcore.analysis.grid_index`), so its run starts at ``searchsorted(split32, 'left')``.
    """
    rows, splits = sorted_rows.rows, calibration.splits
    if rows.n_rows * calibration.grid.shape[1] > MAX_SEGMENTS:
        return None
    split32 = splits.astype(np.float32)
    split32 = np.where(split32 < splits, np.nextafter(split32, np.float32(np.inf)), split32)
    inner = searchsorted_rows(sorted_rows.values, rows.count, split32, "left")
    starts = np.concatenate([np.zeros((rows.n_rows, 1), dtype=np.int64), inner, rows.count[:, None]], axis=1)

    def round_trip(x: np.ndarray, row: np.ndarray) -> np.ndarray:
        sub = replace(calibration, grid=calibration.grid[row], splits=splits[row])
        return grid_round_trip(x, sub)[1]

    x_hat = calibration.grid.astype(np.float32)
    sums = _from_runs(sorted_rows, starts, x_hat, calibration.lo, calibration.hi, round_trip)
    if sums is None:
        return None
    reference = _cell_reference(sorted_rows, calibration, x_hat)
    return assemble(rows, replace(sums, reference=reference), calibration.grid.shape[1])


def _cell_reference(sorted_rows: SortedRows, calibration: Calibration, x_hat: np.ndarray) -> np.ndarray:
    """``sum_inside Delta^2 / 12`` per row: the values of each cell ``[L_k, L_{k+1})`` inside the clip range.

    With the levels sorted, cell ``k`` holds the values ``fl32(L_k) <= x < fl32(L_{k+1})``, of width the spacing
    to the next distinct level; values inside the clip range beyond the end levels take the end cells' widths
    (as the element-wise reference does).
    """
    rows, values = sorted_rows.rows, sorted_rows.values
    count = rows.count
    below = searchsorted_rows(values, count, calibration.lo.astype(np.float32)[:, None], "left")
    upto = searchsorted_rows(values, count, calibration.hi.astype(np.float32)[:, None], "right")
    order = np.argsort(x_hat, axis=1, kind="stable")
    levels32 = np.take_along_axis(x_hat, order, axis=1)
    at = np.clip(searchsorted_rows(values, count, levels32[:, 1:], "left"), below, upto)
    cell_count = np.diff(np.concatenate([below, at, upto], axis=1), axis=1)  # the last: values >= the top level
    widths = cell_widths(calibration.grid.astype(np.float64)[:, None, :])[1][:, 0]
    above = np.take_along_axis(widths, order, axis=1)
    return (cell_count * above**2).sum(axis=1) / 12.0


def _from_runs(
    sorted_rows: SortedRows,
    starts: np.ndarray,
    x_hat: np.ndarray,
    clip_min: np.ndarray,
    clip_max: np.ndarray,
    round_trip: RoundTrip,
) -> RowSums | None:
    """The per-row sums from the level runs ``starts`` (n_rows, levels + 1) and their float32 values ``x_hat``
    (reference left at 0: the caller adds its own)."""
    rows, values = sorted_rows.rows, sorted_rows.values
    n_rows, length = values.shape
    levels = x_hat.shape[1]
    if np.any(np.diff(starts, axis=1) < 0):
        return None
    count = rows.count
    lo32, hi32 = clip_min.astype(np.float32), clip_max.astype(np.float32)
    below = searchsorted_rows(values, count, lo32[:, None], "left")[:, 0]  # x < c_min
    upto = searchsorted_rows(values, count, hi32[:, None], "right")[:, 0]  # x <= c_max
    if np.any(below > upto):
        return None
    # values beyond 2 x_hat of an end level: fl32(x_hat - x) may round there, so they go one by one
    ends2 = np.stack([2.0 * x_hat[:, 0].astype(np.float64), 2.0 * x_hat[:, -1].astype(np.float64)], axis=1)
    far_lo = np.where(x_hat[:, 0] < 0, searchsorted_rows(values, count, ends2[:, :1], "left")[:, 0], 0)
    far_hi = np.where(x_hat[:, -1] > 0, searchsorted_rows(values, count, ends2[:, 1:], "right")[:, 0], count)
    far_hi = np.maximum(far_hi, far_lo)
    if int((far_lo + count - far_hi).sum()) > MAX_DIRECT:
        return None

    # elementary pieces: code runs cut at the clip and far boundaries (code starts first: stable order)
    cuts = np.concatenate([starts[:, :-1], np.stack([below, upto, far_lo, far_hi], axis=1), count[:, None]], axis=1)
    order = np.argsort(cuts, axis=1, kind="stable")
    cuts = np.take_along_axis(cuts, order, axis=1)
    code = np.cumsum(order < levels, axis=1)[:, :-1] - 1
    p0, p1 = cuts[:, :-1], cuts[:, 1:]
    n = p1 - p0
    xh = np.take_along_axis(x_hat, code, axis=1)
    outside = (p0 < below[:, None]) | (p0 >= upto[:, None])
    formula = (n > 0) & (p0 >= far_lo[:, None]) & (p0 < far_hi[:, None])

    flat = values.reshape(-1)
    row_base = (np.arange(n_rows, dtype=np.int64) * length)[:, None]
    first = flat[np.minimum(row_base + p0, flat.size - 1)]
    last = flat[np.maximum(row_base + p1 - 1, 0)]
    if not (_sterbenz(first, xh, formula) and _sterbenz(last, xh, formula)):
        return None
    with np.errstate(invalid="ignore"):
        err_first, err_last = xh - first, xh - last
    max_err = np.where(formula, np.maximum(np.abs(err_first), np.abs(err_last)), np.float32(0.0))

    h1, l1, h2, l2 = sorted_rows.prefix_at(cuts)
    s1h, s1l = dd_add(h1[:, 1:], l1[:, 1:], -h1[:, :-1], -l1[:, :-1])
    s2h, s2l = dd_add(h2[:, 1:], l2[:, 1:], -h2[:, :-1], -l2[:, :-1])
    xh64 = xh.astype(np.float64)
    dot_h, dot_e = two_prod(xh64, s1h)
    dot_l = dot_e + xh64 * s1l
    sq_h, sq_l = two_prod(n.astype(np.float64), xh64 * xh64)  # x_hat^2 exact in float64
    sse_h, sse_l = dd_add(s2h, s2l, -2.0 * dot_h, -2.0 * dot_l)
    sse_h, sse_l = dd_add(sse_h, sse_l, sq_h, sq_l)
    sse = np.where(formula & (max_err > 0), np.maximum(sse_h + sse_l, 0.0), 0.0)

    clip_row = np.where(outside, sse, 0.0).sum(axis=1)
    round_row = np.where(outside, 0.0, sse).sum(axis=1)
    max_row = max_err.max(axis=1).astype(np.float64)
    dot = float(np.where(formula, dot_h + dot_l, 0.0).sum())
    xh_sq = float(np.where(formula, sq_h + sq_l, 0.0).sum())
    direct = _direct(sorted_rows, round_trip, lo32, hi32, far_lo, far_hi, (clip_row, round_row, max_row))
    present = np.diff(starts, axis=1) > 0
    return RowSums(
        clip=clip_row,
        round=round_row,
        max_error=max_row,
        outside=below + count - upto,
        reference=np.zeros(n_rows),
        levels_used=present.sum(axis=1),
        levels_used_all=int(present.any(axis=0).sum()),
        dot=dot + direct[0],
        xh_sq=xh_sq + direct[1],
    )


def _sterbenz(x: np.ndarray, x_hat: np.ndarray, where: np.ndarray) -> bool:
    """Whether ``fl32(x_hat - x)`` is exact at every ``where``: ``x_hat = 0`` or ``x_hat / 2 <= x <= 2 x_hat``."""
    x, xh = x.astype(np.float64), x_hat.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = (xh == 0) | ((xh > 0) & (x >= xh / 2) & (x <= 2 * xh)) | ((xh < 0) & (x <= xh / 2) & (x >= 2 * xh))
    return bool(np.all(ok | ~where))


def _direct(sorted_rows: SortedRows, round_trip: RoundTrip, lo32, hi32, far_lo, far_hi, sums) -> tuple[float, float]:
    """Add the far values' errors element by element, as :mod:`qcore.elementwise_metrics` does.

    Updates ``sums = (clip_row, round_row, max_row)`` in place; returns their ``(<x, x_hat>, |x_hat|^2)``.
    """
    clip_row, round_row, max_row = sums
    count = sorted_rows.rows.count
    n_rows = sorted_rows.values.shape[0]
    low_n, high_n = far_lo, count - far_hi
    if not (low_n.any() or high_n.any()):
        return 0.0, 0.0
    row = np.concatenate([np.repeat(np.arange(n_rows), low_n), np.repeat(np.arange(n_rows), high_n)])
    low_pos = np.arange(int(low_n.sum())) - np.repeat(np.cumsum(low_n) - low_n, low_n)
    high_pos = np.arange(int(high_n.sum())) - np.repeat(np.cumsum(high_n) - high_n, high_n) + np.repeat(far_hi, high_n)
    pos = np.concatenate([low_pos, high_pos])
    x = sorted_rows.values[row, pos][:, None]
    xh = round_trip(x, row)
    err = (xh - x)[:, 0]
    outside = (x[:, 0] < lo32[row]) | (x[:, 0] > hi32[row])
    sq = err.astype(np.float64) ** 2
    clip_row += np.bincount(row, np.where(outside, sq, 0.0), minlength=n_rows)
    round_row += np.bincount(row, np.where(outside, 0.0, sq), minlength=n_rows)
    np.maximum.at(max_row, row, np.abs(err).astype(np.float64))
    x64, xh64 = x[:, 0].astype(np.float64), xh[:, 0].astype(np.float64)
    return float(x64 @ xh64), float(xh64 @ xh64)
