"""GGUF K-quants (Q2_K .. Q6_K) and IQ4_NL: llama.cpp's quantizers, vectorised over blocks.

``gguf.quants`` (llama.cpp's own Python package) dequantizes these types but cannot quantize them. This module
ports the quantizers of ``ggml/src/ggml-quants.c`` operation by operation in float32 (same operations, same
order, sums accumulated element by element as the C loops do, no fused multiply-add), so that the block bytes
equal the C reference's, and leaves decoding to ``gguf.quants.dequantize``: the bytes are the contract. The search
loops run compiled (:mod:`qcore.kernels.kquants`, numba without ``fastmath``: the same float32 operations in the
same order): ``make_qkx2_quants`` / ``make_qkx3_quants`` (Q2_K, Q4_K, Q5_K), ``make_qx_quants`` (Q6_K, Q3_K with
an importance matrix), IQ4_NL's trial scales, and the final re-rounding of Q4_K / Q5_K / Q6_K; their numpy forms
(``tests/qcore/kernels/kquants_numpy.py``) are the tests' reference, bit for bit.

Checked byte for byte against llama.cpp's C compiled as x86-64 builds compile ``ggml-base`` (no fused multiply-add;
a compiler that contracts ``a * b + c`` into FMA, e.g. GCC on aarch64 by default, changes a few blocks), and in
the tests against a scalar transcription of the C functions. ``nearest_int`` (``v + 12582912.0f``, read from the
bits) rounds half to even, not half away.

Blocks run along the last axis (a row of a weight matrix): 256 values per K-quant super-block, 32 per IQ4_NL
block. Without an importance matrix the paths are llama.cpp's ``quantize_row_q2_K_ref`` .. ``q6_K_ref`` (what
``llama-quantize`` writes without ``--imatrix``) and ``quantize_iq4_nl``; with one they are
``quantize_row_q2_K_impl`` etc. (``quant_weights``).

Formats (``d``, ``dmin`` fp16; ``sc``, ``m`` unsigned 6-bit unless said; ``q`` the stored code):

- **Q2_K** (2.625 bpw, 84 bytes per 256): 16 sub-blocks of 16, ``x = d * sc_j * q - dmin * m_j``, 4-bit ``sc``,
  ``m``, ``q`` in 0..3; each sub-block's fit by ``make_qkx2_quants`` on the weighted mean absolute error
  (weights ``|x|``, 16 trial steps), then ``d = max scale / 15``, ``dmin = max min / 15``.
- **Q3_K** (3.4375 bpw, 110 bytes): 16 sub-blocks of 16, ``x = d * (sc_j - 32) * (q - 4)``, 6-bit ``sc``, ``q`` in
  0..7 (2 bits in ``qs``, the third in ``hmask``); each sub-block's scale from ``make_q3_quants`` (weights ``x^2``,
  coordinate descent on the codes), ``d = -max|scale| / 32``.

- **Q4_K** (4.5 bpw, 144 bytes per 256): 8 sub-blocks of 32, ``x = d * sc_j * q - dmin * m_j``, ``q`` in 0..15.
  Each sub-block's ``(scale, min)`` is the weighted least-squares fit of ``make_qkx2_quants`` (weights
  ``sqrt(mean x^2) + |x|``, 21 trial steps ``(15 - 1 + 0.1 k) / (max - min)``); the 8 scales and mins are then
  quantized to 6 bits against ``d = max scale / 63``, ``dmin = max min / 63`` and the codes recomputed.
- **Q5_K** (5.5 bpw, 176 bytes): as Q4_K with ``q`` in 0..31 (16 trial steps from 31 - 0.5).
- **Q6_K** (6.5625 bpw, 210 bytes): 16 sub-blocks of 16, ``x = d * sc_j * (q - 32)``, ``sc`` signed 8-bit,
  ``q`` in 0..63; each sub-block's scale from ``make_qx_quants`` (weights ``x^2``, 19 trial scales
  ``-(32 + 0.1 k) / max``), ``d = -max|scale| / 128``.
- **IQ4_NL** (4.5 bpw, 18 bytes per 32): ``x = d * v[q]`` on the non-uniform 16-level grid
  ``v = (-127, -104, ..., 89, 113)``, each value to its nearest level (ties to the upper one); ``d`` is the
  weighted least-squares scale (weights ``x^2``) of the best of 15 trial scales ``(k - 127) / max``.

With an importance matrix ``w`` (one value per column, as llama.cpp's imatrix) the fits weigh each value by
``w_i * sqrt(sigma^2 + x_i^2)`` (``sigma^2 = 2 mean x^2`` of the super-block; Q2_K: ``mean x^2``); Q2_K, Q4_K and
Q5_K then use ``make_qkx3_quants`` and fit the scales and mins with ``make_qp_quants``, Q3_K fits both levels with
``make_qx_quants``, Q6_K uses ``w`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from ..budget import check_work
from ..errors import QuantOptionError

_F32 = np.float32
QK_K = 256
QK4_NL = 32
GROUP_MAX_EPS = _F32(1e-15)
_MAGIC = _F32(12582912.0)  # 1.5 * 2^23
KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.int8)
# best_index_int8 compares 2x with the sums of neighbouring levels (exact in float32).
_IQ4NL_MIDPOINTS2 = KVALUES_IQ4NL[:-1].astype(np.int32) + KVALUES_IQ4NL[1:]
# The midpoint sums are integers, so the level index is a function of floor(2 v): one table lookup.
_IQ4NL_FLOOR_LO = int(_IQ4NL_MIDPOINTS2[0]) - 1
_IQ4NL_FLOOR_HI = int(_IQ4NL_MIDPOINTS2[-1])
_IQ4NL_INDEX = np.searchsorted(_IQ4NL_MIDPOINTS2, np.arange(_IQ4NL_FLOOR_LO, _IQ4NL_FLOOR_HI + 1), side="right")
_IQ4NL_LEVEL_OF_FLOOR = KVALUES_IQ4NL[_IQ4NL_INDEX].astype(np.float32)
CHUNK_VALUES = 1 << 18  # values quantized at once: fewer numpy calls per value; the working arrays stay in L3


def nearest_int(v: np.ndarray) -> np.ndarray:
    """llama.cpp's ``nearest_int``: the low mantissa bits of ``v + 12582912.0f``, as int32.

    For ``|v| <= 2^22`` this is round-to-nearest with ties to even (the float32 addition rounds to an integer
    grid, with the FPU's ties-to-even); beyond that (an ``assert`` the release build drops) it reproduces the same
    bit pattern as the C code, so the later clamps agree too.
    """
    bits = (np.asarray(v, dtype=np.float32) + _MAGIC).view(np.int32)
    return (bits & 0x007FFFFF) - 0x00400000


def fp16_bits(v: np.ndarray) -> np.ndarray:
    """``GGML_FP32_TO_FP16``: round to nearest even, as uint16 bit patterns (little-endian when stored)."""
    with np.errstate(over="ignore"):
        return np.asarray(v, dtype=np.float32).astype(np.float16).view(np.uint16)


def fp16_value(bits: np.ndarray) -> np.ndarray:
    """``GGML_FP16_TO_FP32`` (exact)."""
    return bits.view(np.float16).astype(np.float32)


def sequential_sum(a: np.ndarray) -> np.ndarray:
    """Sum along axis 0 element by element (``s += a[i]``), as the C loops accumulate in float32.

    ``np.add.reduce`` along a non-contiguous axis adds the rows in order; along a contiguous one (a single
    column) it sums pairwise, so that case goes through ``np.add.accumulate``.
    """
    a = np.ascontiguousarray(a)
    if a.ndim == 2 and a.shape[1] >= 2:
        return np.add.reduce(a, axis=0)
    return np.add.accumulate(a, axis=0)[-1]


def _first_absmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(amax, max)`` per column: largest ``|x|`` and the signed value where it first occurs (``ax > amax``)."""
    ax = np.abs(x)
    idx = np.argmax(ax, axis=0)
    cols = np.arange(x.shape[1])
    return ax[idx, cols], x[idx, cols]


def _positive_max(a: np.ndarray, axis: int) -> np.ndarray:
    """``m = 0; for v: if (v > m) m = v``: the largest positive value, else +0."""
    m = a.max(axis=axis)
    return np.where(m > 0, m, _F32(0))


def make_qkx_quants(
    x: np.ndarray,
    weights: np.ndarray | None,
    nmax: int,
    rmin: float,
    rdelta: float,
    nstep: int,
    *,
    qkx3: bool = False,
    use_mad: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``make_qkx2_quants`` (``qkx3=True``: ``make_qkx3_quants``) for every column of ``x``, compiled
    (:func:`qcore.kernels.kquants.qkx_fit`, the same float32 operations in the same order; its numpy form,
    ``make_qkx_fit``, is the tests' reference in ``tests/qcore/kernels/kquants_numpy.py``): ``(scale, the_min, L)``,
    ``L`` uint8 of shape (n, m). ``weights=None``: those of ``quantize_row_q4_K_ref`` / ``q5_K_ref``,
    ``sqrt(sum x^2 / n) + |x|`` per column (float32, the sum in order)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if weights is None:
        weights = np.empty((0, x.shape[1]), dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    scale, the_min = np.empty(x.shape[1], dtype=np.float32), np.empty(x.shape[1], dtype=np.float32)
    codes = np.empty(x.shape, dtype=np.uint8)
    from ..kernels.kquants import qkx_fit  # numba loads on first use, not with qcore

    qkx_fit(x, weights, nmax, rmin, rdelta, nstep, qkx3, use_mad, scale, the_min, codes)
    return scale, the_min, codes


def make_qx_quants(x: np.ndarray, weights: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_qx_quants(n, nmax, x, L, rmse_type=1, qw)`` for every column, compiled
    (:func:`qcore.kernels.kquants.qx_fit`, the same float32 operations in the same order; its numpy form,
    ``make_qx_fit``, is the tests' reference in ``tests/qcore/kernels/kquants_numpy.py``): ``(scale, L)``, ``L``
    uint8 of shape (n, m)."""
    from ..kernels.kquants import qx_fit  # numba loads on first use, not with qcore

    x = np.ascontiguousarray(x, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    scale, codes = np.empty(x.shape[1], dtype=np.float32), np.empty(x.shape, dtype=np.uint8)
    qx_fit(x, weights, nmax, scale, codes)
    return scale, codes


def make_q3_quants(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_q3_quants(n, nmax, x, L, do_rmse=true)`` for every column: signed codes, weights ``x^2``.

    Rounds with ``iscale = -nmax / max`` (``max`` the value of largest magnitude), then up to 5 passes of
    coordinate descent: each ``l_i`` moves to ``round(x_i sum w l^2 / sum w x l)`` (without itself) when that
    raises ``(sum w x l)^2 / sum w l^2``. Each step depends on the previous one, so the 16 positions are a loop
    (vectorised over the columns). Returns ``scale = sum w x l / sum w l^2`` (m,) and ``L = l + nmax`` (n, m).
    """
    amax, mx = _first_absmax(x)
    zero = amax < GROUP_MAX_EPS
    w = x * x
    wx = w * x
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        L = np.clip(nearest_int((_F32(-nmax) / mx) * x), -nmax, nmax - 1)
        lf = L.astype(np.float32)
        sumlx = sequential_sum(wx * lf)
        suml2 = sequential_sum(w * lf * lf)
        active = ~zero
        for _ in range(5):
            changed = np.zeros_like(active)
            for i in range(x.shape[0]):
                slx = sumlx - wx[i] * lf[i]
                sl2 = suml2 - w[i] * lf[i] * lf[i]
                new_l = np.clip(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1)
                nf = new_l.astype(np.float32)
                slx_new = slx + wx[i] * nf
                sl2_new = sl2 + w[i] * nf * nf
                take = (
                    active
                    & (slx > 0)
                    & (new_l != L[i])
                    & (sl2_new > 0)
                    & (slx_new * slx_new * suml2 > sumlx * sumlx * sl2_new)
                )
                L[i] = np.where(take, new_l, L[i])
                lf[i] = np.where(take, nf, lf[i])
                sumlx = np.where(take, slx_new, sumlx)
                suml2 = np.where(take, sl2_new, suml2)
                changed |= take
            active &= changed
            if not active.any():
                break
        scale = np.where(suml2 > 0, sumlx / suml2, _F32(0))
    L = L + nmax
    L[:, zero] = 0
    return np.where(zero, _F32(0), scale), L


def make_qp_quants(x: np.ndarray, weights: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_qp_quants``: unsigned codes ``L`` in ``0..nmax`` and a positive scale for every column of ``x``.

    Best of the trial scales ``max / (nmax + 0.1 k)``, ``k = 0, -4..4`` (weighted squared error), then up to 5
    passes of coordinate descent: each ``L_i`` moves to ``round(x_i sum w l^2 / sum w x l)`` (without itself)
    when that raises ``(sum w x l)^2 / sum w l^2``. Returns ``scale = sum w x l / sum w l^2`` (m,) and ``L`` (n, m).
    """
    n = x.shape[0]
    mx = _positive_max(x, axis=0)
    zero = mx < GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = _F32(nmax) / mx
        L = nearest_int(iscale * x) & 0xFF
        scale = _F32(1) / iscale
        diff = x - scale * L.astype(np.float32)
        best = sequential_sum(weights * diff * diff)
        for k in range(-4, 5):
            if k == 0:
                continue
            iscale_k = (_F32(0.1) * _F32(k) + _F32(nmax)) / mx
            lf = np.minimum(nmax, nearest_int(iscale_k * x)).astype(np.float32)
            diff = x - (_F32(1) / iscale_k) * lf
            mse = sequential_sum(weights * diff * diff)
            better = mse < best
            best = np.where(better, mse, best)
            iscale = np.where(better, iscale_k, iscale)
        lq = np.minimum(nmax, nearest_int(iscale * x))
        L = lq & 0xFF
        wx = weights * x
        lf = lq.astype(np.float32)
        sumlx = sequential_sum(wx * lf)
        suml2 = sequential_sum(weights * lf * lf)
        active = ~zero
        for _ in range(5):
            changed = np.zeros_like(active)
            for i in range(n):  # coordinate descent: each step depends on the previous one
                li = L[i].astype(np.float32)
                slx = sumlx - wx[i] * li
                sl2 = suml2 - weights[i] * li * li
                new_l = np.minimum(nmax, nearest_int(x[i] * sl2 / slx))
                nf = new_l.astype(np.float32)
                slx_new = slx + wx[i] * nf
                sl2_new = sl2 + weights[i] * nf * nf
                take = (
                    active
                    & (slx > 0)
                    & (sl2 > 0)
                    & (new_l != L[i])
                    & (slx_new * slx_new * suml2 > sumlx * sumlx * sl2_new)
                )
                L[i] = np.where(take, new_l & 0xFF, L[i])
                sumlx = np.where(take, slx_new, sumlx)
                suml2 = np.where(take, sl2_new, suml2)
                changed |= take
            active &= changed
            if not active.any():
                break
        scale = np.where(suml2 > 0, sumlx / suml2, _F32(0))
    L[:, zero] = 0
    return np.where(zero, _F32(0), scale), L


def _subblocks(a: np.ndarray, size: int) -> np.ndarray:
    """``(n_blocks, block)`` -> ``(size, n_blocks * block / size)``: one sub-block per column, contiguous."""
    return np.ascontiguousarray(a.reshape(-1, size).T)


def _pack_k_scales(ls: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The 12 bytes of 8 six-bit scales and mins (``get_scale_min_k4`` reads them back)."""
    sc = np.empty((ls.shape[0], 12), dtype=np.int32)
    sc[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    sc[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    sc[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    return sc.astype(np.uint8)


def _unpack_k_scales(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``get_scale_min_k4`` for the 8 sub-blocks: 6-bit scales and mins from the 12 packed bytes."""
    q = q.astype(np.int32)
    sc = np.concatenate([q[:, 0:4] & 63, (q[:, 8:12] & 0xF) | ((q[:, 0:4] >> 6) << 4)], axis=1)
    m = np.concatenate([q[:, 4:8] & 63, (q[:, 8:12] >> 4) | ((q[:, 4:8] >> 6) << 4)], axis=1)
    return sc, m


def _fp16_bytes(bits: np.ndarray) -> np.ndarray:
    return bits.astype("<u2").view(np.uint8).reshape(-1, 2)


def _scales_mins_k(xb: np.ndarray, nmax: int, qw: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """Per super-block of Q4_K/Q5_K: 6-bit scales ``ls``, mins ``lm``, fp16 ``d``, ``dmin`` and the fit's codes."""
    nb = xb.shape[0]
    x = _subblocks(xb, 32)
    if qw is None:  # quantize_row_q{4,5}_K_ref: weights sqrt(mean x^2) + |x| (computed by the kernel)
        rmin, rdelta, nstep = (-1.0, 0.1, 20) if nmax == 15 else (-0.5, 0.1, 15)
        scales, mins, fit_codes = make_qkx_quants(x, None, nmax, rmin, rdelta, nstep)
        scales, mins = scales.reshape(nb, 8), mins.reshape(nb, 8)
        max_scale = _positive_max(scales, axis=1)
        max_min = _positive_max(mins, axis=1)
        with np.errstate(divide="ignore"):
            inv_scale = np.where(max_scale > 0, _F32(63) / max_scale, _F32(0))
            inv_min = np.where(max_min > 0, _F32(63) / max_min, _F32(0))
        ls = np.minimum(nearest_int(inv_scale[:, None] * scales) & 0xFF, 63)
        lm = np.minimum(nearest_int(inv_min[:, None] * mins) & 0xFF, 63)
        d_bits = fp16_bits(max_scale / _F32(63))
        dmin_bits = fp16_bits(max_min / _F32(63))
    else:  # quantize_row_q{4,5}_K_impl
        xt = _subblocks(xb, QK_K)
        sigma2 = _F32(2) * sequential_sum(xt * xt) / _F32(QK_K)
        weights = _subblocks(qw, 32) * np.sqrt(np.repeat(sigma2, 8)[None, :] + x * x)
        sw = sequential_sum(weights).reshape(nb, 8).T
        scales, mins, fit_codes = make_qkx_quants(x, weights, nmax, -0.9, 0.05, 36, qkx3=True)
        d_block, ls = make_qp_quants(np.ascontiguousarray(scales.reshape(nb, 8).T), sw, 63)
        m_block, lm = make_qp_quants(np.ascontiguousarray(mins.reshape(nb, 8).T), sw, 63)
        ls, lm = ls.T, lm.T
        if nmax == 31:  # quantize_row_q5_K_impl clamps, q4_K_impl does not
            ls, lm = np.minimum(ls, 63), np.minimum(lm, 63)
        d_bits, dmin_bits = fp16_bits(d_block), fp16_bits(m_block)
    packed = _pack_k_scales(ls, lm)
    sc, m = _unpack_k_scales(packed)
    d = fp16_value(d_bits)[:, None] * sc.astype(np.float32)
    dm = fp16_value(dmin_bits)[:, None] * m.astype(np.float32)
    # clamp(nearest_int((x + dm) / d), 0, nmax); a sub-block with d = 0 keeps the fit's codes (column 8 b + j of
    # the fit is sub-block j of block b)
    from ..kernels.kquants import requantize  # numba loads on first use, not with qcore

    codes = np.empty((nb * 8, 32), dtype=np.uint8)
    requantize(np.ascontiguousarray(xb).reshape(nb * 8, 32), d.ravel(), dm.ravel(), 0, nmax, fit_codes, codes)
    codes = codes.reshape(nb, 4, 2, 32)
    head = np.concatenate([_fp16_bytes(d_bits), _fp16_bytes(dmin_bits), packed], axis=1)
    return head, codes


def _quantize_q4_k(xb: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    head, codes = _scales_mins_k(xb, 15, qw)
    qs = codes[:, :, 0, :] | (codes[:, :, 1, :] << 4)
    return np.concatenate([head, qs.reshape(-1, 128)], axis=1)


def _quantize_q5_k(xb: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    head, codes = _scales_mins_k(xb, 31, qw)
    low = codes & 0xF
    qs = low[:, :, 0, :] | (low[:, :, 1, :] << 4)
    shifts = np.arange(8, dtype=np.uint8).reshape(1, 4, 2, 1)
    qh = np.bitwise_or.reduce((codes >> 4) << shifts, axis=(1, 2))
    return np.concatenate([head, qh, qs.reshape(-1, 128)], axis=1)


def _pack_2bit(codes: np.ndarray) -> np.ndarray:
    """Q2_K/Q3_K ``qs``: byte ``32 h + l`` of each half ``h`` holds codes ``128 h + 32 g + l`` at bits ``2 g``."""
    c = (codes & 3).reshape(-1, 2, 4, 32)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    return np.bitwise_or.reduce(c << shifts, axis=2).reshape(-1, 64)


def _quantize_q2_k(xb: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    """``quantize_row_q2_K_ref`` / ``_impl``: 16 sub-blocks of 16, ``x = d * sc * q - dmin * m``, 4-bit sc, m."""
    nb = xb.shape[0]
    x = _subblocks(xb, 16)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if qw is None:
            scales, mins, L = make_qkx_quants(x, np.abs(x), 3, -0.5, 0.1, 15, use_mad=True)
            scales, mins = scales.reshape(nb, 16), mins.reshape(nb, 16)
            max_scale = _positive_max(scales, axis=1)
            max_min = _positive_max(mins, axis=1)
            ls = np.where(max_scale[:, None] > 0, nearest_int((_F32(15) / max_scale)[:, None] * scales), 0)
            lm = np.where(max_min[:, None] > 0, nearest_int((_F32(15) / max_min)[:, None] * mins), 0)
            d_bits = fp16_bits(np.where(max_scale > 0, max_scale / _F32(15), _F32(0)))
            dmin_bits = fp16_bits(np.where(max_min > 0, max_min / _F32(15), _F32(0)))
        else:
            xt = _subblocks(xb, QK_K)
            sigma2 = sequential_sum(xt * xt) / _F32(QK_K)
            weights = _subblocks(qw, 16) * np.sqrt(np.repeat(sigma2, 16)[None, :] + x * x)
            sw = np.ascontiguousarray(sequential_sum(weights).reshape(nb, 16).T)
            scales, mins, L = make_qkx_quants(x, weights, 3, -0.9, 0.05, 36, qkx3=True)
            d_block, ls = make_qp_quants(np.ascontiguousarray(scales.reshape(nb, 16).T), sw, 15)
            m_block, lm = make_qp_quants(np.ascontiguousarray(mins.reshape(nb, 16).T), sw, 15)
            ls, lm = ls.T, lm.T
            d_bits, dmin_bits = fp16_bits(d_block), fp16_bits(m_block)
        packed = ((ls & 0xFF) | (lm << 4)) & 0xFF
        d = fp16_value(d_bits)[:, None] * (packed & 0xF).astype(np.float32)
        dm = fp16_value(dmin_bits)[:, None] * (packed >> 4).astype(np.float32)
        q = np.clip(nearest_int((xb.reshape(nb, 16, 16) + dm[:, :, None]) / d[:, :, None]), 0, 3)
    codes = np.where(d[:, :, None] != 0, q, L.T.reshape(nb, 16, 16)).reshape(nb, 256).astype(np.uint8)
    return np.concatenate(
        [packed.astype(np.uint8), _pack_2bit(codes), _fp16_bytes(d_bits), _fp16_bytes(dmin_bits)], axis=1
    )


def _quantize_q3_k(xb: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    """``quantize_row_q3_K_ref`` / ``_impl``: 16 sub-blocks of 16, ``x = d * (sc - 32) * (q - 4)``, 6-bit sc."""
    nb = xb.shape[0]
    x = _subblocks(xb, 16)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if qw is None:
            scales, L = make_q3_quants(x, 4)
            scales = scales.reshape(nb, 16)
            abs_scales = np.abs(scales)
            pick = np.argmax(abs_scales, axis=1)
            rows = np.arange(nb)
            max_scale = np.where(abs_scales[rows, pick] > 0, scales[rows, pick], _F32(0))
            iscale = _F32(-32) / max_scale
            l8 = ((nearest_int(iscale[:, None] * scales) + 128) & 0xFF) - 128  # int8_t l
            ls = np.where(max_scale[:, None] != 0, np.clip(l8, -32, 31) + 32, 0)
            d_bits = fp16_bits(np.where(max_scale != 0, _F32(1) / iscale, _F32(0)))
        else:
            xt = _subblocks(xb, QK_K)
            sigma2 = _F32(2) * sequential_sum(xt * xt) / _F32(QK_K)
            weights = _subblocks(qw, 16) * np.sqrt(np.repeat(sigma2, 16)[None, :] + x * x)
            sw = np.ascontiguousarray(sequential_sum(weights).reshape(nb, 16).T)
            scales, L = make_qx_quants(x, weights, 4)
            d_block, ls = make_qx_quants(np.ascontiguousarray(scales.reshape(nb, 16).T), sw, 32)
            ls = ls.T
            d_bits = fp16_bits(d_block)
        packed = np.zeros((nb, 12), dtype=np.int32)
        packed[:, 0:8] = (ls[:, 0:8] & 0xF) | ((ls[:, 8:16] & 0xF) << 4)
        high = (ls >> 4).reshape(nb, 4, 4)  # [j // 4, j % 4]
        packed[:, 8:12] = np.bitwise_or.reduce(high << (2 * np.arange(4)).reshape(1, 4, 1), axis=1)
        packed = packed.astype(np.uint8)
        d = fp16_value(d_bits)[:, None] * _unpack_q3_scales(packed).astype(np.float32)
        q = np.clip(nearest_int(xb.reshape(nb, 16, 16) / d[:, :, None]), -4, 3) + 4
    codes = np.where(d[:, :, None] != 0, q, L.T.reshape(nb, 16, 16)).reshape(nb, 8, 32).astype(np.uint8)
    shifts = np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    hmask = np.bitwise_or.reduce((codes >> 2) << shifts, axis=1)
    return np.concatenate([hmask, _pack_2bit(codes.reshape(nb, 256)), packed, _fp16_bytes(d_bits)], axis=1)


def _unpack_q3_scales(q: np.ndarray) -> np.ndarray:
    """The 16 signed 6-bit Q3_K scales (``sc - 32``) from the 12 packed bytes."""
    q = q.astype(np.int32)
    low = np.concatenate([q[:, 0:8] & 0xF, q[:, 0:8] >> 4], axis=1)
    j = np.arange(16)
    high = (q[:, 8 + j % 4] >> (2 * (j // 4))) & 3
    return (low | (high << 4)) - 32


def _quantize_q6_k(xb: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    nb = xb.shape[0]
    x = _subblocks(xb, 16)
    weights = x * x if qw is None else _subblocks(qw, 16)
    scales, L = make_qx_quants(x, weights, 32)
    scales = scales.reshape(nb, 16)
    abs_scales = np.abs(scales)
    pick = np.argmax(abs_scales, axis=1)
    rows = np.arange(nb)
    max_abs = abs_scales[rows, pick]
    max_scale = np.where(max_abs > 0, scales[rows, pick], _F32(0))
    zero = max_abs < GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = _F32(-128) / max_scale
        d_bits = fp16_bits(_F32(1) / iscale)
        sc = np.minimum(127, nearest_int(iscale[:, None] * scales)).astype(np.int8)
        d = fp16_value(d_bits)[:, None] * sc.astype(np.float32)
    from ..kernels.kquants import requantize  # numba loads on first use, not with qcore

    # clamp(nearest_int(x / d), -32, 31) + 32; a sub-block with d = 0 keeps make_qx_quants' codes
    codes = np.empty((nb * 16, 16), dtype=np.uint8)
    zeros = np.zeros(nb * 16, dtype=np.float32)
    requantize(np.ascontiguousarray(xb).reshape(nb * 16, 16), d.ravel(), zeros, -32, 31, L, codes)
    codes = codes.reshape(nb, 2, 4, 32)
    ql = (codes[:, :, 0:2, :] & 0xF) | ((codes[:, :, 2:4, :] & 0xF) << 4)
    shifts = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    qh = np.bitwise_or.reduce((codes >> 4) << shifts, axis=2)
    out = np.concatenate([ql.reshape(nb, 128), qh.reshape(nb, 64), sc.view(np.uint8), _fp16_bytes(d_bits)], axis=1)
    out[zero] = 0
    return out


def _quantize_iq4_nl(xb: np.ndarray, qw: np.ndarray | None, ntry: int = 7) -> np.ndarray:
    """``quantize_row_iq4_nl_impl(QK4_NL, 32, ...)``: ``ntry=7`` is ``quantize_iq4_nl``, ``-1`` the row ``_ref``."""
    from ..kernels.kquants import iq4nl_fit  # numba loads on first use, not with qcore

    x = np.ascontiguousarray(xb.T)
    weights = _iq4nl_weights(x, qw)
    d, codes = np.empty(x.shape[1], dtype=np.float32), np.empty(x.shape, dtype=np.uint8)
    iq4nl_fit(x, weights, ntry, _IQ4NL_INDEX, _IQ4NL_LEVEL_OF_FLOOR, _IQ4NL_FLOOR_LO, _IQ4NL_FLOOR_HI, d, codes)
    codes = codes.T
    qs = codes[:, :16] | (codes[:, 16:] << 4)
    return np.concatenate([_fp16_bytes(fp16_bits(d)), qs], axis=1)


def _iq4nl_weights(x: np.ndarray, qw: np.ndarray | None) -> np.ndarray:
    """``x^2``, or with an importance matrix ``qw sqrt(sigma^2 + x^2)``, ``sigma^2 = 2 sum x^2 / 32`` (in order)."""
    if qw is None:
        return x * x
    sigma2 = sequential_sum(x * x) * _F32(2.0 / QK4_NL)
    return np.ascontiguousarray(qw.T) * np.sqrt(sigma2 + x * x)


@dataclass(frozen=True)
class GGUFBlockType:
    """A GGUF block type this module quantizes.

    Attributes
    ----------
    name : str
        GGUF type name (``Q4_K`` ...).
    block_size : int
        Values per block (256 for the K-quants, 32 for IQ4_NL).
    type_size : int
        Bytes per block, scales included.
    """

    name: str
    block_size: int
    type_size: int
    _quantize: Callable[[np.ndarray, np.ndarray | None], np.ndarray]

    @property
    def bits_per_weight(self) -> float:
        """Storage cost: ``8 * type_size / block_size`` (scales and mins included)."""
        return 8 * self.type_size / self.block_size

    @property
    def gguf_type(self) -> GGMLQuantizationType:
        return GGMLQuantizationType[self.name]


KQUANT_TYPES: dict[str, GGUFBlockType] = {
    t.name: t
    for t in (
        GGUFBlockType("Q2_K", QK_K, 84, _quantize_q2_k),
        GGUFBlockType("Q3_K", QK_K, 110, _quantize_q3_k),
        GGUFBlockType("Q4_K", QK_K, 144, _quantize_q4_k),
        GGUFBlockType("Q5_K", QK_K, 176, _quantize_q5_k),
        GGUFBlockType("Q6_K", QK_K, 210, _quantize_q6_k),
        GGUFBlockType("IQ4_NL", QK4_NL, 18, _quantize_iq4_nl),
    )
}


def _block_type(qtype: str) -> GGUFBlockType:
    try:
        return KQUANT_TYPES[qtype]
    except (KeyError, TypeError):
        raise QuantOptionError(f"unknown GGUF type {qtype!r}: choose one of {', '.join(KQUANT_TYPES)}") from None


def quantize(x: np.ndarray, qtype: str, imatrix: np.ndarray | None = None, *, search: bool = True) -> np.ndarray:
    """Quantize ``x`` to GGUF blocks of ``qtype``, along the last axis, byte for byte as llama.cpp.

    Parameters
    ----------
    x : array_like of float
        Finite values, converted to float32 (the C functions take ``float *``); the last axis holds rows whose
        length is a multiple of the block size (256 for the K-quants, 32 for IQ4_NL).
    qtype : {'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_NL'}
    imatrix : array_like of float, shape (x.shape[-1],), optional
        Importance of each column (llama.cpp's ``--imatrix``: mean squared activation), finite and >= 0.
        Selects the weighted quantizers.
    search : bool
        IQ4_NL only: ``False`` runs ``quantize_row_iq4_nl_ref`` (one least-squares scale, no trial scales and no
        re-rounding: ggml's ``from_float``) instead of ``quantize_iq4_nl`` (what ``llama-quantize`` writes).

    Returns
    -------
    ndarray of uint8, shape ``x.shape[:-1] + (n // block_size * type_size,)``
        The blocks of every row, as stored in a GGUF file; ``gguf.quants.dequantize`` decodes them.

    Raises
    ------
    QuantOptionError
        Unknown type, row length not a multiple of the block, empty or non-finite input, bad importance matrix,
        ``search=False`` for a type without that choice, or values too large for the fp16 block scales.
    """
    spec = _block_type(qtype)
    x = np.asarray(x)
    if x.ndim == 0 or x.size == 0:
        raise QuantOptionError(f"{qtype}: nothing to quantize (empty or scalar input)")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise QuantOptionError(f"{qtype}: expected a float array, got dtype {x.dtype}")
    n = x.shape[-1]
    if n % spec.block_size:
        raise QuantOptionError(
            f"{qtype}: row length {n} is not a multiple of the block size {spec.block_size} (blocks run along the last"
            " axis)"
        )
    if not search and qtype != "IQ4_NL":
        raise QuantOptionError(f"search=False selects quantize_row_iq4_nl_ref: it applies to IQ4_NL, not {qtype}")
    if not search and imatrix is not None:
        raise QuantOptionError("IQ4_NL with search=False (quantize_row_iq4_nl_ref) takes no importance matrix")
    out_bytes = x.size // spec.block_size * spec.type_size
    copy_bytes = 0 if x.dtype == np.float32 else 4 * x.size
    chunk_bytes = 24 * 4 * min(x.size, max(CHUNK_VALUES, spec.block_size))  # the search arrays of one chunk
    check_work(copy_bytes + x.size + out_bytes + chunk_bytes, x.size, f"{qtype} quantization of {x.size:,} values")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32, copy=False)
    if not np.isfinite(x32).all():
        raise QuantOptionError(f"{qtype}: input has NaN or Inf (or values beyond float32)")
    qw = None
    if imatrix is not None:
        try:
            qw = np.asarray(imatrix, dtype=np.float32)
        except (TypeError, ValueError):
            raise QuantOptionError(f"{qtype}: the importance matrix must be an array of numbers") from None
        if qw.shape != (n,):
            raise QuantOptionError(f"{qtype}: importance matrix must have shape ({n},), one value per column")
        if not np.isfinite(qw).all() or (qw < 0).any():
            raise QuantOptionError(f"{qtype}: importance matrix values must be finite and >= 0")
    rows = x32.reshape(-1, n)
    bs, blocks_per_row = spec.block_size, n // spec.block_size
    fn = spec._quantize if search else (lambda xb, w: _quantize_iq4_nl(xb, w, ntry=-1))
    flat = rows.reshape(-1, bs)
    qw_blocks = None if qw is None else qw.reshape(blocks_per_row, bs)
    step = max(1, CHUNK_VALUES // bs)
    out = np.empty((flat.shape[0], spec.type_size), dtype=np.uint8)
    for start in range(0, flat.shape[0], step):
        stop = min(start + step, flat.shape[0])
        w = None
        if qw_blocks is not None:
            w = qw_blocks[np.arange(start, stop) % blocks_per_row]
        out[start:stop] = fn(flat[start:stop], w)
    _check_scales_finite(out, spec)
    return out.reshape(*x.shape[:-1], blocks_per_row * spec.type_size)


def load_kernels() -> None:
    """Compile (on a fresh checkout, ~15 s) or load from numba's cache (~0.3 s) the compiled search loops: one block
    of each type, plain and with an importance matrix. The first quantization in a process does the same."""
    x = np.linspace(-1.0, 2.0, QK_K, dtype=np.float32)[None, :]
    for qtype in KQUANT_TYPES:
        quantize(x, qtype)
        quantize(x, qtype, imatrix=np.ones(QK_K, dtype=np.float32))


def _check_scales_finite(blocks: np.ndarray, spec: GGUFBlockType) -> None:
    """Refuse results whose fp16 super-block scale overflowed (the C code would store inf)."""
    offsets = {"Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,), "IQ4_NL": (0,)}
    for off in offsets[spec.name]:
        bits = blocks[:, off : off + 2].copy().view("<u2").reshape(-1)
        if ((bits & 0x7C00) == 0x7C00).any():
            raise QuantOptionError(
                f"{spec.name}: values too large for the fp16 block scales (max 65504): scale the tensor down first"
            )


def dequantize(blocks: np.ndarray, qtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Decode GGUF blocks of ``qtype`` with ``gguf.quants.dequantize`` into float32 of ``shape``.

    ``x = d * sc * q - dmin * m`` (Q2_K, Q4_K, Q5_K), ``d * (sc - 32) * (q - 4)`` (Q3_K), ``d * sc * (q - 32)``
    (Q6_K), ``d * v[q]`` (IQ4_NL).
    """
    spec = _block_type(qtype)
    blocks = np.asarray(blocks)
    shape = tuple(int(s) for s in shape)
    if blocks.dtype != np.uint8:
        raise QuantOptionError(f"{qtype}: blocks must be uint8 bytes, got {blocks.dtype}")
    if not shape or shape[-1] % spec.block_size:
        raise QuantOptionError(f"{qtype}: shape {shape} needs a last axis that is a multiple of {spec.block_size}")
    expected = (*shape[:-1], shape[-1] // spec.block_size * spec.type_size)
    if blocks.size != int(np.prod(expected)):
        raise QuantOptionError(f"{qtype}: {blocks.size} bytes do not hold a tensor of shape {shape}")
    out = gguf_quants.dequantize(blocks.reshape(expected), spec.gguf_type)
    return out.astype(np.float32, copy=False).reshape(shape)
