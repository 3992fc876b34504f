"""Rows sorted once, with exact prefix sums: searches over a row in ``O(log L)`` instead of a pass over it.

Within a row the integer code ``q(x) = clamp(round(fl32(x op c)) + z)`` is monotone
non-decreasing in ``x`` (float32 division/multiplication by a positive constant,
rounding, adding ``z`` and clamping are all monotone). On the row sorted once, code
``k`` therefore owns one contiguous run ``[p_k, p_{k+1})``. The run boundaries are exact:
``p_k`` is the first sorted position holding a value ``>= v_k``, where ``v_k`` (the smallest
float32 whose code is ``>= k``) is found by evaluating the real
:func:`qcore.quantize.quantize_rows` on the few float32 values around the float64 threshold.
Sums over a run come from the double-double prefix sums ``S1 = sum x``, ``S2 = sum x^2``
(:mod:`qcore.exact_sums`). Used by the exact error reports of :mod:`qcore.sorted_metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .exact_sums import two_sum
from .granularity import Rows
from .params import QParams
from .quantize import multiplier, quantize_rows
from .scheme import QuantScheme

BLOCK = 16
"""Sorted elements per stored prefix-sum entry (memory ``32 / BLOCK`` bytes per element)."""

WINDOW = 4
"""float32 steps on each side of a float64 threshold where the real quantizer is evaluated."""

MAX_SEGMENTS = 1 << 22
"""Largest ``n_rows x levels`` handled by the sorted path."""

SEGMENT_COST = 128
"""Elements one element-wise pass measures in the time the sorted path spends per ``(row, level)`` (~1 us vs ~10 ns)."""


def searchsorted_rows(values: np.ndarray, count: np.ndarray, keys: np.ndarray, side: str) -> np.ndarray:
    """Batched ``np.searchsorted(values[r, :count[r]], keys[r], side)`` for every row ``r``.

    A binary search over all rows and keys at once (``ceil(log2(L + 1))`` vector steps);
    comparisons are exact (float32 values against float32 or float64 keys).
    """
    n_rows, length = values.shape
    flat = values.reshape(-1)
    base = (np.arange(n_rows, dtype=np.int64) * length)[:, None]
    lo = np.zeros(keys.shape, dtype=np.int64)
    hi = np.broadcast_to(count.astype(np.int64)[:, None], keys.shape).copy()
    for _ in range(int(length).bit_length()):
        active = lo < hi
        mid = (lo + hi) >> 1
        v = flat[base + np.minimum(mid, length - 1)]
        right = (v < keys) if side == "left" else (v <= keys)
        lo = np.where(active & right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
    return lo


@dataclass(frozen=True, eq=False)
class SortedRows:
    """Rows sorted once, with double-double prefix sums of ``x`` and ``x^2`` every :data:`BLOCK` elements.

    Attributes
    ----------
    rows : Rows
        The rows it was built from.
    values : ndarray of float32, shape (n_rows, L)
        Each row sorted ascending; missing values (NaN) last, from ``rows.count`` on.
    prefix : ndarray of float64, shape (4, n_rows, L // BLOCK + 1)
        ``(hi, lo)`` of ``sum x`` then of ``sum x^2`` over the first ``j * BLOCK`` sorted values.
    """

    rows: Rows
    values: np.ndarray
    prefix: np.ndarray

    @classmethod
    def from_rows(cls, rows: Rows) -> SortedRows:
        """Sort every row (``O(N log L)``, once per tensor and granularity) and build the prefix sums."""
        values = np.sort(rows.values, axis=1)
        values.flags.writeable = False
        n_rows, length = values.shape
        full = length // BLOCK
        blocks = values[:, : full * BLOCK].reshape(n_rows, full, BLOCK)
        sums = [np.zeros((n_rows, full)) for _ in range(4)]
        for j in range(BLOCK):
            col = np.nan_to_num(blocks[:, :, j].astype(np.float64), nan=0.0)
            sums[0], e = two_sum(sums[0], col)
            sums[1] += e
            sums[2], e = two_sum(sums[2], col * col)  # float32 squared: exact in float64
            sums[3] += e
        prefix = np.zeros((4, n_rows, full + 1))
        for h, lo in ((0, 1), (2, 3)):
            total = np.cumsum(sums[h], axis=1)  # sequential: total[i] = fl(total[i-1] + sums[h][i])
            previous = np.concatenate([np.zeros((n_rows, 1)), total[:, :-1]], axis=1)
            err = two_sum(previous, sums[h])[1]
            prefix[h, :, 1:] = total
            prefix[lo, :, 1:] = np.cumsum(sums[lo] + err, axis=1)
        prefix.flags.writeable = False
        return cls(rows, values, prefix)

    def prefix_at(self, pos: np.ndarray) -> tuple[np.ndarray, ...]:
        """Double-double ``(S1 hi, S1 lo, S2 hi, S2 lo)`` of the first ``pos[r, i]`` sorted values of row ``r``."""
        n_rows, length = self.values.shape
        block = pos // BLOCK
        h1, l1, h2, l2 = (np.take_along_axis(p, block, axis=1) for p in self.prefix)
        start = block * BLOCK + (np.arange(n_rows, dtype=np.int64) * length)[:, None]
        end = pos + (np.arange(n_rows, dtype=np.int64) * length)[:, None]
        flat = self.values.reshape(-1)
        for j in range(BLOCK):
            at = start + j
            v = np.where(at < end, flat[np.minimum(at, flat.size - 1)], np.float32(0.0)).astype(np.float64)
            h1, e = two_sum(h1, v)
            l1 = l1 + e
            h2, e = two_sum(h2, v * v)
            l2 = l2 + e
        return h1, l1, h2, l2


def pays_off(rows: Rows, scheme: QuantScheme) -> bool:
    """Whether the sorted path beats one element-wise pass: ``n_rows x levels x SEGMENT_COST <= N``."""
    levels = scheme.qmax - scheme.qmin + 1
    return rows.n_rows * levels * SEGMENT_COST <= rows.values.size and rows.n_rows * levels <= MAX_SEGMENTS


def _threshold_factor(params: QParams) -> tuple[np.ndarray, bool]:
    """float64 ``c`` of the quantizer's float32 step ``fl32(x / c)`` (divide) or ``fl32(x * c)``; and which."""
    s32 = params.scale.astype(np.float32)
    if params.arithmetic == "multiplier":
        return multiplier(params)[:, 0].astype(np.float64), False
    if params.arithmetic == "multiply":
        return (np.float32(1.0) / s32).astype(np.float64), False
    return s32.astype(np.float64), True


def _run_thresholds(params: QParams) -> np.ndarray | None:
    """Per row of ``params``, the smallest float32 whose code is ``>= q_min + i``, ``i = 1 .. levels - 1``.

    Found by evaluating the real :func:`qcore.quantize.quantize_rows` on the :data:`WINDOW`
    float32 values around the float64 threshold ``(q_min + i - z - 1/2) c``; None when a
    threshold is not bracketed by its window (or ``c`` is not finite and positive).
    """
    codes = np.arange(params.qmin + 1, params.qmax + 1, dtype=np.int64)
    factor, divide = _threshold_factor(params)
    if not (np.all(np.isfinite(factor)) and np.all(factor > 0)):
        return None
    half = (codes[None, :] - params.zero_point[:, None]).astype(np.float64) - 0.5
    with np.errstate(over="ignore"):
        t = half * factor[:, None] if divide else half / factor[:, None]
        t32 = t.astype(np.float32)
    steps = [t32]
    down = up = t32
    for _ in range(WINDOW):
        down = np.nextafter(down, np.float32(-np.inf))
        up = np.nextafter(up, np.float32(np.inf))
        steps = [down, *steps, up]
    candidates = np.stack(steps, axis=-1)  # (n_rows, levels - 1, 2 WINDOW + 1), ascending
    got = quantize_rows(candidates.reshape(params.n_rows, -1), params, missing=False).reshape(candidates.shape)
    reached = got >= codes[None, :, None]
    if not (np.all(reached[..., -1]) and not np.any(reached[..., 0])):
        return None
    return np.take_along_axis(candidates, np.argmax(reached, axis=-1)[..., None], axis=-1)[..., 0]


def run_starts(sorted_rows: SortedRows, params: QParams) -> np.ndarray | None:
    """First sorted position of every code run, shape (n_rows, levels + 1); None if not bracketed.

    ``p[:, i]`` is the number of present values with code ``< q_min + i``; ``p[:, 0] = 0`` and
    ``p[:, levels] = count``.
    """
    rows = sorted_rows.rows
    first = _run_thresholds(params)
    if first is None:
        return None
    inner = searchsorted_rows(sorted_rows.values, rows.count, first, "left")
    return np.concatenate([np.zeros((rows.n_rows, 1), dtype=np.int64), inner, rows.count[:, None]], axis=1)
