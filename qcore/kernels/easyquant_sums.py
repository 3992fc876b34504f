r"""EasyQuant's per-candidate sums ``<x, q - z>`` and ``|q - z|^2``, every candidate of a row in one pass over it.

For row ``r``, sample ``j`` (value ``x_j``, weight ``w_j``) and candidate ``k``:

.. math::

    c_{jk} = \operatorname{clip}(\operatorname{round}(\mathrm{fl32}(x_j / s_k)),\ q_{min} - z_k,\ q_{max} - z_k),
    \qquad xq_k = \sum_j c_{jk}\,(x_j w_j), \qquad qq_k = \sum_j c_{jk}^2 w_j

``c = q - z`` is the shifted code of :func:`qcore.quantize.quantize_rows` (``x / s`` divided in float32, rounded
half to even or half away from zero, clipped; clipping after ``+ z`` or before it gives the same integers), so
every code is the quantizer's. The loop runs over the samples and, inside, over the candidates: the candidate
loop has no dependence between iterations and compiles to SIMD divisions and roundings, while each candidate's
sums are accumulated sample by sample in float64 (the numpy path summed the same products in a BLAS order: the
sums differ in the last bits only; ``qq`` is exact, a sum of integers below ``2^53``).

Compiled with ``error_model="numpy"``: a float division by zero gives ``inf``/``nan`` as numpy's does instead of
raising (Python's check would also keep the candidate loop scalar); the operations themselves are the IEEE ones.
"""

from __future__ import annotations

import numba
import numpy as np

LANES = 16
"""The candidate arrays are padded to a multiple of this (``s = 1``, bounds ``[0, 0]``: a zero code adds 0)."""


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _round_half_away(u: np.float32) -> np.float32:
    """``trunc(u) + sign(u)`` if ``|u - trunc(u)| >= 0.5``, else ``trunc(u)`` (as qcore.rounding.round_half_away)."""
    t = np.trunc(u)
    if np.abs(u - t) >= np.float32(0.5):
        return t + np.sign(u)
    return t


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _accumulate(
    x: np.float32,
    xw: np.float64,
    w: np.float64,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    half_even: bool,
    xq: np.ndarray,
    qq: np.ndarray,
) -> None:
    """Add one sample's terms ``c_k (x w)`` and ``c_k^2 w`` to every candidate's sums."""
    if half_even:
        for k in range(scale.size):
            c = np.rint(x / scale[k])
            if c < low[k]:
                c = low[k]
            if c > high[k]:
                c = high[k]
            c64 = np.float64(c)
            xq[k] += c64 * xw
            qq[k] += c64 * c64 * w
    else:
        for k in range(scale.size):
            c = _round_half_away(x / scale[k])
            if c < low[k]:
                c = low[k]
            if c > high[k]:
                c = high[k]
            c64 = np.float64(c)
            xq[k] += c64 * xw
            qq[k] += c64 * c64 * w


@numba.njit(cache=True, nogil=True, error_model="numpy")
def code_sums(
    values: np.ndarray,
    weights: np.ndarray,
    scale: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    half_even: bool,
    xq: np.ndarray,
    qq: np.ndarray,
) -> None:
    """Fill ``xq``, ``qq`` (float64, shape (n_rows, K)) with the module's sums.

    Parameters
    ----------
    values : ndarray of float32, shape (n_rows, L)
        Samples (missing values set to 0: their code is 0, they add nothing).
    weights : ndarray of float64, shape (n_rows, L), or shape (0, 0) for unit weights
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
    weighted = weights.shape[0] > 0
    for r in range(n_rows):
        s[:n_cand] = scale[r]
        lo[:n_cand] = low[r]
        hi[:n_cand] = high[r]
        sx[:] = 0.0
        sq[:] = 0.0
        for j in range(length):
            x = values[r, j]
            w = weights[r, j] if weighted else 1.0
            _accumulate(x, np.float64(x) * w, w, s, lo, hi, half_even, sx, sq)
        xq[r] = sx[:n_cand]
        qq[r] = sq[:n_cand]
