"""Error analysis of a quantized tensor: one public :func:`error_report`, plus the KL view of the codes.

The formulas of the report are in :mod:`qcore.report`. :func:`error_report` measures an integer grid from
the rows sorted once when it is given them and the sorted path applies (:mod:`qcore.sorted_metrics`: cost
independent of the number of elements, same numbers), element by element otherwise
(:mod:`qcore.elementwise_metrics`). Imports run one way: this module -> sorted / element-wise metrics ->
:mod:`qcore.report`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import sorted_metrics
from .elementwise_metrics import blocks, measure, uniform_report
from .granularity import Rows
from .params import QParams
from .quantize import quantize_rows
from .report import ErrorReport, RowErrors
from .scheme import QuantOptionError
from .sorted_rows import SortedRows

__all__ = ["ErrorReport", "RowErrors", "error_report", "kl_divergence", "measure"]


def error_report(rows: Rows, params: QParams, sorted_rows: SortedRows | None = None) -> ErrorReport:
    """Quantize ``rows`` with uniform ``params`` and measure the error.

    Parameters
    ----------
    rows : Rows
        The tensor in row form (missing elements are NaN and excluded).
    params : QParams
        Per-row parameters.
    sorted_rows : SortedRows, optional
        ``rows`` sorted once (:class:`qcore.sorted_rows.SortedRows`): the report then comes from the code
        runs when the case fits the sorted path (same numbers), else element by element.
    """
    if sorted_rows is not None:
        if sorted_rows.values.shape != rows.values.shape:
            raise ValueError(f"sorted rows of shape {sorted_rows.values.shape} for rows {rows.values.shape}")
        report = sorted_metrics.fast_error_report(sorted_rows, params)
        if report is not None:
            return report
    return uniform_report(rows, params)


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
    for rs, cs in blocks(*rows.values.shape):
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
