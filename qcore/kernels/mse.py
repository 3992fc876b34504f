"""MSE's shrink-factor search on per-row signed histograms, pruned (asymmetric, per channel or group).

Per row, a candidate ``k`` (shrink factor ``alpha_k``, step ``s_k``, lowest code ``m_lo[k]``) gets the exact squared
error of :func:`qcore.calibrators.mse.sse_uniform_histogram` (per-segment moments over the bin centres, the sums
taken in index order), or of :func:`qcore.calibrators.mse.sse_direct` over the row's non-empty bins when those are
no more than the grid's levels (the numpy path's rule, applied per row). Candidates are visited from the widest
range down; one is evaluated only if its lower bound, the error of the centres beyond its outer grid points
``m_hi s`` and ``m_lo s`` (each such centre reconstructs to that point), does not exceed the least error found so
far ``U`` plus a round-off margin, so every skipped candidate has ``SSE >= B > U + margin >= min SSE``: the first
minimum is the one of evaluating every candidate.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _prefix(counts: np.ndarray, first: float, width: float, c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> None:
    """Prefix sums of ``n_j``, ``n_j c_j`` and ``n_j c_j^2`` over the centres ``c_j = first + (j + 1/2) width``."""
    c0[0] = 0.0
    c1[0] = 0.0
    c2[0] = 0.0
    for j in range(counts.shape[0]):
        n = np.float64(counts[j])
        c = first + (j + 0.5) * width
        c0[j + 1] = c0[j] + n
        c1[j + 1] = c1[j] + n * c
        c2[j + 1] = c2[j] + n * (c * c)


@numba.njit(cache=True, nogil=True, inline="always")
def _position(j: int, m_lo: int, ratio: float, offset: float, step: float, first: float, width: float, bins: int):
    """Centres below boundary ``j``: ``clip(ceil((m_lo + j + 1/2) s / w - (first / w + 1/2)), 0, bins)``."""
    boundary = np.float64(m_lo + j) + 0.5
    if width > 0:
        y = np.ceil(boundary * ratio - offset)
        return 0 if y < 0 else (bins if y > bins else int(y))
    return bins if boundary * step > first else 0


@numba.njit(cache=True, nogil=True)
def _segment_sse(
    c0: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    first: float,
    width: float,
    step: float,
    m_lo: int,
    n_levels: int,
) -> float:
    """Exact SSE of one grid: ``C_2 - 2s(m_hi C_1 - sum_j C_1[p_j]) + s^2 (m_hi^2 C_0 - sum_j (2(m_lo+j)+1) C_0[p_j])``.

    ``p_j = clip(ceil((m_lo + j + 1/2) s / w - (first / w + 1/2)), 0, bins)`` centres lie below boundary ``j``
    (all or none of them for a constant row, ``w = 0``).
    """
    bins = c0.shape[0] - 1
    tot0, tot1, tot2 = c0[bins], c1[bins], c2[bins]
    sum1 = moment0 = moment1 = 0.0
    ratio = step / width if width > 0 else 0.0
    offset = first / width + 0.5 if width > 0 else 0.0
    for j in range(n_levels - 1):
        p = _position(j, m_lo, ratio, offset, step, first, width, bins)
        sum1 += c1[p]
        moment0 += c0[p]
        moment1 += j * c0[p]
    m_hi = np.float64(m_lo + n_levels - 1)
    sum0 = (2.0 * m_lo + 1.0) * moment0 + 2.0 * moment1
    sse = tot2 - 2.0 * step * (m_hi * tot1 - sum1) + step * step * (m_hi * m_hi * tot0 - sum0)
    return max(sse, 0.0)


@numba.njit(cache=True, nogil=True)
def _direct_sse(centres: np.ndarray, weights: np.ndarray, n: int, step: float, m_lo: int, n_levels: int) -> float:
    """``sum_j w_j (clamp(rint(c_j / s), m_lo, m_lo + n_levels - 1) s - c_j)^2`` over the first ``n`` samples."""
    top = np.float64(m_lo + n_levels - 1)
    total = 0.0
    for j in range(n):
        e = min(max(np.rint(centres[j] / step), np.float64(m_lo)), top) * step - centres[j]
        total += e * e * weights[j]
    return total


@numba.njit(cache=True, nogil=True)
def _outer_error(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, first: float, width: float, low: float, high: float):
    """``sum n (c - high)^2`` over the centres above ``high`` plus ``sum n (low - c)^2`` over those below ``low``."""
    bins = c0.shape[0] - 1
    if width <= 0:
        return 0.0
    top = np.floor((high - first) / width - 0.5) + 1.0  # centres at or below ``high``
    p = 0 if top < 0 else (bins if top > bins else int(top))
    bottom = np.ceil((low - first) / width - 0.5)  # centres below ``low``
    q = 0 if bottom < 0 else (bins if bottom > bins else int(bottom))
    n, t1, t2 = c0[bins] - c0[p], c1[bins] - c1[p], c2[bins] - c2[p]
    above = t2 - 2.0 * high * t1 + high * high * n if n > 0 else 0.0
    below = c2[q] - 2.0 * low * c1[q] + low * low * c0[q] if c0[q] > 0 else 0.0
    return max(above, 0.0) + max(below, 0.0)


@numba.njit(cache=True, nogil=True)
def pruned_histogram_sse(
    counts: np.ndarray,
    first: np.ndarray,
    width: np.ndarray,
    step: np.ndarray,
    m_lo: np.ndarray,
    n_levels: int,
    relative_slack: float,
    absolute_slack: float,
    out: np.ndarray,
) -> None:
    """``out[r, k]``: exact SSE of candidate ``k`` on row ``r``'s histogram, or NaN where the bound rules it out.

    Parameters
    ----------
    counts : int64 (R, bins); first, width : float64 (R,)
        Histogram counts, first edge and bin width (normalised units).
    step : float64 (K,); m_lo : int32 (R, K)
        Each candidate's step and lowest code ``q_min - z`` (codes ``m_lo .. m_lo + n_levels - 1``).
    relative_slack, absolute_slack : float
        A candidate is skipped only if its bound exceeds ``U (1 + relative) + absolute * n`` (``n``: the row's count).
    out : float64 (R, K)
    """
    n_rows, bins = counts.shape
    n_candidates = step.shape[0]
    c0 = np.empty(bins + 1)
    c1 = np.empty(bins + 1)
    c2 = np.empty(bins + 1)
    centres = np.empty(bins)
    weights = np.empty(bins)
    for r in range(n_rows):
        _prefix(counts[r], first[r], width[r], c0, c1, c2)
        n = 0  # the non-empty bins, for rows with fewer of them than the grid has levels
        for j in range(bins):
            if counts[r, j] > 0:
                centres[n] = first[r] + (j + 0.5) * width[r]
                weights[n] = np.float64(counts[r, j])
                n += 1
        direct = n <= n_levels
        margin = absolute_slack * c0[bins]
        best = np.inf
        for k in range(n_candidates - 1, -1, -1):
            s, low = step[k], np.int64(m_lo[r, k])
            if best < np.inf:
                bound = _outer_error(c0, c1, c2, first[r], width[r], low * s, (low + n_levels - 1) * s)
                if bound > best + relative_slack * best + margin:
                    out[r, k] = np.nan
                    continue
            if direct:
                sse = _direct_sse(centres, weights, n, s, low, n_levels)
            else:
                sse = _segment_sse(c0, c1, c2, first[r], width[r], s, low, n_levels)
            out[r, k] = sse
            best = min(best, sse)


@numba.njit(cache=True, nogil=True)
def evaluated_curve(
    alpha: np.ndarray,
    sse: np.ndarray,
    norm2: np.ndarray,
    count: np.ndarray,
    x_out: np.ndarray,
    y_out: np.ndarray,
    chosen: np.ndarray,
    evaluated: np.ndarray,
) -> None:
    """Per row, the evaluated candidates (``sse`` not NaN) in order: ``x = alpha_k``, ``y = sse_k norm^2 / n``.

    ``y = 0`` for a row of ``n = 0``; NaN beyond the ``evaluated[r]`` first entries. ``chosen[r]``: the first
    smallest ``y`` (as :func:`qcore.calibrators.mse.first_minimum` on the whole curve: skipped candidates are larger).
    """
    n_rows, n_candidates = sse.shape
    for r in range(n_rows):
        e = 0
        best = np.inf
        chosen[r] = 0
        for k in range(n_candidates):
            if np.isnan(sse[r, k]):
                continue
            y = (sse[r, k] * norm2[r]) / count[r] if count[r] > 0 else 0.0
            x_out[r, e] = alpha[k]
            y_out[r, e] = y
            if y < best:
                best = y
                chosen[r] = e
            e += 1
        evaluated[r] = e
        x_out[r, e:] = np.nan
        y_out[r, e:] = np.nan
