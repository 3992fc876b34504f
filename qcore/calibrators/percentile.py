"""Percentile: clip at the histogram bin where the cumulative share reaches ``P``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..histogram import Histogram
from ..scheme import QuantOptionError, QuantScheme
from .base import Calibration, CalibrationData, Calibrator, Curve, check_fraction, register, symmetric_range


def cumulative_share(hist: Histogram) -> np.ndarray:
    """``cdf[r, k]``: share of row ``r`` in bins ``0..k``, computed as ``cumsum(counts / total)``.

    The order of operations is ONNX Runtime's and modelopt's, so a ``searchsorted``
    on it lands in the same bin as theirs. Empty rows give an all-zero cdf.
    """
    total = hist.total().astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, hist.counts / np.where(total > 0, total, 1.0), 0.0)
    return np.cumsum(share, axis=1)


def crossing_bin(cdf: np.ndarray, share: float) -> np.ndarray:
    """Per row, the first bin where ``cdf >= share`` (``searchsorted(cdf, share)``, may be ``bins``)."""
    return np.count_nonzero(cdf < share, axis=1)


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
    is ``details['share_curve']``.

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
    formula = r"T = \mathrm{edge}_{k^*},\quad k^* = \min\{k : \mathrm{cdf}_k \ge P/100\}"

    percentile: float = 99.99
    bins: int = 2048

    def __post_init__(self) -> None:
        check_fraction(self.percentile, "percentile")
        if isinstance(self.bins, bool) or not isinstance(self.bins, (int, np.integer)) or self.bins <= 0:
            raise QuantOptionError(f"bins must be a positive integer, got {self.bins!r}")

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        if scheme.symmetric:
            hist = data.abs_histogram(self.bins)
            cdf = cumulative_share(hist)
            k = crossing_bin(cdf, self.percentile / 100.0)
            threshold = np.maximum(k, 1) * hist.width
            threshold = np.minimum(threshold, data.rows.absmax)
            lo, hi = symmetric_range(threshold, scheme)
            edges = hist.edges()[:, 1:]
            share = Curve("cumulative share", "threshold T", edges, cdf, np.maximum(k, 1) - 1, goal="none")
            return Calibration(self.name, lo, hi, details={"bin": k, "share_curve": share})
        hist = data.signed_histogram(self.bins)
        cdf = cumulative_share(hist)
        cut = (100.0 - self.percentile) / 200.0
        edges = hist.edges()
        k_lo, k_hi = crossing_bin(cdf, cut), crossing_bin(cdf, 1.0 - cut)
        rows_idx = np.arange(hist.n_rows)
        lo = np.clip(edges[rows_idx, k_lo], data.rows.min, data.rows.max)
        hi = np.clip(edges[rows_idx, k_hi], data.rows.min, data.rows.max)
        share = Curve("cumulative share", "upper clip hi", edges[:, 1:], cdf, np.maximum(k_hi, 1) - 1, goal="none")
        return Calibration(self.name, lo, hi, details={"bin_lo": k_lo, "bin_hi": k_hi, "share_curve": share})
