r"""GPTQ: weight quantization with second-order error feedback (Frantar et al., 2023; AutoGPTQ ``gptq.py``).

With ``H = 2 X^T X / n`` (the Hessian of ``|X W^T - X \hat W^T|^2`` per output row):

1. dead columns (``H_ii = 0``): ``H_ii = 1``, ``W[:, i] = 0``;
2. act-order (optional): columns in order of decreasing ``H_ii``;
3. damping: ``H += \lambda I`` with ``\lambda = damp \cdot mean(diag H)`` (``damp = 0.01``);
4. ``H^{-1} = U^T U``, ``U`` upper Cholesky factor of ``H^{-1}``;
5. column blocks of ``block_size`` (128): for each column ``i`` of the block,
   ``q = Q(w_i)``, ``e = (w_i - q) / U_ii``, ``W[:, i:] -= e U[i, i:]`` (inside the block);
   after the block ``W[:, i2:] -= E U[i1:i2, i2:]``.

Quantization parameters come from the W side's scheme and calibrator: per tensor or per output
channel, fitted once on ``W`` (after step 1); grouped along ``K`` (axis 1, ``group_size``), refit
each time column ``i`` starts a group, on ``W[:, i:i+g]`` as held at the last block boundary
(AutoGPTQ fits ``W`` there, not the block's running copy); or, with ``static_groups``, every group fitted once on
the original ``W``. Each column is vectorised over rows; the
columns of a block run in order, as in the reference.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from ..analysis import Analysis
from ..formats import get_format
from ..scheme import QuantOptionError, QuantScheme
from .base import MethodOutput, Side, check_int, check_number, column_quantizer, round_trip

DEFAULT_DAMP = 0.01
DEFAULT_BLOCK = 128


def hessian(x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """``H = 2 X^T X / n`` in ``dtype``."""
    xd = np.asarray(x, dtype=dtype)
    return (xd.T @ xd) * dtype(2.0 / xd.shape[0])


def inverse_factor(h: np.ndarray, damp: float) -> np.ndarray:
    r"""Upper Cholesky factor ``U`` of ``(H + damp mean(diag H) I)^{-1}``; a clear error when it is singular.

    AutoGPTQ computes it as ``cholesky(cholesky_inverse(cholesky(H)), upper=True)``. The same (unique) factor
    costs half as much from the reversed matrix: with ``J`` the reversal, ``J H J = M M^T`` (``M`` lower) gives

    .. math::

        U = J M^{-1} J,\qquad U^T U = J M^{-T} M^{-1} J = (J M M^T J)^{-1} = H^{-1}

    (LAPACK ``potrf`` and ``trtri``).
    """
    h = np.array(h[::-1, ::-1], order="F")
    idx = np.arange(h.shape[0])
    h[idx, idx] += h.dtype.type(damp * float(np.mean(np.diag(h))))
    potrf, trtri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "trtri"), (h,))
    low, info = potrf(h, lower=True, overwrite_a=True, clean=True)
    if info == 0:
        inv, info = trtri(low, lower=True, overwrite_c=True)
    if info != 0:
        hint = "; use damping > 0 (0.01 is the default)" if damp == 0 else "; increase the damping"
        raise QuantOptionError(f"H = 2 X^T X / n is singular (not positive definite){hint}")
    return np.ascontiguousarray(np.triu(inv[::-1, ::-1]))


def _layout(w_side: Side) -> QuantScheme:
    """The W scheme with its format's layout filled in (a block format's blocks are groups along K)."""
    scheme = get_format(w_side.scheme.format, **w_side.options).scheme_for(w_side.scheme)
    s = scheme
    if (s.granularity == "channel" and s.axis not in (0, -2)) or (s.granularity == "group" and s.axis not in (1, -1)):
        raise QuantOptionError(
            "GPTQ quantizes W column by column: its ranges must be per tensor, per output channel (axis 0) "
            "or groups along the input dimension (axis 1)"
        )
    return scheme


def _fit(w_side: Side, block: np.ndarray) -> Analysis:
    """The W side's analysis of ``block``: a group of columns (one scale row per output row), or all of W."""
    return w_side.analyze(block)


def gptq_weights(
    w: np.ndarray,
    x: np.ndarray,
    w_side: Side,
    damp: float = DEFAULT_DAMP,
    act_order: bool = False,
    block_size: int = DEFAULT_BLOCK,
    dtype: type = np.float32,
    static_groups: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(W_hat float32, codes, details)``: GPTQ of ``W`` against the inputs ``X`` (see the module docstring).

    Parameters
    ----------
    w, x : ndarray, shapes (out, K), (n, K)
    w_side : Side
        Scheme, calibrator and convention of the weights.
    damp : float
        Damping as a fraction of ``mean(diag H)``, in [0, 1].
    act_order : bool
        Quantize columns in order of decreasing ``H_ii``.
    block_size : int
        Columns per lazy-update block.
    dtype : numpy float type
        Arithmetic of ``H``, its factor and the updates (float32 as AutoGPTQ; float64 for checks).
    static_groups : bool
        Fit every group once on the original ``W`` before any update (AutoGPTQ's ``static_groups``; with
        act-order each column keeps its own group's scales).
    """
    damp = check_number(damp, "damp", 0.0, 1.0)
    block_size = check_int(block_size, "block_size", 1, 1 << 16)
    scheme = _layout(w_side)
    out, k = w.shape
    h = hessian(x, dtype)
    wq = np.array(w, dtype=dtype)
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    wq[:, dead] = 0
    group = scheme.group_size if scheme.granularity == "group" else 0
    fits = None
    if static_groups and group:
        fits = [column_quantizer(_fit(w_side, wq[:, g0 : g0 + group])) for g0 in range(0, k, group)]
    perm = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    wq = np.ascontiguousarray(wq[:, perm])
    h = h[np.ix_(perm, perm)]
    u = inverse_factor(h, damp)
    quantize = None if group else column_quantizer(_fit(w_side, wq))
    w_hat = np.empty((out, k), dtype=np.float32)
    codes = None
    losses = np.zeros(k)
    for i1 in range(0, k, block_size):
        i2 = min(i1 + block_size, k)
        w1 = wq[:, i1:i2].copy()
        err = np.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            c = i1 + i
            if fits is not None:
                quantize = fits[perm[c] // group]
            elif group and c % group == 0:
                quantize = column_quantizer(_fit(w_side, wq[:, c : c + group]))
            col_codes, q = quantize(w1[:, i : i + 1])
            if codes is None:
                codes = np.empty((out, k), dtype=col_codes.dtype)
            codes[:, c] = col_codes[:, 0]
            w_hat[:, c] = q[:, 0]
            e = (w1[:, i] - q[:, 0].astype(dtype)) / u1[i, i]
            losses[c] = float(np.sum(e.astype(np.float64) ** 2)) / 2
            w1[:, i:] -= np.outer(e, u1[i, i:])
            err[:, i] = e
        wq[:, i2:] -= err @ u[i1:i2, i2:]
    inv = np.argsort(perm)
    details = {
        "damp": damp,
        "act_order": bool(act_order),
        "block_size": block_size,
        "group_size": group or None,
        "static_groups": bool(fits is not None),
        "dead_columns": int(np.count_nonzero(dead)),
        "proxy_loss": float(np.sum(losses)),
    }
    return w_hat[:, inv], codes[:, inv], details


def gptq(
    w: np.ndarray,
    x: np.ndarray,
    w_side: Side | None,
    x_side: Side | None,
    damp: float = DEFAULT_DAMP,
    act_order: bool = False,
    block_size: int = DEFAULT_BLOCK,
    static_groups: bool = False,
) -> MethodOutput:
    """GPTQ weights (the X side, if quantized, is rounded to nearest on its own)."""
    if w_side is None:
        raise QuantOptionError("GPTQ quantizes the weights: choose W or both")
    w_hat, _, details = gptq_weights(w, x, w_side, damp, act_order, block_size, static_groups=static_groups)
    return MethodOutput(round_trip(x, x_side), w_hat, details)
