"""Percentile: clip at the histogram bin where the cumulative share reaches ``P``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..constraints import Constraint, Interval
from ..histogram import Histogram, bin_indices
from ..scheme import QuantScheme
from .base import Calibration, CalibrationData, Calibrator, Curve, register, symmetric_range

MAX_CURVE_ELEMENTS = 1 << 24
"""Largest ``n_rows x bins`` for which the dense histogram and its cdf curve are built when rows are short."""
MAX_BINS = 1 << 16
"""Upper bound of ``bins``."""


def cumulative_share(counts: np.ndarray) -> np.ndarray:
    """``cdf[r, k]``: share of row ``r`` in bins ``0..k``, computed as ``cumsum(counts / total)`` (float64).

    The order of operations is ONNX Runtime's and modelopt's, so a ``searchsorted``
    on it lands in the same bin as theirs. Empty rows give an all-zero cdf.
    """
    total = counts.sum(axis=1).astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, counts / np.where(total > 0, total, 1.0), 0.0)
    return np.cumsum(share, axis=1)


def crossing_bin(cdf: np.ndarray, share: float) -> np.ndarray:
    """Per row, the first bin where ``cdf >= share`` (``searchsorted(cdf, share)``, may be ``bins``)."""
    return np.count_nonzero(cdf < share, axis=1)


_CDF_BLOCK_ELEMENTS = 1 << 18
"""Histogram entries per row block of :func:`share_curve` (its float64 temporaries stay a few MB)."""


def share_curve(hist: Histogram, shares: tuple[float, ...]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """:func:`crossing_bin` of each share on the float64 :func:`cumulative_share`, with the curve it crosses.

    Returns ``(bins, edges, cdf)``: the crossing bin per share, and per row the bins' upper edges
    ``lo + (k + 1) w`` and the cdf, both the float32 rounding of the float64 values (a block of rows at a
    time: no float64 array as large as the histogram).
    """
    n_rows, bins = hist.counts.shape
    ks = [np.empty(n_rows, dtype=np.int64) for _ in shares]
    edges, cdf = np.empty((n_rows, bins), dtype=np.float32), np.empty((n_rows, bins), dtype=np.float32)
    upper = np.arange(1, bins + 1)
    step = max(1, _CDF_BLOCK_ELEMENTS // max(bins, 1))
    for first in range(0, n_rows, step):
        rs = slice(first, first + step)
        block = cumulative_share(hist.counts[rs])
        for k, share in zip(ks, shares, strict=True):
            k[rs] = crossing_bin(block, share)
        cdf[rs] = block
        edges[rs] = hist.lo[rs, None] + upper * hist.width[rs, None]
    return ks, edges, cdf


_BLOCK_ELEMENTS = 1 << 15
"""Elements per row block of :func:`sorted_crossing_bins`."""


def sorted_crossing_bins(
    values: np.ndarray, lo: np.ndarray, width: np.ndarray, bins: int, shares: tuple[float, ...]
) -> list[np.ndarray]:
    """:func:`crossing_bin` of each share without the dense histogram, for rows shorter than ``bins``.

    Each row's bin indices (:func:`qcore.histogram.bin_indices`) are sorted; every run of one index
    is a non-empty bin. ``cdf = cumsum(counts / total)`` over the runs equals the dense one at those
    bins (the empty bins add exact zeros), and only a non-empty bin can be the first to reach a positive
    share, so the crossing is the first run whose cdf reaches it (``bins`` if none does; 0 for a share
    ``<= 0``). ``O(L log L)`` per row.
    """
    step = max(1, _BLOCK_ELEMENTS // max(values.shape[1], 1))
    blocks = [
        _crossing_block(values[i : i + step], lo[i : i + step], width[i : i + step], bins, shares)
        for i in range(0, values.shape[0], step)
    ]
    return [np.concatenate([b[k] for b in blocks]) for k in range(len(shares))]


def _crossing_block(
    values: np.ndarray, lo: np.ndarray, width: np.ndarray, bins: int, shares: tuple[float, ...]
) -> list[np.ndarray]:
    """:func:`sorted_crossing_bins` of one block of rows (its temporaries stay cache-sized)."""
    n_rows, length = values.shape
    missing = np.isnan(values)
    idx = bin_indices(values, lo, width, bins)
    idx[missing] = bins  # after every bin
    idx.sort(axis=1)
    total = (length - missing.sum(axis=1)).astype(np.float64)
    last = np.ones(idx.shape, dtype=bool)  # last element of its run
    last[:, :-1] = idx[:, 1:] != idx[:, :-1]
    last &= idx < bins
    position = np.arange(length)
    run_end = np.where(last, position, -1)
    previous_end = np.maximum.accumulate(np.concatenate([np.full((n_rows, 1), -1), run_end[:, :-1]], axis=1), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_of_run = np.where(last, (position - previous_end) / total[:, None], 0.0)
    cdf = np.cumsum(share_of_run, axis=1)
    out = []
    for share in shares:
        if share <= 0:  # the empty bins before the first value already have cdf 0 >= share
            out.append(np.zeros(n_rows, dtype=np.int64))
            continue
        reached = last & (cdf >= share)
        first = np.argmax(reached, axis=1)
        out.append(np.where(reached.any(axis=1), idx[np.arange(n_rows), first], bins))
    return out


@register
@dataclass(frozen=True)
class Percentile(Calibrator):
    r"""Clip at the lower edge of the histogram bin where the cumulative share reaches ``P``.

    Symmetric: over the ``|x|`` histogram (``bins`` bins over ``[0, max|x|]``, width ``w``),

    .. math:: k^* = \min\{k : \mathrm{cdf}_k \ge P/100\}, \qquad T = k^* w

    i.e. ``edges[searchsorted(cdf, P/100)]`` as ONNX Runtime's symmetric
    ``compute_percentile`` and modelopt's ``_compute_amax_percentile``: an order
    statistic rounded down to its bin edge, not an interpolated percentile.

    Guard: when the crossing bin is bin 0 (``P`` % of the values lie in
    ``[0, w)``, e.g. a tensor of zeros with one outlier), ``T = 0`` would zero the
    scale; the upper edge of bin 0, ``T = w = max|x| / bins``, is returned instead
    (the smallest positive candidate). An all-zero row gives ``T = 0``.

    Asymmetric: over the signed histogram (``[min, max]``), cut
    ``(100 - P) / 200`` from each tail: ``lo = edges[searchsorted(cdf, cut)]``,
    ``hi = edges[searchsorted(cdf, 1 - cut)]`` (lower edges, as ONNX Runtime's
    asymmetric ``compute_percentile``), then clipped to ``[min, max]``.

    Not a search, so ``curve`` is None: the cumulative share over the bin upper
    edges (the point at ``T`` marked as ``chosen``, goal ``'none'``: a crossing, not an optimum)
    is ``details['share_curve']``, in float32 (:attr:`curve_dtype`; the crossing is found on the
    float64 cdf, a block of rows at a time, and the curve keeps its float32 rounding: per channel the
    dense curve is as large as the histogram, twice the tensor in float64).

    Parameters
    ----------
    percentile : float
        ``P`` in ``(0, 100]``; default 99.99 (modelopt's; ONNX Runtime uses 99.999).
    bins : int
        Histogram bins (default 2048).
    """

    name = "percentile"
    label = "Percentile"
    summary = (
        "Clip at the value below which a chosen share (e.g. 99.99%) of the magnitudes lies, ignoring rare outliers."
    )
    curve_dtype = np.float32
    formula = r"T = \mathrm{edge}_{k^*},\quad k^* = \min\{k : \mathrm{cdf}_k \ge P/100\}"

    percentile: float = 99.99
    bins: int = 2048
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "percentile": Interval(0.0, 100.0, closed="right"),
        "bins": Interval(1, MAX_BINS, integer=True),
    }

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        cut = (100.0 - self.percentile) / 200.0
        shares = (self.percentile / 100.0,) if scheme.symmetric else (cut, 1.0 - cut)
        if scheme.symmetric:  # the histograms' first edge and bin width
            first, width = np.zeros(rows.n_rows), rows.absmax / self.bins
        else:
            first, width = rows.min, (rows.max - rows.min) / self.bins
        if rows.values.shape[1] < self.bins and rows.n_rows * self.bins > MAX_CURVE_ELEMENTS:
            # short rows, many of them: no dense histogram (nor its cdf curve), the same bins
            values = np.abs(rows.values) if scheme.symmetric else rows.values
            ks, share = sorted_crossing_bins(values, first, width, self.bins, shares), None
        else:
            hist = data.abs_histogram(self.bins) if scheme.symmetric else data.signed_histogram(self.bins)
            ks, edges, cdf = share_curve(hist, shares)
            parameter = "threshold T" if scheme.symmetric else "upper clip hi"
            share = Curve("cumulative share", parameter, edges, cdf, np.maximum(ks[-1], 1) - 1, "none")
        if scheme.symmetric:
            threshold = np.minimum(np.maximum(ks[0], 1) * width, rows.absmax)
            lo, hi = symmetric_range(threshold, scheme)
            details = {"bin": ks[0]}
        else:
            lo = np.clip(first + ks[0] * width, rows.min, rows.max)
            hi = np.clip(first + ks[1] * width, rows.min, rows.max)
            details = {"bin_lo": ks[0], "bin_hi": ks[1]}
        if share is not None:
            details["share_curve"] = share
        return Calibration(self.name, lo, hi, details=details)
