r"""ADMM's alternation on rows sorted once by magnitude, event by event: each step moves only the code boundaries
that values crossed.

Under a step ``s`` and the window ``[lo_c, hi_c]`` of shifted codes (``lo_c = q_min - z <= 0 <= hi_c = q_max - z``)
a value's code is ``c(v) = sign(v) min(r(|v|), L_sign)`` with ``r(a) = round(fl32(a / fl32(s)))`` (``fl32(-v / s) =
-fl32(v / s)`` and both roundings are odd) and ``L_+ = hi_c``, ``L_- = -lo_c``. On a row sorted by ``|v|``
(:func:`_key`) ``r >= k`` holds from one position ``P_k`` on (the boundary of magnitude ``k``,
``1 <= k <= K = max(L_+, L_-)``); levels ``k <= min(L_+, L_-)`` count both signs, those above only the wider side:

.. math::

    \sum_i c_i = \sum_k (\#^+_{\ge P_k} - \#^-_{\ge P_k}),\qquad
    \sum_i c_i^2 = \sum_k (2 k - 1)\,\#_{\ge P_k},\qquad
    \sum_i c_i v_i = \sum_k \sum_{i \ge P_k} |v_i|

(over the values of the sides level ``k`` counts; ``sum c`` and ``sum c^2`` exact in int64, ``sum c v`` in
double-double, updated by the values a boundary passes). Each boundary keeps ``u = |v| / (k - 1/2)`` of its two
neighbouring values; while ``s (1 + 1e-6)`` and ``s (1 - 1e-6)`` stay on their sides it certainly does not move.
A step lists, without a branch per boundary, the boundaries whose neighbour on the side the step moves is no longer
certain, then walks each over the values that crossed it, deciding each value by the same comparison and, within
the margin, by the real quantizer (float32 quotient, the scheme's rounding). The per-step arithmetic is the numpy
alternation's (:func:`qcore.calibrators.admm.alternate`, :func:`qcore.calibrators.admm._affine_block`), in the same
order. Cost: the row's sort (:func:`sorted_magnitude_keys`, a radix sort) plus, per step, one comparison per code
magnitude and a short walk per boundary that moved (about 48 of 128 per step at INT8 per channel, two values each).
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: Relative margin between a boundary's safe interval and the thresholds ``|v| / (k - 1/2)`` of its neighbours
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


@numba.njit(cache=True, nogil=True, inline="always")
def _key(bits: np.uint32) -> np.uint32:
    """``(bits(|v|) << 1) | sign(v)`` from a float32's bits: ascending keys order by ``|v|``.

    NaN keys are the largest (missing values sort last), ``+-0`` the smallest.
    """
    return ((bits & np.uint32(0x7FFFFFFF)) << np.uint32(1)) | (bits >> np.uint32(31))


@numba.njit(cache=True, nogil=True)
def sorted_magnitude_keys(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Every row of the float32 ``block``'s :func:`_key` values, sorted, in ``out`` (uint32, the block's shape).

    Least-significant-digit radix sort, digits of 11, 11 and 10 bits: the keys and the counts of all three digits
    in one read of the row, then three counting passes. The same order as ``np.sort`` of the keys (integers), about
    2.4x faster than ``np.sort`` on rows of 4096 (no data-dependent branch).
    """
    n = block.shape[1]
    bits = block.view(np.uint32)
    first, second = np.empty(n, dtype=np.uint32), np.empty(n, dtype=np.uint32)
    low, mid, top = np.empty(2048, dtype=np.int64), np.empty(2048, dtype=np.int64), np.empty(1024, dtype=np.int64)
    mask, shift_mid, shift_top = np.uint32(2047), np.uint32(11), np.uint32(22)
    for r in range(block.shape[0]):
        row = out[r]
        low[:], mid[:], top[:] = 0, 0, 0
        for i in range(n):
            k = _key(bits[r, _ix(i)])
            first[_ix(i)] = k
            low[_ix(k & mask)] += 1
            mid[_ix((k >> shift_mid) & mask)] += 1
            top[_ix(k >> shift_top)] += 1
        a, b, c = 0, 0, 0  # counts -> first position of each digit
        for d in range(2048):
            a, low[_ix(d)] = a + low[_ix(d)], a
            b, mid[_ix(d)] = b + mid[_ix(d)], b
        for d in range(1024):
            c, top[_ix(d)] = c + top[_ix(d)], c
        for i in range(n):
            k = first[_ix(i)]
            d = _ix(k & mask)
            second[_ix(low[d])] = k
            low[d] += 1
        for i in range(n):
            k = second[_ix(i)]
            d = _ix((k >> shift_mid) & mask)
            first[_ix(mid[d])] = k
            mid[d] += 1
        for i in range(n):
            k = first[_ix(i)]
            d = _ix(k >> shift_top)
            row[_ix(top[d])] = k
            top[d] += 1
    return out


@numba.njit(cache=True, nogil=True)
def keys_from_sorted(values: np.ndarray, count: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The sorted :func:`_key` of rows already sorted ascending (``count[r]`` present values first).

    ``O(n)`` per row: the negative values read backwards and the positive ones forwards are each sorted by
    magnitude (zeros between them first); merged by key, as :func:`sorted_magnitude_keys` orders them (the
    signs of zeros are the sorted copy's: ``np.sort`` may swap ``-0.0`` and ``0.0``; a zero's code is 0 either
    way). Positions from ``count[r]`` on hold the remaining (missing) values' keys.
    """
    bits = values.view(np.uint32)
    for r in range(values.shape[0]):
        n = count[r]
        row = values[r]
        below = 0  # row[:below] < 0, row[below:above] == 0, row[above:n] > 0
        while below < n and row[_ix(below)] < 0:
            below += 1
        above = below
        while above < n and row[_ix(above)] == 0:
            above += 1
        o = 0
        for sign in range(2):  # +0 (key 0) before -0 (key 1)
            for i in range(below, above):
                if bits[r, _ix(i)] >> np.uint32(31) == sign:
                    out[r, _ix(o)] = sign
                    o += 1
        i, j = below - 1, above
        while i >= 0 or j < n:
            ki = _key(bits[r, _ix(i)]) if i >= 0 else np.uint32(0xFFFFFFFF)
            kj = _key(bits[r, _ix(j)]) if j < n else np.uint32(0xFFFFFFFF)
            if ki < kj:
                out[r, _ix(o)] = ki
                i -= 1
            else:
                out[r, _ix(o)] = kj
                j += 1
            o += 1
        for t in range(n, values.shape[1]):
            out[r, _ix(t)] = _key(bits[r, _ix(t)])
    return out


@numba.njit(cache=True, nogil=True)
def _magnitudes(keys: np.ndarray, n: int, bits: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """``[-inf, |v|, +inf]`` from a row's first ``n`` :func:`_key` (sorted), with ``neg[i + 1] = v_i < 0``.

    ``bits``: uint32 work array of at least ``n + 2``; the result is its float32 view.
    """
    out = bits.view(np.float32)
    for i in range(n):
        bits[i + 1] = keys[i] >> 1
        neg[i + 1] = keys[i] & 1
    out[0], out[n + 1] = -np.inf, np.inf
    return out


@numba.njit(cache=True, nogil=True)
def _state(nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row work arrays ``(p, up, low, inv, todo)`` for the boundaries of magnitudes ``1 .. nb``."""
    inv = np.empty(nb)
    for j in range(nb):
        inv[j] = 1.0 / (j + 0.5)
    return np.empty(nb, dtype=np.int64), np.empty(nb), np.empty(nb), inv, np.empty(nb, dtype=np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _add_run(
    r: int, lo_c: int, hi_c: int, positive: float, negative: float, n_negative: int, n_run: int, sums: tuple
) -> tuple[int, int, float, float]:
    """``sums = (sum c, sum c^2, xh, xl)`` plus a run of magnitude code ``r``: ``n_run`` values, ``n_negative`` of
    them negative, ``positive`` and ``negative`` their ``|v|`` sums (codes ``min(r, hi_c)``, ``-min(r, -lo_c)``)."""
    sc, scc, xh, xl = sums
    cp, cn = min(r, hi_c), min(r, -lo_c)
    n_positive = n_run - n_negative
    sc += cp * n_positive - cn * n_negative
    scc += cp * cp * n_positive + cn * cn * n_negative
    xh, xl = _dd_add(xh, xl, cp * positive)
    xh, xl = _dd_add(xh, xl, cn * negative)
    return sc, scc, xh, xl


@numba.njit(cache=True, nogil=True, inline="always")
def _place_all(
    a: np.ndarray,
    neg: np.ndarray,
    n: int,
    s32: np.float32,
    lo_c: int,
    hi_c: int,
    half_away: bool,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sums: np.ndarray,
) -> None:
    """Place the boundaries ``1 .. max(hi_c, -lo_c)`` in one pass over the row; ``sums`` from the code runs."""
    p, up, low, inv = state[0], state[1], state[2], state[3]
    s = np.float64(s32)
    s_lo, s_hi = s * (1.0 - MARGIN), s * (1.0 + MARGIN)
    total = (np.int64(0), np.int64(0), 0.0, 0.0)
    wider = max(hi_c, -lo_c)
    pos = 0
    for k in range(1, wider + 2):  # the run of magnitude code k - 1 ends at P_k (the last run at n)
        start = pos
        positive, negative, n_negative = 0.0, 0.0, 0
        w = inv[_ix(min(k, wider) - 1)]
        while pos < n and (k > wider or not _ge(a[_ix(pos + 1)], k, w, s_lo, s_hi, s32, half_away)):
            x = np.float64(a[_ix(pos + 1)])
            g = neg[_ix(pos + 1)]
            negative += x if g else 0.0
            positive += 0.0 if g else x
            n_negative += g
            pos += 1
        if k <= wider:
            p[_ix(k - 1)] = pos
            up[_ix(k - 1)], low[_ix(k - 1)] = np.float64(a[_ix(pos + 1)]) * w, np.float64(a[_ix(pos)]) * w
        total = _add_run(k - 1, lo_c, hi_c, positive, negative, n_negative, pos - start, total)
    sums[0], sums[1], sums[2], sums[3] = total


@numba.njit(cache=True, nogil=True, inline="always")
def _sync(
    a: np.ndarray,
    neg: np.ndarray,
    n: int,
    s32: np.float32,
    s32_before: np.float32,
    lo_c: int,
    hi_c: int,
    half_away: bool,
    state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sums: np.ndarray,
    fresh: bool,
) -> None:
    """Move the boundaries that ``s32`` moved; update ``sums = (sum c, sum c^2, xh, xl)``.

    ``a``, ``neg``: the row's magnitudes between sentinels and their signs (:func:`_magnitudes`).
    ``state = (p, up, low, inv, todo)``. ``fresh``: the window changed (or first step): every boundary is placed
    again (:func:`_place_all`). Otherwise the boundaries were placed at ``s32_before``: as the step grows every
    magnitude code can only fall (``fl32(a / s)`` and the rounding are monotone), so each boundary is checked on
    one side only, and the step lists and walks every boundary the same way.
    """
    if fresh:
        _place_all(a, neg, n, s32, lo_c, hi_c, half_away, state, sums)
        return
    p, up, low, inv, todo = state
    both, wider = min(hi_c, -lo_c), max(hi_c, -lo_c)
    s = np.float64(s32)
    s_lo, s_hi = s * (1.0 - MARGIN), s * (1.0 + MARGIN)
    sc, scc = np.int64(sums[0]), np.int64(sums[1])
    passed_all = 0.0  # the |v| every boundary passed this step (one double-double update per step)
    rise = s32 > s32_before  # codes fall: boundaries move right (else left)
    count = 0  # the boundaries to check, listed without a branch per boundary (mispredictions cost the most)
    if rise:
        for j in range(wider):
            todo[_ix(count)] = j
            count += up[_ix(j)] <= s_hi
    elif s32 < s32_before:
        for j in range(wider):
            todo[_ix(count)] = j
            count += low[_ix(j)] >= s_lo
    for q in range(count):
        j = todo[_ix(q)]
        k = j + 1
        passed, n_negative = 0.0, 0  # signed: values passed to the right count +, to the left -
        w = inv[_ix(j)]
        old = p[_ix(j)]
        pos = old
        if rise:  # the sentinels stop every walk
            below = low[_ix(j)]
            x = a[_ix(pos + 1)]
            u = up[_ix(j)]  # np.float64(x) * w, stored when the boundary was placed
            while u <= s_hi and (u < s_lo or not _at_least(x, s32, k, half_away)):
                passed += np.float64(x)
                n_negative += neg[_ix(pos + 1)]
                pos += 1
                below = u
                x = a[_ix(pos + 1)]
                u = np.float64(x) * w
            up[_ix(j)], low[_ix(j)] = u, below  # the neighbours' u, as computed in the walk
        else:
            above = up[_ix(j)]
            x = a[_ix(pos)]
            u = low[_ix(j)]
            while u >= s_lo and (u > s_hi or _at_least(x, s32, k, half_away)):
                passed -= np.float64(x)
                n_negative -= neg[_ix(pos)]
                pos -= 1
                above = u
                x = a[_ix(pos)]
                u = np.float64(x) * w
            up[_ix(j)], low[_ix(j)] = above, u
        p[_ix(j)] = pos
        moved = pos - old  # no branch on "moved": a boundary that stayed adds zeros
        if k <= both:  # positive values' codes fall by one, negative values' rise by one
            sc -= moved - 2 * n_negative
            scc -= (2 * k - 1) * moved
            passed_all += passed
        else:  # one side only: the values of that sign it passed
            negative = 0.0
            for i in range(min(old, pos) + 1, max(old, pos) + 1):
                negative += np.float64(a[_ix(i)]) * neg[_ix(i)]
            negative = negative if pos > old else -negative
            if hi_c >= k:
                sc -= moved - n_negative
                scc -= (2 * k - 1) * (moved - n_negative)
                passed_all += passed - negative
            else:
                sc += n_negative
                scc -= (2 * k - 1) * n_negative
                passed_all += negative
    xh, xl = _dd_add(sums[2], sums[3], -passed_all)
    sums[0], sums[1], sums[2], sums[3] = sc, scc, xh, xl


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
    r"""The symmetric alternation on every row of sorted :func:`_key` (``count[r]`` present values first).

    ``alpha <- <w, q> / <q, q>`` from ``alpha0`` (rows with ``alpha0 <= 0`` do not run) until
    ``|alpha' - alpha| <= tol alpha`` or ``max_iter`` steps; codes in ``[q_min, q_max]`` (``q_min <= 0 <= q_max``).
    Writes the history ``alphas[r, t]``, ``errors[r, t] = max(ww - 2 alpha <w,q> + alpha^2 <q,q>, 0) / n`` for
    ``t < steps[r]``, the moving steps ``iterations[r]`` and the last ``alpha`` (``final[r]``, not evaluated). False
    when a step is not a finite positive float32 (the caller then runs the element-wise alternation).
    """
    state = _state(max(qmax, -qmin))
    bits = np.empty(keys.shape[1] + 2, dtype=np.uint32)
    neg = np.zeros(keys.shape[1] + 2, dtype=np.uint8)
    sums = np.zeros(4)
    history = (alphas, errors, steps, iterations, final)
    for r in range(keys.shape[0]):
        n = count[r]
        a = _magnitudes(keys[r], n, bits, neg)
        alpha = alpha0[r] if alpha0[r] > 0 else 0.0
        steps[r], iterations[r] = 0, 0
        s32_before = np.float32(0.0)
        safe_n = max(np.float64(n), 1.0)
        for t in range(max_iter if alpha > 0 else 0):
            s32 = np.float32(alpha)
            if not (s32 > 0 and math.isfinite(s32)):
                return False
            _sync(a, neg, n, s32, s32_before, qmin, qmax, half_away, state, sums, t == 0)
            s32_before = s32
            qq = np.float64(np.int64(sums[1]))
            alpha, moved = _symmetric_step(r, t, alpha, ww[r], qq, sums[2] + sums[3], safe_n, tol, history)
            if not moved:
                break
        final[r] = alpha
    return True


@numba.njit(cache=True, nogil=True)
def affine_rows(
    keys: np.ndarray,
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
    r"""The affine variant on every row of sorted :func:`_key` (``count[r]`` present values first).

    Per step (as :func:`qcore.calibrators.admm._affine_block`): ``(s, z)`` of the range ``[lo, hi]``, the sums
    ``sum c``, ``sum c^2``, ``sum c v`` of ``c = q - z``, the least-squares line ``v ~ a c + b'`` and the new range
    clipped to ``[lo0, hi0]``; stops at a fixed point, a 2-cycle or ``max_iter``. Writes the history (``scales``,
    ``errors``, ``los``, ``his`` at ``[r, t]`` for ``t < steps[r]``), ``iterations``, ``cycled`` and the last range
    ``final[r] = (lo, hi)``. False when a step is not a finite positive float32.
    """
    span_codes = qmax - qmin
    state = _state(span_codes)
    bits = np.empty(keys.shape[1] + 2, dtype=np.uint32)
    neg = np.zeros(keys.shape[1] + 2, dtype=np.uint8)
    sums = np.zeros(4)
    for r in range(keys.shape[0]):
        n = count[r]
        a = _magnitudes(keys[r], n, bits, neg)
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
            _sync(a, neg, n, s32, s32_before, lo_c, lo_c + span_codes, half_away, state, sums, lo_c != lo_c_before)
            s32_before = s32
            lo_c_before = lo_c
            sc, scc = np.float64(np.int64(sums[0])), np.float64(np.int64(sums[1]))
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
