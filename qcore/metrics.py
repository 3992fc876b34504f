"""Error analysis of a quantized tensor.

For values ``x`` (missing ones excluded, ``N`` present elements) and their
round trip ``x_hat``, with ``e = x_hat - x`` and the clip range ``[c_min, c_max]``:

.. math::

    \\mathrm{MSE} = \\frac{1}{N}\\sum e_i^2
    = \\underbrace{\\frac{1}{N}\\sum_{x_i \\notin [c_{min}, c_{max}]} e_i^2}_{\\text{clip}}
    + \\underbrace{\\frac{1}{N}\\sum_{x_i \\in [c_{min}, c_{max}]} e_i^2}_{\\text{rounding}}

- uniform-noise reference of the rounding part: ``(1/N) sum_inside s^2 / 12``
- ``SQNR = 10 log10(sum x^2 / sum e^2)`` dB (None when the error is exactly 0)
- cosine similarity ``<x, x_hat> / (|x| |x_hat|)``
- levels used: distinct integer codes that occur (of ``q_max - q_min + 1``)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .granularity import Rows
from .params import QParams
from .quantize import dequantize_rows, quantize_rows
from .scheme import QuantOptionError


@dataclass(frozen=True, eq=False)
class RowErrors:
    """Per-row (per-channel / per-group) breakdown, arrays of shape (n_rows,)."""

    mse: np.ndarray
    clip_mse: np.ndarray
    round_mse: np.ndarray
    sqnr_db: np.ndarray
    clipped_fraction: np.ndarray
    levels_used: np.ndarray
    max_abs_error: np.ndarray


@dataclass(frozen=True, eq=False)
class ErrorReport:
    """Whole-tensor error metrics plus the per-row breakdown."""

    mse: float
    clip_mse: float
    round_mse: float
    round_mse_reference: float
    sqnr_db: float | None
    cosine: float
    max_abs_error: float
    clipped_fraction: float
    levels_used: int
    levels_total: int
    count: int
    rows: RowErrors

    def as_dict(self) -> dict[str, float | int | None]:
        """The scalar metrics, as in the CLI's JSON ``metrics`` object plus extras."""
        return {
            "mse": self.mse,
            "clip_mse": self.clip_mse,
            "round_mse": self.round_mse,
            "round_mse_reference": self.round_mse_reference,
            "sqnr_db": self.sqnr_db,
            "cosine": self.cosine,
            "clipped_fraction": self.clipped_fraction,
            "max_abs_error": self.max_abs_error,
            "levels_used": self.levels_used,
            "levels_total": self.levels_total,
        }


def _sqnr(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(signal / noise)
    return np.where(noise > 0, out, np.inf)


BLOCK_ELEMENTS = 1 << 18
"""Elements per block of the error pass: blocks stay in cache, so the many element-wise steps cost ~one pass."""

DENSE_LEVELS = 1 << 24
"""Largest ``n_rows x levels`` for which used levels are tracked with a dense presence table."""


def _blocks(n_rows: int, length: int) -> list[tuple[slice, slice]]:
    """Row/column slices of about :data:`BLOCK_ELEMENTS` elements covering ``(n_rows, length)``."""
    per_block = max(1, BLOCK_ELEMENTS // max(length, 1))
    width = length if per_block > 1 else min(length, BLOCK_ELEMENTS)
    return [
        (slice(r, r + per_block), slice(c, c + width))
        for r in range(0, n_rows, per_block)
        for c in range(0, max(length, 1), width)
    ]


def error_report(rows: Rows, params: QParams) -> ErrorReport:
    """Quantize ``rows`` with uniform ``params`` and measure the error (block by block).

    Parameters
    ----------
    rows : Rows
        The tensor in row form (missing elements are NaN and excluded).
    params : QParams
        Per-row parameters.
    """
    blocks = _blocks(*rows.values.shape)
    n_levels = params.qmax - params.qmin + 1

    def round_trip():
        for rs, cs in blocks:
            sub = replace(params, scale=params.scale[rs], zero_point=params.zero_point[rs])
            codes = quantize_rows(rows.values[rs, cs], sub, rows.has_missing)
            yield rs, cs, dequantize_rows(codes, sub), np.subtract(codes, params.qmin, dtype=np.intp)

    return _measure_blocks(rows, round_trip(), params.clip_min, params.clip_max, n_levels, params.scale)


def measure(
    rows: Rows,
    x_hat: np.ndarray,
    level_index: np.ndarray,
    clip_min: np.ndarray,
    clip_max: np.ndarray,
    levels_total: int,
    step: np.ndarray | None,
) -> ErrorReport:
    """Error metrics of any quantizer (uniform or not) given its round trip.

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
        Number of representable levels per row.
    step : ndarray of shape (n_rows,) or None
        Uniform step ``s`` for the ``s^2/12`` reference (None for non-uniform grids: reference NaN).
    """
    blocks = ((rs, cs, x_hat[rs, cs], level_index[rs, cs]) for rs, cs in _blocks(*rows.values.shape))
    return _measure_blocks(rows, blocks, clip_min, clip_max, levels_total, step)


def _measure_blocks(rows: Rows, blocks, clip_min, clip_max, levels_total: int, step) -> ErrorReport:
    """Accumulate the metrics over ``(row slice, column slice, x_hat, level index)`` blocks."""
    n_rows = rows.n_rows
    clip_row, round_row = np.zeros(n_rows), np.zeros(n_rows)
    max_row = np.zeros(n_rows)
    n_out_row = np.zeros(n_rows, dtype=np.int64)
    dot = xh_sq = 0.0
    dense = n_rows * levels_total <= DENSE_LEVELS
    present = np.zeros((n_rows, levels_total), dtype=bool) if dense else None
    sparse_levels = []
    lo32, hi32 = clip_min.astype(np.float32)[:, None], clip_max.astype(np.float32)[:, None]
    for rs, cs, xh, idx in blocks:
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
    sq_row = clip_row + round_row
    n_row = rows.count.astype(np.float64)
    n = float(n_row.sum())
    n_in_row = n_row - n_out_row
    signal_row = rows.square_sum
    signal = float(signal_row.sum())
    total_sq = float(sq_row.sum())
    norm = float(np.sqrt(signal) * np.sqrt(xh_sq))
    safe_n = np.maximum(n_row, 1.0)
    reference = float((n_in_row * np.asarray(step) ** 2 / 12.0).sum()) / n if step is not None else float("nan")
    return ErrorReport(
        mse=total_sq / n,
        clip_mse=float(clip_row.sum()) / n,
        round_mse=float(round_row.sum()) / n,
        round_mse_reference=reference,
        sqnr_db=None if total_sq == 0 or signal == 0 else float(10.0 * np.log10(signal / total_sq)),
        cosine=dot / norm if norm > 0 else (1.0 if total_sq == 0 else 0.0),
        max_abs_error=float(max_row.max()),
        clipped_fraction=float(n_out_row.sum()) / n,
        levels_used=levels_all,
        levels_total=levels_total,
        count=int(n),
        rows=RowErrors(
            mse=sq_row / safe_n,
            clip_mse=clip_row / safe_n,
            round_mse=round_row / safe_n,
            sqnr_db=_sqnr(signal_row, sq_row),
            clipped_fraction=n_out_row / safe_n,
            levels_used=levels_row,
            max_abs_error=max_row,
        ),
    )


def _levels_used(offset: np.ndarray, n_levels: int, mask: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Distinct level indices per row and over the whole tensor, for grids too large for a dense table."""
    flat = offset[mask] if mask is not None else offset.ravel()
    seen = np.zeros(n_levels, dtype=bool)
    seen[flat] = True  # a scatter: cheaper than bincount, which first widens narrow codes to intp
    overall = int(np.count_nonzero(seen))
    ordered = np.sort(np.where(mask, offset, -1) if mask is not None else offset, axis=1)
    per_row = 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1) - (ordered[:, 0] < 0)
    return per_row, overall


def kl_divergence(rows: Rows, params: QParams, sub_bins: int = 16) -> float:
    """KL(P || Q) between the float values and what their codes keep, in nats.

    In code units ``u = x / s + z`` every row shares one grid: the rounding cell of code
    ``k`` is ``[k - 1/2, k + 1/2)``. Each cell is cut into ``sub_bins`` equal bins (values
    assigned to cells by their code, so clipped values fold into the end bins of the end
    cells, as the entropy calibrators fold the tail). ``P`` is the histogram of ``x`` on these
    bins over all rows; ``Q`` spreads the count of each code evenly over the non-empty bins of
    its cell (TensorRT's expansion), i.e. the most that ``x_hat`` can tell about where in the
    cell the values were. With one bin per step, ``P = Q`` and KL is 0: the histogram of
    ``x_hat`` on step-wide bins equals that of ``x``. Like any histogram KL it is biased upwards
    by about ``(occupied bins) / (2 N)`` for ``N`` values: compare it at a fixed ``sub_bins``.

    .. math:: \\mathrm{KL}(P\\|Q) = \\sum_{j: P_j > 0} P_j \\ln(P_j / Q_j)

    Parameters
    ----------
    rows : Rows
        Original values (NaN = missing, excluded).
    params : QParams
        Uniform per-row parameters.
    sub_bins : int
        Bins per quantization step.
    """
    if isinstance(sub_bins, bool) or not isinstance(sub_bins, (int, np.integer)) or sub_bins <= 0:
        raise QuantOptionError(f"sub_bins must be a positive integer, got {sub_bins!r}")
    n_bins = (params.qmax - params.qmin + 1) * sub_bins
    p = np.zeros(n_bins, dtype=np.int64)
    for rs, cs in _blocks(*rows.values.shape):
        values = rows.values[rs, cs]
        sub_params = replace(params, scale=params.scale[rs], zero_point=params.zero_point[rs])
        codes = quantize_rows(values, sub_params, rows.has_missing).astype(np.int64)
        with np.errstate(invalid="ignore"):
            u = values / sub_params.scale[:, None] + sub_params.zero_point[:, None]
            frac = np.nan_to_num(u - (codes - 0.5)) * sub_bins
        sub = np.clip(np.floor(frac), 0, sub_bins - 1).astype(np.int64)
        idx = (codes - params.qmin) * sub_bins + sub
        idx = idx[rows.finite_mask[rs, cs]] if rows.finite_mask is not None else idx.ravel()
        p += np.bincount(idx, minlength=n_bins)
    p = p.reshape(-1, sub_bins)
    p = p.astype(np.float64)
    filled = p > 0
    q = np.where(filled, (p.sum(axis=1) / np.maximum(filled.sum(axis=1), 1))[:, None], 0.0)
    total = p.sum()
    return float(np.sum(p[filled] / total * np.log(p[filled] / q[filled])))
