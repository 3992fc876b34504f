r"""EasyQuant's cosines from the sums ``<x, q - z>``, ``|q - z|^2`` of every candidate, in one pass over each row.

For row ``r``, sample ``j`` (value ``x_j``, weight ``w_j``) and candidate ``k``:

.. math::

    c_{jk} = \operatorname{clip}(\operatorname{round}(\mathrm{fl32}(x_j / s_k)),\ q_{min} - z_k,\ q_{max} - z_k),
    \qquad xq_k = \sum_j c_{jk}\,(x_j w_j), \qquad qq_k = \sum_j c_{jk}^2 w_j,
    \qquad \cos_k = \frac{xq_k}{\sqrt{xx\, qq_k}}

``c = q - z`` is the shifted code of :func:`qcore.quantize.quantize_rows` (``x / s`` divided in float32, rounded
half to even or half away from zero, clipped; clipping after ``+ z`` or before it gives the same integers), so
every code is the quantizer's. The loop runs over the samples, four at a time, and inside over the candidates:
the candidate loop has no dependence between iterations and compiles to SIMD divisions and roundings, while each
candidate's sums are accumulated sample by sample, in order, in float64 (the numpy evaluation summed the same
products in a BLAS order: the sums differ in the last bits at most; ``qq`` is exact, a sum of integers below
``2^53``). A NaN code (a step that is 0 in float32) stays NaN, as in numpy.

Compiled with ``error_model="numpy"``: a float division by zero gives ``inf``/``nan`` as numpy's does instead of
raising (Python's check would also keep the candidate loop scalar); the operations themselves are the IEEE ones.
"""

from __future__ import annotations

import numba
import numpy as np

LANES = 8
"""The candidate arrays are padded to a multiple of this (``s = 1``, bounds ``[0, 0]``: a zero code adds 0)."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _code(x: np.float32, step: np.float32, low: np.float32, high: np.float32, half_even: bool) -> np.float64:
    """``clip(round(fl32(x / step)), low, high)`` as float64; half away from zero as qcore.rounding.round_half_away."""
    u = x / step
    if half_even:
        c = np.rint(u)
    else:
        c = np.trunc(u)
        if np.abs(u - c) >= np.float32(0.5):
            c += np.sign(u)
    if c < low:
        c = low
    if c > high:
        c = high
    return np.float64(c)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add4(
    x: np.ndarray,
    w: np.ndarray,
    j: int,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    half_even: bool,
    xq: np.ndarray,
    qq: np.ndarray,
) -> None:
    """Add the terms ``c_k (x w)``, ``c_k^2 w`` of samples ``j .. j + 3`` to every candidate's sums, in this order."""
    x0, x1, x2, x3 = x[j], x[j + 1], x[j + 2], x[j + 3]
    w0, w1, w2, w3 = w[j], w[j + 1], w[j + 2], w[j + 3]
    y0, y1, y2, y3 = np.float64(x0) * w0, np.float64(x1) * w1, np.float64(x2) * w2, np.float64(x3) * w3
    for k in range(scale.size):
        s, lo, hi = scale[k], low[k], high[k]
        c0 = _code(x0, s, lo, hi, half_even)
        c1 = _code(x1, s, lo, hi, half_even)
        c2 = _code(x2, s, lo, hi, half_even)
        c3 = _code(x3, s, lo, hi, half_even)
        a = xq[k]
        a += c0 * y0
        a += c1 * y1
        a += c2 * y2
        a += c3 * y3
        xq[k] = a
        b = qq[k]
        b += c0 * c0 * w0
        b += c1 * c1 * w1
        b += c2 * c2 * w2
        b += c3 * c3 * w3
        qq[k] = b


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _row_sums(
    x: np.ndarray,
    w: np.ndarray,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    half_even: bool,
    xq: np.ndarray,
    qq: np.ndarray,
) -> None:
    """One row's sums into ``xq``, ``qq`` (zeroed first): samples four at a time, the last ones one by one."""
    xq[:] = 0.0
    qq[:] = 0.0
    length = x.size
    blocked = length - length % 4
    for j in range(0, blocked, 4):
        _add4(x, w, j, scale, low, high, half_even, xq, qq)
    for j in range(blocked, length):  # one by one (zero padding would give nan codes for a zero step)
        y = np.float64(x[j]) * w[j]
        for k in range(scale.size):
            c = _code(x[j], scale[k], low[k], high[k], half_even)
            xq[k] += c * y
            qq[k] += c * c * w[j]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def code_cosines(
    values: np.ndarray,
    weights: np.ndarray,
    xx: np.ndarray,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    half_even: bool,
    out: np.ndarray,
) -> None:
    """Fill ``out`` (float64, shape (n_rows, K)) with ``xq_k / sqrt(xx qq_k)`` from the module's sums.

    1 for a row with ``xx = sum x^2 w`` not above 0 (a zero row), 0 where ``qq_k`` is not above 0 (every code 0).

    Parameters
    ----------
    values : ndarray of float32, shape (n_rows, L)
        Samples (missing values set to 0: their code is 0, they add nothing).
    weights : ndarray of float64, shape (n_rows, L), or shape (0, 0) for unit weights
    xx : ndarray of float64, shape (n_rows,)
        ``sum_j x_j^2 w_j`` per row.
    scale : ndarray of float32, shape (n_rows, K)
        Candidate steps as the quantizer uses them (float32).
    low, high : ndarrays of float32, shape (n_rows, K)
        Shifted clip bounds ``q_min - z_k`` and ``q_max - z_k`` (integers).
    half_even : bool
        Round half to even (``np.rint``), else half away from zero.
    """
    n_rows, length = values.shape
    n_cand = scale.shape[1]
    padded = -(-n_cand // LANES) * LANES
    s = np.ones(padded, dtype=np.float32)
    lo = np.zeros(padded, dtype=np.float32)
    hi = np.zeros(padded, dtype=np.float32)
    sx = np.zeros(padded)
    sq = np.zeros(padded)
    unit = np.ones(length)
    weighted = weights.shape[0] > 0
    for r in range(n_rows):
        s[:n_cand] = scale[r]
        lo[:n_cand] = low[r]
        hi[:n_cand] = high[r]
        _row_sums(values[r], weights[r] if weighted else unit, s, lo, hi, half_even, sx, sq)
        for k in range(n_cand):
            if not xx[r] > 0.0:
                out[r, k] = 1.0
            elif sq[k] > 0.0:
                out[r, k] = sx[k] / np.sqrt(xx[r] * sq[k])
            else:
                out[r, k] = 0.0
