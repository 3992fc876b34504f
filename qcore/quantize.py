"""The round trip: quantize to integer codes and dequantize back.

.. math::

    q = \\operatorname{clamp}(\\operatorname{round}(x / s) + z,\\ q_{min},\\ q_{max}),
    \\qquad \\hat x = (q - z)\\, s

Arithmetic is float32, as in ONNX Runtime, PyTorch and modelopt, with ``s`` cast
to float32 first and the zero point added after rounding, then the clamp.
``params.arithmetic`` picks how ``x / s`` is evaluated:

- ``'divide'``: ``x / s``; ``x_hat = (q - z) * s`` (ONNX ``QuantizeLinear``/``DequantizeLinear``)
- ``'multiply'``: ``x * (1 / s)``; ``x_hat = (q - z) * s`` (PyTorch ``fake_quantize_per_*_affine``)
- ``'multiplier'``: ``x * m``; ``x_hat = q / m`` with ``m = q_max / T`` and ``T = s q_max``
  (ncnn's stored ``127 / T``; modelopt's ``max_bound / amax``, a float32 tensor division; zero point 0)

Missing elements (NaN) get the code ``z`` and dequantize to NaN so they stay
visible as missing. Near float32's limit (``|x| ~ 3.4e38``) ``(q - z) s`` can exceed
the largest float32 by a rounding step (``127 * float32(T / 127) > T``): such a row's
dequantized values saturate at ``+-3.4028235e38`` instead of becoming ``+-inf``, so
finite input always has a finite round trip.
"""

from __future__ import annotations

import numpy as np

from .granularity import Rows
from .params import QParams
from .rounding import ROUNDERS


def _code_dtype(qmin: int, qmax: int) -> np.dtype:
    """Smallest numpy integer dtype holding ``[qmin, qmax]``."""
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dt)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def multiplier(params: QParams) -> np.ndarray:
    """``m = q_max / T`` in float32 with ``T = float32(s q_max)``, shape (n_rows, 1)."""
    top = np.float32(params.qmax)
    amax = (params.scale * params.qmax).astype(np.float32)
    with np.errstate(over="ignore", divide="ignore"):  # a subnormal T overflows m, as in float32 C++/torch
        return (top / amax)[:, None]


def quantize_rows(values: np.ndarray, params: QParams, missing: bool = True) -> np.ndarray:
    """Integer codes of ``values`` (shape ``(n_rows, L)``) under per-row ``params``.

    Parameters
    ----------
    values : ndarray of float32, shape (n_rows, L)
    params : QParams
    missing : bool
        Whether ``values`` may hold NaN (``rows.has_missing``); False skips the NaN pass.

    Returns
    -------
    ndarray
        Codes in the smallest integer dtype that holds ``[q_min, q_max]``; NaN gets ``z``.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if params.arithmetic == "multiplier":
            scaled = values * multiplier(params)
        elif params.arithmetic == "multiply":
            scaled = values * (np.float32(1.0) / params.scale.astype(np.float32)[:, None])
        else:
            scaled = values / params.scale.astype(np.float32)[:, None]
        rounded = ROUNDERS[params.scheme.rounding](scaled)
        if missing:
            np.copyto(rounded, np.float32(0.0), where=np.isnan(rounded))
        if np.any(params.zero_point):  # adding 0 changes no code: one pass less for symmetric grids
            rounded += params.zero_point[:, None].astype(np.float32)
        np.clip(rounded, params.qmin, params.qmax, out=rounded)
    return rounded.astype(_code_dtype(params.qmin, params.qmax))


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _may_overflow(params: QParams) -> bool:
    """Whether some ``|q - z| s`` (float64 bound, with float32 rounding room) reaches float32's limit."""
    reach = np.maximum(np.abs(params.qmin - params.zero_point), np.abs(params.qmax - params.zero_point))
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.any(reach * params.scale.astype(np.float64) >= FLOAT32_MAX * (1 - 2.0**-20)))


def dequantize_rows(codes: np.ndarray, params: QParams) -> np.ndarray:
    """``x_hat = (q - z) * s`` per row in float32 (``q / m`` for the multiplier one), saturated at float32's limit."""
    with np.errstate(over="ignore"):
        if params.arithmetic == "multiplier":
            out = codes.astype(np.float32) / multiplier(params)
        else:
            scale = params.scale.astype(np.float32)[:, None]
            out = codes.astype(np.float32)
            if np.any(params.zero_point):
                out -= params.zero_point[:, None].astype(np.float32)
            out *= scale
    if _may_overflow(params):
        np.clip(out, -FLOAT32_MAX, FLOAT32_MAX, out=out)
    return out


def fake_quantize_rows(values: np.ndarray, params: QParams, missing: bool = True) -> np.ndarray:
    """Quantize then dequantize; NaN (missing) stays NaN (checked only when ``missing``)."""
    x_hat = dequantize_rows(quantize_rows(values, params, missing), params)
    if missing:
        np.copyto(x_hat, np.float32(np.nan), where=np.isnan(values))
    return x_hat


def quantize(rows: Rows, params: QParams) -> np.ndarray:
    """Integer codes in the tensor's shape."""
    return rows.restore(quantize_rows(rows.values, params, rows.has_missing))


def fake_quantize(rows: Rows, params: QParams) -> np.ndarray:
    """Dequantized float32 tensor in the original shape."""
    return rows.restore(fake_quantize_rows(rows.values, params, rows.has_missing))
