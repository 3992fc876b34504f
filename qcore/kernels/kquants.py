"""Compiled ``make_qkx2_quants`` / ``make_qkx3_quants`` (llama.cpp ``ggml-quants.c``) for :mod:`qcore.formats.kquants`.

The numpy form (``make_qkx_fit``, the tests' reference in ``tests/qcore/kernels/kquants_numpy.py``) makes ~16
passes over the whole chunk per trial step (21 steps for Q4_K), each bound by memory traffic; here one tile of
sub-blocks (columns) stays in L1 through every step, and each step is two fused loops: round and accumulate the
three sums, then the error.

Bit-exact with the C code (and with the numpy path, the reference in the tests): every operation is the C
expression's float32 operation in the C order (no ``fastmath``: no reassociation, no FMA contraction); sums run
element by element as the C loops do (the loops over columns only interleave independent sums). ``nearest_int``
is ``(v + 1.5 * 2^23) - 1.5 * 2^23`` (round half to even) where every ``v`` of a column lies within
``|v| <= 4194303`` (checked per step from the column's extremes: ``v`` is monotone in ``x``); outside that range it
reads the bits of ``v + 1.5 * 2^23`` as the C code does.
"""

from __future__ import annotations

import numba
import numpy as np

TILE = 256
"""Columns (sub-blocks) processed together: their values, weights and codes stay in L1 across the trial steps."""

_MAGIC = np.float32(12582912.0)
_LIMIT = np.float32(4194303.0)
GROUP_MAX_EPS = np.float32(1e-15)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nearest_int_bits(v, sf, si):  # pragma: no cover - compiled
    """llama.cpp ``nearest_int`` for any float32 ``v``: the low mantissa bits of ``v + 12582912.0f``."""
    sf[0] = v + _MAGIC
    return (si[0] & 0x007FFFFF) - 0x00400000


@numba.njit(cache=True, nogil=True, error_model="numpy")
def qkx_fit(x, weights, nmax, rmin, rdelta, nstep, qkx3, use_mad, scale_out, min_out, codes_out):  # pragma: no cover
    """``make_qkx2_quants`` (``qkx3``: ``make_qkx3_quants``) of every column of ``x`` (float32, (n, m), C order).

    ``weights`` (n, m), or of shape (0, m) for the weights of ``quantize_row_q4_K_ref`` / ``q5_K_ref``:
    ``sqrt(sum x^2 / n) + |x|`` per column. Writes ``scale`` (0 for a flat column), ``the_min = -min`` and the
    codes ``L`` (uint8, (n, m)) into the outputs. The inner loops run over the columns of one row of a tile
    (contiguous rows: vectorised across columns).
    """
    n, m = x.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    fnmax, frmin, frdelta = np.float32(nmax), np.float32(rmin), np.float32(rdelta)
    sf = np.empty(1, np.float32)
    si = sf.view(np.int32)
    t = TILE
    xt, wt = np.empty((n, t), np.float32), np.empty((n, t), np.float32)
    laux = np.empty((n, t), np.float32)
    best_isc, best_shift, from_loop = _vectors(t), _vectors(t), np.empty(t, np.bool_)
    lo, hi, sw, sx = _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    mn, isc, scale, best = _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    sl, sl2, sxl, cur, ts, tm = _vectors(t), _vectors(t), _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    flat, live, ok, pad = np.empty(t, np.bool_), np.empty(t, np.bool_), np.empty(t, np.bool_), _vectors(t)
    for c0 in range(0, m, t):
        k = min(m, c0 + t) - c0
        for i in range(n):
            xt[i, :k] = x[i, c0 : c0 + k]
        if weights.shape[0]:
            for i in range(n):
                wt[i, :k] = weights[i, c0 : c0 + k]
        else:  # quantize_row_q{4,5}_K_ref: w = sqrtf(sum x^2 / n) + fabsf(x), the sum in order
            _mean_weights(xt, k, best, wt)
        x0, w0 = xt[0], wt[0]
        for c in range(k):
            lo[c] = x0[c]
            hi[c] = x0[c]
            sw[c] = w0[c]
            sx[c] = w0[c] * x0[c]
        for i in range(1, n):
            xr, wr = xt[i], wt[i]
            for c in range(k):
                v = xr[c]
                lo[c] = v if v < lo[c] else lo[c]
                hi[c] = v if v > hi[c] else hi[c]
                sw[c] += wr[c]
                sx[c] += wr[c] * v
        safe = True
        for c in range(k):
            mn[c] = zero if lo[c] > zero else lo[c]
            flat[c] = (hi[c] <= mn[c]) if qkx3 else (hi[c] == mn[c])
            live[c] = not flat[c]
            pad[c] = one if flat[c] else zero  # flat columns (results discarded) divide by 1: no inf or NaN
            isc[c] = fnmax / ((hi[c] - mn[c]) + pad[c])
            scale[c] = one / isc[c]
            best[c] = zero
            a, b = isc[c] * (lo[c] - mn[c]), isc[c] * (hi[c] - mn[c])
            safe = safe & (abs(a) <= _LIMIT) & (abs(b) <= _LIMIT)
        # the first rounding: L = MAX(0, MIN(nmax, nearest_int(iscale (x - min)))) (make_qkx3 too)
        _round_clamped(xt, k, mn, isc, fnmax, safe, laux, sf, si)
        _error(xt, wt, k, scale, mn, laux, use_mad, best)
        for c in range(k):
            best_isc[c] = isc[c]
            best_shift[c] = mn[c]
            from_loop[c] = False
        for step in range(nstep + 1):
            numer = frmin + frdelta * np.float32(step) + fnmax
            unsafe = 0  # per-column loops without branches: they vectorise
            for c in range(k):
                isc[c] = numer / ((hi[c] - mn[c]) + pad[c])
                in_range = (abs(isc[c] * (lo[c] - mn[c])) <= _LIMIT) & (abs(isc[c] * (hi[c] - mn[c])) <= _LIMIT)
                unsafe += 0 if in_range else 1
                sl[c] = zero
                sl2[c] = zero
                sxl[c] = zero
            if qkx3 or unsafe == 0:  # rounding and sums in one loop
                _round_and_sum(xt, wt, k, mn, isc, fnmax, qkx3, laux, sl, sl2, sxl)
            else:
                _round_clamped(xt, k, mn, isc, fnmax, False, laux, sf, si)
                _sums(xt, wt, k, laux, sl, sl2, sxl)
            for c in range(k):
                det = sw[c] * sl2[c] - sl[c] * sl[c]
                this_scale = (sw[c] * sxl[c] - sx[c] * sl[c]) / det
                this_min = (sl2[c] * sx[c] - sl[c] * sxl[c]) / det
                positive = this_min > zero
                ts[c] = sxl[c] / sl2[c] if positive else this_scale
                tm[c] = zero if positive else this_min
                ok[c] = (det > zero) & live[c]
                cur[c] = zero
            _error(xt, wt, k, ts, tm, laux, use_mad, cur)
            for c in range(k):  # the codes are recomputed at the end from the rounding that won
                take = ok[c] & (cur[c] < best[c])
                best[c] = cur[c] if take else best[c]
                scale[c] = ts[c] if take else scale[c]
                best_isc[c] = isc[c] if take else best_isc[c]
                best_shift[c] = mn[c] if take else best_shift[c]
                from_loop[c] = take | from_loop[c]
                mn[c] = tm[c] if take else mn[c]
        for c in range(k):
            scale_out[c0 + c] = zero if flat[c] else scale[c]
            min_out[c0 + c] = -mn[c]
        # L: the winning trial's rounding (make_qkx3's own rule for a trial of its loop), 0 in flat columns
        unsafe = 0
        for c in range(k):
            a, b = best_isc[c] * (lo[c] - best_shift[c]), best_isc[c] * (hi[c] - best_shift[c])
            unsafe += 0 if (abs(a) <= _LIMIT) & (abs(b) <= _LIMIT) else 1
        _round_clamped(xt, k, best_shift, best_isc, fnmax, unsafe == 0, laux, sf, si)
        for i in range(n):
            xr, lr, out = xt[i], laux[i], codes_out[i, c0 : c0 + k]
            for c in range(k):
                code = lr[c]
                if qkx3:
                    v = best_isc[c] * (xr[c] - best_shift[c])
                    u = v if v < fnmax else fnmax
                    r = (u + _MAGIC) - _MAGIC
                    code = (r if v > zero else zero) if from_loop[c] else code
                out[c] = 0 if flat[c] else np.uint8(code)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vectors(t):  # pragma: no cover - compiled
    """One float32 value per column of a tile."""
    return np.empty(t, np.float32)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _mean_weights(xt, k, sums, wt):  # pragma: no cover - compiled
    """``wt = sqrtf(sum_x2 / n) + fabsf(x)`` per column, ``sum_x2 += x * x`` in order of ``i`` (``sums`` scratch)."""
    n = xt.shape[0]
    for c in range(k):
        sums[c] = np.float32(0.0)
    for i in range(n):
        xr = xt[i]
        for c in range(k):
            sums[c] += xr[c] * xr[c]
    for c in range(k):
        sums[c] = np.sqrt(sums[c] / np.float32(n))
    for i in range(n):
        xr, wr = xt[i], wt[i]
        for c in range(k):
            wr[c] = sums[c] + abs(xr[c])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def requantize(x, d, dm, lo, hi, fit_codes, out):  # pragma: no cover - compiled
    """The final codes of Q4_K / Q5_K (``lo = 0``, ``hi = nmax``) and Q6_K (``dm = 0``, ``lo = -32``, ``hi = 31``):
    ``MAX(lo, MIN(hi, nearest_int((x + dm) / d))) - lo`` for each sub-block (row ``j`` of ``x``, (m, n) float32;
    ``d``, ``dm`` (m,)), or the fit's codes (column ``j`` of ``fit_codes``, (n, m)) where ``d == 0``, as
    llama.cpp's last loop. Into ``out`` (uint8, (m, n)). (``x + 0`` is ``x`` but for the sign of a zero, which
    ``nearest_int`` drops.)"""
    m, n = x.shape
    buf = np.empty(n, np.float32)
    bits = buf.view(np.int32)
    for j in range(m):
        row = out[j]
        if d[j] == np.float32(0.0):
            for i in range(n):
                row[i] = fit_codes[i, j]
            continue
        xr = x[j]
        for i in range(n):
            buf[i] = (xr[i] + dm[j]) / d[j] + _MAGIC
        for i in range(n):
            row[i] = min(max((bits[i] & 0x007FFFFF) - 0x00400000, lo), hi) - lo


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _round_clamped(xt, k, mn, isc, fnmax, safe, out, sf, si):  # pragma: no cover - compiled
    """``out = MAX(0, MIN(nmax, nearest_int(iscale (x - min))))`` as float32 (``safe``: every ``v`` in range)."""
    zero = np.float32(0.0)
    for i in range(xt.shape[0]):
        xr, lr = xt[i], out[i]
        if safe:
            for c in range(k):
                r = (isc[c] * (xr[c] - mn[c]) + _MAGIC) - _MAGIC
                lr[c] = min(max(r, zero), fnmax)
        else:
            for c in range(k):
                q = _nearest_int_bits(isc[c] * (xr[c] - mn[c]), sf, si)
                lr[c] = np.float32(max(0, min(int(fnmax), q)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _round_and_sum(xt, wt, k, mn, isc, fnmax, qkx3, laux, sl, sl2, sxl):  # pragma: no cover - compiled
    """One trial's codes ``laux`` and the sums ``sum w l``, ``sum w l^2``, ``sum w l x`` (in order of ``i``) where
    ``nearest_int`` is ``rint``: ``make_qkx2``'s ``MAX(0, MIN(nmax, nearest_int(v)))`` with every ``v`` in range,
    or ``make_qkx3``'s ``v > 0 ? nearest_int(MIN(v, nmax)) : 0`` (always in range)."""
    zero = np.float32(0.0)
    for i in range(xt.shape[0]):
        xr, wr, lr = xt[i], wt[i], laux[i]
        if qkx3:
            for c in range(k):
                xv = xr[c]
                v = isc[c] * (xv - mn[c])
                u = v if v < fnmax else fnmax
                r = (u + _MAGIC) - _MAGIC
                code = r if v > zero else zero
                lr[c] = code
                wl = wr[c] * code
                sl[c] += wl
                sl2[c] += wl * code
                sxl[c] += wl * xv
        else:
            for c in range(k):
                xv = xr[c]
                r = (isc[c] * (xv - mn[c]) + _MAGIC) - _MAGIC
                code = min(max(r, zero), fnmax)
                lr[c] = code
                wl = wr[c] * code
                sl[c] += wl
                sl2[c] += wl * code
                sxl[c] += wl * xv


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sums(xt, wt, k, laux, sl, sl2, sxl):  # pragma: no cover - compiled
    """``sum w l``, ``sum w l^2``, ``sum w l x`` of the codes ``laux``, in order of ``i``."""
    for i in range(xt.shape[0]):
        xr, wr, lr = xt[i], wt[i], laux[i]
        for c in range(k):
            code = lr[c]
            wl = wr[c] * code
            sl[c] += wl
            sl2[c] += wl * code
            sxl[c] += wl * xr[c]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _error(xt, wt, k, scale, mn, codes, use_mad, out):  # pragma: no cover - compiled
    """``out += sum_i w_i f(scale L_i + min - x_i)``, ``f`` = ``|.|`` (``use_mad``) or the square, in order of ``i``."""
    for i in range(xt.shape[0]):
        xr, wr, lr = xt[i], wt[i], codes[i]
        for c in range(k):
            d = scale[c] * lr[c] + mn[c] - xr[c]
            d = abs(d) if use_mad else d * d
            out[c] += wr[c] * d


@numba.njit(cache=True, nogil=True, error_model="numpy")
def qx_fit(x, weights, nmax, scale_out, codes_out):  # pragma: no cover - compiled
    """``make_qx_quants(n, nmax, x, L, rmse_type=1, qw)`` of every column of ``x`` (float32, (n, m), C order).

    ``max`` the first value of largest ``|x|``; trial ``iscale = -nmax / max`` then ``-(nmax + 0.1 k) / max`` for
    ``k = -9..9`` (not 0), ``l = MAX(-nmax, MIN(nmax - 1, nearest_int(iscale x)))``, ``sumlx += w x l``,
    ``suml2 += w l l`` in order of ``i``; a trial wins when ``suml2 > 0`` and ``sumlx^2 > best suml2``. Where
    ``max|x| >= 1e-15``, ``|iscale x| <= nmax + 1``: ``nearest_int`` is ``rint`` (columns below are all-zero
    blocks: scale 0, codes 0). Writes the scale and ``L = l + nmax`` (uint8, (n, m)).
    """
    n, m = x.shape
    zero = np.float32(0.0)
    fnmax = np.float32(nmax)
    lo_code, hi_code = -fnmax, fnmax - np.float32(1.0)
    t = TILE
    xt, wxt, wt = np.empty((n, t), np.float32), np.empty((n, t), np.float32), np.empty((n, t), np.float32)
    amax, mx, isc, best_isc = _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    sumlx, suml2, scale, best = _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    for c0 in range(0, m, t):
        k = min(m, c0 + t) - c0
        for i in range(n):
            xt[i, :k] = x[i, c0 : c0 + k]
            wt[i, :k] = weights[i, c0 : c0 + k]
        for c in range(k):
            amax[c] = zero
            mx[c] = zero
        for i in range(n):
            xr, wr, wxr = xt[i], wt[i], wxt[i]
            for c in range(k):
                ax = abs(xr[c])
                larger = ax > amax[c]
                mx[c] = xr[c] if larger else mx[c]
                amax[c] = ax if larger else amax[c]
                wxr[c] = wr[c] * xr[c]
        for trial in range(19):
            kk = 0 if trial == 0 else (trial - 10 if trial < 10 else trial - 9)  # 0, -9..-1, 1..9
            for c in range(k):
                if kk == 0:
                    isc[c] = -fnmax / mx[c]
                else:
                    isc[c] = -(fnmax + np.float32(0.1) * np.float32(kk)) / mx[c]
                sumlx[c] = zero
                suml2[c] = zero
            for i in range(n):
                xr, wr, wxr = xt[i], wt[i], wxt[i]
                for c in range(k):
                    r = (isc[c] * xr[c] + _MAGIC) - _MAGIC
                    code = min(max(r, lo_code), hi_code)
                    sumlx[c] += wxr[c] * code
                    suml2[c] += wr[c] * code * code
            for c in range(k):
                if trial == 0:
                    scale[c] = sumlx[c] / suml2[c] if suml2[c] != zero else zero
                    best[c] = scale[c] * sumlx[c]
                    best_isc[c] = isc[c]
                else:
                    better = (suml2[c] > zero) & (sumlx[c] * sumlx[c] > best[c] * suml2[c])
                    best_isc[c] = isc[c] if better else best_isc[c]
                    scale[c] = sumlx[c] / suml2[c] if better else scale[c]
                    best[c] = scale[c] * sumlx[c] if better else best[c]
        for c in range(k):
            scale_out[c0 + c] = scale[c] if amax[c] >= GROUP_MAX_EPS else zero
        for i in range(n):
            xr, out = xt[i], codes_out[i, c0 : c0 + k]
            for c in range(k):
                r = (best_isc[c] * xr[c] + _MAGIC) - _MAGIC
                code = min(max(r, lo_code), hi_code) + fnmax
                out[c] = np.uint8(code) if amax[c] >= GROUP_MAX_EPS else 0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def iq4nl_fit(  # pragma: no cover - compiled
    x, weights, ntry, index_of_floor, level_of_floor, floor_lo, floor_hi, d_out, codes_out
):
    """``quantize_row_iq4_nl_impl(32, 32, ...)``'s search for every column of ``x`` (float32, (n, m), C order).

    ``d = -max / v[0]`` (``ntry <= 0``: ``max / v[0]``), codes ``best_index_int8(v, x / d)``, least-squares
    ``d = sum w q x / sum w q^2`` (0 when ``sum w q^2 = 0``), then trial ``id = (itry + v[0]) / max`` for
    ``itry = -ntry..ntry``, kept when ``sumq2 > 0`` and ``sumqx^2 > best sumq2``; ``ntry > 0`` re-rounds with
    ``1 / d``. The level index of ``u`` is ``index_of_floor[floor(2 u)]`` (clipped to ``floor_lo..floor_hi``),
    its level ``level_of_floor[...]`` (``best_index_iq4nl`` in ``tests/qcore/kernels/kquants_numpy.py``). Columns with
    ``max|x| < 1e-15`` get ``d = 0``. Writes ``d`` and the codes (uint8, (n, m)).
    """
    n, m = x.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    flo, fhi = np.float32(floor_lo), np.float32(floor_hi)
    v0 = np.float32(level_of_floor[0])  # the lowest level, v[0]
    t = TILE
    xt, wt = np.empty((n, t), np.float32), np.empty((n, t), np.float32)
    slots = np.empty(t, np.int64)
    amax, mx, dd, best, idv = _vectors(t), _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    sumqx, sumq2 = _vectors(t), _vectors(t)
    for c0 in range(0, m, t):
        k = min(m, c0 + t) - c0
        for i in range(n):
            xt[i, :k] = x[i, c0 : c0 + k]
            wt[i, :k] = weights[i, c0 : c0 + k]
        for c in range(k):
            amax[c] = zero
            mx[c] = zero
        for i in range(n):
            xr = xt[i]
            for c in range(k):
                ax = abs(xr[c])
                larger = ax > amax[c]
                mx[c] = xr[c] if larger else mx[c]
                amax[c] = ax if larger else amax[c]
        for c in range(k):
            d0 = (-mx[c] if ntry > 0 else mx[c]) / v0
            idv[c] = one / d0
        for trial in range(-1, 2 * ntry + 1 if ntry > 0 else 0):
            if trial >= 0:
                for c in range(k):
                    idv[c] = np.float32(trial - ntry + np.int64(v0)) / mx[c]
            for c in range(k):
                sumqx[c] = zero
                sumq2[c] = zero
            for i in range(n):
                xr, wr = xt[i], wt[i]
                for c in range(k):
                    s = _floor_slot(idv[c] * xr[c], flo, fhi)
                    slots[c] = s
                for c in range(k):
                    q = level_of_floor[slots[c]]
                    wq = wr[c] * q
                    sumqx[c] += wq * xr[c]
                    sumq2[c] += wq * q
            for c in range(k):
                if trial < 0:
                    dd[c] = sumqx[c] / sumq2[c] if sumq2[c] > zero else zero
                    best[c] = dd[c] * sumqx[c]
                else:
                    better = (sumq2[c] > zero) & (sumqx[c] * sumqx[c] > best[c] * sumq2[c])
                    dd[c] = sumqx[c] / sumq2[c] if better else dd[c]
                    best[c] = dd[c] * sumqx[c] if better else best[c]
        for c in range(k):
            live = amax[c] >= GROUP_MAX_EPS
            dd[c] = dd[c] if live else zero
            d_out[c0 + c] = dd[c]
            if ntry > 0:
                idv[c] = one / dd[c] if dd[c] != zero else zero
            else:  # the first rounding's codes (1 / d of the first d), 0 in all-zero columns
                idv[c] = idv[c] if live else zero
        for i in range(n):
            xr, out = xt[i], codes_out[i, c0 : c0 + k]
            for c in range(k):
                out[c] = index_of_floor[_floor_slot(idv[c] * xr[c], flo, fhi)]
                if ntry <= 0 and amax[c] < GROUP_MAX_EPS:
                    out[c] = 0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _floor_slot(u, flo, fhi):  # pragma: no cover - compiled
    """Row of the IQ4_NL tables for ``u``: ``floor(2 u)`` clipped to ``flo..fhi``, minus ``flo`` (NaN: row 0)."""
    f = np.floor(u + u)
    f = min(max(f, flo), fhi) - flo
    return np.int64(f) if f == f else np.int64(0)
