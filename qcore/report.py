"""The error report of a quantized tensor, assembled from per-row sums.

Both ways of measuring (element by element, :mod:`qcore.elementwise_metrics`; from rows sorted once,
:mod:`qcore.sorted_metrics`) reduce the tensor to the same per-row sums and call :func:`assemble`, so a report
reads the same whichever path made it. With ``N`` present elements, ``e = x_hat - x`` and the clip range
``[c_min, c_max]``:

.. math::

    \\mathrm{MSE} = \\frac{1}{N}\\sum e_i^2
    = \\underbrace{\\frac{1}{N}\\sum_{x_i \\notin [c_{min}, c_{max}]} e_i^2}_{\\text{clip}}
    + \\underbrace{\\frac{1}{N}\\sum_{x_i \\in [c_{min}, c_{max}]} e_i^2}_{\\text{rounding}}

- rounding-noise reference: ``(1/N) sum_inside Delta_i^2 / 12`` with ``Delta_i`` the spacing of the grid cell
  holding ``x_i`` (the step ``s`` on an integer grid; the local level spacing on a non-uniform one)
- ``SQNR = 10 log10(sum x^2 / sum e^2)`` dB (None when the error is exactly 0)
- cosine similarity ``<x, x_hat> / (|x| |x_hat|)``
- levels used: distinct level indices that occur (of ``levels_total``)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .granularity import Rows


@dataclass(frozen=True, eq=False)
class RowErrors:
    """Per-row (per-channel / per-group) breakdown, arrays of shape (n_rows,)."""

    mse: np.ndarray
    clip_mse: np.ndarray
    round_mse: np.ndarray
    round_mse_reference: np.ndarray
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


@dataclass(frozen=True, eq=False)
class RowSums:
    """What a measuring pass accumulates per row (float64 / int64 arrays of shape (n_rows,)) and over the tensor.

    Attributes
    ----------
    clip, round : ndarray
        ``sum e^2`` over the present values outside / inside the clip range.
    max_error : ndarray
        ``max |e|``.
    outside : ndarray of int
        Present values outside the clip range.
    reference : ndarray
        ``sum_inside Delta^2 / 12``.
    levels_used : ndarray of int
        Distinct level indices per row.
    levels_used_all : int
        Distinct level indices over the tensor.
    dot, xh_sq : float
        ``<x, x_hat>`` and ``|x_hat|^2``.
    """

    clip: np.ndarray
    round: np.ndarray
    max_error: np.ndarray
    outside: np.ndarray
    reference: np.ndarray
    levels_used: np.ndarray
    levels_used_all: int
    dot: float
    xh_sq: float


def _sqnr(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(signal / noise)
    return np.where(noise > 0, out, np.inf)


def assemble(rows: Rows, sums: RowSums, levels_total: int) -> ErrorReport:
    """The report of ``rows`` from the per-row ``sums`` of a measuring pass (divided by the counts of ``rows``)."""
    sq_row = sums.clip + sums.round
    n_row = rows.count.astype(np.float64)
    n = float(n_row.sum())
    signal_row = rows.square_sum
    signal = float(signal_row.sum())
    total_sq = float(sq_row.sum())
    norm = float(np.sqrt(signal) * np.sqrt(sums.xh_sq))
    safe_n = np.maximum(n_row, 1.0)
    return ErrorReport(
        mse=total_sq / n,
        clip_mse=float(sums.clip.sum()) / n,
        round_mse=float(sums.round.sum()) / n,
        round_mse_reference=float(sums.reference.sum()) / n,
        sqnr_db=None if total_sq == 0 or signal == 0 else float(10.0 * np.log10(signal / total_sq)),
        cosine=sums.dot / norm if norm > 0 else (1.0 if total_sq == 0 else 0.0),
        max_abs_error=float(sums.max_error.max()),
        clipped_fraction=float(sums.outside.sum()) / n,
        levels_used=sums.levels_used_all,
        levels_total=levels_total,
        count=int(n),
        rows=RowErrors(
            mse=sq_row / safe_n,
            clip_mse=sums.clip / safe_n,
            round_mse=sums.round / safe_n,
            round_mse_reference=sums.reference / safe_n,
            sqnr_db=_sqnr(signal_row, sq_row),
            clipped_fraction=sums.outside / safe_n,
            levels_used=sums.levels_used,
            max_abs_error=sums.max_error,
        ),
    )


def uniform_reference(rows: Rows, outside: np.ndarray, step: np.ndarray) -> np.ndarray:
    """``sum_inside s^2 / 12`` per row of an integer grid of step ``s``: ``(count - outside) s^2 / 12``."""
    return (rows.count.astype(np.float64) - outside) * np.asarray(step, dtype=np.float64) ** 2 / 12.0
