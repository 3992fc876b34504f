r"""EasyQuant (Wu et al. 2020, arXiv 2006.16669; seed 003 §2.4): search the step that maximises cosine similarity.

For one tensor, over candidate steps ``s = m s_0`` around a start ``s_0``:

.. math::

    s^* = \arg\max_{m} \cos(x, \hat x(m s_0)), \qquad
    \cos(x, \hat x) = \frac{\langle x, \hat x\rangle}{\lVert x\rVert\,\lVert \hat x\rVert}

With ``x_hat = s q`` the step cancels: ``cos = <x, q> / (|x| |q|)``. The layer form
(weights and activations alternated on the output ``X W^T``) is
:func:`qcore.layer.easyquant_layer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..code_sums import square_sums
from ..constraints import Constraint, Interval, Options
from ..rounding import ROUNDERS, codes
from ..scheme import QuantOptionError, QuantScheme
from ..sorted_rows import code_moments, pays_off
from ..weighted_samples import MAX_BINS, MAX_RAW, Samples, default_bins, use_histogram, weighted_samples
from .base import Calibration, CalibrationData, Calibrator, Curve, make_calibrator, register, symmetric_range

GRIDS: tuple[str, ...] = ("paper", "ncnn")
INITS: tuple[str, ...] = ("minmax", "entropy")


def multipliers(grid: str, lower: float = 0.5, upper: float = 2.0, steps: int = 100) -> np.ndarray:
    """Step multipliers ``m`` (``s = m s_0``), ascending.

    ``paper``: ``linspace(lower, upper, steps)`` on the step (``[alpha S, beta S]``).
    ``ncnn``: ncnn's ``method=eq`` grid on the multiplier ``1/s``:
    ``1/s = (lower + (upper - lower) k / steps) / s_0``, ``k = 0..steps-1``
    (``0.5 + 0.015 k``: ``1/s_0`` itself and ``2/s_0`` never evaluated), i.e.
    ``m = 1 / (lower + (upper - lower) k / steps)``.
    """
    if grid == "paper":
        return np.linspace(lower, upper, steps)
    if grid == "ncnn":
        return np.sort(1.0 / (lower + (upper - lower) * np.arange(steps) / steps))
    raise QuantOptionError(f"grid must be one of {', '.join(GRIDS)}, got {grid!r}")


#: Elements (rows x candidates x row length) per evaluation block (a 2 MB float32 and a 4 MB float64 temporary,
#: in the 32 MB L3): all 100 candidates of a 4096-long channel in one block. Fewer, larger numpy calls than
#: 1 << 18 (per channel on 4096 x 4096: 12.3 -> 11.1 histogram passes of CPU; per group of 128 equal or faster).
CACHE_ELEMENTS = 1 << 19


def _clip_free(v: np.ndarray, scale32: np.ndarray, zero32: np.ndarray | None, scheme: QuantScheme) -> np.ndarray:
    """Per row and candidate, True when no code can clip: ``round(x / s) + z`` of the row's min and max lie in range.

    Rounding of ``fl32(x / s)`` is monotone in ``x``, so the extremes bound every code.
    """
    z = 0.0 if zero32 is None else zero32
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        low = ROUNDERS[scheme.rounding](v.min(axis=1)[:, None] / scale32) + z
        high = ROUNDERS[scheme.rounding](v.max(axis=1)[:, None] / scale32) + z
        return (low >= scheme.qmin) & (high <= scheme.qmax)


def _shifted_codes(
    scaled: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme, clip_free: np.ndarray
) -> np.ndarray:
    """``clip(round(scaled) + z, q_min, q_max) - z`` in float32 (integers; ``scaled`` is overwritten).

    ``clip_free`` (rows, candidates) from :func:`_clip_free`. With half-even rounding the
    values are clipped to ``[q_min - z, q_max - z]`` before ``rint`` (same codes: the bounds
    are integers and rounding is monotone; no ``+ z`` and ``- z`` passes), and only the
    candidates between the first and last one that may clip go through the clip (clipping
    the others changes nothing); otherwise :func:`qcore.rounding.codes` rounds and clips.
    """
    if scheme.rounding != "half_even":
        z = 0.0 if zero is None else zero
        q = codes(scaled, z, scheme)
        if zero is not None:
            q -= z
        return q
    may_clip = np.flatnonzero(~clip_free.all(axis=0))
    if may_clip.size:
        cand = slice(may_clip[0], may_clip[-1] + 1)
        low, high = np.float32(scheme.qmin), np.float32(scheme.qmax)
        if zero is not None:
            low, high = low - zero[:, cand], high - zero[:, cand]
        part = scaled[:, cand]
        if zero is None:
            np.clip(part, low, high, out=part)
        else:  # np.clip with array bounds is several times slower than these two
            np.maximum(part, low, out=part)
            np.minimum(part, high, out=part)
    return np.rint(scaled, out=scaled)


MAX_STEPS = 1000
"""Upper bound of ``steps`` (the search costs ``steps x`` a pass over the tensor)."""


def cosines(samples: Samples, scale: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme) -> np.ndarray:
    """``cos(x, (q - z) s)`` per row and candidate step (``scale``, ``zero`` of shape (n_rows, K)).

    Codes ``q = clip(round(x / s) + z, q_min, q_max)`` in float32 as the quantizer
    computes them (``x / s`` in float32); ``<x, q - z>`` is a batched float64 dot product,
    ``|q - z|^2`` an exact sum (:func:`square_sums`, else float64). Candidates, then rows,
    are processed in blocks of about :data:`CACHE_ELEMENTS` so the temporaries stay in cache. A zero row
    has cosine 1; a non-zero row whose codes are all zero has cosine 0.
    """
    v = samples.values
    xx = samples.total(v, v)
    n_rows, n_cand = scale.shape
    length = max(v.shape[1], 1)
    scale32 = scale.astype(np.float32)
    zero32 = None if zero is None else zero.astype(np.float32)
    clip_free = _clip_free(v, scale32, zero32, scheme)
    if zero is None:
        largest = max(-scheme.qmin, scheme.qmax)
    else:  # |q - z| <= max(q_max - z, z - q_min); q_max - q_min for z in [q_min, q_max]
        low, high = np.min(zero, initial=scheme.qmin), np.max(zero, initial=scheme.qmax)
        largest = int(max(scheme.qmax - low, high - scheme.qmin))
    xq, qq = np.empty((n_rows, n_cand)), np.empty((n_rows, n_cand))
    chunk = min(n_cand, max(1, CACHE_ELEMENTS // length))
    row_step = max(1, CACHE_ELEMENTS // (chunk * length))
    buffer32 = np.empty(min(row_step, n_rows) * chunk * v.shape[1], dtype=np.float32)
    buffer64 = np.empty(buffer32.size)
    w = samples.weights
    for r0 in range(0, n_rows, row_step):
        rs = slice(r0, r0 + row_step)
        vb = v[rs]
        weights = None if w is None else w[rs][:, :, None]
        target = vb.astype(np.float64)[:, :, None]
        if weights is not None:
            target *= weights
        for k0 in range(0, n_cand, chunk):
            ks = slice(k0, k0 + chunk)
            shape = (vb.shape[0], min(chunk, n_cand - k0), v.shape[1])
            scaled = buffer32[: math.prod(shape)].reshape(shape)
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                np.divide(vb[:, None, :], scale32[rs, ks, None], out=scaled)
            z = None if zero32 is None else zero32[rs, ks, None]
            q = _shifted_codes(scaled, z, scheme, clip_free[rs, ks])
            sq = None if weights is not None else square_sums(q, largest)
            q64 = buffer64[: q.size].reshape(shape)
            np.copyto(q64, q)
            xq[rs, ks] = np.matmul(q64, target)[:, :, 0]
            if sq is None:
                np.square(q64, out=q64)
                sq = np.matmul(q64, np.ones((length, 1)) if weights is None else weights)[:, :, 0]
            qq[rs, ks] = sq
    return cosine_from_sums(xx, xq, qq)


def cosine_from_sums(xx: np.ndarray, xq: np.ndarray, qq: np.ndarray) -> np.ndarray:
    """``<x, q> / sqrt(|x|^2 |q|^2)`` per row (``xx``) and candidate; 1 for a zero row, 0 when all codes are 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = xq / np.sqrt(xx[:, None] * qq)
    return np.where(xx[:, None] > 0, np.where(qq > 0, cos, 0.0), 1.0)


def sorted_cosines(
    data: CalibrationData, scale: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme
) -> np.ndarray | None:
    """The cosines of :func:`cosines` from the rows sorted once (:func:`qcore.sorted_rows.code_moments`).

    The same codes (the real quantizer at the code-run thresholds) in ``O(levels log L)`` per row and
    candidate instead of ``O(L)``; ``<x, q>`` summed in another order, ``|q|^2`` exact in both. None
    when the case does not fit (see :func:`qcore.sorted_rows.code_moments`).
    """
    moments = code_moments(data.sorted_rows(), scale, zero, scheme)
    return None if moments is None else cosine_from_sums(data.rows.square_sum.astype(np.float64), *moments)


def affine_step(lo: np.ndarray, hi: np.ndarray, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
    """The default convention's ``(s, z)`` for ranges ``[lo, hi]`` (widened to contain 0); ``s = 1`` if empty."""
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    span = hi - lo
    step = np.where(span > 0, span / (scheme.qmax - scheme.qmin), 1.0)
    zero = np.clip(np.round(scheme.qmin - lo / step), scheme.qmin, scheme.qmax)
    return step, zero


@dataclass(frozen=True, eq=False)
class CandidateGrid:
    """The candidate steps ``m s_0`` (symmetric) or ranges ``[m lo_0, m hi_0]`` (asymmetric) of some rows.

    Built for a block of rows at a time (the search never holds more than the cosines for all rows);
    the same element-wise arithmetic for any block, so the step of a chosen ``m`` is the one evaluated.
    """

    lo0: np.ndarray
    hi0: np.ndarray
    row_min: np.ndarray
    row_max: np.ndarray
    scheme: QuantScheme

    def ranges(self, rows: slice, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Asymmetric candidate ranges ``clip([m lo_0, m hi_0], min, max)`` of ``rows``, shape (rows, K)."""
        low, high = self.row_min[rows, None], self.row_max[rows, None]
        return np.clip(self.lo0[rows, None] * m, low, high), np.clip(self.hi0[rows, None] * m, low, high)

    def steps(self, rows: slice, m: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(scale, zero)`` of every candidate of ``rows``, shape (rows, K); zero None when symmetric.

        Symmetric: ``s = m s_0``, ``s_0 = max(|lo_0|, |hi_0|) / q_max`` (1 for an empty row).
        Asymmetric: the default convention's ``(s, z)`` of each candidate range (:func:`affine_step`).
        """
        if self.scheme.symmetric:
            s0 = np.maximum(np.abs(self.lo0[rows]), np.abs(self.hi0[rows])) / self.scheme.qmax
            return np.where(s0 > 0, s0, 1.0)[:, None] * m, None
        return affine_step(*self.ranges(rows, m), self.scheme)


@register
@dataclass(frozen=True)
class EasyQuant(Calibrator):
    r"""Cosine-similarity search of the step around a start (EasyQuant for one tensor).

    .. math::

        s^* = \arg\max_{m \in \mathcal{M}} \frac{\langle x, q_m\rangle}{\lVert x\rVert\,\lVert q_m\rVert},
        \quad q_m = \operatorname{clip}(\operatorname{round}(x / (m s_0)), q_{min}, q_{max})

    ``s_0 = T_0 / q_max`` from ``init`` (``minmax``: ``T_0 = max|x|``; ``entropy``:
    the registered KL calibrator's threshold, the paper's activation start).
    ``grid`` (:func:`multipliers`): ``paper`` = ``m`` in ``linspace(0.5, 2, 100)``,
    ``ncnn`` = ncnn's grid on ``1/s``. Ties keep the smallest ``m``.

    Symmetric: returns ``scale = s*`` and ``T = min(s* q_max, max|x|)``
    (a step above ``max|x| / q_max`` leaves the top codes unused; the scale is kept).
    Asymmetric: the candidates are the ranges ``[m lo_0, m hi_0]`` clipped to
    ``[min, max]``, with ``(s, z)`` from the default convention; no scale is
    returned, the convention derives it from the chosen range.

    Large tensors (more than ``max_raw`` elements, rows longer than ``4 bins``) are
    evaluated on the signed histogram's bin centres weighted by counts: each value
    moves by at most half a bin, ``(max - min) / (2 bins)``. Otherwise rows long enough
    (:func:`qcore.sorted_rows.pays_off`) get their cosines from the rows sorted once
    (:func:`sorted_cosines`, the same codes), the others value by value.
    ``curve``: cosine against the multiplier ``m``, goal ``max``.

    Parameters
    ----------
    init : {'minmax', 'entropy'}
        Start of the search.
    grid : {'paper', 'ncnn'}
        Candidate multipliers.
    lower, upper : float
        Grid bounds (paper: alpha = 0.5, beta = 2).
    steps : int
        Number of candidates (100).
    max_raw : int
        Element count above which long rows use the histogram.
    bins : int or None
        Histogram bins of that mode; None: :func:`qcore.weighted_samples.default_bins` (32768 at 8 bits).
    """

    name = "easyquant"
    label = "EasyQuant (cosine search)"
    summary = "Try 100 steps from half to twice a starting step; keep the one whose round trip is most cosine-similar."
    formula = r"s^* = \arg\max_{m\in[0.5,\,2]} \cos\big(x,\ \hat x(m\,s_0)\big)"

    init: str = "minmax"
    grid: str = "paper"
    lower: float = 0.5
    upper: float = 2.0
    steps: int = 100
    max_raw: int = 1 << 20
    bins: int | None = None
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "init": Options(*INITS),
        "grid": Options(*GRIDS),
        "lower": Interval(0.0, 1e6, closed="right"),
        "upper": Interval(0.0, 1e6, closed="right"),
        "steps": Interval(1, MAX_STEPS, integer=True),
        "max_raw": Interval(1, MAX_RAW, integer=True),
        "bins": Interval(1, MAX_BINS, integer=True, allow_none=True),
    }

    def _check_combination(self) -> None:
        if not self.lower < self.upper:
            raise QuantOptionError(f"need 0 < lower < upper, got {self.lower!r}, {self.upper!r}")

    def _start(self, data: CalibrationData, scheme: QuantScheme) -> tuple[np.ndarray, np.ndarray]:
        rows = data.rows
        if self.init == "entropy":
            start = make_calibrator("entropy").calibrate(data, scheme)
            return start.lo, start.hi
        if scheme.symmetric:
            return symmetric_range(rows.absmax, scheme)
        return rows.min, rows.max

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        lo0, hi0 = self._start(data, scheme)
        m = multipliers(self.grid, self.lower, self.upper, self.steps)
        bins = self.bins or default_bins(scheme)
        histogram = use_histogram(rows, bins, self.max_raw)
        grid = CandidateGrid(lo0, hi0, rows.min, rows.max, scheme)
        cos = None
        if not histogram and pays_off(rows, scheme):
            cos = sorted_cosines(data, *grid.steps(slice(None), m), scheme)
        on_sorted = cos is not None
        if not on_sorted:  # candidates built block by block: (n_rows, K) float64 arrays only for the cosines
            cos = np.empty((rows.n_rows, m.size), dtype=np.float64)
            for sl, samples in weighted_samples(rows, data.signed_histogram(bins) if histogram else None):
                cos[sl] = cosines(samples, *grid.steps(sl, m), scheme)
        best = np.argmax(cos, axis=1)
        x = np.broadcast_to(m, cos.shape)  # the same multipliers in every row: a read-only view
        curve = Curve("cosine(x, x_hat)", "step multiplier m (s = m s0)", x, cos, best, goal="max")
        details = {
            "start_lo": lo0,
            "start_hi": hi0,
            "multiplier": m[best],
            "cosine": cos[np.arange(rows.n_rows), best],
            "histogram": histogram,
            "bins": bins if histogram else None,
            "sorted": on_sorted,
        }
        if not scheme.symmetric:
            lo, hi = grid.ranges(slice(None), m[best][:, None])
            return Calibration(self.name, lo[:, 0], hi[:, 0], curve, details=details)
        picked = grid.steps(slice(None), m[best][:, None])[0][:, 0]
        empty = ~(rows.absmax > 0)
        threshold = np.where(empty, 0.0, np.minimum(picked * scheme.qmax, rows.absmax))
        lo, hi = symmetric_range(threshold, scheme)
        return Calibration(self.name, lo, hi, curve, scale=np.where(empty, 1.0, picked), details=details)
