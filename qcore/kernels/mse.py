"""MSE's histogram search per channel or group, pruned: shrink factors on signed histograms (asymmetric), thresholds
on ``|x|`` histograms (symmetric: first edge 0, lowest code 0, ``q + 1`` levels).

Per row, a candidate ``k`` (shrink factor ``alpha_k``, step ``s_k``, lowest code ``m_lo[k]``) gets the exact squared
error of :func:`qcore.calibrators.mse.sse_uniform_histogram` (per-segment moments over the bin centres, the sums
taken in index order), or of :func:`qcore.calibrators.mse.sse_direct` over the row's non-empty bins when those are
no more than the grid's levels (the numpy path's rule, applied per row). Candidates are visited from the widest
range down; one is evaluated only if its lower bound, the error of the centres beyond its outer grid points
``m_hi s`` and ``m_lo s`` (each such centre reconstructs to that point), does not exceed the least error found so
far ``U`` plus a round-off margin, so every skipped candidate has ``SSE >= B > U + margin >= min SSE``: the first
minimum is the one of evaluating every candidate. With one lowest code ``m_lo`` for all candidates of a row (the
zero point ``rint(q_min - lo_0 (q_max - q_min) / span)`` does not depend on ``alpha``), the outer points shrink with
the step, so the bound only grows down the list: the first candidate ruled out ends the row's search. Once ``U = 0``
(a zero row, or values on the grid) the candidates left are evaluated from the smallest up to the first of SSE 0,
the first minimum.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _direct_sse(centres: np.ndarray, weights: np.ndarray, n: int, step: float, m_lo: int, n_levels: int) -> float:
    """``sum_j w_j (clamp(rint(c_j / s), m_lo, m_lo + n_levels - 1) s - c_j)^2`` over the first ``n`` samples."""
    top = np.float64(m_lo + n_levels - 1)
    total = 0.0
    for j in range(n):
        e = min(max(np.rint(centres[j] / step), np.float64(m_lo)), top) * step - centres[j]
        total += e * e * weights[j]
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _outer_error(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, first: float, width: float, low: float, high: float):
    """``sum n (c - high)^2`` over the centres above ``high`` plus ``sum n (low - c)^2`` over those below ``low``."""
    bins = c0.shape[0] - 1
    if width <= 0:  # a constant row: every centre is ``first``
        gap = first - high if first > high else (low - first if first < low else 0.0)
        return c0[bins] * gap * gap
    top = np.floor((high - first) / width - 0.5) + 1.0  # centres at or below ``high``
    p = 0 if top < 0 else (bins if top > bins else int(top))
    bottom = np.ceil((low - first) / width - 0.5)  # centres below ``low``
    q = 0 if bottom < 0 else (bins if bottom > bins else int(bottom))
    n, t1, t2 = c0[bins] - c0[p], c1[bins] - c1[p], c2[bins] - c2[p]
    above = t2 - 2.0 * high * t1 + high * high * n if n > 0 else 0.0
    below = c2[q] - 2.0 * low * c1[q] + low * low * c0[q] if c0[q] > 0 else 0.0
    return max(above, 0.0) + max(below, 0.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _grid_sse(c0, c1, c2, centres, weights, n, direct, first, width, step, m_lo, n_levels):
    """One candidate's SSE: value by value over the ``n`` non-empty bins if ``direct``, else by segment moments."""
    if direct:
        return _direct_sse(centres, weights, n, step, m_lo, n_levels)
    return _segment_sse(c0, c1, c2, first, width, step, m_lo, n_levels)


@numba.njit(cache=True, nogil=True, error_model="numpy")
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
        A candidate is skipped only if its bound exceeds ``U (1 + relative) + absolute * n`` (``n``: the row's count);
        ``relative_slack = inf`` evaluates every candidate (the exhaustive search, for tests).
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
        monotone = True  # one zero point for every candidate: the outer grid points shrink with the step
        for k in range(n_candidates):
            monotone &= m_lo[r, k] == m_lo[r, 0]
        for k in range(n_candidates - 1, -1, -1):
            s, low = step[k], np.int64(m_lo[r, k])
            if best == 0.0 and relative_slack < np.inf:  # the first candidate of SSE 0 is the first minimum
                out[r, : k + 1] = np.nan
                for i in range(k + 1):
                    low = np.int64(m_lo[r, i])
                    sse = _grid_sse(c0, c1, c2, centres, weights, n, direct, first[r], width[r], step[i], low, n_levels)
                    out[r, i] = sse
                    if sse == 0.0:
                        break
                break
            if best < np.inf:
                bound = _outer_error(c0, c1, c2, first[r], width[r], low * s, (low + n_levels - 1) * s)
                if bound > best + relative_slack * best + margin:
                    if monotone:  # every smaller candidate clips at least these values, further: ruled out too
                        out[r, : k + 1] = np.nan
                        break
                    out[r, k] = np.nan
                    continue
            sse = _grid_sse(c0, c1, c2, centres, weights, n, direct, first[r], width[r], s, low, n_levels)
            out[r, k] = sse
            best = min(best, sse)


@numba.njit(cache=True, nogil=True, error_model="numpy")
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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _affine_sse(v: np.ndarray, n: int, alpha: float, lo0: float, span: float, qmin: int, qmax: int) -> float:
    """The tests' ``mse_numpy.affine_row_sse`` of the first ``n`` values ``v`` (float64), summed in order."""
    s = alpha * span / np.float64(qmax - qmin)
    z = min(max(np.rint(qmin - alpha * lo0 / s), np.float64(qmin)), np.float64(qmax))
    low, high = qmin - z, qmax - z
    total = 0.0
    for j in range(n):
        e = min(max(np.rint(v[j] / s), low), high) * s - v[j]
        total += e * e
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _side_bound(n: float, t1: float, t2: float, c: float, widen: float) -> float:
    """The tests' ``mse_numpy.range_candidates`` bound ``S2 - 2c(1 + w) S1 + n c^2 (1 + 2w)``, 0 if ``n = 0``."""
    if n == 0:
        return 0.0
    return t2 - 2.0 * c * (1.0 + widen) * t1 + n * c * c * (1.0 + 2.0 * widen)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _clipped_beyond(v: np.ndarray, n: int, s1: np.ndarray, s2: np.ndarray, low: float, high: float) -> float:
    """``sum (x - high)^2`` over the sorted values ``x > high`` plus ``sum (low - x)^2`` over ``x < low`` (prefix
    sums ``s1``, ``s2`` of the first ``n`` values)."""
    p = np.searchsorted(v[:n], high, side="right")
    q = np.searchsorted(v[:n], low, side="left")
    above = (s2[n] - s2[p]) - 2.0 * high * (s1[n] - s1[p]) + (n - p) * high * high
    below = s2[q] - 2.0 * low * s1[q] + q * low * low
    return max(above, 0.0) + max(below, 0.0)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def distinct_affine_search(
    ordered: np.ndarray,
    count: np.ndarray,
    lo0: np.ndarray,
    hi0: np.ndarray,
    qmin: int,
    qmax: int,
    relative_slack: float,
    absolute_slack: float,
    x_out: np.ndarray,
    sse_out: np.ndarray,
    evaluated: np.ndarray,
) -> None:
    """The asymmetric ``'distinct'`` search of :class:`qcore.calibrators.mse.MSE`, one row at a time.

    Candidates: ``alpha = x / hi_0`` for each distinct positive ``x`` of the row, ``x / lo_0`` for each distinct
    negative one, visited from ``alpha = 1`` down (the two sides merged). The grid's outer points lie within
    ``[alpha lo_0 - s/2, alpha hi_0 + s/2]`` (the zero point moves them by at most ``s/2``), so the error of the
    values beyond those limits is a lower bound of a candidate's error, and it only grows as ``alpha`` shrinks: the
    first candidate whose bound exceeds the least error found so far (plus ``relative_slack`` of it and
    ``absolute_slack x n x span^2``) ends the row's search.

    Parameters
    ----------
    ordered : float32 (R, L)
        Each row sorted ascending, the first ``count[r]`` present.
    x_out, sse_out : float64 (R, L)
        The evaluated ``alpha`` ascending (ties in the sorted row's order) and their SSE; NaN beyond
        ``evaluated[r]``.
    """
    n_rows, length = ordered.shape
    v = np.empty(length)
    s1 = np.empty(length + 1)
    s2 = np.empty(length + 1)
    keys = np.empty(length)
    found = np.empty(length)
    where = np.empty(length, dtype=np.int64)
    for r in range(n_rows):
        n = count[r]
        lo, hi = lo0[r], hi0[r]
        span = hi - lo
        s1[0] = 0.0
        s2[0] = 0.0
        for j in range(n):
            v[j] = np.float64(ordered[r, j])
            s1[j + 1] = s1[j] + v[j]
            s2[j + 1] = s2[j] + v[j] * v[j]
        margin = absolute_slack * n * span * span
        best = np.inf
        e = 0
        top, bottom = n - 1, 0  # next positive candidate (from the top), next negative one (from the bottom)
        while True:
            while top >= 0 and v[top] > 0 and top + 1 < n and v[top] == v[top + 1]:
                top -= 1  # a positive candidate is the last of its repeats
            while bottom < n and v[bottom] < 0 and bottom > 0 and v[bottom] == v[bottom - 1]:
                bottom += 1  # a negative one the first of its repeats
            has_top = top >= 0 and v[top] > 0
            has_bottom = bottom < n and v[bottom] < 0
            if not (has_top or has_bottom):
                break
            a_top = v[top] / hi if has_top else -np.inf
            a_bottom = v[bottom] / lo if has_bottom else -np.inf
            if a_top >= a_bottom:
                j, alpha = top, a_top
                top -= 1
            else:
                j, alpha = bottom, a_bottom
                bottom += 1
            if best < np.inf:
                half = 0.5 * (alpha * span / (qmax - qmin))
                bound = _clipped_beyond(v, n, s1, s2, alpha * lo - half, alpha * hi + half)
                if bound > best + relative_slack * best + margin:
                    break  # smaller alpha: narrower limits, more clipped: every candidate left is ruled out
            sse = _affine_sse(v, n, alpha, lo, span, qmin, qmax)
            best = min(best, sse)
            keys[e] = alpha
            found[e] = sse
            where[e] = j
            e += 1
        # ascending alpha, ties by position in the sorted row (insertion sort: a few entries per row)
        for i in range(1, e):
            ka, kf, kw = keys[i], found[i], where[i]
            m = i - 1
            while m >= 0 and (keys[m] > ka or (keys[m] == ka and where[m] > kw)):
                keys[m + 1], found[m + 1], where[m + 1] = keys[m], found[m], where[m]
                m -= 1
            keys[m + 1], found[m + 1], where[m + 1] = ka, kf, kw
        evaluated[r] = e
        x_out[r, :e] = keys[:e]
        sse_out[r, :e] = found[:e]
        x_out[r, e:] = np.nan
        sse_out[r, e:] = np.nan


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _symmetric_sse(v: np.ndarray, n: int, threshold: float, q: int) -> float:
    """The tests' ``mse_numpy.symmetric_row_sse`` of the first ``n`` magnitudes ``v`` (float64), in order."""
    s = threshold / q
    total = 0.0
    for j in range(n):
        e = min(np.rint(v[j] / s), np.float64(q)) * s - v[j]
        total += e * e
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def distinct_symmetric_search(
    ordered: np.ndarray,
    count: np.ndarray,
    q: int,
    relative_slack: float,
    absolute_slack: float,
    x_out: np.ndarray,
    sse_out: np.ndarray,
    evaluated: np.ndarray,
) -> None:
    """The symmetric ``'distinct'`` search of :class:`qcore.calibrators.mse.MSE`, one row at a time.

    Candidates ``T``: each distinct non-zero ``|x|`` of the row (``ordered``: magnitudes sorted ascending, the first
    ``count[r]`` present), visited from the largest down. The clipped error ``sum_{|x| > T} (|x| - T)^2`` only grows
    as ``T`` shrinks, so the first candidate whose bound exceeds the least error found so far (plus
    ``relative_slack`` of it and ``absolute_slack x n x max|x|^2``) ends the row's search; once that error is 0, the
    candidates left are evaluated from the smallest up to the first of SSE 0. ``x_out``, ``sse_out``: the evaluated
    ``T`` ascending and their SSE, NaN beyond ``evaluated[r]``.
    """
    n_rows, length = ordered.shape
    v = np.empty(length)
    s1 = np.empty(length + 1)
    s2 = np.empty(length + 1)
    keys = np.empty(length)
    found = np.empty(length)
    for r in range(n_rows):
        n = count[r]
        s1[0] = 0.0
        s2[0] = 0.0
        for j in range(n):
            v[j] = np.float64(ordered[r, j])
            s1[j + 1] = s1[j] + v[j]
            s2[j + 1] = s2[j] + v[j] * v[j]
        margin = absolute_slack * n * (v[n - 1] * v[n - 1] if n > 0 else 0.0)
        best = np.inf
        e = 0
        j = n - 1
        while j >= 0 and v[j] > 0:
            c = v[j]
            if j + 1 < n and v[j + 1] == c:  # a candidate is the last of its repeats
                j -= 1
                continue
            if best == 0.0:  # the smallest candidate of SSE 0 is the first minimum: scan up to it
                low = 0
                while v[low] <= 0:
                    low += 1
                i = low
                while i <= j:
                    if (i + 1 < n and v[i + 1] == v[i]) or v[i] <= 0:
                        i += 1
                        continue
                    sse = _symmetric_sse(v, n, v[i], q)
                    keys[e] = v[i]
                    found[e] = sse
                    e += 1
                    if sse == 0.0:
                        break
                    i += 1
                break
            bound = _side_bound(np.float64(n - 1 - j), s1[n] - s1[j + 1], s2[n] - s2[j + 1], c, 0.0)
            if best < np.inf and bound > best + relative_slack * best + margin:
                break  # every smaller candidate clips more, further: ruled out too
            sse = _symmetric_sse(v, n, c, q)
            best = min(best, sse)
            keys[e] = c
            found[e] = sse
            e += 1
            j -= 1
        # ascending T (insertion sort: the zero scan appends ascending values after descending ones)
        for i in range(1, e):
            ka, kf = keys[i], found[i]
            m = i - 1
            while m >= 0 and keys[m] > ka:
                keys[m + 1], found[m + 1] = keys[m], found[m]
                m -= 1
            keys[m + 1], found[m + 1] = ka, kf
        evaluated[r] = e
        x_out[r, :e] = keys[:e]
        sse_out[r, :e] = found[:e]
        x_out[r, e:] = np.nan
        sse_out[r, e:] = np.nan
