"""EMA: moving-average min/max over the batches of a tensor (ONNX Runtime, PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.signal import lfilter

from ..constraints import Constraint, Interval
from ..granularity import Rows, normalize_axis
from ..scheme import QuantOptionError, QuantScheme
from .base import Calibration, CalibrationData, Calibrator, Curve, register, symmetric_range

#: Rows x batches per ``lfilter`` block of :func:`moving_average` (2 MB of float64).
BLOCK_ELEMENTS = 1 << 18


def batch_extrema(rows: Rows, batch_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row and batch, ``(min, max)`` of shape ``(n_rows, n_batches)``; ``(+inf, -inf)`` for an all-missing batch.

    float32: the data's own values, exact. With one element per batch and nothing missing
    both are the same read-only view of ``rows.values`` (no copy).

    The rows of a per-tensor or per-channel :class:`Rows` are the tensor (without the
    channel axis) in C order, so each row reshapes back to the remaining axes and is
    reduced over all of them except the batch axis.

    Raises
    ------
    QuantOptionError
        Group granularity, or ``batch_axis`` equal to the channel axis or out of range.
    """
    if rows.granularity == "group":
        raise QuantOptionError(
            "ema needs tensor or channel granularity: a group lies inside one batch, so it has no sequence to average"
        )
    ndim = len(rows.shape)
    if ndim == 0:
        raise QuantOptionError("ema needs an array with a batch axis, got a 0-D array")
    batch = normalize_axis(batch_axis, ndim)
    if rows.granularity == "channel":
        if batch == rows.axis:
            raise QuantOptionError(f"the batch axis {batch} cannot be the channel axis")
        rest = [d for i, d in enumerate(rows.shape) if i != rows.axis]
        batch_pos = batch - (batch > rows.axis)
    else:
        rest, batch_pos = list(rows.shape), batch
    before = int(np.prod(rest[:batch_pos], dtype=np.int64))
    after = int(np.prod(rest[batch_pos + 1 :], dtype=np.int64))
    if before * after == 0:
        raise QuantOptionError("ema needs at least one element per batch")
    # a view (rows are C-contiguous): (row, axes before the batch axis, batch, axes after it)
    values = rows.values.reshape(rows.n_rows, before, rest[batch_pos], after)
    if not rows.has_missing:
        if before * after == 1:  # one element per batch: min = max = the element
            flat = values[:, 0, :, 0]
            return flat, flat
        return values.min(axis=(1, 3)), values.max(axis=(1, 3))
    low = np.fmin.reduce(values, axis=(1, 3), initial=np.inf)
    high = np.fmax.reduce(values, axis=(1, 3), initial=-np.inf)
    return low, high


def moving_average(
    batch_values: np.ndarray, constant: float, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Running ``v_0 = x_0``, ``v_k = v_{k-1} + c (x_k - v_{k-1})`` along axis 1, clipped to ``[low, high]`` per row.

    Computed in float64; returns ``(curve, last)``: ``curve`` (float32, the shape of ``batch_values``) is the
    float32 rounding of every clipped running value, ``last`` (float64, one per row) the clipped final value
    itself. :func:`scipy.signal.lfilter` (``b = [c]``, ``a = [1, c - 1]``, initial state ``(1 - c) x_0``) over
    blocks of :data:`BLOCK_ELEMENTS` (rows are independent; each block widened to float64, filtered, clipped and
    rounded into ``curve``) when every batch is present; batches that are non-finite (all-missing) for a row are
    skipped by a loop over batches (running values NaN until a row's first batch).
    """
    x = np.asarray(batch_values)
    low, high = low[:, None], high[:, None]
    curve = np.empty(x.shape, dtype=np.float32)
    last = np.empty(x.shape[0], dtype=np.float64)
    if np.all(np.isfinite(x)):
        step = max(1, BLOCK_ELEMENTS // max(x.shape[1], 1))
        for r0 in range(0, x.shape[0], step):
            rs = slice(r0, r0 + step)
            block = x[rs].astype(np.float64)
            zi = (1.0 - constant) * block[:, :1]
            running = lfilter([constant], [1.0, constant - 1.0], block, axis=1, zi=zi)[0]
            np.clip(running, low[rs], high[rs], out=running)
            curve[rs] = running
            last[rs] = running[:, -1]
        return curve, last
    current = np.full(x.shape[0], np.nan)
    for k in range(x.shape[1]):
        batch = x[:, k].astype(np.float64)
        present = np.isfinite(batch)
        update = np.where(np.isnan(current), batch, current + constant * (batch - current))
        current = np.where(present, update, current)
        last = np.clip(current, low[:, 0], high[:, 0])
        curve[:, k] = last
    return curve, last


@register
@dataclass(frozen=True)
class EMA(Calibrator):
    r"""Exponential moving average of each batch's min and max.

    The tensor is split along ``batch_axis`` into batches ``x_1 .. x_B``; per row
    (tensor or channel) the first batch sets the value, then

    .. math:: m_k = m_{k-1} + c\,(\min x_k - m_{k-1}),\qquad M_k = M_{k-1} + c\,(\max x_k - M_{k-1})

    with ``c = 0.01`` (ONNX Runtime ``moving_average`` and PyTorch
    ``MovingAverageMinMaxObserver``). Asymmetric: ``[m_B, M_B]``; symmetric:
    ``T = max(|m_B|, |M_B|)``. Guard: a row whose averages are both 0 while its data
    are not (the non-zero batches decayed away) falls back to ``T = max|x|``.
    Group granularity is an error: each group lies inside a single batch.

    Not a search, so ``curve`` is None; ``details`` holds ``batch_min``,
    ``batch_max``, ``running_min``, ``running_max`` (n_rows, n_batches) and
    ``running_curve`` (the running threshold, or running max when asymmetric, per batch).
    ``batch_min``/``batch_max`` are float32 (the data's values). The averages run in float64 and the range
    comes from their float64 final values; the running values kept in ``details`` (and the curve, and
    :attr:`curve_dtype`) are their float32 rounding, so per channel on a 2-D tensor (one batch per element)
    they hold one tensor-sized float32 array, two when symmetric, instead of float64 ones.
    With one element per batch and row (e.g. per-channel on a 2-D tensor) min and max are
    the same sequence: ``batch_min is batch_max`` and ``running_min is running_max``
    (read-only arrays).

    Parameters
    ----------
    batch_axis : int
        Axis that indexes the batches (default 0).
    averaging_constant : float
        ``c`` in ``(0, 1]`` (default 0.01; 1 means "last batch only").
    """

    name = "ema"
    label = "EMA min/max"
    summary = "Follow a moving average of each batch's minimum and maximum, so rare extreme batches count less."
    curve_dtype = np.float32
    formula = r"m_k = m_{k-1} + c\,(\min x_k - m_{k-1}),\quad M_k = M_{k-1} + c\,(\max x_k - M_{k-1}),\quad c = 0.01"

    batch_axis: int = 0
    averaging_constant: float = 0.01
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "batch_axis": Interval(-32, 31, integer=True),
        "averaging_constant": Interval(0.0, 1.0, closed="right"),
    }

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        batch_min, batch_max = batch_extrema(rows, self.batch_axis)
        running_min, lo = moving_average(batch_min, self.averaging_constant, rows.min, rows.max)
        if batch_max is batch_min:  # one element per batch: the same sequence, averaged once
            running_min.flags.writeable = False
            running_max, hi = running_min, lo
        else:
            running_max, hi = moving_average(batch_max, self.averaging_constant, rows.min, rows.max)
        lo, hi = np.nan_to_num(lo), np.nan_to_num(hi)
        x = np.broadcast_to(np.arange(batch_min.shape[1], dtype=np.float64), batch_min.shape)
        chosen = np.full(rows.n_rows, batch_min.shape[1] - 1)
        details = {
            "batch_min": batch_min,
            "batch_max": batch_max,
            "running_min": running_min,
            "running_max": running_max,
        }
        if scheme.symmetric:
            running_t = np.abs(running_min)  # max(|m|, |M|) = |m| when m and M are one sequence
            if running_max is not running_min:  # max(|m|, |M|) = -min(-max(|m|, M), M), in place in one array
                np.maximum(running_t, running_max, out=running_t)
                np.negative(running_t, out=running_t)
                np.minimum(running_t, running_max, out=running_t)
                np.negative(running_t, out=running_t)
            threshold = np.maximum(np.abs(lo), np.abs(hi))
            threshold = np.where(threshold > 0, threshold, rows.absmax)
            lo, hi = symmetric_range(threshold, scheme)
            details["running_curve"] = Curve("running threshold (EMA)", "batch", x, running_t, chosen)
        else:
            details["running_curve"] = Curve("running max (EMA)", "batch", x, running_max, chosen)
        return Calibration(self.name, lo, hi, details=details)
