r"""LOG2: power-of-two levels (Miyashita, Lee, Murmann 2016, arXiv 1603.01025; seed 003 §1.2).

A non-uniform grid: the sign is kept apart and the magnitude is a power of two,

.. math::

    \hat x = \operatorname{sign}(x)\, 2^{\tilde k}, \quad
    \tilde k = \operatorname{clip}(\operatorname{round}(\log_2 |x|),\ e - n + 1,\ e),
    \quad n = 2^{b-1} - 1

with ``e`` the full-scale exponent and ``0`` kept as a level. The relative error
``|x_hat - x| / |x|`` is bounded by ``sqrt(2) - 1`` (~41 %) inside the range,
whatever the magnitude: it is the relative error, not the absolute one, that a
log grid controls (seed 003: "LOG 量化则可以保证数值空间内相对误差的最优化").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..calibrators import Calibration
from ..constraints import Constraint, Options
from ..granularity import Rows
from ..params import QParams
from ..scheme import QuantScheme
from .base import NumberFormat, count_rows, register
from .grid_encoding import GridEncoding

ROUNDINGS: tuple[str, ...] = ("log", "linear")
FULL_SCALES: tuple[str, ...] = ("floor", "round")
#: Elements per block of the metrics (float64 temporaries of 2 MB stay in cache).
BLOCK_ELEMENTS = 1 << 18
#: Smallest exponent kept: float64's smallest subnormal 2^-1074 (the grid is float64 and strictly increasing).
MIN_EXPONENT = -1074


def _split_factor(rounding: str) -> float:
    """Boundary between ``2^k`` and ``2^(k+1)`` as a multiple of ``2^k``: ``sqrt(2)`` (log) or ``1.5`` (linear)."""
    return float(np.sqrt(2.0)) if rounding == "log" else 1.5


@dataclass(frozen=True)
class Log2Format(NumberFormat):
    r"""Power-of-two levels ``{0, +-2^k}``, ``k = e - n + 1 .. e``, sign kept apart: a format, any calibrator's range.

    .. math::

        e = \lfloor \log_2 T \rfloor,\qquad n = 2^{b-1} - 1\ \text{(signed)},\ 2^b - 1\ \text{(unsigned)}

    with ``T`` the calibrated range (``max|x|`` with minmax). ``full_scale="round"`` uses Miyashita's
    ``e = round(log2 T)`` instead (the top level may then exceed ``T``; the reported range is clipped to it).
    Rounding ``log``: ``k = round(log2|x|)``, i.e. the boundary between ``2^k`` and
    ``2^(k+1)`` is the geometric mean ``2^(k + 1/2)``; ``linear``: the midpoint
    ``1.5 * 2^k``. Below the smallest level ``2^k_min`` the value flushes to 0 under
    ``2^(k_min - 1/2)`` (log) or ``2^(k_min - 1)`` (linear). Levels below ``2^-1074``
    (float64's smallest subnormal; only wide codes reach them) are dropped, for every
    row alike; ``details['levels']`` gives the count.
    Unsigned schemes have no negative levels (negative values map to 0). The grid
    has no zero point: an asymmetric scheme uses the same grid, with the reported
    range clipped to ``[min, max]``.

    The encoding (:class:`qcore.formats.grid_encoding.GridEncoding`) carries ``grid`` (sorted levels per row) and
    ``splits`` (boundaries); :func:`qcore.grid.grid_round_trip` maps values and :func:`qcore.metrics.measure`
    gives the usual metrics. Its own metrics, in ``encoding.calibration.details`` (over non-zero present
    values; ``row_*`` per row):

    - ``mean_relative_error``: mean of ``|x_hat - x| / |x|``;
    - ``mean_abs_log2_error``: mean of ``|log2|x_hat| - log2|x||`` over values not
      flushed to 0 and of the same sign (at most 1/2 inside the range with log rounding);
    - ``zero_flush_fraction``: share of non-zero values mapped to 0 (or to the wrong sign's zero side).

    Parameters
    ----------
    rounding : {'log', 'linear'}
        Where the boundary between two levels lies.
    full_scale : {'floor', 'round'}
        How the top exponent is taken from ``max|x|``.
    """

    formula: ClassVar[str] = (
        r"\hat x = \operatorname{sign}(x)\,2^{\operatorname{clip}(\operatorname{round}(\log_2|x|),\,e-n+1,\,e)}"
    )

    rounding: str = "log"
    full_scale: str = "floor"
    option_names: ClassVar[tuple[str, ...]] = ("rounding", "full_scale")
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "rounding": Options(*ROUNDINGS),
        "full_scale": Options(*FULL_SCALES),
    }

    @staticmethod
    def _kept(top: np.ndarray, scheme: QuantScheme) -> int:
        """Exponents per row: ``q_max`` (``2^(b-1) - 1`` signed), fewer if they would go below ``2^-1074``."""
        return int(min(scheme.qmax, int(top.min()) - MIN_EXPONENT + 1))

    def levels(self, absmax: np.ndarray, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(grid, splits, top exponent)`` per row for rows with maximum ``absmax`` (empty rows: exponent 0)."""
        with np.errstate(divide="ignore"):
            log_max = np.log2(np.where(absmax > 0, absmax, 1.0))
        top = np.floor(log_max) if self.full_scale == "floor" else np.round(log_max)
        top = np.clip(top, MIN_EXPONENT, None).astype(np.int64)
        n_kept = self._kept(top, scheme)
        exps = top[:, None] - np.arange(n_kept - 1, -1, -1)[None, :]
        pos = np.ldexp(1.0, exps)
        factor = _split_factor(self.rounding)
        first = np.ldexp(factor / 2.0 if self.rounding == "log" else 0.5, exps[:, :1])
        mids = np.ldexp(factor, exps[:, :-1])
        pos_splits = np.concatenate([first, mids], axis=1)
        zero = np.zeros((absmax.shape[0], 1))
        if scheme.signed:
            grid = np.concatenate([-pos[:, ::-1], zero, pos], axis=1)
            # nudged up so that a tie on the negative side also goes away from zero
            splits = np.concatenate([np.nextafter(-pos_splits[:, ::-1], np.inf), pos_splits], axis=1)
        else:
            grid = np.concatenate([zero, pos], axis=1)
            splits = pos_splits
        return grid, splits, top

    def scheme_for(self, scheme: QuantScheme) -> QuantScheme:
        """Any width 2..16, signed or unsigned, symmetric or not (the grid has no zero point), any granularity."""
        return scheme

    def storage_bits_for(self, scheme: QuantScheme, shape: tuple[int, ...]) -> int:
        """``n b`` plus one 8-bit top exponent per row."""
        return int(np.prod(shape, dtype=np.int64)) * scheme.bits + count_rows(scheme, shape) * 8

    def bits_per_weight(self, scheme: QuantScheme, shape: tuple[int, ...] | None = None) -> float:
        if shape is not None:
            return self.storage_bits_for(scheme, shape) / int(np.prod(shape, dtype=np.int64))
        return scheme.bits + (8 / scheme.group_size if scheme.granularity == "group" else 0.0)

    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> GridEncoding:
        """The grid of each row's calibrated range ``T`` (``e = floor(log2 T)``), the range clipped to its levels."""
        scheme = params.scheme
        threshold = calibration.threshold
        grid, splits, top = self.levels(threshold, scheme)
        n_levels = grid.shape[1]
        hi_level = grid[:, -1]
        lo_level = grid[:, 0]
        present = threshold > 0
        if scheme.symmetric:
            t = np.where(present, np.minimum(hi_level, threshold), 0.0)
            lo, hi = (-t if scheme.signed else np.zeros_like(t)), t
        else:
            lo = np.clip(lo_level, calibration.lo, calibration.hi)
            hi = np.clip(hi_level, calibration.lo, calibration.hi)
        details = {"top_exponent": top, "levels": n_levels, "rounding": self.rounding}
        details.update(self._own_metrics(rows, top, scheme))
        return GridEncoding(rows, Calibration(calibration.method, lo, hi, grid=grid, splits=splits, details=details))

    def round_trip(self, values: np.ndarray, top: np.ndarray, scheme: QuantScheme) -> np.ndarray:
        """Closed-form round trip (float64): ``|x| = r 2^k`` (``frexp``), ``r`` in ``[1, 2)``, up if ``r >= split``.

        Same boundaries as ``splits`` (used for the metrics; the app maps values through the grid).
        """
        n_kept = self._kept(top, scheme)
        x = np.nan_to_num(values.astype(np.float64), nan=0.0)
        mant, exp = np.frexp(np.abs(x))
        k = exp - 1 + (2.0 * mant >= _split_factor(self.rounding))
        k_top = top[:, None]
        k_min = k_top - n_kept + 1
        flush = np.abs(x) < np.ldexp(np.sqrt(0.5) if self.rounding == "log" else 0.5, k_min)
        k = np.clip(k, k_min, k_top)
        mag = np.where(flush, 0.0, np.ldexp(1.0, k.astype(np.int64)))
        if not scheme.signed:
            mag = np.where(x > 0, mag, 0.0)
        return np.copysign(mag, x)

    def _own_metrics(self, rows: Rows, top: np.ndarray, scheme: QuantScheme) -> dict[str, object]:
        """Relative and log-domain errors of the round trip (see the class docstring).

        Over present non-zero ``x`` with ``|x| = a``: a value kept with its sign maps to
        ``+-2^k`` (as :meth:`round_trip`), relative error ``|2^k - a| / a`` and log error
        ``|k - log2 a|``; a flushed value (to 0 or the wrong side) has relative error 1.
        Computed in float64 over blocks of :data:`BLOCK_ELEMENTS` (sums per row), never
        on a float64 copy of the whole tensor.
        """
        values = rows.values
        n_rows, length = values.shape
        k_top = top[:, None]
        k_min = k_top - self._kept(top, scheme) + 1
        flush_below = np.ldexp(np.sqrt(0.5) if self.rounding == "log" else 0.5, k_min)
        split = np.float64(_split_factor(self.rounding))
        rel_sum, log_sum = np.zeros(n_rows), np.zeros(n_rows)
        n, kept_n = np.zeros(n_rows, dtype=np.int64), np.zeros(n_rows, dtype=np.int64)
        row_step = max(1, BLOCK_ELEMENTS // max(length, 1))
        col_step = min(max(length, 1), BLOCK_ELEMENTS)
        for r0 in range(0, n_rows, row_step):
            rs = slice(r0, r0 + row_step)
            for c0 in range(0, length, col_step):
                block = values[rs, c0 : c0 + col_step]
                a = np.abs(block).astype(np.float64)
                with np.errstate(invalid="ignore"):  # missing (NaN) entries count nowhere
                    nonzero = a > 0
                    mant, exp = np.frexp(a)
                    k = exp - 1 + (2.0 * mant >= split)
                    np.clip(k, k_min[rs], k_top[rs], out=k)
                    same = nonzero & (a >= flush_below[rs])
                    if not scheme.signed:
                        same &= block > 0
                    mag = np.ldexp(1.0, k)
                    np.subtract(mag, a, out=mag)
                    np.abs(mag, out=mag)
                    rel = np.divide(mag, a, out=mag, where=same)
                    logerr = np.log2(a, out=a, where=same)
                    np.subtract(k, logerr, out=logerr, where=same)
                    np.abs(logerr, out=logerr, where=same)
                n_block = nonzero.sum(axis=1)
                kept_block = same.sum(axis=1)
                rel_sum[rs] += np.sum(rel, axis=1, where=same) + (n_block - kept_block)
                log_sum[rs] += np.sum(logerr, axis=1, where=same)
                n[rs] += n_block
                kept_n[rs] += kept_block
        flushed = n - kept_n
        total = max(int(n.sum()), 1)
        return {
            "mean_relative_error": float(rel_sum.sum()) / total,
            "mean_abs_log2_error": float(log_sum.sum()) / max(int(kept_n.sum()), 1),
            "zero_flush_fraction": float(flushed.sum()) / total,
            "row_mean_relative_error": rel_sum / np.maximum(n, 1),
            "row_mean_abs_log2_error": log_sum / np.maximum(kept_n, 1),
            "row_zero_flush_fraction": flushed / np.maximum(n, 1),
        }


LOG2 = register(
    Log2Format(
        "log2",
        "LOG2 (power-of-two levels)",
        "Round each magnitude to a power of two below full scale, sign kept: equal relative precision at every scale.",
        None,
        calibrated=True,
        affine=True,
        row_bits=8.0,
        source="Miyashita, Lee, Murmann 2016 (arXiv 1603.01025)",
        family="log2",
    )
)
