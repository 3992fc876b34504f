"""MSE: the clipping threshold that minimises the squared round-trip error."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from ..constraints import Constraint, Interval, Options
from ..granularity import Rows, to_rows
from ..histogram import MAX_SEARCH_BINS, START_BIN, Histogram
from ..kernels.mse import distinct_affine_search, distinct_symmetric_search, evaluated_curve, pruned_histogram_sse
from ..scheme import QuantScheme
from .base import Calibration, CalibrationData, Calibrator, Curve, register, symmetric_range

SOURCES = ("auto", "histogram", "values", "distinct")
VALUES_MAX_ELEMENTS = 2**20
"""``source='auto'`` searches the raw values of tensors up to this many elements ..."""
VALUES_MAX_LOOKUPS = 2**23
"""... when ``n_rows x candidates x min(levels + 1, row length)`` stays within this budget."""
_CHUNK_ELEMENTS = 1 << 20
_MATMUL_ELEMENTS = 1 << 21
"""Histogram entries converted to float64 per product of :func:`histogram_sse` (16 MB; BLAS stays efficient)."""
BOUND_SLACK = 1e-9
"""Relative margin on the best error so far: a candidate whose lower bound is within float round-off of it is still
evaluated (near-ties are never pruned)."""
ROUNDOFF = 1e-10
"""Absolute margin of the pruned histogram search per counted value, in units of the row's range: far above the
round-off of the moments formula (about ``levels x 1e-16``), far below an 8-bit grid's rounding error
(``s^2 / 12 ~ 1e-6``). A wider margin only evaluates more candidates; the minimum is the same."""
_PRUNED_BLOCK_ELEMENTS = 1 << 18
"""Rows x candidates per block of the compiled histogram shrink search (per row: the block size changes no result)."""
_BLOCK_ELEMENTS = 1 << 16
"""Elements per row block of the ``'distinct'`` search (its temporaries stay a few MB)."""


def first_candidate(bins: int) -> int:
    """Index of the first candidate centre: ``128`` (modelopt's ``start_bin``), or ``bins - 1`` when ``bins = 128``
    (the last centre is then the only candidate, so ``--bins 128`` is a valid search of one threshold)."""
    return min(START_BIN, bins - 1)


@lru_cache(maxsize=8)
def centre_error_matrix(bins: int, q: int) -> np.ndarray:
    """``E[k, j]``: squared error, in units of ``w^2``, of centre ``j`` under candidate ``i = i_0 + k``.

    ``i_0 = first_candidate(bins)``.

    Centres ``c_j = (j + 1/2) w``, threshold ``T = c_i``, step ``s = T / q``,
    narrow-range fake quantization of a non-negative value (modelopt's ``fake_tensor_quant``):

    .. math:: E_{kj} = \\left(\\min(\\mathrm{rint}(c_j / s), q)\\, s - c_j\\right)^2 / w^2

    Independent of the row (everything scales with ``w``), so the search over all
    rows is one matrix product. ``q`` is odd, so ``c_j / s = q (2j+1) / (2i+1)`` is
    never a rounding tie. Read-only, cached.
    """
    centres = np.arange(bins, dtype=np.float64) + 0.5
    step = centres[first_candidate(bins) :, None] / q
    err = centres[None, :] / step  # one array, updated in place (no temporaries as large as the matrix)
    np.rint(err, out=err)
    np.minimum(err, q, out=err)
    err *= step
    err -= centres[None, :]
    np.square(err, out=err)
    err.flags.writeable = False
    return err


def lowest_codes(lo0: np.ndarray, alpha: np.ndarray, step: np.ndarray, scheme: QuantScheme) -> np.ndarray:
    """``m_lo = q_min - clamp(rint(q_min - alpha lo_0 / s), q_min, q_max)`` per row and shrink factor (int32).

    ``lo0`` (R,): normalised ``min(min, 0)``; ``step`` (R, K): the candidates' steps. One float64 temporary.
    """
    zp = np.multiply.outer(lo0, alpha)
    zp /= step
    np.subtract(scheme.qmin, zp, out=zp)
    np.rint(zp, out=zp)
    np.clip(zp, scheme.qmin, scheme.qmax, out=zp)
    return np.subtract(scheme.qmin, zp, out=zp).astype(np.int32)  # in [q_min - q_max, 0]


def pad_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Row blocks of different widths stacked, NaN-padded to the widest."""
    width = max(p.shape[1] for p in parts)
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=np.nan) for p in parts])


def curve_dtype(scale: np.ndarray) -> type[np.floating]:
    """float32 (:attr:`MSE.curve_dtype`), or float64 where a curve's MSE could exceed float32's range.

    No candidate's error on a value exceeds ``2 max|x|`` (nor the row's span), so every MSE is below ``4 s^2`` with
    ``s`` the largest of ``scale`` (the rows' ``max|x|`` or span): float64 from ``s`` = 9.2e18 on (NaN: float64).
    """
    peak = float(np.max(scale, initial=0.0))
    return np.float32 if 4.0 * peak * peak < float(np.finfo(np.float32).max) else np.float64


def first_minimum(y: np.ndarray) -> np.ndarray:
    """Per row, the first index of the smallest value, NaN counted as ``+inf`` (a few rows at a time)."""
    out = np.empty(y.shape[0], dtype=np.intp)
    chunk = max(1, _CHUNK_ELEMENTS // max(y.shape[1], 1))
    for first in range(0, y.shape[0], chunk):
        block = y[first : first + chunk]
        out[first : first + chunk] = np.argmin(np.where(np.isnan(block), np.inf, block), axis=1)
    return out


def histogram_sse(counts: np.ndarray, width: np.ndarray, error: np.ndarray) -> np.ndarray:
    """``(counts @ E^T) w^2`` per row (:func:`centre_error_matrix` ``E``) of one block of rows (the counts
    converted to float64 for the product; callers pass :func:`matmul_rows` rows at a time)."""
    out = np.matmul(counts.astype(np.float64), error.T)
    out *= width[:, None] ** 2
    return out


def matmul_rows(bins: int) -> int:
    """Rows per :func:`histogram_sse` block: :data:`_MATMUL_ELEMENTS` histogram entries (no float64 copy of the whole
    histogram, nor an SSE array over all rows)."""
    return max(1, _MATMUL_ELEMENTS // max(bins, 1))


def _segment_sse(cums: tuple[np.ndarray, ...], inner: np.ndarray, end: np.ndarray, step: np.ndarray, m_lo: np.ndarray):
    r"""Sum of squared errors from the prefix moments at the rounding boundaries.

    ``cums`` = prefix sums ``(C0, C1, C2)`` of (count, v, v^2) of each row's sorted values,
    shape ``(R, L + 1)``; ``inner[r, k, j]`` = number of values below boundary ``j``
    (between codes ``m_lo + j`` and ``m_lo + j + 1``); ``end[r]`` = values in the row.
    The values between two boundaries reconstruct to ``m s``; summing
    ``S2 - 2 m s S1 + m^2 s^2 n`` over the segments telescopes to

    .. math:: C_2 - 2s\Big(m_{hi} C_1 - \sum_j C_1[p_j]\Big)
        + s^2\Big(m_{hi}^2 C_0 - \sum_j (2(m_{lo} + j) + 1)\, C_0[p_j]\Big)

    with ``C`` at ``end`` unless indexed, so only two gathers per boundary are needed.
    """
    c0, c1, c2 = cums
    n_rows, width = c0.shape
    flat = inner + (np.arange(n_rows) * width)[:, None, None]
    m_hi = (m_lo + inner.shape[2]).astype(np.float64)
    rows = np.arange(n_rows)
    tot0, tot1, tot2 = (c[rows, end][:, None] for c in (c0, c1, c2))
    ramp = np.stack([np.ones(inner.shape[2]), np.arange(inner.shape[2], dtype=np.float64)], axis=1)
    sum1 = c1.ravel()[flat] @ ramp[:, 0]
    moments0 = c0.ravel()[flat] @ ramp  # sum_j C0[p_j] and sum_j j C0[p_j]
    sum0 = (2.0 * m_lo + 1.0) * moments0[..., 0] + 2.0 * moments0[..., 1]
    sse = tot2 - 2.0 * step * (m_hi * tot1 - sum1) + step * step * (m_hi * m_hi * tot0 - sum0)
    return np.maximum(sse, 0.0)


def _prefix(values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, ...]:
    w = np.ones_like(values) if weights is None else weights
    zero = np.zeros((values.shape[0], 1))
    return tuple(np.concatenate([zero, np.cumsum(w * values**p, axis=1)], axis=1) for p in (0, 1, 2))


def _boundaries(step: np.ndarray, m_lo: np.ndarray, n_levels: int) -> np.ndarray:
    """Rounding boundaries ``(m_lo + j + 1/2) s``, j = 0 .. n_levels - 2, shape ``(R, K, n_levels - 1)``."""
    return (m_lo[..., None] + np.arange(n_levels - 1) + 0.5) * step[..., None]


def sse_sorted_values(
    sorted_values: np.ndarray, count: np.ndarray, step: np.ndarray, m_lo: np.ndarray, n_levels: int
) -> np.ndarray:
    """Exact SSE of every candidate grid on raw values.

    Parameters
    ----------
    sorted_values : ndarray, shape (R, L)
        Each row's values sorted ascending, in ``[-1, 1]``; the first ``count[r]`` are present.
    step, m_lo : ndarray, shape (R, K)
        Candidate steps and lowest code offset ``q_min - z``; the codes are
        ``m_lo .. m_lo + n_levels - 1``, ``x_hat = clamp(rint(v / s), ...) * s``.

    Returns
    -------
    ndarray, shape (R, K)
    """
    n_rows, length = sorted_values.shape
    filled = np.where(np.arange(length) < count[:, None], sorted_values, 2.0)
    offsets = 4.0 * np.arange(n_rows)
    flat = (filled + offsets[:, None]).ravel()
    cums = _prefix(filled, (np.arange(length) < count[:, None]).astype(np.float64))
    bounds = np.clip(_boundaries(step, m_lo, n_levels), -1.5, 1.5) + offsets[:, None, None]
    inner = np.searchsorted(flat, bounds.ravel()).reshape(bounds.shape) - (length * np.arange(n_rows))[:, None, None]
    end = np.asarray(count, dtype=np.int64)
    return _segment_sse(cums, np.minimum(inner, end[:, None, None]), end, step, m_lo)


def sse_uniform_histogram(
    counts: np.ndarray, first: np.ndarray, width: np.ndarray, step: np.ndarray, m_lo: np.ndarray, n_levels: int
) -> np.ndarray:
    """SSE of every candidate grid on histogram bin centres ``first + (j + 1/2) width`` weighted by ``counts``.

    Same as :func:`sse_sorted_values` with the centres as values (already sorted);
    the segment positions are computed directly: ``#{j : c_j < b} = clip(ceil((b - first)/width - 1/2), 0, bins)``.
    """
    bins = counts.shape[1]
    centres = first[:, None] + (np.arange(bins) + 0.5) * width[:, None]
    cums = _prefix(centres, counts.astype(np.float64))
    spread = width > 0
    safe = np.where(spread, width, 1.0)
    ratio = (step / safe[:, None])[..., None]
    y = (m_lo[..., None] + np.arange(n_levels - 1) + 0.5) * ratio - (first / safe + 0.5)[:, None, None]
    inner = np.clip(np.ceil(y), 0, bins).astype(np.int64)
    if not np.all(spread):  # a constant row: every centre equals ``first``
        flat = ~spread
        below = _boundaries(step[flat], m_lo[flat], n_levels) > first[flat, None, None]
        inner[flat] = np.where(below, bins, 0)
    return _segment_sse(cums, inner, np.full(counts.shape[0], bins), step, m_lo)


def sse_direct(
    values: np.ndarray, weights: np.ndarray, step: np.ndarray, m_lo: np.ndarray, n_levels: int
) -> np.ndarray:
    """SSE of every candidate grid by fake-quantizing every value (for grids with more levels than values).

    ``sum_v w_v (clamp(rint(v / s), m_lo, m_lo + n_levels - 1) s - v)^2``, chunked over candidates.
    """
    n_rows, length = values.shape
    out = np.empty(step.shape)
    chunk = max(1, _CHUNK_ELEMENTS // max(n_rows * length, 1))
    v, w = values[:, None, :], weights[:, None, :]
    for k in range(0, step.shape[1], chunk):
        s = step[:, k : k + chunk, None]
        low = m_lo[:, k : k + chunk, None]
        err = v / s  # one temporary, updated in place: clamp(rint(v / s)) s - v, squared, weighted
        np.rint(err, out=err)
        np.maximum(err, low, out=err)
        np.minimum(err, low + (n_levels - 1), out=err)
        err *= s
        err -= v
        np.square(err, out=err)
        err *= w
        out[:, k : k + chunk] = np.sum(err, axis=2)
    return out


def nonempty_samples(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's samples of positive weight first, cut to the longest such row (the rest weight 0).

    A sample of weight 0 adds exactly 0 to every weighted sum, so :func:`sse_direct`
    on the result sums the same terms; on a histogram of a row with fewer values than
    bins (small groups, short channels) most bins are empty and the rows get much shorter.
    """
    keep = weights > 0
    width = max(int(keep.sum(axis=1).max(initial=0)), 1)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :width]
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(weights, order, axis=1)


def _chunked(func, n_rows: int, per_row: int, *arrays: np.ndarray, **fixed) -> np.ndarray:
    """Apply ``func`` to row chunks of ``arrays`` so that temporaries stay near the budget."""
    chunk = max(1, _CHUNK_ELEMENTS // max(per_row, 1))
    out = None
    for i in range(0, n_rows, chunk):
        part = func(*(a[i : i + chunk] for a in arrays), **fixed)
        if out is None:
            out = np.empty((n_rows, *part.shape[1:]), dtype=part.dtype)
        out[i : i + chunk] = part
    return out


def load_kernels() -> None:
    """Compile (on a fresh checkout, several seconds) or load from numba's cache the compiled searches: one
    per-channel histogram search (symmetric and asymmetric) and one symmetric and one asymmetric per-group search on a
    small tensor.
    The first such calibration in a process does the same."""
    x = np.linspace(-1.0, 2.0, 4 * START_BIN, dtype=np.float32).reshape(2, -1)
    for symmetric, bits in ((True, 4), (False, 4), (False, 9)):  # 9 bits: more levels than non-empty bins
        for granularity, options in (("channel", {"axis": 0}), ("group", {"axis": 1, "group_size": 32})):
            scheme = QuantScheme(bits=bits, symmetric=symmetric, granularity=granularity, **options)
            MSE(bins=START_BIN, source="histogram" if granularity == "channel" else "auto").calibrate(
                CalibrationData(to_rows(x, scheme)), scheme
            )


@register
@dataclass(frozen=True)
class MSE(Calibrator):
    r"""The threshold minimising the squared round-trip error (modelopt's histogram ``mse``, as intended).

    Symmetric: candidates are the ``|x|`` histogram's bin centres ``c_i``,
    ``i = 128 .. bins-1`` (only ``i = 127`` when ``bins = 128``); each fake-quantizes with narrow range and step
    ``s_i = c_i / (2^(b-1) - 1)`` (``c_i / (2^b - 1)`` unsigned; one bit less with
    reduce_range):

    .. math:: T = c_{i^*},\quad i^* = \arg\min_i \sum_x \left(\hat x_i - x\right)^2,
        \quad \hat x_i = \min(\mathrm{rint}(x / s_i), q)\, s_i

    The first minimum wins. ``source`` chooses what ``x`` runs over:

    - ``'histogram'``: the bin centres weighted by their counts (modelopt's
      approximation). Per tensor, one matrix product (:func:`centre_error_matrix`), as modelopt's
      loop over candidates; per channel or group, the compiled pruned search of the asymmetric case below
      on the ``|x|`` histogram (range ``[0, max|x|]``: lowest code 0, codes ``0 .. q``, the same candidates and
      ``x_hat_i``; about 240 of the 1,920 candidates evaluated per Gaussian channel at 8 bits, 990 at 4 bits). It
      chooses the matrix product's threshold except between candidates of exactly equal error (rational
      arithmetic), which the product's round-off orders either way (tested on every bundled tensor and on
      adversarial channels). Every value is moved by at most ``w/2`` to its centre, which biases the
      rounding error for steps near ``w``; the test bounds the loss against the exact search.
    - ``'values'``: the raw values, exactly, via sorted values and per-segment moments
      (``O(L log L + candidates x levels x log L)`` per row).
    - ``'distinct'``: rows shorter than the histogram (groups of 32..256, short channels)
      search **their own values** as candidates: symmetric ``T`` = each distinct ``|x|`` of the row
      (clipping exactly at a value, which is then reproduced exactly), asymmetric ``alpha`` =
      ``x / hi_0`` for each positive ``x`` and ``x / lo_0`` for each negative one (float32); the
      objective is exact on the raw values. Candidates are taken from the largest down; the error
      of the values a candidate clips (``sum (|x| - T)^2`` over ``|x| > T``; asymmetric with the limits
      widened by ``s/2`` for the rounded zero point) is a lower bound that grows as the candidate shrinks,
      so the candidates whose bound exceeds the least error found so far are skipped (the same minimum as
      evaluating every candidate; compiled: :func:`qcore.kernels.mse.distinct_symmetric_search`; its numpy
      reference, ``range_candidates`` and ``symmetric_row_sse``, is in ``tests/qcore/kernels/mse_numpy.py``).
      Asymmetric (:func:`qcore.kernels.mse.distinct_affine_search`, ``affine_row_sse`` in the same module its
      numpy reference) the two sides' candidates are merged from ``alpha = 1`` down and the bound is the error of
      the values beyond both widened limits ``alpha lo_0 - s/2`` and ``alpha hi_0 + s/2`` (the rounded zero
      point moves the grid by at most ``s/2``); it only grows as ``alpha`` shrinks, so the first candidate it
      rules out ends the row (about 10 of 128 evaluated per group at 4 bits, 2 at 8).
      The curve holds the evaluated candidates only (NaN beyond).
    - ``'auto'`` (default): ``'distinct'`` when rows are shorter than ``bins``; else ``'values'`` when
      the tensor has at most :data:`VALUES_MAX_ELEMENTS` elements and
      ``n_rows x candidates x min(levels + 1, row length)`` is at most :data:`VALUES_MAX_LOOKUPS`
      (per-tensor up to 1M elements at 8 bits, a few dozen channels), else ``'histogram'``. Grids
      with more levels than a row has values are evaluated directly, value by value.

    Asymmetric: the range ``[lo_0, hi_0] = [min(min, 0), max(max, 0)]`` is shrunk by
    factors ``alpha_k = (k + 1/2) / bins``, ``k = 128 .. bins-1`` (the same grid as
    the symmetric centres); each ``[alpha lo_0, alpha hi_0]`` is fake-quantized with the
    scheme's ``q_min..q_max``, ``s = alpha (hi_0 - lo_0) / (q_max - q_min)`` and
    ``z = clamp(rint(q_min - alpha lo_0 / s))`` (the default convention), over the signed
    histogram's centres or the raw values; the result is clipped to ``[min, max]``.
    On the histogram only each row's non-empty bins are summed (:func:`nonempty_samples`),
    value by value when the grid has at least as many levels as the longest such row, else
    by per-segment moments over the bins. Per channel or group (any rows but a whole tensor's), the
    histogram search is compiled and pruned (:func:`qcore.kernels.mse.pruned_histogram_sse`): the same
    candidates and formulas, visited from ``alpha`` = 1 down; a candidate is evaluated only if the error
    of the centres beyond its outer grid points (a lower bound of its error) does not exceed the least
    error found so far (with a round-off margin), so the chosen ``alpha`` is the exhaustive search's first
    minimum (tested against each channel searched alone). About 180 of the 1,920 candidates are evaluated
    per Gaussian channel at 8 bits, 900 at 4 bits; the curve holds the evaluated candidates only (NaN beyond).
    Rounding is half to even throughout (ties do not change a squared error).

    Every search runs in float64 and the choice (first minimum) and the range come from the float64 values;
    the curve keeps their float32 rounding, ``x`` and ``y`` (:attr:`curve_dtype`): per channel on a 4096 x 4096
    weight it is as large as the tensor, twice that in float64. Values of ``|x|`` from 9.2e18 on keep a float64
    curve (:func:`curve_dtype`: a squared error could exceed float32's range). Per channel or group the curves are
    built a block of rows at a time (no float64 array over all rows x candidates).

    Parameters
    ----------
    bins : int
        Histogram bins (>= 128, default 2048); also fixes the candidate grid.
    source : {'auto', 'histogram', 'values'}
        What the error is summed over.
    """

    name = "mse"
    label = "MSE"
    summary = "Choose the clipping threshold that gives the smallest mean squared error after the round trip."
    short_rows = (
        "Per group or short channel (rows shorter than the histogram): the candidates are the row's own values "
        "(clipping exactly at one of them), scored exactly on the raw values; the curve shows only the candidates "
        "that could win. Per channel (longer rows): the histogram's candidate thresholds (symmetric) or shrink factors "
        "(asymmetric), skipping those whose clipping error alone exceeds the best error found (same choice as trying "
        "them all); the curve shows the rest."
    )
    curve_dtype = np.float32
    formula = r"T = \arg\min_{T = c_i} \frac{1}{N}\sum_x \left(s\,\mathrm{clamp}(\mathrm{rint}(x/s)) - x\right)^2"

    bins: int = 2048
    source: str = "auto"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "bins": Interval(START_BIN, MAX_SEARCH_BINS, integer=True),
        "source": Options(*SOURCES),
    }

    def resolved_source(self, rows: Rows, scheme: QuantScheme) -> str:
        """``'histogram'`` or ``'values'`` for these rows (resolves ``'auto'``)."""
        if self.source != "auto":
            return self.source
        if rows.values.shape[1] < self.bins:
            return "distinct"
        n_levels = scheme.qmax + 1 if scheme.symmetric else scheme.levels
        row_len = rows.values.shape[1]
        lookups = rows.n_rows * (self.bins - first_candidate(self.bins)) * min(n_levels + 1, row_len)
        return "values" if rows.size <= VALUES_MAX_ELEMENTS and lookups <= VALUES_MAX_LOOKUPS else "histogram"

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        source = self.resolved_source(data.rows, scheme)
        if source == "distinct":
            return self._distinct(data.rows, scheme)
        if scheme.symmetric:
            return self._symmetric(data, scheme, source)
        return self._asymmetric(data, scheme, source)

    def _symmetric(self, data: CalibrationData, scheme: QuantScheme, source: str) -> Calibration:
        rows, q = data.rows, scheme.qmax
        absmax = rows.absmax
        frac = (np.arange(first_candidate(self.bins), self.bins) + 0.5) / self.bins
        if source == "histogram" and rows.granularity != "tensor":
            return self._symmetric_pruned(data, scheme)
        if source == "histogram":
            return self._symmetric_histogram(data, scheme, frac)
        thresholds = absmax[:, None] * frac
        norm = np.where(absmax > 0, absmax, 1.0)
        values = np.abs(rows.values) / norm[:, None]
        step = np.broadcast_to(frac / q, thresholds.shape)
        zeros = np.zeros(thresholds.shape, dtype=np.int64)
        sse = self._values_sse(values, rows.count, step, zeros, q + 1)
        sse = sse * norm[:, None] ** 2
        mse = self._per_element(sse, rows.count)
        chosen = first_minimum(mse)
        threshold = thresholds[np.arange(rows.n_rows), chosen]
        lo, hi = symmetric_range(threshold, scheme)
        dtype = curve_dtype(absmax)
        curve = Curve("MSE", "threshold T", thresholds.astype(dtype), mse.astype(dtype), chosen)
        return Calibration(self.name, lo, hi, curve, details={"source": source})

    def _symmetric_histogram(self, data: CalibrationData, scheme: QuantScheme, frac: np.ndarray) -> Calibration:
        """The histogram search over blocks of rows: each block's float64 SSE gives its choice, then is rounded into
        the float32 curve (no float64 array of all rows x candidates)."""
        rows = data.rows
        hist = data.abs_histogram(self.bins)
        error = centre_error_matrix(self.bins, scheme.qmax)
        count = hist.total()
        dtype = curve_dtype(rows.absmax)
        x, y = np.empty((rows.n_rows, frac.size), dtype=dtype), np.empty((rows.n_rows, frac.size), dtype=dtype)
        chosen, threshold = np.empty(rows.n_rows, dtype=np.intp), np.empty(rows.n_rows)
        block = matmul_rows(self.bins)
        for first in range(0, rows.n_rows, block):
            rs = slice(first, first + block)
            mse = self._per_element(histogram_sse(hist.counts[rs], hist.width[rs], error), count[rs])
            chosen[rs] = first_minimum(mse)
            threshold[rs] = rows.absmax[rs] * frac[chosen[rs]]
            np.multiply(rows.absmax[rs, None], frac, out=x[rs])  # T = max|x| f in float64, rounded to float32
            y[rs] = mse
            del mse  # freed before the next block's product
        lo, hi = symmetric_range(threshold, scheme)
        curve = Curve("MSE", "threshold T", x, y, chosen)
        return Calibration(self.name, lo, hi, curve, details={"source": "histogram"})

    def _asymmetric(self, data: CalibrationData, scheme: QuantScheme, source: str) -> Calibration:
        rows = data.rows
        if source == "histogram" and rows.granularity != "tensor":
            return self._asymmetric_pruned(data, scheme)
        lo0, hi0 = np.minimum(rows.min, 0.0), np.maximum(rows.max, 0.0)
        span = hi0 - lo0
        norm = np.where(span > 0, span, 1.0)
        alpha = (np.arange(first_candidate(self.bins), self.bins) + 0.5) / self.bins
        n_levels = scheme.levels
        step = np.broadcast_to(alpha / (scheme.qmax - scheme.qmin), (rows.n_rows, alpha.size))
        m_lo = lowest_codes(lo0 / norm, alpha, step, scheme)
        if source == "histogram":
            hist = data.signed_histogram(self.bins)
            count = hist.total()
            first, width = hist.lo / norm, hist.width / norm
            samples = max(int(np.count_nonzero(hist.counts, axis=1).max(initial=0)), 1)  # of nonempty_samples
            if n_levels < samples:  # fewer rounding boundaries than samples: per-segment moments
                sse = _chunked(
                    sse_uniform_histogram,
                    rows.n_rows,
                    alpha.size * (n_levels + 1),
                    hist.counts,
                    first,
                    width,
                    step,
                    m_lo,
                    n_levels=n_levels,
                )
            else:
                centres = first[:, None] + (np.arange(self.bins) + 0.5) * width[:, None]
                centres, weights = nonempty_samples(centres, hist.counts.astype(np.float64))
                per_row = alpha.size * centres.shape[1]
                sse = _chunked(sse_direct, rows.n_rows, per_row, centres, weights, step, m_lo, n_levels=n_levels)
        else:
            count = rows.count
            sse = self._values_sse(rows.values / norm[:, None], count, step, m_lo, n_levels)
        sse *= norm[:, None] ** 2
        mse = self._per_element(sse, count)
        chosen = first_minimum(mse)
        best = alpha[chosen]
        lo = np.clip(best * lo0, rows.min, rows.max)
        hi = np.clip(best * hi0, rows.min, rows.max)
        dtype = curve_dtype(norm)
        x = np.broadcast_to(alpha.astype(dtype), mse.shape).copy()
        curve = Curve("MSE", "shrink factor alpha", x, mse.astype(dtype), chosen)
        return Calibration(self.name, lo, hi, curve, details={"source": source})

    def _asymmetric_pruned(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        """The histogram shrink search per channel or group: compiled, pruned (class docstring), row blocks."""
        rows = data.rows
        lo0, hi0 = np.minimum(rows.min, 0.0), np.maximum(rows.max, 0.0)
        span = hi0 - lo0
        norm = np.where(span > 0, span, 1.0)
        alpha = (np.arange(first_candidate(self.bins), self.bins) + 0.5) / self.bins
        step = alpha / (scheme.qmax - scheme.qmin)
        hist = data.signed_histogram(self.bins)
        x, mse, chosen, evaluated, best = self._pruned_curve(hist, norm, lo0 / norm, alpha, step, scheme, scheme.levels)
        lo = np.clip(best * lo0, rows.min, rows.max)
        hi = np.clip(best * hi0, rows.min, rows.max)
        details = {"source": "histogram", "evaluated": evaluated, "candidates": alpha.size}
        return Calibration(self.name, lo, hi, Curve("MSE", "shrink factor alpha", x, mse, chosen), details=details)

    def _symmetric_pruned(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        """The histogram threshold search per channel or group: the pruned shrink search on the ``|x|`` histogram.

        The grid ``[0, T]`` with codes ``0 .. q`` (lowest code 0, ``q + 1`` levels), ``T = f max|x|`` and step
        ``T / q`` is the dense search's ``min(rint(|x| / s), q) s`` (see the class docstring).
        """
        rows, q = data.rows, scheme.qmax
        absmax = rows.absmax
        norm = np.where(absmax > 0, absmax, 1.0)
        frac = (np.arange(first_candidate(self.bins), self.bins) + 0.5) / self.bins
        hist = data.abs_histogram(self.bins)
        x, mse, chosen, evaluated, best = self._pruned_curve(hist, norm, None, frac, frac / q, scheme, q + 1, absmax)
        lo, hi = symmetric_range(absmax * best, scheme)  # T = max|x| f, the dense search's product
        details = {"source": "histogram", "evaluated": evaluated, "candidates": frac.size}
        return Calibration(self.name, lo, hi, Curve("MSE", "threshold T", x, mse, chosen), details=details)

    @staticmethod
    def _pruned_curve(
        hist: Histogram,
        norm: np.ndarray,
        lo0: np.ndarray | None,
        candidates: np.ndarray,
        step: np.ndarray,
        scheme: QuantScheme,
        n_levels: int,
        scale: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ...]:
        """The compiled pruned search (:func:`qcore.kernels.mse.pruned_histogram_sse`) a block of rows at a time.

        ``hist``: the rows' histogram, searched in units of ``norm`` per row; ``lo0`` (R,): the normalised range
        start (:func:`lowest_codes`), or None for ranges starting at 0 (lowest code 0); ``candidates`` (K,): each
        candidate's shrink factor; ``step`` (K,): its step in units of ``norm``; ``scale`` (R,): the curve's ``x`` is
        ``candidate x scale`` (default: the candidate). Returns the curve ``x``, ``y`` (:func:`curve_dtype`;
        evaluated candidates first, NaN beyond, cut to the longest row), the chosen column, the number evaluated per
        row and the chosen candidate (float64).
        """
        count = hist.total().astype(np.float64)
        first, width = hist.lo / norm, hist.width / norm
        n_rows, n_candidates = hist.counts.shape[0], candidates.size
        dtype = curve_dtype(norm)  # the MSE, in units of norm^2, is the largest value
        x, mse = (np.empty((n_rows, n_candidates), dtype=dtype) for _ in range(2))
        chosen, evaluated = np.empty(n_rows, dtype=np.int64), np.empty(n_rows, dtype=np.int64)
        best = np.empty(n_rows)
        block = max(1, _PRUNED_BLOCK_ELEMENTS // n_candidates)
        sse, x64, mse64 = (np.empty((min(block, n_rows), n_candidates)) for _ in range(3))  # one block, float64
        zero_codes = np.zeros((min(block, n_rows), n_candidates), dtype=np.int32) if lo0 is None else None
        for start in range(0, n_rows, block):
            sl = slice(start, min(start + block, n_rows))
            size = sl.stop - start
            if lo0 is None:
                m_lo = zero_codes[:size]
            else:
                m_lo = lowest_codes(lo0[sl], candidates, np.broadcast_to(step, (size, step.size)), scheme)
            part, xs, ys = sse[:size], x64[:size], mse64[:size]
            counts = np.ascontiguousarray(hist.counts[sl], dtype=np.int64)
            pruned_histogram_sse(counts, first[sl], width[sl], step, m_lo, n_levels, BOUND_SLACK, ROUNDOFF, part)
            evaluated_curve(candidates, part, norm[sl] ** 2, count[sl], xs, ys, chosen[sl], evaluated[sl])
            best[sl] = xs[np.arange(size), chosen[sl]]
            if scale is not None:
                xs *= scale[sl, None]  # in float64, then rounded to float32 (NaN stays NaN)
            x[sl], mse[sl] = xs, ys
        kept = max(int(evaluated.max(initial=0)), 1)
        if kept <= n_candidates // 2:  # a copy of the evaluated columns frees most of the curve
            return x[:, :kept].copy(), mse[:, :kept].copy(), chosen, evaluated, best
        return x[:, :kept], mse[:, :kept], chosen, evaluated, best

    def _distinct(self, rows: Rows, scheme: QuantScheme) -> Calibration:
        """The ``'distinct'`` search: each row's own values as candidates, exact, pruned (see the class docstring)."""
        n_rows, length = rows.values.shape
        step = max(1, _BLOCK_ELEMENTS // max(length, 1))
        dtype = curve_dtype(np.maximum(rows.absmax, rows.max - rows.min))
        parts = [
            self._distinct_block(rows, slice(i, min(i + step, n_rows)), scheme, dtype) for i in range(0, n_rows, step)
        ]
        x, mse = (pad_rows([p[i] for p in parts]) for i in (0, 1))
        chosen, best, evaluated = (np.concatenate([p[i] for p in parts]) for i in (2, 3, 4))
        mse[rows.count == 0] = 0.0  # an empty row's curve is 0 throughout, as :meth:`_per_element` leaves it
        searched = ~np.isnan(best)
        details = {"source": "distinct", "evaluated": evaluated}
        if scheme.symmetric:
            lo, hi = symmetric_range(np.where(searched, best, 0.0), scheme)
            return Calibration(self.name, lo, hi, Curve("MSE", "threshold T", x, mse, chosen), details=details)
        alpha = np.where(searched, best, 1.0)
        lo0, hi0 = np.minimum(rows.min, 0.0), np.maximum(rows.max, 0.0)
        lo = np.clip(alpha * lo0, rows.min, rows.max)
        hi = np.clip(alpha * hi0, rows.min, rows.max)
        return Calibration(self.name, lo, hi, Curve("MSE", "shrink factor alpha", x, mse, chosen), details=details)

    @staticmethod
    def _distinct_block(rows: Rows, sl: slice, scheme: QuantScheme, dtype: type[np.floating]) -> tuple[np.ndarray, ...]:
        """For the rows ``sl``: the evaluated candidates (``T`` or ``alpha``, ascending, NaN beyond) and their MSE, both
        in ``dtype`` (:func:`curve_dtype`); the chosen index (first minimum), its candidate (float64) and the number
        evaluated per row."""
        count = rows.count[sl].astype(np.int64)
        shape = rows.values[sl].shape
        x, found, done = np.empty(shape), np.empty(shape), np.empty(shape[0], dtype=np.int64)
        if scheme.symmetric:
            ordered = np.sort(np.abs(rows.values[sl]), axis=1)  # missing (NaN) last
            distinct_symmetric_search(ordered, count, scheme.qmax, BOUND_SLACK, ROUNDOFF, x, found, done)
        else:
            ordered = np.sort(rows.values[sl], axis=1)
            lo0, hi0 = np.minimum(rows.min[sl], 0.0), np.maximum(rows.max[sl], 0.0)
            q = (scheme.qmin, scheme.qmax)
            distinct_affine_search(ordered, count, lo0, hi0, *q, BOUND_SLACK, ROUNDOFF, x, found, done)
        width = max(int(done.max(initial=0)), 1)
        x, mse = x[:, :width], MSE._per_element(found[:, :width], rows.count[sl])
        chosen = first_minimum(mse)  # the smallest candidate
        best = x[np.arange(shape[0]), chosen]
        return x.astype(dtype), mse.astype(dtype), chosen, best, (~np.isnan(x)).sum(axis=1)

    @staticmethod
    def _values_sse(values: np.ndarray, count: np.ndarray, step: np.ndarray, m_lo: np.ndarray, n_levels: int):
        """Exact SSE on raw (normalised) values: per-segment moments, or direct when levels outnumber values."""
        n_rows, length = values.shape
        if n_levels < length:
            ordered = np.sort(values, axis=1)
            per_row = step.shape[1] * (n_levels + 1)
            return _chunked(sse_sorted_values, n_rows, per_row, ordered, count, step, m_lo, n_levels=n_levels)
        present = ~np.isnan(values)
        filled = np.where(present, values, 0.0)
        per_row = step.shape[1] * length
        return _chunked(sse_direct, n_rows, per_row, filled, present.astype(np.float64), step, m_lo, n_levels=n_levels)

    @staticmethod
    def _per_element(sse: np.ndarray, count: np.ndarray) -> np.ndarray:
        """``sse / count`` per row (0 for an empty row), in place: ``sse`` is a temporary of the caller."""
        with np.errstate(divide="ignore", invalid="ignore"):
            sse /= count[:, None]
        sse[count == 0] = 0.0
        return sse
