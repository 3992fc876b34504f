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

from dataclasses import dataclass

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


def error_report(rows: Rows, params: QParams) -> ErrorReport:
    """Quantize ``rows`` with uniform ``params`` and measure the error.

    Parameters
    ----------
    rows : Rows
        The tensor in row form (missing elements are NaN and excluded).
    params : QParams
        Per-row parameters.
    """
    codes = quantize_rows(rows.values, params, rows.has_missing)
    x_hat = dequantize_rows(codes, params)
    offsets = np.subtract(codes, params.qmin, dtype=np.intp)
    return measure(rows, x_hat, offsets, params.clip_min, params.clip_max, params.qmax - params.qmin + 1, params.scale)


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
    x = rows.values
    mask = rows.finite_mask
    err = x_hat - x  # this function's own array: zeroed where missing, later where clipped
    xh = x_hat
    if mask is not None:
        np.copyto(err, np.float32(0.0), where=~mask)
        xh = np.where(mask, x_hat, np.float32(0.0))
    max_row = np.maximum(err.max(axis=1), -err.min(axis=1)).astype(np.float64)
    # NaN compares False, so missing values are never "outside"
    outside = (x < clip_min[:, None].astype(np.float32)) | (x > clip_max[:, None].astype(np.float32))
    clipped = np.where(outside, err, np.float32(0.0))
    clip_row = np.einsum("ij,ij->i", clipped, clipped, dtype=np.float64)
    np.copyto(err, np.float32(0.0), where=outside)
    round_row = np.einsum("ij,ij->i", err, err, dtype=np.float64)
    sq_row = clip_row + round_row
    n_row = rows.count.astype(np.float64)
    n = float(n_row.sum())
    n_out_row = np.count_nonzero(outside, axis=1)
    n_in_row = n_row - n_out_row
    signal_row = rows.square_sum
    signal = float(signal_row.sum())
    total_sq = float(sq_row.sum())
    dot = float(np.einsum("ij,ij->", rows.zero_filled, xh, dtype=np.float64))
    norm = float(np.sqrt(signal) * np.sqrt(np.einsum("ij,ij->", xh, xh, dtype=np.float64)))
    levels_row, levels_all = _levels_used(level_index, levels_total, mask)
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
    """Distinct level indices per row and over the whole tensor (batched bincount)."""
    n_rows = offset.shape[0]
    if n_rows * n_levels <= 1 << 24:
        idx = offset + (np.arange(n_rows) * n_levels)[:, None] if n_rows > 1 else offset
        idx = idx[mask] if mask is not None else idx.ravel()
        present = np.bincount(idx, minlength=n_rows * n_levels).reshape(n_rows, n_levels) > 0
        return present.sum(axis=1), int(present.any(axis=0).sum())
    flat = offset[mask] if mask is not None else offset.ravel()
    overall = int(np.count_nonzero(np.bincount(flat, minlength=n_levels)))
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
    codes = quantize_rows(rows.values, params, rows.has_missing).astype(np.int64)
    with np.errstate(invalid="ignore"):
        u = rows.values / params.scale[:, None] + params.zero_point[:, None]
        frac = np.nan_to_num(u - (codes - 0.5)) * sub_bins
    sub = np.clip(np.floor(frac), 0, sub_bins - 1).astype(np.int64)
    idx = (codes - params.qmin) * sub_bins + sub
    idx = idx[rows.finite_mask] if rows.finite_mask is not None else idx.ravel()
    p = np.bincount(idx, minlength=(params.qmax - params.qmin + 1) * sub_bins).reshape(-1, sub_bins)
    p = p.astype(np.float64)
    filled = p > 0
    q = np.where(filled, (p.sum(axis=1) / np.maximum(filled.sum(axis=1), 1))[:, None], 0.0)
    total = p.sum()
    return float(np.sum(p[filled] / total * np.log(p[filled] / q[filled])))
