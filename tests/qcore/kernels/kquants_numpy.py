"""The numpy forms of the K-quant and IQ4_NL searches that the compiled kernels replaced (the tests' reference).

They ran in ``qcore.formats.kquants`` before :mod:`qcore.kernels.kquants`: vectorised over the columns (one
sub-block per column), the same float32 operations in the same order as llama.cpp's C code, so the kernels must
equal them bit for bit (``tests/qcore/kernels/test_kquant_kernels.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from qcore.formats.kquants import (
    _IQ4NL_FLOOR_HI,
    _IQ4NL_FLOOR_LO,
    _IQ4NL_INDEX,
    _IQ4NL_LEVEL_OF_FLOOR,
    GROUP_MAX_EPS,
    KVALUES_IQ4NL,
    _first_absmax,
    _iq4nl_weights,
    nearest_int,
    sequential_sum,
)

_F32 = np.float32
_NEAREST_INT_LIMIT = _F32(4194303)


def _round_clip(v: np.ndarray, lo: float, hi: float, out: np.ndarray) -> np.ndarray:
    """``clamp(nearest_int(v), lo, hi)`` as float32 into ``out``: exact where ``|v| <= 2^22`` (callers ensure it).

    In that range ``nearest_int`` is ``rint`` (round half to even).
    """
    np.rint(v, out=out)
    return np.clip(out, _F32(lo), _F32(hi), out=out)


@dataclass(frozen=True, eq=False)
class QkxFit:
    """The rounding that won in :func:`make_qkx_fit`, per column: ``iscale`` and ``shift`` (``min``); the codes
    ``L = clamp(nearest_int(iscale (x - shift)), 0, nmax)`` (``make_qkx3_quants``' rounding for the columns won in
    the loop), 0 in flat columns, are computed only for the columns asked for."""

    x: np.ndarray
    iscale: np.ndarray
    shift: np.ndarray
    from_loop: np.ndarray
    flat: np.ndarray
    nmax: int
    qkx3: bool

    def codes(self, columns: np.ndarray | slice = slice(None)) -> np.ndarray:
        """``L`` (int32, shape (n, k)) of ``columns``."""
        nmax = self.nmax
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v = self.iscale[columns] * (self.x[:, columns] - self.shift[columns])
            L = np.clip(nearest_int(v), 0, nmax)
            if self.qkx3:
                L = np.where(self.from_loop[columns], np.where(v > 0, nearest_int(np.minimum(v, _F32(nmax))), 0), L)
        L[:, self.flat[columns]] = 0
        return L


def make_qkx_fit(
    x: np.ndarray,
    weights: np.ndarray,
    nmax: int,
    rmin: float,
    rdelta: float,
    nstep: int,
    *,
    qkx3: bool = False,
    use_mad: bool = False,
) -> tuple[np.ndarray, np.ndarray, QkxFit]:
    """``make_qkx2_quants`` (``qkx3=True``: ``make_qkx3_quants``) for every column of ``x`` at once, in numpy: the
    reference the compiled ``qcore.formats.kquants.make_qkx_quants`` is tested against (the quantizers call that one).

    Fits ``x ~ scale * L + min`` with ``L`` in ``0..nmax`` and ``min <= 0``, minimising ``sum w (scale L + min -
    x)^2`` (``use_mad``: ``sum w |scale L + min - x|``): start from ``scale = (max - min) / nmax``, then for
    ``k = 0..nstep`` round with ``iscale = (nmax + rmin + rdelta k) / (max - min)`` (``min`` the best so far),
    solve the weighted least squares for ``(scale, min)`` and keep it if its error is lower.

    Parameters
    ----------
    x, weights : ndarray of float32, shape (n, m)
        ``m`` groups of ``n`` values (one group per column).

    Returns
    -------
    scale, the_min : ndarray of float32, shape (m,)
        ``the_min = -min >= 0``.
    fit : QkxFit
        Gives the codes ``L`` (int32, shape (n, m)) of any columns.
    """
    x_min = x.min(axis=0)
    mx = x.max(axis=0)
    sum_w = sequential_sum(weights)
    sum_x = sequential_sum(weights * x)
    mn = np.where(x_min > 0, _F32(0), x_min)
    flat = (mx <= mn) if qkx3 else (mx == mn)
    live = ~flat
    lf, wl, tmp = (np.empty_like(x) for _ in range(3))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = _F32(nmax) / (mx - mn)
        scale = _F32(1) / iscale
        np.subtract(x, mn, out=tmp)
        np.multiply(tmp, iscale, out=tmp)
        lf[...] = np.clip(nearest_int(tmp), 0, nmax)
        np.multiply(lf, scale, out=tmp)
        tmp += mn
        tmp -= x
        np.abs(tmp, out=tmp) if use_mad else np.multiply(tmp, tmp, out=tmp)
        tmp *= weights
        best = sequential_sum(tmp)
        # the codes are recomputed at the end from the (iscale, min) that won, not copied at every step
        best_iscale, best_shift, from_loop = iscale, mn, np.zeros(x.shape[1], dtype=bool)
        # flat columns (results discarded) divide by 1, not 0: no inf or NaN in the range checks below
        pad = flat.astype(np.float32)
        span = np.empty_like(mx)
        # sums along axis 0 in row order (np.add.reduce adds whole rows; a single column goes through accumulate)
        columns_sum = partial(np.add.reduce, axis=0) if x.shape[1] >= 2 else sequential_sum
        for step in range(nstep + 1):
            np.subtract(mx, mn, out=span)
            span += pad
            iscale = (_F32(rmin) + _F32(rdelta) * _F32(step) + _F32(nmax)) / span
            np.subtract(x, mn, out=lf)  # v = iscale (x - min), rounded in place
            np.multiply(lf, iscale, out=lf)
            if qkx3:  # v > 0 ? nearest_int(MIN(v, nmax)) : 0, NaN to 0
                np.minimum(lf, _F32(nmax), out=lf)
                np.rint(lf, out=lf)
                np.fmax(lf, _F32(0), out=lf)
            else:
                # v is monotone in x, so [lo, hi] bounds every column's v: clamp only the sides that need it
                lo = float((iscale * (x_min - mn)).min())
                hi = float((iscale * (mx - mn)).max())
                if -_NEAREST_INT_LIMIT <= lo and hi <= _NEAREST_INT_LIMIT:  # nearest_int is rint here
                    np.rint(lf, out=lf)
                    if lo < 0 or hi >= nmax + 0.5:  # one clip: much cheaper than np.maximum / np.minimum
                        np.clip(lf, _F32(0), _F32(nmax), out=lf)
                else:
                    lf[...] = np.clip(nearest_int(lf), 0, nmax)
            np.multiply(weights, lf, out=wl)
            sum_l = columns_sum(wl)
            sum_l2 = columns_sum(np.multiply(wl, lf, out=tmp))
            sum_xl = columns_sum(np.multiply(wl, x, out=tmp))
            det = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
            positive = this_min > 0
            this_min[positive] = 0
            this_scale[positive] = sum_xl[positive] / sum_l2[positive]
            np.multiply(lf, this_scale, out=tmp)
            tmp += this_min
            tmp -= x
            np.abs(tmp, out=tmp) if use_mad else np.multiply(tmp, tmp, out=tmp)
            tmp *= weights
            cur = columns_sum(tmp)
            better = (det > 0) & (cur < best) & live
            if better.any():
                best_iscale = np.where(better, iscale, best_iscale)
                best_shift = np.where(better, mn, best_shift)
                from_loop |= better
                best = np.where(better, cur, best)
                scale = np.where(better, this_scale, scale)
                mn = np.where(better, this_min, mn)
    fit = QkxFit(x, best_iscale, best_shift, from_loop, flat, nmax, qkx3)
    return np.where(flat, _F32(0), scale), -mn, fit


def make_qx_fit(x: np.ndarray, weights: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_qx_quants(n, nmax, x, L, rmse_type=1, qw)`` for every column: a signed scale, no offset (numpy: the
    reference the compiled ``qcore.formats.kquants.make_qx_quants`` is tested against).

    ``iscale = -(nmax + 0.1 k) / max`` for ``k = 0, -9..9`` (``max`` the value of largest magnitude), ``l =
    clamp(round(iscale x), -nmax, nmax - 1)``; keeps the ``k`` with the largest ``(sum w x l)^2 / sum w l^2`` and
    returns its least-squares scale ``sum w x l / sum w l^2``. Columns with ``max|x| < 1e-15`` give scale 0 and
    ``L = 0``. Returns ``scale`` (m,) and ``L = l + nmax`` (n, m).
    """
    amax, mx = _first_absmax(x)
    zero = amax < GROUP_MAX_EPS
    wx = weights * x
    lf, tmp = np.empty_like(x), np.empty_like(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        best_iscale = None
        for k in (0, *range(-9, 0), *range(1, 10)):
            # |iscale x| <= nmax + 1 wherever max|x| >= 1e-15: nearest_int is exact there
            iscale = _F32(-nmax) / mx if k == 0 else -(_F32(nmax) + _F32(0.1) * _F32(k)) / mx
            _round_clip(np.multiply(x, iscale, out=tmp), -nmax, nmax - 1, out=lf)
            sumlx = sequential_sum(np.multiply(wx, lf, out=tmp))
            np.multiply(weights, lf, out=tmp)
            suml2 = sequential_sum(np.multiply(tmp, lf, out=tmp))
            if best_iscale is None:
                scale = np.where(suml2 != 0, sumlx / suml2, _F32(0))
                best, best_iscale = scale * sumlx, iscale
                continue
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            best_iscale = np.where(better, iscale, best_iscale)
            scale = np.where(better, sumlx / suml2, scale)
            best = np.where(better, scale * sumlx, best)
        L = np.clip(nearest_int(best_iscale * x), -nmax, nmax - 1) + nmax
    L[:, zero] = 0
    return np.where(zero, _F32(0), scale), L


def _iq4nl_floor_slot(v: np.ndarray) -> np.ndarray:
    """Row of the lookup tables for ``v``: ``floor(2 v)`` clipped to the midpoint range (NaN to the first row)."""
    t = np.add(v, v)
    np.floor(t, out=t)
    np.clip(t, _F32(_IQ4NL_FLOOR_LO), _F32(_IQ4NL_FLOOR_HI), out=t)
    t -= _F32(_IQ4NL_FLOOR_LO)
    nan = np.isnan(t)  # only where a block's max is 0 (0 * inf); np.nan_to_num would cost several passes
    if nan.any():
        t[nan] = 0
    return t.astype(np.intp)


def best_index_iq4nl(v: np.ndarray) -> np.ndarray:
    """``best_index_int8(16, kvalues_iq4nl, v)``: the nearest IQ4_NL level's index, ties to the upper one.

    Level ``i`` is taken once ``2 v >= v[i-1] + v[i]`` (an exact comparison, as the C code does it).
    """
    return _IQ4NL_INDEX[_iq4nl_floor_slot(v)]


def _iq4nl_level(v: np.ndarray) -> np.ndarray:
    """``kvalues_iq4nl[best_index_int8(16, kvalues_iq4nl, v)]`` as float32."""
    return _IQ4NL_LEVEL_OF_FLOOR[_iq4nl_floor_slot(v)]


def iq4nl_search(x: np.ndarray, qw: np.ndarray | None, ntry: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """The search of ``quantize_row_iq4_nl_impl`` in numpy, one block per column of ``x`` (32, m): ``(d, codes)``
    (the reference the compiled :func:`qcore.kernels.kquants.iq4nl_fit` is tested against)."""
    weights = _iq4nl_weights(x, qw)
    amax, mx = _first_absmax(x)
    zero = amax < GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = (-mx if ntry > 0 else mx) / _F32(KVALUES_IQ4NL[0])
        slot = _iq4nl_floor_slot((_F32(1) / d) * x)
        L, q = _IQ4NL_INDEX[slot], _IQ4NL_LEVEL_OF_FLOOR[slot]
        wq = weights * q
        sumqx = sequential_sum(wq * x)
        sumq2 = sequential_sum(wq * q)
        d = np.where(sumq2 > 0, sumqx / sumq2, _F32(0))
        best = d * sumqx
        for itry in range(-ntry, ntry + 1):
            q = _iq4nl_level((_F32(itry + int(KVALUES_IQ4NL[0])) / mx) * x)
            wq = weights * q
            sumqx = sequential_sum(wq * x)
            sumq2 = sequential_sum(wq * q)
            better = (sumq2 > 0) & (sumqx * sumqx > best * sumq2)
            d = np.where(better, sumqx / sumq2, d)
            best = np.where(better, d * sumqx, best)
        d = np.where(zero, _F32(0), d)
        L[:, zero] = 0
        if ntry > 0:
            L = best_index_iq4nl(np.where(d != 0, _F32(1) / d, _F32(0)) * x)
    return d, L.astype(np.uint8)
