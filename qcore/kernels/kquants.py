"""Compiled ``make_qkx2_quants`` / ``make_qkx3_quants`` (llama.cpp ``ggml-quants.c``) for :mod:`qcore.formats.kquants`.

The numpy form (:func:`qcore.formats.kquants.make_qkx_fit`) makes ~16 passes over the whole chunk per trial step
(21 steps for Q4_K), each bound by memory traffic; here one tile of sub-blocks (columns) stays in L1 through
every step, and each step is two fused loops: round and accumulate the three sums, then the error.

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


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nearest_int_bits(v, sf, si):  # pragma: no cover - compiled
    """llama.cpp ``nearest_int`` for any float32 ``v``: the low mantissa bits of ``v + 12582912.0f``."""
    sf[0] = v + _MAGIC
    return (si[0] & 0x007FFFFF) - 0x00400000


@numba.njit(cache=True, nogil=True, error_model="numpy")
def qkx_fit(x, weights, nmax, rmin, rdelta, nstep, qkx3, use_mad, scale_out, min_out, codes_out):  # pragma: no cover
    """``make_qkx2_quants`` (``qkx3``: ``make_qkx3_quants``) of every column of ``x`` (float32, (n, m), C order).

    Writes ``scale`` (0 for a flat column), ``the_min = -min`` and the codes ``L`` (uint8, (n, m)) into the outputs.
    The inner loops run over the columns of one row of a tile (contiguous rows: vectorised across columns).
    """
    n, m = x.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    fnmax, frmin, frdelta = np.float32(nmax), np.float32(rmin), np.float32(rdelta)
    sf = np.empty(1, np.float32)
    si = sf.view(np.int32)
    t = TILE
    xt, wt = np.empty((n, t), np.float32), np.empty((n, t), np.float32)
    laux, lbest = np.empty((n, t), np.float32), np.empty((n, t), np.float32)
    lo, hi, sw, sx = _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    mn, isc, scale, best = _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    sl, sl2, sxl, cur, ts, tm = _vectors(t), _vectors(t), _vectors(t), _vectors(t), _vectors(t), _vectors(t)
    flat, ok = np.empty(t, np.bool_), np.empty(t, np.bool_)
    for c0 in range(0, m, t):
        k = min(m, c0 + t) - c0
        for i in range(n):
            xt[i, :k] = x[i, c0 : c0 + k]
            wt[i, :k] = weights[i, c0 : c0 + k]
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
                if v < lo[c]:
                    lo[c] = v
                if v > hi[c]:
                    hi[c] = v
                sw[c] += wr[c]
                sx[c] += wr[c] * v
        safe = True
        for c in range(k):
            mn[c] = zero if lo[c] > zero else lo[c]
            flat[c] = (hi[c] <= mn[c]) if qkx3 else (hi[c] == mn[c])
            span = one if flat[c] else hi[c] - mn[c]  # flat columns (discarded) divide by 1: no inf or NaN
            isc[c] = fnmax / span
            scale[c] = one / isc[c]
            best[c] = zero
            safe = safe and _in_range(isc[c] * (lo[c] - mn[c]), isc[c] * (hi[c] - mn[c]))
        # the first rounding: L = MAX(0, MIN(nmax, nearest_int(iscale (x - min)))) (make_qkx3 too)
        _round_clamped(xt, k, mn, isc, fnmax, safe, lbest, sf, si)
        _error(xt, wt, k, scale, mn, lbest, use_mad, best)
        for step in range(nstep + 1):
            numer = frmin + frdelta * np.float32(step) + fnmax
            safe = True
            for c in range(k):
                span = one if flat[c] else hi[c] - mn[c]
                isc[c] = numer / span
                safe = safe and _in_range(isc[c] * (lo[c] - mn[c]), isc[c] * (hi[c] - mn[c]))
                sl[c] = zero
                sl2[c] = zero
                sxl[c] = zero
            if qkx3:  # v > 0 ? nearest_int(MIN(v, nmax)) : 0 (MIN(v, nmax) is within range when v > 0)
                for i in range(n):
                    xr, wr, lr = xt[i], wt[i], laux[i]
                    for c in range(k):
                        v = isc[c] * (xr[c] - mn[c])
                        u = v if v < fnmax else fnmax
                        r = (u + _MAGIC) - _MAGIC
                        lr[c] = r if v > zero else zero
            else:
                _round_clamped(xt, k, mn, isc, fnmax, safe, laux, sf, si)
            for i in range(n):
                xr, wr, lr = xt[i], wt[i], laux[i]
                for c in range(k):
                    code = lr[c]
                    wl = wr[c] * code
                    sl[c] += wl
                    sl2[c] += wl * code
                    sxl[c] += wl * xr[c]
            for c in range(k):
                det = sw[c] * sl2[c] - sl[c] * sl[c]
                ok[c] = det > zero and not flat[c]
                s = (sw[c] * sxl[c] - sx[c] * sl[c]) / det
                mm = (sl2[c] * sx[c] - sl[c] * sxl[c]) / det
                if mm > zero:
                    mm = zero
                    s = sxl[c] / sl2[c]
                ts[c] = s
                tm[c] = mm
                cur[c] = zero
            _error(xt, wt, k, ts, tm, laux, use_mad, cur)
            changed = False
            for c in range(k):
                ok[c] = ok[c] and cur[c] < best[c]
                if ok[c]:
                    best[c] = cur[c]
                    scale[c] = ts[c]
                    mn[c] = tm[c]
                    changed = True
            if changed:
                for i in range(n):
                    lr, br = laux[i], lbest[i]
                    for c in range(k):
                        br[c] = lr[c] if ok[c] else br[c]
        for c in range(k):
            scale_out[c0 + c] = zero if flat[c] else scale[c]
            min_out[c0 + c] = -mn[c]
        for i in range(n):
            br, out = lbest[i], codes_out[i, c0 : c0 + k]
            for c in range(k):
                out[c] = 0 if flat[c] else np.uint8(br[c])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _vectors(t):  # pragma: no cover - compiled
    """One float32 value per column of a tile."""
    return np.empty(t, np.float32)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _in_range(a, b):  # pragma: no cover - compiled
    """Both finite and within ``nearest_int``'s exact range ``|v| <= 4194303`` (NaN fails)."""
    return abs(a) <= _LIMIT and abs(b) <= _LIMIT


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
def _error(xt, wt, k, scale, mn, codes, use_mad, out):  # pragma: no cover - compiled
    """``out += sum_i w_i f(scale L_i + min - x_i)``, ``f`` = ``|.|`` (``use_mad``) or the square, in order of ``i``."""
    for i in range(xt.shape[0]):
        xr, wr, lr = xt[i], wt[i], codes[i]
        for c in range(k):
            d = scale[c] * lr[c] + mn[c] - xr[c]
            d = abs(d) if use_mad else d * d
            out[c] += wr[c] * d
