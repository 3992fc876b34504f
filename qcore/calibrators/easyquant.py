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

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..constraints import Constraint, Interval, Options
from ..granularity import to_rows
from ..kernels.easyquant_sums import code_cosines
from ..scheme import QuantOptionError, QuantScheme
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


MAX_STEPS = 1000
"""Upper bound of ``steps`` (the search costs ``steps x`` a pass over the tensor)."""


def cosines(samples: Samples, scale: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme) -> np.ndarray:
    """``cos(x, (q - z) s)`` per row and candidate step (``scale``, ``zero`` of shape (n_rows, K)).

    Codes ``q = clip(round(x / s) + z, q_min, q_max)`` as the quantizer computes them (``x / s`` in
    float32); ``<x, q - z>`` and ``|q - z|^2`` summed in float64 (the second exact) and
    ``cos = <x, q - z> / sqrt(|x|^2 |q - z|^2)`` by the compiled
    :func:`qcore.kernels.easyquant_sums.code_cosines`, all candidates of a row in one pass over it
    (``|x|^2`` from :meth:`Samples.total`). A zero row has cosine 1; a non-zero row whose codes are all
    zero has cosine 0.
    """
    v = samples.values
    z = np.zeros(scale.shape) if zero is None else zero
    weights = np.zeros((0, 0)) if samples.weights is None else samples.weights
    cos = np.empty(scale.shape)
    code_cosines(
        np.ascontiguousarray(v, dtype=np.float32),
        np.ascontiguousarray(weights, dtype=np.float64),
        samples.total(v, v),
        scale.astype(np.float32),
        (scheme.qmin - z).astype(np.float32),
        (scheme.qmax - z).astype(np.float32),
        scheme.rounding == "half_even",
        cos,
    )
    return cos


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
    moves by at most half a bin, ``(max - min) / (2 bins)``. Otherwise every value is evaluated
    under every candidate (:func:`cosines`, compiled: about 0.3 ns per value and candidate).
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
        cos = np.empty((rows.n_rows, m.size), dtype=np.float64)
        # candidates built block by block: (n_rows, K) float64 arrays only for the cosines
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
        }
        if not scheme.symmetric:
            lo, hi = grid.ranges(slice(None), m[best][:, None])
            return Calibration(self.name, lo[:, 0], hi[:, 0], curve, details=details)
        picked = grid.steps(slice(None), m[best][:, None])[0][:, 0]
        empty = ~(rows.absmax > 0)
        threshold = np.where(empty, 0.0, np.minimum(picked * scheme.qmax, rows.absmax))
        lo, hi = symmetric_range(threshold, scheme)
        return Calibration(self.name, lo, hi, curve, scale=np.where(empty, 1.0, picked), details=details)


def load_kernels() -> None:
    """Compile (on a fresh checkout, a few seconds) or load from numba's cache the cosine kernel, half-even and
    half-away, symmetric and affine, as the first EasyQuant calibration of a process does."""
    x = np.linspace(-1.0, 2.0, 2 * 64, dtype=np.float32).reshape(2, -1)
    for symmetric, rounding in ((True, "half_even"), (False, "half_away")):
        scheme = QuantScheme(bits=4, symmetric=symmetric, granularity="channel", rounding=rounding)
        EasyQuant(steps=4).calibrate(CalibrationData(to_rows(x, scheme)), scheme)
