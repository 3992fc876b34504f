r"""ADMM (MNN): alternate the integer codes and the least-squares scale.

Quantization as an encode/decode problem (seed 003 §2.3; MNN
``QuantizeWeightADMM``): minimise :math:`\lVert w - \alpha q\rVert^2` over the step
:math:`\alpha` and integer codes :math:`q`, one block of variables at a time:

.. math::

    q^{(k)} = \operatorname{clip}(\operatorname{round}(w / \alpha^{(k)}),\ q_{min},\ q_{max}),
    \qquad \alpha^{(k+1)} = \frac{\langle w, q^{(k)}\rangle}{\langle q^{(k)}, q^{(k)}\rangle}

Both steps are exact minimisers of the objective with the other block fixed, so the
error never increases and the iteration stops at a fixed point (``q`` unchanged) or
after ``max_iter`` steps. Near the fixed point few codes change per step and
``alpha`` creeps (about 1e-4 relative per step on 1.6e7 Gaussian values, where MNN's
1000 steps end before the fixed point; ``details['converged']`` says so).

Large tensors run on weighted samples: the signed histogram's bin centres
weighted by their counts (see :func:`qcore.weighted_samples.weighted_samples`).
Long raw rows (per channel) alternate event by event on the rows sorted once, in
compiled code (:mod:`qcore.kernels.admm_alternation`): a step moves only the codes
that change; the same codes, steps and history as value by value.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..code_sums import square_sums
from ..constraints import Constraint, Interval
from ..granularity import Rows, to_rows
from ..kernels.admm_alternation import affine_rows, keys_from_sorted, sorted_magnitude_keys, symmetric_rows
from ..rounding import codes
from ..scheme import QuantScheme
from ..weighted_samples import MAX_BINS, MAX_RAW, Samples, default_bins, use_histogram, weighted_samples
from .base import Calibration, CalibrationData, Calibrator, Curve, register, symmetric_range

#: Iterates per row kept in the curve (a row may iterate up to ``max_iter`` times: 131k groups x 1000 iterates
#: would hold about 1 GB per history).
CURVE_POINTS = 64

#: The symmetric alternation copies out the unconverged rows once they are at most this share of its working copy
#: (converged rows in the copy are recomputed and ignored until then: fewer copies of the block).
REPACK_SHARE = 0.75
#: Shortest rows, and fewest values per level, that run on the compiled event-driven alternation
#: (:func:`on_sorted_rows`; measured on 4096 x 4096 as rows of 128..4096: per group of 128 numpy is faster at INT4 and
#: INT8, rows of 1024 at INT8 and of 512 at INT4 are faster in the kernel).
SORTED_MIN_LENGTH = 512
SORTED_VALUES_PER_LEVEL = 4
MAX_ITER = 10_000
"""Upper bound of ``max_iter`` (ADMM and EasyQuant options are bounded: see :mod:`qcore.constraints`)."""


def _shifted_codes(
    values: np.ndarray, scale32: np.ndarray, zero32: np.ndarray | None, scheme: QuantScheme, out: np.ndarray
) -> np.ndarray:
    """``clip(round(v / s) + z, q_min, q_max) - z`` per row in float32, written to ``out``.

    ``v / s`` in float32 as :func:`qcore.quantize.quantize_rows` divides. With half-even rounding
    the quotients are clipped to ``[q_min - z, q_max - z]`` before ``rint`` (the same codes: the
    bounds are integers and rounding is monotone), otherwise :func:`qcore.rounding.codes` rounds and clips.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        np.divide(values, scale32[:, None], out=out)
    if scheme.rounding != "half_even":
        z = 0.0 if zero32 is None else zero32[:, None]
        codes(out, z, scheme)
        if zero32 is not None:
            out -= z
        return out
    low, high = np.float32(scheme.qmin), np.float32(scheme.qmax)
    if zero32 is None:
        np.clip(out, low, high, out=out)
    else:  # np.clip with array bounds is several times slower than these two
        np.maximum(out, (low - zero32)[:, None], out=out)
        np.minimum(out, (high - zero32)[:, None], out=out)
    return np.rint(out, out=out)


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sum_j a_ij b_ij`` per row of two float64 arrays (a batched matrix product, faster than einsum)."""
    return np.matmul(a[:, None, :], b[:, :, None])[:, 0, 0]


Products = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray] | None"]
"""``(active rows, alpha of every row) -> (<w, q>, <q, q>)`` of the active rows, or None to give up."""


class RawProducts:
    """``<w, q>`` and ``<q, q>`` per active row, element by element on a working copy of a block's rows.

    Converged rows stay in the copy (recomputed, ignored) until the active ones are at most
    :data:`REPACK_SHARE` of it; then the active rows are copied out (fewer copies of the block).
    The codes as :func:`qcore.quantize.quantize_rows` computes them (:func:`_shifted_codes`), the sums
    in float64 (integer codes: ``<q, q>`` is exact).
    """

    def __init__(self, samples: Samples, scheme: QuantScheme) -> None:
        self.scheme = scheme
        self.held: np.ndarray | None = None  # rows of the working copy, set at the first call
        self.sub = samples
        self.wide = np.empty((0, 0))  # float64 ``w v`` of ``sub`` (weights applied)
        self.buffer32, self.buffer64 = np.empty(0, dtype=np.float32), np.empty(0)

    def _hold(self, held: np.ndarray, sub: Samples) -> None:
        self.held, self.sub = held, sub
        self.wide = sub.values.astype(np.float64)
        if sub.weights is not None:
            self.wide *= sub.weights
        if self.buffer32.size < sub.values.size:
            self.buffer32, self.buffer64 = np.empty(sub.values.size, dtype=np.float32), np.empty(sub.values.size)

    def __call__(self, active: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.held is None:
            self._hold(active, self.sub if active.size == self.sub.count.size else self.sub.select(active))
        elif active.size <= REPACK_SHARE * self.held.size:
            self._hold(active, self.sub.select(np.searchsorted(self.held, active)))
        shape = self.sub.values.shape
        q = self.buffer32[: self.sub.values.size].reshape(shape)
        _shifted_codes(self.sub.values, alpha[self.held].astype(np.float32), None, self.scheme, q)
        q64 = self.buffer64[: q.size].reshape(shape)
        np.copyto(q64, q)
        wq = _row_dot(q64, self.wide)
        if self.sub.weights is None:
            qq = square_sums(q, max(-self.scheme.qmin, self.scheme.qmax))  # exact float32 slices where they fit
            qq = _row_dot(q64, q64) if qq is None else qq
        else:
            qq = _row_dot(q64 * self.sub.weights, q64)
        at = np.searchsorted(self.held, active)
        return wq[at], qq[at]


def start_alpha(
    absmax: np.ndarray, abs_sum: Callable[[], np.ndarray], count: np.ndarray, scheme: QuantScheme, opts: ADMM
) -> np.ndarray:
    """``max|w| / (init_divisor Q)``, or ``mean|w|`` when ``Q = 1`` (MNN); ``abs_sum()`` gives ``sum |w|`` per row."""
    if scheme.qmax > 1:
        return absmax / (opts.init_divisor * scheme.qmax)
    return abs_sum() / np.maximum(count, 1.0)


def alternate(
    ww: np.ndarray, count: np.ndarray, alpha: np.ndarray, products: Products, opts: ADMM
) -> dict[str, np.ndarray] | None:
    """The symmetric alternation from ``alpha``: iteration counts and the history of alpha and MSE.

    ``ww = <w, w>`` and ``count`` per row; the MSE of a step is ``(ww - 2 a <w, q> + a^2 <q, q>) / count``.
    None when ``products`` gives up.
    """
    alpha = np.where(alpha > 0, alpha, 0.0)
    safe_n = np.maximum(count, 1.0)
    iterations = np.zeros(alpha.shape, dtype=np.int64)
    error = ww / safe_n
    alphas, errors = [], []
    active = np.flatnonzero(alpha > 0)
    for _ in range(opts.max_iter):
        if active.size == 0:
            break
        got = products(active, alpha)
        if got is None:
            return None
        wq, qq = got
        a = alpha[active]
        error = error.copy()
        error[active] = np.maximum(ww[active] - 2.0 * a * wq + a**2 * qq, 0.0) / safe_n[active]
        alphas.append(alpha.copy())
        errors.append(error)
        new = np.where(qq > 0, wq / np.where(qq > 0, qq, 1.0), a)
        moved = np.abs(new - a) > opts.tol * a
        iterations[active] += moved
        alpha[active] = new
        active = active[moved]
    if not alphas:
        alphas, errors = [alpha.copy()], [error]
    return {"iterations": iterations, "alphas": np.stack(alphas, 1), "mse": np.stack(errors, 1)}


def _symmetric_block(s: Samples, absmax: np.ndarray, scheme: QuantScheme, opts: ADMM) -> dict[str, np.ndarray]:
    """The alternation on one block of raw or histogram samples, element by element."""
    alpha = start_alpha(absmax, lambda: s.total(np.abs(s.values), np.ones_like(s.values)), s.count, scheme, opts)
    return alternate(s.total(s.values, s.values), s.count, alpha, RawProducts(s, scheme), opts)


class AffineSums:
    """Per row of a block's working copy: ``sum c``, ``sum c^2``, ``sum c v`` of the shifted codes ``c = q - z``.

    Weighted by the samples' counts; float64 sums of integer codes (``sum c``, ``sum c^2`` exact).
    Converged rows stay in the copy until the active ones are at most :data:`REPACK_SHARE` of it,
    as in :class:`RawProducts`.
    """

    def __init__(self, samples: Samples, scheme: QuantScheme) -> None:
        self.scheme = scheme
        self.held = np.arange(samples.count.size)
        self._hold(self.held, samples)
        self.buffer32, self.buffer64 = np.empty(samples.values.size, dtype=np.float32), np.empty(samples.values.size)

    def _hold(self, held: np.ndarray, sub: Samples) -> None:
        self.held, self.sub = held, sub
        self.wide = sub.values.astype(np.float64)  # w v
        if sub.weights is not None:
            self.wide *= sub.weights

    def __call__(
        self, active: np.ndarray, step: np.ndarray, zero: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sum c, sum c^2, sum c v)`` of the ``active`` rows, for ``(s, z)`` given for every row of the block."""
        if active.size <= REPACK_SHARE * self.held.size:
            self._hold(active, self.sub.select(np.searchsorted(self.held, active)))
        shape = self.sub.values.shape
        c = self.buffer32[: self.sub.values.size].reshape(shape)
        step32, zero32 = step[self.held].astype(np.float32), zero[self.held].astype(np.float32)
        _shifted_codes(self.sub.values, step32, zero32, self.scheme, c)
        c64 = self.buffer64[: c.size].reshape(shape)
        np.copyto(c64, c)
        weights = self.sub.weights
        if weights is None:  # no 2-D matmul for sum c: BLAS threads spin on a busy machine
            scc = square_sums(c, self.scheme.qmax - self.scheme.qmin)  # exact float32 slices where they fit
            sc, scc = c64.sum(axis=1), _row_dot(c64, c64) if scc is None else scc
        else:
            sc, scc = _row_dot(c64, weights), _row_dot(c64 * weights, c64)
        scv = _row_dot(c64, self.wide)
        at = np.searchsorted(self.held, active)
        return sc[at], scc[at], scv[at]


def _affine_block(
    s: Samples, lo0: np.ndarray, hi0: np.ndarray, scheme: QuantScheme, opts: ADMM
) -> dict[str, np.ndarray]:
    r"""Affine variant: codes under the default convention's ``(s, z)``, then the least-squares line ``v ~ a q + b``.

    With the shifted codes ``c = q - z`` and ``n``, ``S_v``, ``S_vv`` the row's count, ``sum v``, ``sum v^2``:

    .. math::

        a = \frac{n \sum c v - \sum c\, S_v}{n \sum c^2 - (\sum c)^2},\quad
        b = \frac{S_v - a (\sum c + n z)}{n},\quad
        \mathrm{MSE} = \frac{S_{vv} - 2 s \sum c v + s^2 \sum c^2}{n}

    (``s`` the float32 step the quantizer uses; the MSE of ``v - c s`` in exact arithmetic). Every row
    is evaluated at the first step, then only the rows still moving (a converged row's range, step and
    MSE stay as they were, so its history repeats its last values). A row whose new range equals the
    one of two steps before alternates between two ranges for good (clipping and the rounded zero point
    make that possible): it stops there, marked ``cycled``; both ranges are in its history.
    """
    qmin, qmax = scheme.qmin, scheme.qmax
    lo = np.clip(lo0 / opts.init_divisor, lo0, hi0)
    hi = np.clip(hi0 / opts.init_divisor, lo0, hi0)
    done = ~(hi0 > lo0)
    iterations = np.zeros(lo.shape, dtype=np.int64)
    cycled = np.zeros(lo.shape, dtype=bool)
    step_now, error_now = np.empty(lo.shape), np.empty(lo.shape)
    scales, errors, los, his = [], [], [], []
    ones = np.ones_like(s.values)
    n, safe_n = s.count, np.maximum(s.count, 1.0)
    sv, svv = s.total(s.values, ones), s.total(s.values, s.values)
    sums = AffineSums(s, scheme)
    step_all, zero_all = np.ones(lo.shape), np.zeros(lo.shape)
    active = np.arange(lo.size)
    for _ in range(opts.max_iter):
        wide_lo, wide_hi = np.minimum(lo[active], 0.0), np.maximum(hi[active], 0.0)
        span = wide_hi - wide_lo
        step = np.where(span > 0, span / (qmax - qmin), 1.0)
        zero = np.clip(np.round(qmin - wide_lo / step), qmin, qmax)
        step_all[active], zero_all[active] = step, zero
        sc, scc, scv = sums(active, step_all, zero_all)
        n_a, sv_a = n[active], sv[active]
        s32 = step.astype(np.float32).astype(np.float64)
        step_now[active] = step
        error_now[active] = np.maximum(svv[active] - 2.0 * s32 * scv + s32**2 * scc, 0.0) / safe_n[active]
        scales.append(step_now.copy())
        errors.append(error_now.copy())
        los.append(lo.copy())
        his.append(hi.copy())
        det = n_a * scc - sc**2
        ok = det > 0
        a = np.where(ok, (n_a * scv - sc * sv_a) / np.where(ok, det, 1.0), step)
        b = np.where(ok, (sv_a - a * (sc + n_a * zero)) / safe_n[active], 0.0)
        lo_a, hi_a = lo[active], hi[active]
        keep = done[active] | ~(a > 0)
        new_lo = np.where(keep, lo_a, np.clip(a * qmin + b, lo0[active], hi0[active]))
        new_hi = np.where(keep, hi_a, np.clip(a * qmax + b, lo0[active], hi0[active]))
        scale_ref = np.maximum(np.abs(lo_a), np.abs(hi_a))
        moved = (np.abs(new_lo - lo_a) > opts.tol * scale_ref) | (np.abs(new_hi - hi_a) > opts.tol * scale_ref)
        iterations[active] += moved
        if len(los) > 1:  # back to the range of two steps before: a 2-cycle
            back = moved & (new_lo == los[-2][active]) & (new_hi == his[-2][active])
            cycled[active] |= back
            moved &= ~back
        done[active] |= ~moved
        lo[active], hi[active] = new_lo, new_hi
        if done.all():
            break
        active = active[moved]
    return {
        "lo": np.stack(los, 1),
        "hi": np.stack(his, 1),
        "iterations": iterations,
        "cycled": cycled,
        "alphas": np.stack(scales, 1),
        "mse": np.stack(errors, 1),
    }


def on_sorted_rows(rows: Rows, scheme: QuantScheme, histogram: bool) -> bool:
    """Whether the alternation runs event by event on the rows sorted once (the compiled kernel).

    Raw samples (not on the histogram) in rows of at least :data:`SORTED_MIN_LENGTH` values and
    :data:`SORTED_VALUES_PER_LEVEL` per level; shorter rows alternate value by value (a step of the kernel
    checks every level's boundary, a step of numpy reads the row: groups of 128 are faster in numpy).
    """
    length = rows.values.shape[1]
    return not histogram and length >= max(SORTED_MIN_LENGTH, SORTED_VALUES_PER_LEVEL * scheme.levels)


def _history(buffer: np.ndarray, pad: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``(rows, width)`` view of a kernel's ``(rows, max_iter)`` history, ``pad`` written in place where ``after``.

    ``after = _after_last_step(steps)``: the iterates a row did not reach (no new ``(rows, width)`` array).
    """
    view = buffer[:, : after.shape[1]]
    np.copyto(view, pad[:, None], where=after)
    return view


def _after_last_step(steps: np.ndarray) -> np.ndarray:
    """``t >= steps[r]`` for ``t`` up to the longest history of the block (at least one column)."""
    return np.arange(max(int(steps.max(initial=0)), 1))[None, :] >= steps[:, None]


def _last(buffer: np.ndarray, steps: np.ndarray, otherwise: np.ndarray) -> np.ndarray:
    """Each row's last written iterate of a kernel's history (``otherwise`` where it has none)."""
    out = otherwise.astype(np.float64, copy=True)
    has = np.flatnonzero(steps > 0)
    out[has] = buffer[has, steps[has] - 1]
    return out


def _symmetric_sorted(
    s: Samples, keys: np.ndarray, absmax: np.ndarray, scheme: QuantScheme, opts: ADMM
) -> dict[str, np.ndarray] | None:
    """:func:`alternate` on a block of rows sorted once (:func:`qcore.kernels.admm_alternation.symmetric_rows`).

    ``s`` the block's raw samples (for ``<w, w>`` and the start, summed as :func:`_symmetric_block` sums them),
    ``keys`` its magnitude keys, each row sorted (:func:`~qcore.kernels.admm_alternation.sorted_magnitude_keys`).
    None when a step does not fit the kernel (a step that is not a positive float32).
    """
    alpha0 = start_alpha(absmax, lambda: s.total(np.abs(s.values), np.ones_like(s.values)), s.count, scheme, opts)
    ww = s.total(s.values, s.values)
    k = keys.shape[0]
    alphas, errors = np.empty((k, opts.max_iter)), np.empty((k, opts.max_iter))
    steps, iterations, final = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64), np.empty(k)
    count = s.count.astype(np.int64)
    half_away = scheme.rounding == "half_away"
    args = (scheme.qmin, scheme.qmax, half_away, opts.max_iter, float(opts.tol))
    if not symmetric_rows(keys, count, alpha0.astype(np.float64), ww, *args, alphas, errors, steps, iterations, final):
        return None
    last_error = _last(errors, steps, ww / np.maximum(s.count, 1.0))
    after = _after_last_step(steps)
    return {
        "iterations": iterations,
        "alphas": _history(alphas, final, after),
        "mse": _history(errors, last_error, after),
    }


def _affine_sorted(
    s: Samples, keys: np.ndarray, lo0: np.ndarray, hi0: np.ndarray, scheme: QuantScheme, opts: ADMM
) -> dict[str, np.ndarray] | None:
    """:func:`_affine_block` on a block of rows sorted once (:func:`qcore.kernels.admm_alternation.affine_rows`).

    ``keys``: its magnitude keys, each row sorted (:func:`~qcore.kernels.admm_alternation.sorted_magnitude_keys`).
    None when a step does not fit the kernel (a step that is not a positive float32).
    """
    ones = np.ones_like(s.values)
    sv, svv = s.total(s.values, ones), s.total(s.values, s.values)
    k = keys.shape[0]
    scales, errors, los, his = (np.empty((k, opts.max_iter)) for _ in range(4))
    steps, iterations = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
    cycled, final = np.empty(k, dtype=bool), np.empty((k, 2))
    count = s.count.astype(np.int64)
    half_away = scheme.rounding == "half_away"
    args = (scheme.qmin, scheme.qmax, half_away, opts.max_iter, float(opts.tol), float(opts.init_divisor))
    bounds = lo0.astype(np.float64), hi0.astype(np.float64)
    history = (scales, errors, los, his, steps, iterations, cycled, final)
    if not affine_rows(keys, count, *bounds, sv, svv, *args, *history):
        return None
    after = _after_last_step(steps)
    return {
        "lo": _history(los, final[:, 0], after),
        "hi": _history(his, final[:, 1], after),
        "iterations": iterations,
        "cycled": cycled,
        "alphas": _history(scales, _last(scales, steps, np.ones(k)), after),
        "mse": _history(errors, _last(errors, steps, np.zeros(k)), after),
    }


def _summary(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One block's result with its histories cut to at most :data:`CURVE_POINTS` iterates per row.

    ``chosen`` (the iterate of least MSE, first of equals) and its step / range are taken from the
    full history first; the kept iterates are evenly spaced from the first to the last, with the
    chosen one in place of its nearest kept neighbour above (so it is always shown).
    """
    mse = part["mse"]
    n_rows, width = mse.shape
    chosen = np.argmin(mse, axis=1)
    pick = np.arange(n_rows), chosen
    out = {name: part[name] for name in ("alphas", "mse", "iterations", "cycled") if name in part}
    out["best_alpha"] = part["alphas"][pick]
    if "lo" in part:
        out["best_lo"], out["best_hi"] = part["lo"][pick], part["hi"][pick]
    if width <= CURVE_POINTS:
        out["chosen"] = chosen
        return out
    kept = np.round(np.linspace(0, width - 1, CURVE_POINTS)).astype(np.int64)
    slot = np.searchsorted(kept, chosen)
    columns = np.broadcast_to(kept, (n_rows, CURVE_POINTS)).copy()
    columns[np.arange(n_rows), slot] = chosen
    for name in ("alphas", "mse"):
        out[name] = np.take_along_axis(part[name], columns, axis=1)
    out["chosen"] = slot
    return out


def _collect(parts: Iterable[tuple[slice, dict[str, np.ndarray]]], n_rows: int) -> dict[str, np.ndarray]:
    """Every block's :func:`_summary` written into arrays over all rows, one block at a time.

    The curves are at most :data:`CURVE_POINTS` wide (as wide as the longest summary), each row's
    history padded with its last value; a block's full history is dropped once summarised.
    """
    out = {
        "alphas": np.empty((n_rows, CURVE_POINTS)),
        "mse": np.empty((n_rows, CURVE_POINTS)),
        "iterations": np.zeros(n_rows, dtype=np.int64),
        "cycled": np.zeros(n_rows, dtype=bool),
        "chosen": np.zeros(n_rows, dtype=np.int64),
        "best_alpha": np.zeros(n_rows),
        "best_lo": np.zeros(n_rows),
        "best_hi": np.zeros(n_rows),
    }
    width = 1
    for sl, part in parts:
        summary = _summary(part)
        for name, value in summary.items():
            if name in ("alphas", "mse"):
                out[name][sl, : value.shape[1]] = value
                out[name][sl, value.shape[1] :] = value[:, -1:]
                width = max(width, value.shape[1])
            else:
                out[name][sl] = value
    for name in ("alphas", "mse"):  # a copy when narrower: the result does not keep the unused columns alive
        out[name] = out[name] if width == CURVE_POINTS else out[name][:, :width].copy()
    return out


def load_kernels() -> None:
    """Compile (on a fresh checkout, about 5 s) or load from numba's cache (well under a second) the event-driven
    alternation, symmetric and affine, with the keys sorted now or merged from a cached sorted copy, as a
    per-channel calibration calls it. The first such call does the same."""
    x = np.linspace(-1.0, 2.0, 2 * 4 * 256, dtype=np.float32).reshape(2, -1)
    for symmetric, cached in itertools.product((True, False), (False, True)):
        scheme = QuantScheme(bits=8, symmetric=symmetric, granularity="channel")
        data = CalibrationData(to_rows(x, scheme))
        if cached:  # a sorted copy kept (as the app's analysis keeps one): keys merged from it
            data.sorted_rows()
        ADMM(max_iter=3).calibrate(data, scheme)


@register
@dataclass(frozen=True)
class ADMM(Calibrator):
    r"""Alternating least squares for the step (MNN's weight ADMM).

    Symmetric, with :math:`Q = q_{max}` (``2^(b-1) - 1`` signed):

    .. math::

        \alpha^{(0)} = \frac{\max|w|}{1.25\,Q},\quad
        q^{(k)} = \operatorname{clip}(\operatorname{round}(w/\alpha^{(k)}), q_{min}, q_{max}),\quad
        \alpha^{(k+1)} = \frac{\langle w, q^{(k)}\rangle}{\langle q^{(k)}, q^{(k)}\rangle}

    until ``|alpha' - alpha| <= tol * alpha`` (or ``max_iter``, MNN's fixed 1000;
    for ``Q = 1`` the start is ``mean|w|`` as in MNN). Returns ``scale = alpha`` and
    ``T = min(alpha Q, max|w|)``; under the default convention ``T / Q`` is ``alpha``
    unless the clamp to ``max|w|`` applied (the scale is returned either way).
    Codes use the scheme's grid and rounding: MNN's ``[-Q, Q]`` with ``roundf``
    (half away) is the ``ncnn`` convention (narrow range, half away).

    Asymmetric (an affine variant, no MNN counterpart): codes under the default
    convention's ``(s, z)`` for the current range ``[lo, hi]``, then the
    least-squares line ``w ~ a q + b`` gives the new range
    ``[a q_min + b, a q_max + b]`` clipped to ``[min w, max w]``; the range starts at
    ``[min, max] / 1.25``. No scale is returned: the convention derives ``(s, z)``
    from the range as in the iteration. It stops at a fixed point, at ``max_iter``, or when
    a row returns to its range of two steps before (a 2-cycle, ``details['cycled']``).
    The iterate of least MSE is returned, the MSE of ``w - (q - z) s`` in exact arithmetic with ``s``
    the float32 step (from the sums of the codes; the float32 dequantized values differ from it by the
    rounding of ``(q - z) s``, a few 1e-6 of the MSE at 8 bits).

    Tensors with more than ``max_raw`` elements and rows longer than ``4 * bins``
    run on the signed histogram (bin centres weighted by counts; each value moves by
    at most half a bin width ``(max - min) / (2 bins)``). Otherwise rows of at least
    512 values and 4 per level (:func:`on_sorted_rows`: per channel of a 4096-wide weight)
    alternate event by event on the rows sorted once, symmetric and affine
    (:mod:`qcore.kernels.admm_alternation`: each step moves only the code-run boundaries
    that values crossed, deciding each value with the real quantizer near a boundary; the
    same iterations, steps and history as value by value, tested), shorter rows (groups)
    value by value.

    ``curve``: ``x`` = the step ``alpha`` at each iteration, ``y`` = the MSE
    ``||w - alpha q||^2 / N`` with the codes of that step (rows that converged earlier
    repeat their last value; at most :data:`CURVE_POINTS` evenly spaced iterates per row are
    kept, always with the chosen one: 131k groups would otherwise hold ``max_iter`` iterates each);
    ``chosen`` = the iterate of least MSE, whose step
    (or range) is returned: the last one for the symmetric alternation (its MSE never
    increases, up to float rounding), the best one for the affine variant (clipping
    the range and rounding the zero point can increase it).

    Parameters
    ----------
    max_iter : int
        Iteration cap (MNN: 1000 for weights, 300 for features).
    tol : float
        Relative change of ``alpha`` (or of the range) below which a row has converged.
    init_divisor : float
        ``alpha0 = max|w| / (init_divisor * Q)``; 1.25 (MNN weights) or 2.5 (MNN features).
    max_raw : int
        Element count above which long rows run on the histogram.
    bins : int or None
        Histogram bins of that mode; None: :func:`qcore.weighted_samples.default_bins` (32768 at 8 bits).
    """

    name = "admm"
    label = "ADMM (alternating least squares)"
    summary = (
        "Alternate rounding to integer codes and the least-squares step for those codes until the step stops changing."
    )
    formula = (
        r"q = \operatorname{clip}(\operatorname{round}(w/\alpha), -Q, Q),\quad"
        r"\alpha \leftarrow \frac{\langle w, q\rangle}{\langle q, q\rangle}"
    )

    max_iter: int = 1000
    tol: float = 1e-9
    init_divisor: float = 1.25
    max_raw: int = 1 << 20
    bins: int | None = None
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "max_iter": Interval(1, MAX_ITER, integer=True),
        "tol": Interval(0.0, 1.0, closed="left"),
        "init_divisor": Interval(0.0, 1e6, closed="right"),
        "max_raw": Interval(1, MAX_RAW, integer=True),
        "bins": Interval(1, MAX_BINS, integer=True, allow_none=True),
    }

    def _parts(
        self, data: CalibrationData, scheme: QuantScheme, histogram: bool, bins: int, fell_back: list[slice]
    ) -> Iterable[tuple[slice, dict[str, np.ndarray]]]:
        """Each row block's alternation: on its rows sorted once (:func:`on_sorted_rows`), else sample by sample.

        A block the kernel declines runs sample by sample; its slice is appended to ``fell_back``.
        """
        rows = data.rows
        sorted_path = on_sorted_rows(rows, scheme, histogram)
        buffer = np.empty((0, 0), dtype=np.uint32)  # one block's sorted magnitude keys, reused
        for sl, s in weighted_samples(rows, data.signed_histogram(bins) if histogram else None):
            part = None
            if sorted_path:
                if buffer.shape[0] < s.values.shape[0]:
                    buffer = np.empty(s.values.shape, dtype=np.uint32)
                block = rows.values[sl]
                keys = buffer[: block.shape[0], : block.shape[1]]
                if data.holds_sorted_rows:  # merged from the cached sorted copy: O(n) per row, no sort
                    keys_from_sorted(data.sorted_values(sl), s.count.astype(np.int64), keys)
                else:
                    sorted_magnitude_keys(block, keys)
                keys = keys.view()
                keys.flags.writeable = False  # one compiled variant of the kernels
                if scheme.symmetric:
                    part = _symmetric_sorted(s, keys, rows.absmax[sl], scheme, self)
                else:
                    part = _affine_sorted(s, keys, rows.min[sl], rows.max[sl], scheme, self)
                if part is None:
                    fell_back.append(sl)
            if part is None:
                if scheme.symmetric:
                    part = _symmetric_block(s, rows.absmax[sl], scheme, self)
                else:
                    part = _affine_block(s, rows.min[sl], rows.max[sl], scheme, self)
            yield sl, part

    def calibrate(self, data: CalibrationData, scheme: QuantScheme) -> Calibration:
        rows = data.rows
        bins = self.bins or default_bins(scheme)
        histogram = use_histogram(rows, bins, self.max_raw)
        fell_back: list[slice] = []
        parts = self._parts(data, scheme, histogram, bins, fell_back)
        result = _collect(parts, rows.n_rows)
        alphas, mse, iterations, cycled = result["alphas"], result["mse"], result["iterations"], result["cycled"]
        chosen = result["chosen"]
        parameter = f"step alpha (one point per iteration, at most {CURVE_POINTS} shown)"
        curve = Curve("MSE ||w - alpha q||^2 / N", parameter, alphas, mse, chosen)
        details = {
            "iterations": iterations,
            "converged": (iterations < self.max_iter) & ~cycled,
            "cycled": cycled,
            "histogram": histogram,
            "bins": bins if histogram else None,
            "sorted": on_sorted_rows(rows, scheme, histogram) and not fell_back,
        }
        if not scheme.symmetric:
            return Calibration(self.name, result["best_lo"], result["best_hi"], curve, details=details)
        alpha = result["best_alpha"]
        threshold = np.minimum(alpha * scheme.qmax, rows.absmax)
        lo, hi = symmetric_range(threshold, scheme)
        details["alpha"] = alpha
        return Calibration(self.name, lo, hi, curve, scale=np.where(alpha > 0, alpha, 1.0), details=details)
