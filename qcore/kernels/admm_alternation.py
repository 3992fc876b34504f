r"""ADMM's alternation on rows sorted once, event by event: each step moves only the code-run boundaries that moved.

On a sorted row the code ``r(v) = round(fl32(v / fl32(s)))`` is non-decreasing, so ``r >= m`` holds from one
position ``P_m`` on (the boundary of level ``m``). The codes under the window ``[lo_c, hi_c]`` (``lo_c = q_min - z``,
``hi_c = q_max - z``, ``lo_c <= 0 <= hi_c``) are ``c_i = lo_c + d_i`` with ``d_i = #{m in (lo_c, hi_c] : P_m <= i}``,
so with ``j = m - lo_c - 1`` and the prefix sums ``S`` of the sorted values:

.. math::

    \sum_i d_i = \sum_j (n - P_j),\qquad \sum_i d_i^2 = \sum_j (2 j + 1)(n - P_j),\qquad
    \sum_i c_i v_i = \sum_{m \ge 1} (S_n - S_{P_m}) - \sum_{m \le 0} S_{P_m}

(``sum c`` and ``sum c^2`` exact in int64, the last one in double-double from double-double prefix sums). Every
boundary keeps an interval of steps ``[A_m, B_m]`` (float64, ``1e-6`` relative inside the thresholds
``v / (m - 1/2)`` of its two neighbouring values) where it certainly does not move; a step checks those intervals
and re-places only the boundaries outside theirs, evaluating the real quantizer (float32 quotient, the scheme's
rounding) on the values next to them, and updates the sums by the values they passed. The per-step arithmetic is
the numpy alternation's (:func:`qcore.calibrators.admm.alternate`, :func:`qcore.calibrators.admm._affine_block`),
written in the same order.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Relative margin between a boundary's safe interval and the thresholds ``v / (m - 1/2)`` of its neighbours
#: (float32 quotients are within 6e-8 of the real ones).
MARGIN = 1e-6

#: Positions walked one by one before a boundary is re-placed by bisection.
WALK = 8


@numba.njit(cache=True, nogil=True)
def _at_least(v: np.float32, s32: np.float32, m: int, half_away: bool) -> bool:
    """Whether ``round(fl32(v / s32)) >= m`` (half-even, or half away from zero)."""
    x = np.float64(np.float32(v / s32))
    if half_away:
        t = np.trunc(x)
        r = t + math.copysign(1.0, x) if abs(x - t) >= 0.5 else t
    else:
        r = np.rint(x)
    return r >= m


@numba.njit(cache=True, nogil=True)
def _ge(v: np.float32, m: int, inv: float, s_lo: float, s_hi: float, s32: np.float32, half_away: bool) -> bool:
    """:func:`_at_least`, decided from ``u = v / (m - 1/2)`` against ``s (1 -+ MARGIN)`` when outside that band.

    ``m >= 1``: the code is ``>= m`` iff ``u >= s`` (up to the float32 quotient's rounding); ``m <= 0``: iff ``u <= s``.
    """
    u = np.float64(v) * inv
    if m >= 1:
        if u > s_hi:
            return True
        if u < s_lo:
            return False
    else:
        if u < s_lo:
            return True
        if u > s_hi:
            return False
    return _at_least(v, s32, m, half_away)


@numba.njit(cache=True, nogil=True)
def _place(
    v: np.ndarray,
    n: int,
    m: int,
    inv: float,
    s_lo: float,
    s_hi: float,
    s32: np.float32,
    half_away: bool,
    p: np.ndarray,
    up: np.ndarray,
    low: np.ndarray,
    j: int,
) -> None:
    """Re-place boundary ``j`` (level ``m``, ``inv = 1 / (m - 1/2)``) at step ``s32``; store ``u`` of its neighbours.

    ``up[j]``, ``low[j]``: ``u = v / (m - 1/2)`` of the first value with a code ``>= m`` and of the value before
    it (infinities where there is none), which :func:`_sync` compares with the next steps.
    """
    pos = p[j]
    if pos < 0:  # never placed: bisection over the whole row
        lo, hi = 0, n
    else:
        lo, hi = pos, pos
        walked = 0
        while lo > 0 and walked < WALK and _ge(v[lo - 1], m, inv, s_lo, s_hi, s32, half_away):
            lo -= 1
            walked += 1
        if walked == WALK and lo > 0 and _ge(v[lo - 1], m, inv, s_lo, s_hi, s32, half_away):
            hi, lo = lo - 1, 0
        elif walked == 0:
            while hi < n and walked < WALK and not _ge(v[hi], m, inv, s_lo, s_hi, s32, half_away):
                hi += 1
                walked += 1
            if walked == WALK and hi < n and not _ge(v[hi], m, inv, s_lo, s_hi, s32, half_away):
                lo, hi = hi + 1, n
            else:
                lo = hi
        else:
            hi = lo
    while lo < hi:  # first position in [lo, hi] whose code is >= m
        mid = (lo + hi) >> 1
        if _ge(v[mid], m, inv, s_lo, s_hi, s32, half_away):
            hi = mid
        else:
            lo = mid + 1
    p[j] = lo
    if m >= 1:
        up[j] = np.float64(v[lo]) * inv if lo < n else np.inf
        low[j] = np.float64(v[lo - 1]) * inv if lo > 0 else -np.inf
    else:
        up[j] = np.float64(v[lo]) * inv if lo < n else -np.inf
        low[j] = np.float64(v[lo - 1]) * inv if lo > 0 else np.inf


@numba.njit(cache=True, nogil=True)
def _two_sum(x: float, y: float) -> tuple[float, float]:
    """``x + y = s + e`` exactly (Knuth)."""
    s = x + y
    bb = s - x
    return s, (x - (s - bb)) + (y - bb)


@numba.njit(cache=True, nogil=True)
def _dd_add(xh: float, xl: float, yh: float, yl: float) -> tuple[float, float]:
    """Double-double ``(xh + xl) + (yh + yl)``."""
    s, e = _two_sum(xh, yh)
    e += xl + yl
    h = s + e
    return h, e - (h - s)


@numba.njit(cache=True, nogil=True)
def _prefix(v: np.ndarray, n: int, sh: np.ndarray, sl: np.ndarray) -> None:
    """Double-double prefix sums ``S_i = v_0 + ... + v_{i-1}``."""
    sh[0], sl[0] = 0.0, 0.0
    for i in range(n):
        sh[i + 1], sl[i + 1] = _dd_add(sh[i], sl[i], np.float64(v[i]), 0.0)


@numba.njit(cache=True, nogil=True)
def _window_sums(
    lo_c: int, hi_c: int, m_min: int, n: int, p: np.ndarray, sh: np.ndarray, sl: np.ndarray
) -> tuple[int, int, float, float]:
    """``(sum d, sum d^2, sum c v)`` of the window ``(lo_c, hi_c]`` from its placed boundaries (module formulas)."""
    d1, d2 = 0, 0
    xh, xl = 0.0, 0.0
    for m in range(lo_c + 1, hi_c + 1):
        jw = m - lo_c - 1
        pos = p[m - m_min]
        d1 += n - pos
        d2 += (2 * jw + 1) * (n - pos)
        if m >= 1:
            xh, xl = _dd_add(xh, xl, sh[n], sl[n])
        xh, xl = _dd_add(xh, xl, -sh[pos], -sl[pos])
    return d1, d2, xh, xl


@numba.njit(cache=True, nogil=True)
def _sync(
    v: np.ndarray,
    n: int,
    s32: np.float32,
    lo_c: int,
    hi_c: int,
    m_min: int,
    half_away: bool,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sums: np.ndarray,
    fresh: bool,
) -> None:
    """Re-place the window's boundaries that ``s32`` may have moved; update ``sums = (d1, d2, xh, xl)``.

    A boundary stays where it is while ``s (1 + MARGIN) < u`` of the value after it and ``s (1 - MARGIN) > u``
    of the value before it (``m >= 1``; mirrored for ``m <= 0``). ``state = (p, up, low, inv, sh, sl)``.
    ``fresh``: the window changed (or first step): the sums are recomputed from all its boundaries.
    """
    p, up, low, inv, sh, sl = state
    s = np.float64(s32)
    s_lo, s_hi = s * (1.0 - MARGIN), s * (1.0 + MARGIN)
    d1, d2 = np.int64(sums[0]), np.int64(sums[1])
    xh, xl = sums[2], sums[3]
    for m in range(lo_c + 1, hi_c + 1):
        j = m - m_min
        if m >= 1:
            still = up[j] > s_hi and low[j] < s_lo
        else:
            still = up[j] < s_lo and low[j] > s_hi
        if still:
            continue
        old = p[j]
        _place(v, n, m, inv[j], s_lo, s_hi, s32, half_away, p, up, low, j)
        new = p[j]
        if not fresh and new != old:
            jw = m - lo_c - 1
            d1 -= new - old
            d2 -= (2 * jw + 1) * (new - old)
            xh, xl = _dd_add(xh, xl, sh[old], sl[old])
            xh, xl = _dd_add(xh, xl, -sh[new], -sl[new])
    if fresh:
        d1, d2, xh, xl = _window_sums(lo_c, hi_c, m_min, n, p, sh, sl)
    sums[0], sums[1], sums[2], sums[3] = d1, d2, xh, xl


@numba.njit(cache=True, nogil=True)
def _state(
    nb: int, m_min: int, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row work arrays ``(p, up, low, inv, sh, sl)`` for ``nb`` boundaries from level ``m_min`` on."""
    inv = np.empty(nb)
    for j in range(nb):
        inv[j] = 1.0 / (m_min + j - 0.5)
    p = np.empty(nb, dtype=np.int64)
    return p, np.empty(nb), np.empty(nb), inv, np.empty(length + 1), np.empty(length + 1)


@numba.njit(cache=True, nogil=True)
def _reset(state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], m_min: int) -> None:
    """Mark every boundary unplaced (its first check fails)."""
    p, up, low = state[0], state[1], state[2]
    for j in range(p.size):
        p[j] = -1
        up[j] = -np.inf if m_min + j >= 1 else np.inf
        low[j] = up[j]


@numba.njit(cache=True, nogil=True)
def symmetric_rows(
    values: np.ndarray,
    count: np.ndarray,
    alpha0: np.ndarray,
    ww: np.ndarray,
    qmin: int,
    qmax: int,
    half_away: bool,
    max_iter: int,
    tol: float,
    alphas: np.ndarray,
    errors: np.ndarray,
    steps: np.ndarray,
    iterations: np.ndarray,
    final: np.ndarray,
) -> bool:
    r"""The symmetric alternation on every row of ``values`` (sorted ascending, ``count[r]`` present values first).

    ``alpha <- <w, q> / <q, q>`` from ``alpha0`` (rows with ``alpha0 <= 0`` do not run) until
    ``|alpha' - alpha| <= tol alpha`` or ``max_iter`` steps. Writes the history ``alphas[t, r]``,
    ``errors[t, r] = max(ww - 2 alpha <w,q> + alpha^2 <q,q>, 0) / n`` for ``t < steps[r]``, the moving steps
    ``iterations[r]`` and the last ``alpha`` (``final[r]``, not evaluated). False when a step is not a finite
    positive float32 (the caller then runs the element-wise alternation).
    """
    n_rows, length = values.shape
    state = _state(qmax - qmin, qmin + 1, length)
    sums = np.zeros(4)
    for r in range(n_rows):
        v = values[r]
        n = count[r]
        alpha = alpha0[r] if alpha0[r] > 0 else 0.0
        steps[r], iterations[r] = 0, 0
        if not alpha > 0:
            final[r] = alpha
            continue
        _prefix(v, n, state[4], state[5])
        _reset(state, qmin + 1)
        safe_n = max(np.float64(n), 1.0)
        for t in range(max_iter):
            s32 = np.float32(alpha)
            if not (s32 > 0 and math.isfinite(s32)):
                return False
            _sync(v, n, s32, qmin, qmax, qmin + 1, half_away, state, sums, t == 0)
            d1, d2 = np.int64(sums[0]), np.int64(sums[1])
            qq = np.float64(qmin * qmin * n + 2 * qmin * d1 + d2)
            wq = sums[2] + sums[3]
            alphas[t, r] = alpha
            errors[t, r] = max(ww[r] - 2.0 * alpha * wq + alpha * alpha * qq, 0.0) / safe_n
            new = wq / qq if qq > 0 else alpha
            moved = abs(new - alpha) > tol * alpha
            steps[r] = t + 1
            iterations[r] += moved
            alpha = new
            if not moved:
                break
        final[r] = alpha
    return True


@numba.njit(cache=True, nogil=True)
def affine_rows(
    values: np.ndarray,
    count: np.ndarray,
    lo0: np.ndarray,
    hi0: np.ndarray,
    sv: np.ndarray,
    svv: np.ndarray,
    qmin: int,
    qmax: int,
    half_away: bool,
    max_iter: int,
    tol: float,
    init_divisor: float,
    scales: np.ndarray,
    errors: np.ndarray,
    los: np.ndarray,
    his: np.ndarray,
    steps: np.ndarray,
    iterations: np.ndarray,
    cycled: np.ndarray,
    final: np.ndarray,
) -> bool:
    r"""The affine variant on every row of ``values`` (sorted ascending, ``count[r]`` present values first).

    Per step (as :func:`qcore.calibrators.admm._affine_block`): ``(s, z)`` of the range ``[lo, hi]``, the sums
    ``sum c``, ``sum c^2``, ``sum c v`` of ``c = q - z``, the least-squares line ``v ~ a c + b'`` and the new range
    clipped to ``[lo0, hi0]``; stops at a fixed point, a 2-cycle or ``max_iter``. Writes the history (``scales``,
    ``errors``, ``los``, ``his`` at ``[t, r]`` for ``t < steps[r]``), ``iterations``, ``cycled`` and the last range
    ``final[r] = (lo, hi)``. False when a step is not a finite positive float32.
    """
    n_rows, length = values.shape
    span_codes = qmax - qmin
    m_min = -span_codes + 1
    state = _state(2 * span_codes, m_min, length)
    sums = np.zeros(4)
    for r in range(n_rows):
        v = values[r]
        n = count[r]
        first_lo, first_hi = lo0[r], hi0[r]
        lo = min(max(first_lo / init_divisor, first_lo), first_hi)
        hi = min(max(first_hi / init_divisor, first_lo), first_hi)
        done = not (first_hi > first_lo)
        n64 = np.float64(n)
        safe_n = max(n64, 1.0)
        _prefix(v, n, state[4], state[5])
        _reset(state, m_min)
        steps[r], iterations[r], cycled[r] = 0, 0, False
        lo_c_before = 1
        for t in range(max_iter):
            wide_lo, wide_hi = min(lo, 0.0), max(hi, 0.0)
            span = wide_hi - wide_lo
            step = span / span_codes if span > 0 else 1.0
            zero = min(max(np.rint(qmin - wide_lo / step), qmin), qmax)
            s32 = np.float32(step)
            if not (s32 > 0 and math.isfinite(s32)):
                return False
            lo_c = qmin - np.int64(zero)
            _sync(v, n, s32, lo_c, lo_c + span_codes, m_min, half_away, state, sums, lo_c != lo_c_before)
            lo_c_before = lo_c
            d1, d2 = np.int64(sums[0]), np.int64(sums[1])
            sc = np.float64(lo_c * n + d1)
            scc = np.float64(lo_c * lo_c * n + 2 * lo_c * d1 + d2)
            scv = sums[2] + sums[3]
            s64 = np.float64(s32)
            scales[t, r] = step
            errors[t, r] = max(svv[r] - 2.0 * s64 * scv + s64 * s64 * scc, 0.0) / safe_n
            los[t, r], his[t, r] = lo, hi
            steps[r] = t + 1
            det = n64 * scc - sc * sc
            if det > 0:
                slope = (n64 * scv - sc * sv[r]) / det
                shift = (sv[r] - slope * (sc + n64 * zero)) / safe_n
            else:
                slope, shift = step, 0.0
            if done or not slope > 0:
                new_lo, new_hi = lo, hi
            else:
                new_lo = min(max(slope * qmin + shift, first_lo), first_hi)
                new_hi = min(max(slope * qmax + shift, first_lo), first_hi)
            scale_ref = max(abs(lo), abs(hi))
            moved = abs(new_lo - lo) > tol * scale_ref or abs(new_hi - hi) > tol * scale_ref
            iterations[r] += moved
            if moved and t > 0 and new_lo == los[t - 1, r] and new_hi == his[t - 1, r]:
                cycled[r] = True
                moved = False
            lo, hi = new_lo, new_hi
            if not moved:
                break
        final[r, 0], final[r, 1] = lo, hi
    return True
