r"""ADMM's alternation on rows sorted once, event by event: each step moves only the code-run boundaries that moved.

On a sorted row the code ``r(v) = round(fl32(v / fl32(s)))`` is non-decreasing, so ``r >= m`` holds from one
position ``P_m`` on (the boundary of level ``m``). The codes under the window ``[lo_c, hi_c]`` (``lo_c = q_min - z``,
``hi_c = q_max - z``, ``lo_c <= 0 <= hi_c``) are ``c_i = lo_c + d_i`` with ``d_i = #{m in (lo_c, hi_c] : P_m <= i}``,
so with ``j = m - lo_c - 1``:

.. math::

    \sum_i d_i = \sum_j (n - P_j),\qquad \sum_i d_i^2 = \sum_j (2 j + 1)(n - P_j),\qquad
    \sum_i c_i v_i \mathrel{-}= \textstyle\sum_{P_{old} \le i < P_{new}} v_i \text{ when } P_j \text{ moves}

(``sum c`` and ``sum c^2`` exact in int64; ``sum c v`` summed over the code runs when the window changes, then
updated by the values the boundaries pass, in double-double). Each boundary keeps ``u = v / (m - 1/2)`` of its two
neighbouring values; while ``s (1 + 1e-6)`` and ``s (1 - 1e-6)`` stay on their sides it certainly does not move.
A step lists the boundaries whose neighbour on the side the step's direction moves is no longer certain (one
comparison each, no branch per boundary), then walks each of them over the values that crossed it, deciding each
value by the same comparison and, within the margin, by the real quantizer (float32 quotient, the scheme's
rounding). The per-step arithmetic is the numpy alternation's (:func:`qcore.calibrators.admm.alternate`,
:func:`qcore.calibrators.admm._affine_block`), in the same order. Cost: the row's sort plus, per step, one comparison
per level and a short walk per boundary that moved (about 54 of 255 per step at INT8 per channel).

Symmetric schemes with mirrored levels (``q_max <= -q_min <= q_max + 1``) run on rows sorted as
:func:`magnitude_keys` instead (:func:`symmetric_magnitude_rows`): ``r(-v) = -r(v)``, so one boundary per code
magnitude serves both signs (the extra negative level of a full range counts negative values only), half the
boundaries to list and to walk. The affine variant stays on the signed values (on magnitudes it measured 3-5 %
faster at INT8 and 9-13 % slower at INT4).
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Relative margin between a boundary's safe interval and the thresholds ``v / (m - 1/2)`` of its neighbours
#: (float32 quotients are within 6e-8 of the real ones).
MARGIN = 1e-6


@numba.njit(cache=True, nogil=True, inline="always")
def _ix(i: int) -> np.uint64:
    """An index as unsigned: numba skips the negative-index wraparound (measured: 11 % of a step's walks)."""
    return np.uint64(i)


@numba.njit(cache=True, nogil=True, inline="always")
def _at_least(v: np.float32, s32: np.float32, m: int, half_away: bool) -> bool:
    """Whether ``round(fl32(v / s32)) >= m`` (half-even, or half away from zero)."""
    x = np.float64(np.float32(v / s32))
    if half_away:
        t = np.trunc(x)
        r = t + math.copysign(1.0, x) if abs(x - t) >= 0.5 else t
    else:
        r = np.rint(x)
    return r >= m


@numba.njit(cache=True, nogil=True, inline="always")
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


@numba.njit(cache=True, nogil=True, inline="always")
def _two_sum(x: float, y: float) -> tuple[float, float]:
    """``x + y = s + e`` exactly (Knuth)."""
    s = x + y
    bb = s - x
    return s, (x - (s - bb)) + (y - bb)


@numba.njit(cache=True, nogil=True, inline="always")
def _dd_add(xh: float, xl: float, y: float) -> tuple[float, float]:
    """Double-double ``(xh + xl) + y``."""
    s, e = _two_sum(xh, y)
    e += xl
    h = s + e
    return h, e - (h - s)


@numba.njit(cache=True, nogil=True)
def _padded(row: np.ndarray, n: int, out: np.ndarray) -> np.ndarray:
    """``[-inf, row[:n], +inf]`` in ``out``: a row's present values between sentinels that stop every walk."""
    out[0] = -np.inf
    for i in range(n):
        out[i + 1] = row[i]
    out[n + 1] = np.inf
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _place_all(
    v: np.ndarray,
    n: int,
    s32: np.float32,
    lo_c: int,
    hi_c: int,
    m_min: int,
    half_away: bool,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sums: np.ndarray,
) -> None:
    """Place every boundary of the window ``(lo_c, hi_c]`` in one pass over the row; ``sums`` from the code runs.

    The boundaries are non-decreasing in ``m``: each walks on from the previous one, summing the run it closes
    (code ``m - 1``) into ``sum c v``.
    """
    p, up, low, inv = state[0], state[1], state[2], state[3]
    s = np.float64(s32)
    s_lo, s_hi = s * (1.0 - MARGIN), s * (1.0 + MARGIN)
    d1, d2 = 0, 0
    xh, xl = 0.0, 0.0
    pos = 0
    for m in range(lo_c + 1, hi_c + 2):  # the run of code m - 1 ends at P_m (the last run at n)
        run = 0.0
        if m <= hi_c:
            j = m - m_min
            w = inv[j]
            while pos < n and not _ge(v[pos + 1], m, w, s_lo, s_hi, s32, half_away):
                run += np.float64(v[pos + 1])
                pos += 1
            p[j] = pos
            up[j], low[j] = np.float64(v[pos + 1]) * w, np.float64(v[pos]) * w
            d1 += n - pos
            d2 += (2 * (m - lo_c) - 1) * (n - pos)
        else:
            for i in range(pos + 1, n + 1):
                run += np.float64(v[i])
        xh, xl = _dd_add(xh, xl, (m - 1) * run)
    sums[0], sums[1], sums[2], sums[3] = d1, d2, xh, xl


@numba.njit(cache=True, nogil=True, inline="always")
def _sync(
    v: np.ndarray,
    n: int,
    s32: np.float32,
    s32_before: np.float32,
    lo_c: int,
    hi_c: int,
    m_min: int,
    half_away: bool,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sums: np.ndarray,
    fresh: bool,
) -> None:
    """Move the window's boundaries that ``s32`` moved; update ``sums = (d1, d2, xh, xl)``.

    ``v``: the row between sentinels (:func:`_padded`): value ``i`` at ``v[i + 1]``.
    ``state = (p, up, low, inv, todo)``. ``fresh``: the window changed (or first step): every boundary is placed
    again (:func:`_place_all`). Otherwise the boundaries were placed
    at ``s32_before``: as the step grows a positive value's code can only fall and a negative value's only rise
    (``fl32(v / s)`` and the rounding are monotone), so each boundary is checked on one side only.
    """
    p, up, low, inv, todo = state
    s = np.float64(s32)
    s_lo, s_hi = s * (1.0 - MARGIN), s * (1.0 + MARGIN)
    d1, d2 = np.int64(sums[0]), np.int64(sums[1])
    xh, xl = sums[2], sums[3]
    passed_all = 0.0  # the values every boundary passed this step (one double-double update per step)
    rise = s32 > s32_before
    count = 0  # the boundaries to check, listed without a branch per boundary (mispredictions cost the most)
    first, middle, last = lo_c + 1 - m_min, max(lo_c + 1, 1) - m_min, hi_c + 1 - m_min
    if fresh:
        _place_all(v, n, s32, lo_c, hi_c, m_min, half_away, state, sums)
        return
    if rise:  # codes of positive values fall, of negative values rise: one side per boundary
        for j in range(first, middle):
            todo[_ix(count)] = j
            count += low[_ix(j)] <= s_hi
        for j in range(middle, last):
            todo[_ix(count)] = j
            count += up[_ix(j)] <= s_hi
    elif s32 < s32_before:
        for j in range(first, middle):
            todo[_ix(count)] = j
            count += up[_ix(j)] >= s_lo
        for j in range(middle, last):
            todo[_ix(count)] = j
            count += low[_ix(j)] >= s_lo
    for k in range(count):
        j = todo[_ix(k)]
        m = j + m_min
        passed = 0.0
        w = inv[_ix(j)]
        old = p[_ix(j)]
        if (m >= 1) == rise:  # values below the boundary now: walk right (the sentinels stop every walk)
            pos = old
            below = low[_ix(j)]
            x = v[_ix(pos + 1)]
            u = up[_ix(j)]  # np.float64(x) * w, stored when the boundary was placed
            if m >= 1:  # codes >= m where u >= s
                while u <= s_hi and (u < s_lo or not _at_least(x, s32, m, half_away)):
                    passed += np.float64(x)
                    pos += 1
                    below = u
                    x = v[_ix(pos + 1)]
                    u = np.float64(x) * w
            else:  # codes >= m where u <= s
                while u >= s_lo and (u > s_hi or not _at_least(x, s32, m, half_away)):
                    passed += np.float64(x)
                    pos += 1
                    below = u
                    x = v[_ix(pos + 1)]
                    u = np.float64(x) * w
            up[_ix(j)], low[_ix(j)] = u, below  # the neighbours' u, as computed in the walk
        else:  # values at or above the boundary now: walk left
            pos = old
            above = up[_ix(j)]
            x = v[_ix(pos)]
            u = low[_ix(j)]  # np.float64(x) * w
            if m >= 1:
                while u >= s_lo and (u > s_hi or _at_least(x, s32, m, half_away)):
                    pos -= 1
                    passed -= np.float64(x)
                    above = u
                    x = v[_ix(pos)]
                    u = np.float64(x) * w
            else:
                while u <= s_hi and (u < s_lo or _at_least(x, s32, m, half_away)):
                    pos -= 1
                    passed -= np.float64(x)
                    above = u
                    x = v[_ix(pos)]
                    u = np.float64(x) * w
            up[_ix(j)], low[_ix(j)] = above, u
        p[_ix(j)] = pos
        d1 -= pos - old  # no branch on "moved": a boundary that stayed adds zeros
        d2 -= (2 * (m - lo_c) - 1) * (pos - old)
        passed_all += passed
    xh, xl = _dd_add(xh, xl, -passed_all)
    sums[0], sums[1], sums[2], sums[3] = d1, d2, xh, xl


@numba.njit(cache=True, nogil=True)
def _magnitudes(keys: np.ndarray, n: int, bits: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """``[-inf, |v|, +inf]`` from a row's first ``n`` :func:`magnitude_keys` (sorted), with ``neg[i + 1] = v_i < 0``.

    ``bits``: uint32 work array of at least ``n + 2``; the result is its float32 view.
    """
    out = bits.view(np.float32)
    for i in range(n):
        bits[i + 1] = keys[i] >> 1
        neg[i + 1] = keys[i] & 1
    out[0], out[n + 1] = -np.inf, np.inf
    return out


def magnitude_keys(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``(bits(|v|) << 1) | sign(v)`` of a float32 block in ``out`` (uint32): ascending keys order by ``|v|``.

    NaN keys are the largest (missing values sort last), ``+-0`` the smallest.
    """
    bits = block.view(np.uint32)
    np.bitwise_and(bits, np.uint32(0x7FFFFFFF), out=out)
    np.left_shift(out, np.uint32(1), out=out)
    np.bitwise_or(out, bits >> np.uint32(31), out=out)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _sync_magnitudes(
    a: np.ndarray,
    neg: np.ndarray,
    n: int,
    s32: np.float32,
    s32_before: np.float32,
    common: int,
    half_away: bool,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sums: np.ndarray,
    fresh: bool,
) -> None:
    r""":func:`_sync` on the magnitudes (:func:`_magnitudes`) of a symmetric scheme: one boundary per code magnitude.

    ``fl32(-v / s) = -fl32(v / s)`` and both roundings are odd, so ``|r(v)| = r(|v|)``: boundary ``j`` is where
    ``r(|v|) >= m = j + 1``. Levels ``m <= common`` (``= q_max``) hold every value, the one above it (``-q_min =
    q_max + 1``, full range) only negative ones. ``sums = (-, sum c^2, xh, xl)`` with
    ``sum c^2 = sum_m (2 m - 1) #{|c| >= m}`` in int64 and ``sum c v = sum_m sum_{|c| >= m} |v|`` in double-double.
    """
    p, up, low, inv, todo = state
    nb = p.shape[0]
    s = np.float64(s32)
    s_lo, s_hi = s * (1.0 - MARGIN), s * (1.0 + MARGIN)
    if fresh:  # place every boundary in one pass, summing the run each closes (|code| m - 1)
        d2 = np.int64(0)
        xh, xl = 0.0, 0.0
        pos = 0
        for m in range(1, nb + 1):
            j = m - 1
            w = inv[_ix(j)]
            run = 0.0
            while pos < n and not _ge(a[_ix(pos + 1)], m, w, s_lo, s_hi, s32, half_away):
                run += np.float64(a[_ix(pos + 1)])
                pos += 1
            p[_ix(j)] = pos
            up[_ix(j)], low[_ix(j)] = np.float64(a[_ix(pos + 1)]) * w, np.float64(a[_ix(pos)]) * w
            if m <= common:
                d2 += (2 * m - 1) * (n - pos)
                xh, xl = _dd_add(xh, xl, (m - 1) * run)
            else:  # past the last common boundary: the runs of |code| common, and the negative values above
                rest, extra, count = run, 0.0, 0
                for i in range(pos + 1, n + 1):
                    x = np.float64(a[_ix(i)])
                    rest += x
                    extra += x * neg[_ix(i)]
                    count += neg[_ix(i)]
                xh, xl = _dd_add(xh, xl, common * rest)
                xh, xl = _dd_add(xh, xl, extra)
                d2 += (2 * m - 1) * count
        if nb == common:
            rest = 0.0
            for i in range(pos + 1, n + 1):
                rest += np.float64(a[_ix(i)])
            xh, xl = _dd_add(xh, xl, common * rest)
        sums[1], sums[2], sums[3] = d2, xh, xl
        return
    d2 = np.int64(sums[1])
    xh, xl = sums[2], sums[3]
    passed_all = 0.0
    rise = s32 > s32_before  # codes fall: boundaries move right (else left)
    count = 0
    if rise:
        for j in range(nb):
            todo[_ix(count)] = j
            count += up[_ix(j)] <= s_hi
    elif s32 < s32_before:
        for j in range(nb):
            todo[_ix(count)] = j
            count += low[_ix(j)] >= s_lo
    for k in range(count):
        j = todo[_ix(k)]
        m = j + 1
        passed = 0.0
        w = inv[_ix(j)]
        old = p[_ix(j)]
        pos = old
        if rise:
            below = low[_ix(j)]
            x = a[_ix(pos + 1)]
            u = up[_ix(j)]
            while u <= s_hi and (u < s_lo or not _at_least(x, s32, m, half_away)):
                passed += np.float64(x)
                pos += 1
                below = u
                x = a[_ix(pos + 1)]
                u = np.float64(x) * w
            up[_ix(j)], low[_ix(j)] = u, below
        else:
            above = up[_ix(j)]
            x = a[_ix(pos)]
            u = low[_ix(j)]
            while u >= s_lo and (u > s_hi or _at_least(x, s32, m, half_away)):
                pos -= 1
                passed -= np.float64(x)
                above = u
                x = a[_ix(pos)]
                u = np.float64(x) * w
            up[_ix(j)], low[_ix(j)] = above, u
        p[_ix(j)] = pos
        if m <= common:  # no branch on "moved": a boundary that stayed adds zeros
            d2 -= (2 * m - 1) * (pos - old)
            passed_all += passed
        else:  # the negative values passed only
            extra, moved = 0.0, 0
            for i in range(min(old, pos) + 1, max(old, pos) + 1):
                extra += np.float64(a[_ix(i)]) * neg[_ix(i)]
                moved += neg[_ix(i)]
            if pos < old:
                extra, moved = -extra, -moved
            d2 -= (2 * m - 1) * moved
            passed_all += extra
    xh, xl = _dd_add(xh, xl, -passed_all)
    sums[1], sums[2], sums[3] = d2, xh, xl


@numba.njit(cache=True, nogil=True)
def _state(nb: int, m_min: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row work arrays ``(p, up, low, inv, todo)`` for ``nb`` boundaries from level ``m_min`` on."""
    inv = np.empty(nb)
    for j in range(nb):
        inv[j] = 1.0 / (m_min + j - 0.5)
    return np.empty(nb, dtype=np.int64), np.empty(nb), np.empty(nb), inv, np.empty(nb, dtype=np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _symmetric_step(
    r: int,
    t: int,
    alpha: float,
    ww: float,
    qq: float,
    wq: float,
    safe_n: float,
    tol: float,
    history: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> tuple[float, bool]:
    """Step ``t`` of row ``r`` from ``<q, q>`` and ``<w, q>``: its history entries, the next ``alpha`` and whether it
    moved (``|alpha' - alpha| > tol alpha``)."""
    alphas, errors, steps, iterations, _ = history
    alphas[r, t] = alpha
    errors[r, t] = max(ww - 2.0 * alpha * wq + alpha * alpha * qq, 0.0) / safe_n
    new = wq / qq if qq > 0 else alpha
    moved = abs(new - alpha) > tol * alpha
    steps[r] = t + 1
    iterations[r] += moved
    return new, moved


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
    ``|alpha' - alpha| <= tol alpha`` or ``max_iter`` steps. Writes the history ``alphas[r, t]``,
    ``errors[r, t] = max(ww - 2 alpha <w,q> + alpha^2 <q,q>, 0) / n`` for ``t < steps[r]``, the moving steps
    ``iterations[r]`` and the last ``alpha`` (``final[r]``, not evaluated). False when a step is not a finite
    positive float32 (the caller then runs the element-wise alternation).
    """
    n_rows = values.shape[0]
    state = _state(qmax - qmin, qmin + 1)
    v = np.empty(values.shape[1] + 2, dtype=np.float32)
    sums = np.zeros(4)
    history = (alphas, errors, steps, iterations, final)
    for r in range(n_rows):
        v = _padded(values[r], count[r], v)
        n = count[r]
        alpha = alpha0[r] if alpha0[r] > 0 else 0.0
        steps[r], iterations[r] = 0, 0
        s32_before = np.float32(0.0)
        safe_n = max(np.float64(n), 1.0)
        for t in range(max_iter if alpha > 0 else 0):
            s32 = np.float32(alpha)
            if not (s32 > 0 and math.isfinite(s32)):
                return False
            _sync(v, n, s32, s32_before, qmin, qmax, qmin + 1, half_away, state, sums, t == 0)
            s32_before = s32
            d1, d2 = np.int64(sums[0]), np.int64(sums[1])
            qq = np.float64(qmin * qmin * n + 2 * qmin * d1 + d2)
            alpha, moved = _symmetric_step(r, t, alpha, ww[r], qq, sums[2] + sums[3], safe_n, tol, history)
            if not moved:
                break
        final[r] = alpha
    return True


@numba.njit(cache=True, nogil=True)
def symmetric_magnitude_rows(
    keys: np.ndarray,
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
    r""":func:`symmetric_rows` on rows of :func:`magnitude_keys` sorted ascending, for ``q_max <= -q_min <= q_max + 1``.

    One boundary per code magnitude (:func:`_sync_magnitudes`): half the boundaries to list and move; the same
    codes, sums and history.
    """
    n_rows = keys.shape[0]
    state = _state(-qmin, 1)
    bits = np.empty(keys.shape[1] + 2, dtype=np.uint32)
    neg = np.zeros(keys.shape[1] + 2, dtype=np.uint8)
    sums = np.zeros(4)
    history = (alphas, errors, steps, iterations, final)
    for r in range(n_rows):
        n = count[r]
        v = _magnitudes(keys[r], n, bits, neg)
        alpha = alpha0[r] if alpha0[r] > 0 else 0.0
        steps[r], iterations[r] = 0, 0
        s32_before = np.float32(0.0)
        safe_n = max(np.float64(n), 1.0)
        for t in range(max_iter if alpha > 0 else 0):
            s32 = np.float32(alpha)
            if not (s32 > 0 and math.isfinite(s32)):
                return False
            _sync_magnitudes(v, neg, n, s32, s32_before, qmax, half_away, state, sums, t == 0)
            s32_before = s32
            qq = np.float64(np.int64(sums[1]))
            alpha, moved = _symmetric_step(r, t, alpha, ww[r], qq, sums[2] + sums[3], safe_n, tol, history)
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
    ``errors``, ``los``, ``his`` at ``[r, t]`` for ``t < steps[r]``), ``iterations``, ``cycled`` and the last range
    ``final[r] = (lo, hi)``. False when a step is not a finite positive float32.
    """
    n_rows = values.shape[0]
    span_codes = qmax - qmin
    m_min = -span_codes + 1
    state = _state(2 * span_codes, m_min)
    v = np.empty(values.shape[1] + 2, dtype=np.float32)
    sums = np.zeros(4)
    for r in range(n_rows):
        v = _padded(values[r], count[r], v)
        n = count[r]
        first_lo, first_hi = lo0[r], hi0[r]
        lo = min(max(first_lo / init_divisor, first_lo), first_hi)
        hi = min(max(first_hi / init_divisor, first_lo), first_hi)
        done = not (first_hi > first_lo)
        n64 = np.float64(n)
        safe_n = max(n64, 1.0)
        steps[r], iterations[r], cycled[r] = 0, 0, False
        lo_c_before = 1
        s32_before = np.float32(0.0)
        for t in range(max_iter):
            wide_lo, wide_hi = min(lo, 0.0), max(hi, 0.0)
            span = wide_hi - wide_lo
            step = span / span_codes if span > 0 else 1.0
            zero = min(max(np.rint(qmin - wide_lo / step), qmin), qmax)
            s32 = np.float32(step)
            if not (s32 > 0 and math.isfinite(s32)):
                return False
            lo_c = qmin - np.int64(zero)
            _sync(v, n, s32, s32_before, lo_c, lo_c + span_codes, m_min, half_away, state, sums, lo_c != lo_c_before)
            s32_before = s32
            lo_c_before = lo_c
            d1, d2 = np.int64(sums[0]), np.int64(sums[1])
            sc = np.float64(lo_c * n + d1)
            scc = np.float64(lo_c * lo_c * n + 2 * lo_c * d1 + d2)
            scv = sums[2] + sums[3]
            s64 = np.float64(s32)
            scales[r, t] = step
            errors[r, t] = max(svv[r] - 2.0 * s64 * scv + s64 * s64 * scc, 0.0) / safe_n
            los[r, t], his[r, t] = lo, hi
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
            if moved and t > 0 and new_lo == los[r, t - 1] and new_hi == his[r, t - 1]:
                cycled[r] = True
                moved = False
            lo, hi = new_lo, new_hi
            if not moved:
                break
        final[r, 0], final[r, 1] = lo, hi
    return True
