"""Test oracle: llama.cpp's K-quant and IQ4_NL quantizers (``ggml/src/ggml-quants.c``) transcribed line by line.

One block at a time, scalar float32 (``np.float32`` scalars: every operation rounds to float32 as C does with
``float``), the C loops as Python loops. Slow on purpose: it is the straightforward reading of the C code that the
vectorised ``qcore.formats.kquants`` must match byte for byte.
"""

from __future__ import annotations

import numpy as np

f32 = np.float32
QK_K = 256
GROUP_MAX_EPS = f32(1e-15)
KVALUES_IQ4NL = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]


def nearest_int(fval: np.float32) -> int:
    val = f32(fval) + f32(12582912.0)
    i = int(np.array(val, dtype=np.float32).view(np.int32))
    return (i & 0x007FFFFF) - 0x00400000


def fp32_to_fp16(v: np.float32) -> int:
    return int(np.array(f32(v), dtype=np.float32).astype(np.float16).view(np.uint16))


def fp16_to_fp32(h: int) -> np.float32:
    return f32(np.array(h, dtype=np.uint16).view(np.float16))


def u8(v: int) -> int:
    return v & 0xFF


def fp16_le(h: int) -> list[int]:
    return [h & 0xFF, h >> 8]


def make_qkx2_quants(n, nmax, x, weights, rmin, rdelta, nstep, use_mad):
    """Returns (scale, the_min, L)."""
    L = [0] * n
    Laux = [0] * n
    mn = x[0]
    mx = x[0]
    sum_w = weights[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        w = weights[i]
        sum_w += w
        sum_x += w * x[i]
    if mn > 0:
        mn = f32(0)
    if mx == mn:
        return f32(0), -mn, [0] * n
    iscale = f32(nmax) / (mx - mn)
    scale = f32(1) / iscale
    best_error = f32(0)
    for i in range(n):
        l_ = nearest_int(iscale * (x[i] - mn))
        L[i] = max(0, min(nmax, l_))
        diff = scale * f32(L[i]) + mn - x[i]
        diff = abs(diff) if use_mad else diff * diff
        best_error += weights[i] * diff
    for is_ in range(nstep + 1):
        iscale = (f32(rmin) + f32(rdelta) * f32(is_) + f32(nmax)) / (mx - mn)
        sum_l = sum_l2 = sum_xl = f32(0)
        for i in range(n):
            l_ = nearest_int(iscale * (x[i] - mn))
            l_ = max(0, min(nmax, l_))
            Laux[i] = l_
            w = weights[i]
            sum_l += w * f32(l_)
            sum_l2 += w * f32(l_) * f32(l_)
            sum_xl += w * f32(l_) * x[i]
        D = sum_w * sum_l2 - sum_l * sum_l
        if D > 0:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            if this_min > 0:
                this_min = f32(0)
                this_scale = sum_xl / sum_l2
            cur_error = f32(0)
            for i in range(n):
                diff = this_scale * f32(Laux[i]) + this_min - x[i]
                diff = abs(diff) if use_mad else diff * diff
                cur_error += weights[i] * diff
            if cur_error < best_error:
                L = list(Laux)
                best_error = cur_error
                scale = this_scale
                mn = this_min
    return scale, -mn, L


def make_qkx3_quants(n, nmax, x, weights, rmin, rdelta, nstep, use_mad):
    """Returns (scale, the_min, L)."""
    L = [0] * n
    Laux = [0] * n
    mn = x[0]
    mx = x[0]
    sum_w = weights[0] if weights is not None else x[0] * x[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        w = weights[i] if weights is not None else x[i] * x[i]
        sum_w += w
        sum_x += w * x[i]
    if mn > 0:
        mn = f32(0)
    if mx <= mn:
        return f32(0), -mn, [0] * n
    iscale = f32(nmax) / (mx - mn)
    scale = f32(1) / iscale
    best_mad = f32(0)
    for i in range(n):
        l_ = nearest_int(iscale * (x[i] - mn))
        L[i] = max(0, min(nmax, l_))
        diff = scale * f32(L[i]) + mn - x[i]
        diff = abs(diff) if use_mad else diff * diff
        w = weights[i] if weights is not None else x[i] * x[i]
        best_mad += w * diff
    for is_ in range(nstep + 1):
        iscale = (f32(rmin) + f32(rdelta) * f32(is_) + f32(nmax)) / (mx - mn)
        sum_l = sum_l2 = sum_xl = f32(0)
        for i in range(n):
            v = iscale * (x[i] - mn)
            l_ = nearest_int(v if v < f32(nmax) else f32(nmax)) if v > 0 else 0
            Laux[i] = l_
            w = weights[i] if weights is not None else x[i] * x[i]
            sum_l += w * f32(l_)
            sum_l2 += w * f32(l_) * f32(l_)
            sum_xl += w * f32(l_) * x[i]
        D = sum_w * sum_l2 - sum_l * sum_l
        if D > 0:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            if this_min > 0:
                this_min = f32(0)
                this_scale = sum_xl / sum_l2
            mad = f32(0)
            for i in range(n):
                diff = this_scale * f32(Laux[i]) + this_min - x[i]
                diff = abs(diff) if use_mad else diff * diff
                w = weights[i] if weights is not None else x[i] * x[i]
                mad += w * diff
            if mad < best_mad:
                L = list(Laux)
                best_mad = mad
                scale = this_scale
                mn = this_min
    return scale, -mn, L


def make_qp_quants(n, nmax, x, quant_weights):
    """Returns (scale, L) with L as stored in uint8."""
    mx = f32(0)
    for i in range(n):
        mx = mx if mx > x[i] else x[i]
    if mx < GROUP_MAX_EPS:
        return f32(0), [0] * n
    iscale = f32(nmax) / mx
    L = [u8(nearest_int(iscale * x[i])) for i in range(n)]
    scale = f32(1) / iscale
    best_mse = f32(0)
    for i in range(n):
        diff = x[i] - scale * f32(L[i])
        w = quant_weights[i]
        best_mse += w * diff * diff
    for is_ in range(-4, 5):
        if is_ == 0:
            continue
        iscale_is = (f32(0.1) * f32(is_) + f32(nmax)) / mx
        scale_is = f32(1) / iscale_is
        mse = f32(0)
        for i in range(n):
            l_ = min(nmax, nearest_int(iscale_is * x[i]))
            diff = x[i] - scale_is * f32(l_)
            w = quant_weights[i]
            mse += w * diff * diff
        if mse < best_mse:
            best_mse = mse
            iscale = iscale_is
    sumlx = f32(0)
    suml2 = f32(0)
    for i in range(n):
        l_ = min(nmax, nearest_int(iscale * x[i]))
        L[i] = u8(l_)
        w = quant_weights[i]
        sumlx += w * x[i] * f32(l_)
        suml2 += w * f32(l_) * f32(l_)
    for _itry in range(5):
        n_changed = 0
        for i in range(n):
            w = quant_weights[i]
            slx = sumlx - w * x[i] * f32(L[i])
            sl2 = suml2 - w * f32(L[i]) * f32(L[i])
            if slx > 0 and sl2 > 0:
                new_l = min(nmax, nearest_int(x[i] * sl2 / slx))
                if new_l != L[i]:
                    slx += w * x[i] * f32(new_l)
                    sl2 += w * f32(new_l) * f32(new_l)
                    if slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = u8(new_l)
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if not n_changed:
            break
    return (sumlx / suml2 if suml2 > 0 else f32(0)), L


def make_qx_quants(n, nmax, x, rmse_type, qw):
    """rmse_type 1 only (what Q6_K uses). Returns (scale, L)."""
    assert rmse_type == 1
    mx = f32(0)
    amax = f32(0)
    for i in range(n):
        ax = abs(x[i])
        if ax > amax:
            amax = ax
            mx = x[i]
    if amax < GROUP_MAX_EPS:
        return f32(0), [0] * n
    L = [0] * n
    iscale = f32(-nmax) / mx
    sumlx = f32(0)
    suml2 = f32(0)
    for i in range(n):
        l_ = nearest_int(iscale * x[i])
        l_ = max(-nmax, min(nmax - 1, l_))
        L[i] = l_ + nmax
        w = qw[i] if qw is not None else x[i] * x[i]
        sumlx += w * x[i] * f32(l_)
        suml2 += w * f32(l_) * f32(l_)
    scale = sumlx / suml2 if suml2 != 0 else f32(0)
    best = scale * sumlx
    for is_ in range(-9, 10):
        if is_ == 0:
            continue
        iscale = -(f32(nmax) + f32(0.1) * f32(is_)) / mx
        sumlx = suml2 = f32(0)
        for i in range(n):
            l_ = nearest_int(iscale * x[i])
            l_ = max(-nmax, min(nmax - 1, l_))
            w = qw[i] if qw is not None else x[i] * x[i]
            sumlx += w * x[i] * f32(l_)
            suml2 += w * f32(l_) * f32(l_)
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            for i in range(n):
                l_ = nearest_int(iscale * x[i])
                L[i] = nmax + max(-nmax, min(nmax - 1, l_))
            scale = sumlx / suml2
            best = scale * sumlx
    return scale, L


def get_scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4)


def _pack_scales_k(ls_list, lm_list):
    scales = [0] * 12
    for j in range(8):
        ls, lm = ls_list[j], lm_list[j]
        if j < 4:
            scales[j] = ls
            scales[j + 4] = lm
        else:
            scales[j + 4] = u8((ls & 0xF) | ((lm & 0xF) << 4))
            scales[j - 4] = u8(scales[j - 4] | ((ls >> 4) << 6))
            scales[j - 0] = u8(scales[j - 0] | ((lm >> 4) << 6))
    return scales


def _requantize_k(x, scales, d, dmin, L, nmax):
    for j in range(8):
        sc, m = get_scale_min_k4(j, scales)
        dd = fp16_to_fp32(d) * f32(sc)
        if not dd:
            continue
        dm = fp16_to_fp32(dmin) * f32(m)
        for ii in range(32):
            l_ = nearest_int((x[32 * j + ii] + dm) / dd)
            L[32 * j + ii] = max(0, min(nmax, l_))


def _scales_mins_ref(x, nmax, rmin, rdelta, nstep):
    L = [0] * QK_K
    mins = [f32(0)] * 8
    scales = [f32(0)] * 8
    max_scale = f32(0)
    max_min = f32(0)
    for j in range(8):
        sum_x2 = f32(0)
        for l_ in range(32):
            sum_x2 += x[32 * j + l_] * x[32 * j + l_]
        av_x = np.sqrt(sum_x2 / f32(32))
        weights = [av_x + abs(x[32 * j + l_]) for l_ in range(32)]
        scales[j], mins[j], Lj = make_qkx2_quants(
            32, nmax, x[32 * j : 32 * j + 32], weights, rmin, rdelta, nstep, False
        )
        L[32 * j : 32 * j + 32] = Lj
        if scales[j] > max_scale:
            max_scale = scales[j]
        if mins[j] > max_min:
            max_min = mins[j]
    inv_scale = f32(63) / max_scale if max_scale > 0 else f32(0)
    inv_min = f32(63) / max_min if max_min > 0 else f32(0)
    ls = [min(63, u8(nearest_int(inv_scale * scales[j]))) for j in range(8)]
    lm = [min(63, u8(nearest_int(inv_min * mins[j]))) for j in range(8)]
    packed = _pack_scales_k(ls, lm)
    d = fp32_to_fp16(max_scale / f32(63))
    dmin = fp32_to_fp16(max_min / f32(63))
    _requantize_k(x, packed, d, dmin, L, nmax)
    return d, dmin, packed, L


def _scales_mins_impl(x, qw, nmax):
    L = [0] * QK_K
    sum_x2 = f32(0)
    for l_ in range(QK_K):
        sum_x2 += x[l_] * x[l_]
    sigma2 = f32(2) * sum_x2 / f32(QK_K)
    scales, mins, sw = [f32(0)] * 8, [f32(0)] * 8, [f32(0)] * 8
    for j in range(8):
        weights = [qw[32 * j + l_] * np.sqrt(sigma2 + x[32 * j + l_] * x[32 * j + l_]) for l_ in range(32)]
        sumw = f32(0)
        for l_ in range(32):
            sumw += weights[l_]
        sw[j] = sumw
        scales[j], mins[j], Lj = make_qkx3_quants(32, nmax, x[32 * j : 32 * j + 32], weights, -0.9, 0.05, 36, False)
        L[32 * j : 32 * j + 32] = Lj
    d_block, Ls = make_qp_quants(8, 63, scales, sw)
    m_block, Lm = make_qp_quants(8, 63, mins, sw)
    if nmax == 31:
        Ls, Lm = [min(63, v) for v in Ls], [min(63, v) for v in Lm]
    packed = _pack_scales_k(Ls, Lm)
    d = fp32_to_fp16(d_block)
    dmin = fp32_to_fp16(m_block)
    _requantize_k(x, packed, d, dmin, L, nmax)
    return d, dmin, packed, L


def quantize_block_q4_k(x, qw=None) -> bytes:
    """``quantize_row_q4_K_ref`` (``qw`` given: ``quantize_row_q4_K_impl``) of one block of 256."""
    x = [f32(v) for v in x]
    if qw is None:
        d, dmin, scales, L = _scales_mins_ref(x, 15, -1.0, 0.1, 20)
    else:
        d, dmin, scales, L = _scales_mins_impl(x, [f32(v) for v in qw], 15)
    qs = []
    for j in range(0, QK_K, 64):
        qs += [L[j + l_] | (L[j + l_ + 32] << 4) for l_ in range(32)]
    return bytes(fp16_le(d) + fp16_le(dmin) + scales + qs)


def quantize_block_q5_k(x, qw=None) -> bytes:
    """``quantize_row_q5_K_ref`` (``qw`` given: ``quantize_row_q5_K_impl``) of one block of 256."""
    x = [f32(v) for v in x]
    if qw is None:
        d, dmin, scales, L = _scales_mins_ref(x, 31, -0.5, 0.1, 15)
    else:
        d, dmin, scales, L = _scales_mins_impl(x, [f32(v) for v in qw], 31)
    qh = [0] * 32
    ql = [0] * 128
    m1, m2 = 1, 2
    off = 0
    for n in range(0, QK_K, 64):
        for j in range(32):
            l1 = L[n + j]
            if l1 > 15:
                l1 -= 16
                qh[j] |= m1
            l2 = L[n + j + 32]
            if l2 > 15:
                l2 -= 16
                qh[j] |= m2
            ql[off + j] = l1 | (l2 << 4)
        m1 <<= 2
        m2 <<= 2
        off += 32
    return bytes(fp16_le(d) + fp16_le(dmin) + scales + qh + ql)


def quantize_block_q6_k(x, qw=None) -> bytes:
    """``quantize_row_q6_K_ref`` (``qw`` given: ``quantize_row_q6_K_impl``) of one block of 256."""
    x = [f32(v) for v in x]
    L = [0] * QK_K
    scales = [f32(0)] * 16
    max_scale = f32(0)
    max_abs_scale = f32(0)
    for ib in range(16):
        w = None if qw is None else [f32(v) for v in qw[16 * ib : 16 * ib + 16]]
        scale, Lb = make_qx_quants(16, 32, x[16 * ib : 16 * ib + 16], 1, w)
        L[16 * ib : 16 * ib + 16] = Lb
        scales[ib] = scale
        abs_scale = abs(scale)
        if abs_scale > max_abs_scale:
            max_abs_scale = abs_scale
            max_scale = scale
    if max_abs_scale < GROUP_MAX_EPS:
        return bytes(210)
    iscale = f32(-128) / max_scale
    d = fp32_to_fp16(f32(1) / iscale)
    sc = [((min(127, nearest_int(iscale * scales[ib])) + 128) & 0xFF) - 128 for ib in range(16)]  # int8_t
    for j in range(16):
        dd = fp16_to_fp32(d) * f32(sc[j])
        if not dd:
            continue
        for ii in range(16):
            l_ = nearest_int(x[16 * j + ii] / dd)
            L[16 * j + ii] = max(-32, min(31, l_)) + 32
    ql = [0] * 128
    qh = [0] * 64
    for h, j in enumerate(range(0, QK_K, 128)):
        for l_ in range(32):
            q1 = L[j + l_ + 0] & 0xF
            q2 = L[j + l_ + 32] & 0xF
            q3 = L[j + l_ + 64] & 0xF
            q4 = L[j + l_ + 96] & 0xF
            ql[64 * h + l_] = q1 | (q3 << 4)
            ql[64 * h + l_ + 32] = q2 | (q4 << 4)
            qh[32 * h + l_] = (
                (L[j + l_] >> 4)
                | ((L[j + l_ + 32] >> 4) << 2)
                | ((L[j + l_ + 64] >> 4) << 4)
                | ((L[j + l_ + 96] >> 4) << 6)
            )
    return bytes(ql + qh + [s & 0xFF for s in sc] + fp16_le(d))


def best_index_int8(n, val, x) -> int:
    x2 = x + x
    idx = 0
    step = n >> 1
    while step > 0:
        j = idx + step
        idx = j if x2 >= f32(val[j - 1] + val[j]) else idx
        step >>= 1
    return idx


def quantize_block_iq4_nl(x, qw=None, ntry=7) -> bytes:
    """``quantize_row_iq4_nl_impl(32, 32, 16, ...)``: ``ntry=7`` as ``quantize_iq4_nl``, ``-1`` as the row ``_ref``."""
    x = [f32(v) for v in x]
    values = KVALUES_IQ4NL
    block_size = 32
    sigma2 = f32(0)
    for j in range(block_size):
        sigma2 += x[j] * x[j]
    sigma2 *= f32(2.0) / f32(block_size)
    if qw is not None:
        weight = [f32(qw[j]) * np.sqrt(sigma2 + x[j] * x[j]) for j in range(block_size)]
    else:
        weight = [x[j] * x[j] for j in range(block_size)]
    L = [0] * block_size
    amax = f32(0)
    mx = f32(0)
    for j in range(block_size):
        ax = abs(x[j])
        if ax > amax:
            amax = ax
            mx = x[j]
    if amax < GROUP_MAX_EPS:
        d = f32(0)
    else:
        d = -mx / f32(values[0]) if ntry > 0 else mx / f32(values[0])
        id_ = f32(1) / d
        sumqx = sumq2 = f32(0)
        for j in range(block_size):
            al = id_ * x[j]
            l_ = best_index_int8(16, values, al)
            L[j] = l_
            q = f32(values[l_])
            w = weight[j]
            sumqx += w * q * x[j]
            sumq2 += w * q * q
        d = sumqx / sumq2 if sumq2 > 0 else f32(0)
        best = d * sumqx
        for itry in range(-ntry, ntry + 1):
            id_ = f32(itry + values[0]) / mx
            sumqx = sumq2 = f32(0)
            for j in range(block_size):
                al = id_ * x[j]
                l_ = best_index_int8(16, values, al)
                q = f32(values[l_])
                w = weight[j]
                sumqx += w * q * x[j]
                sumq2 += w * q * q
            if sumq2 > 0 and sumqx * sumqx > best * sumq2:
                d = sumqx / sumq2
                best = d * sumqx
    dh = fp32_to_fp16(d)
    if ntry > 0:
        id_ = f32(1) / d if d else f32(0)
        for j in range(block_size):
            L[j] = best_index_int8(16, values, id_ * x[j])
    qs = [L[j] | (L[16 + j] << 4) for j in range(16)]
    return bytes(fp16_le(dh) + qs)


def ggml_fp32_to_fp16(f: np.ndarray) -> np.ndarray:
    """``ggml_compute_fp32_to_fp16`` (ggml-impl.h, the scalar path) on an array, bit operations as in C."""
    f = np.asarray(f, dtype=np.float32)
    with np.errstate(over="ignore"):
        base = (np.abs(f) * f32(2.0**112)) * f32(2.0**-110)
    w = f.view(np.uint32).astype(np.uint64)
    shl1_w = (w + w) & 0xFFFFFFFF
    sign = w & 0x80000000
    bias = np.maximum(shl1_w & 0xFF000000, 0x71000000)
    with np.errstate(over="ignore"):
        base = ((bias >> 1) + 0x07800000).astype(np.uint32).view(np.float32) + base
    bits = base.view(np.uint32).astype(np.uint64)
    nonsign = ((bits >> 13) & 0x7C00) + (bits & 0x0FFF)
    return ((sign >> 16) | np.where(shl1_w > 0xFF000000, 0x7E00, nonsign)).astype(np.uint16)


def make_q3_quants(n, nmax, x, do_rmse):
    """Returns (scale, L) with L = l + nmax."""
    assert do_rmse
    mx = f32(0)
    amax = f32(0)
    for i in range(n):
        ax = abs(x[i])
        if ax > amax:
            amax = ax
            mx = x[i]
    if amax < GROUP_MAX_EPS:
        return f32(0), [0] * n
    iscale = f32(-nmax) / mx
    L = [0] * n
    sumlx = f32(0)
    suml2 = f32(0)
    for i in range(n):
        l_ = nearest_int(iscale * x[i])
        l_ = max(-nmax, min(nmax - 1, l_))
        L[i] = l_
        w = x[i] * x[i]
        sumlx += w * x[i] * f32(l_)
        suml2 += w * f32(l_) * f32(l_)
    for _itry in range(5):
        n_changed = 0
        for i in range(n):
            w = x[i] * x[i]
            slx = sumlx - w * x[i] * f32(L[i])
            if slx > 0:
                sl2 = suml2 - w * f32(L[i]) * f32(L[i])
                new_l = nearest_int(x[i] * sl2 / slx)
                new_l = max(-nmax, min(nmax - 1, new_l))
                if new_l != L[i]:
                    slx += w * x[i] * f32(new_l)
                    sl2 += w * f32(new_l) * f32(new_l)
                    if sl2 > 0 and slx * slx * suml2 > sumlx * sumlx * sl2:
                        L[i] = new_l
                        sumlx = slx
                        suml2 = sl2
                        n_changed += 1
        if not n_changed:
            break
    return (sumlx / suml2 if suml2 > 0 else f32(0)), [v + nmax for v in L]


def _pack_2bit(L):
    qs = []
    for j in range(0, QK_K, 128):
        qs += [L[j + l_] | (L[j + l_ + 32] << 2) | (L[j + l_ + 64] << 4) | (L[j + l_ + 96] << 6) for l_ in range(32)]
    return qs


def quantize_block_q2_k(x, qw=None) -> bytes:
    """``quantize_row_q2_K_ref`` (``qw`` given: ``quantize_row_q2_K_impl``) of one block of 256."""
    x = [f32(v) for v in x]
    L = [0] * QK_K
    scales_b = [0] * 16
    scales = [f32(0)] * 16
    mins = [f32(0)] * 16
    if qw is None:
        max_scale = f32(0)
        max_min = f32(0)
        for j in range(16):
            weights = [abs(x[16 * j + l_]) for l_ in range(16)]
            scales[j], mins[j], Lj = make_qkx2_quants(16, 3, x[16 * j : 16 * j + 16], weights, -0.5, 0.1, 15, True)
            L[16 * j : 16 * j + 16] = Lj
            if scales[j] > max_scale:
                max_scale = scales[j]
            if mins[j] > max_min:
                max_min = mins[j]
        if max_scale > 0:
            iscale = f32(15) / max_scale
            scales_b = [u8(nearest_int(iscale * scales[j])) for j in range(16)]
            d = fp32_to_fp16(max_scale / f32(15))
        else:
            d = fp32_to_fp16(f32(0))
        if max_min > 0:
            iscale = f32(15) / max_min
            scales_b = [u8(scales_b[j] | (nearest_int(iscale * mins[j]) << 4)) for j in range(16)]
            dmin = fp32_to_fp16(max_min / f32(15))
        else:
            dmin = fp32_to_fp16(f32(0))
    else:
        qw = [f32(v) for v in qw]
        sumx2 = f32(0)
        for j in range(QK_K):
            sumx2 += x[j] * x[j]
        sigma2 = sumx2 / f32(QK_K)
        sw = [f32(0)] * 16
        for j in range(16):
            weight = [qw[16 * j + l_] * np.sqrt(sigma2 + x[16 * j + l_] * x[16 * j + l_]) for l_ in range(16)]
            for l_ in range(16):
                sw[j] += weight[l_]
            scales[j], mins[j], Lj = make_qkx3_quants(16, 3, x[16 * j : 16 * j + 16], weight, -0.9, 0.05, 36, False)
            L[16 * j : 16 * j + 16] = Lj
        dm, Ls = make_qp_quants(16, 15, scales, sw)
        mm, Lm = make_qp_quants(16, 15, mins, sw)
        d = fp32_to_fp16(dm)
        dmin = fp32_to_fp16(mm)
        scales_b = [u8(Ls[j] | (Lm[j] << 4)) for j in range(16)]
    for j in range(16):
        dd = fp16_to_fp32(d) * f32(scales_b[j] & 0xF)
        if not dd:
            continue
        dm_ = fp16_to_fp32(dmin) * f32(scales_b[j] >> 4)
        for ii in range(16):
            l_ = nearest_int((x[16 * j + ii] + dm_) / dd)
            L[16 * j + ii] = max(0, min(3, l_))
    return bytes(scales_b + _pack_2bit(L) + fp16_le(d) + fp16_le(dmin))


def quantize_block_q3_k(x, qw=None) -> bytes:
    """``quantize_row_q3_K_ref`` (``qw`` given: ``quantize_row_q3_K_impl``) of one block of 256."""
    x = [f32(v) for v in x]
    L = [0] * QK_K
    scales = [f32(0)] * 16
    sb = [0] * 12
    if qw is None:
        max_scale = f32(0)
        amax = f32(0)
        for j in range(16):
            scales[j], Lj = make_q3_quants(16, 4, x[16 * j : 16 * j + 16], True)
            L[16 * j : 16 * j + 16] = Lj
            scale = abs(scales[j])
            if scale > amax:
                amax = scale
                max_scale = scales[j]
        if max_scale:
            iscale = f32(-32) / max_scale
            for j in range(16):
                l_ = ((nearest_int(iscale * scales[j]) + 128) & 0xFF) - 128  # int8_t
                l_ = max(-32, min(31, l_)) + 32
                if j < 8:
                    sb[j] = l_ & 0xF
                else:
                    sb[j - 8] |= (l_ & 0xF) << 4
                l_ >>= 4
                sb[j % 4 + 8] |= l_ << (2 * (j // 4))
            d = fp32_to_fp16(f32(1) / iscale)
        else:
            d = fp32_to_fp16(f32(0))
    else:
        qw = [f32(v) for v in qw]
        sumx2 = f32(0)
        for j in range(QK_K):
            sumx2 += x[j] * x[j]
        sigma2 = f32(2) * sumx2 / f32(QK_K)
        sw = [f32(0)] * 16
        for j in range(16):
            weight = [qw[16 * j + l_] * np.sqrt(sigma2 + x[16 * j + l_] * x[16 * j + l_]) for l_ in range(16)]
            sumw = f32(0)
            for l_ in range(16):
                sumw += weight[l_]
            sw[j] = sumw
            scales[j], Lj = make_qx_quants(16, 4, x[16 * j : 16 * j + 16], 1, weight)
            L[16 * j : 16 * j + 16] = Lj
        d_block, Ls = make_qx_quants(16, 32, scales, 1, sw)
        for j in range(16):
            l_ = Ls[j]
            if j < 8:
                sb[j] = l_ & 0xF
            else:
                sb[j - 8] |= (l_ & 0xF) << 4
            l_ >>= 4
            sb[j % 4 + 8] |= l_ << (2 * (j // 4))
        d = fp32_to_fp16(d_block)
    for j in range(16):
        sc = sb[j] & 0xF if j < 8 else sb[j - 8] >> 4
        sc = (sc | (((sb[8 + j % 4] >> (2 * (j // 4))) & 3) << 4)) - 32
        dd = fp16_to_fp32(d) * f32(sc)
        if not dd:
            continue
        for ii in range(16):
            l_ = nearest_int(x[16 * j + ii] / dd)
            L[16 * j + ii] = max(-4, min(3, l_)) + 4
    hmask = [0] * 32
    m = 0
    hm = 1
    for j in range(QK_K):
        if L[j] > 3:
            hmask[m] |= hm
            L[j] -= 4
        m += 1
        if m == QK_K // 8:
            m = 0
            hm <<= 1
    return bytes(hmask + _pack_2bit(L) + sb + fp16_le(d))
