"""The round trip: quantize to integer codes and dequantize back.

.. math::

    q = \\operatorname{clamp}(\\operatorname{round}(x / s) + z,\\ q_{min},\\ q_{max}),
    \\qquad \\hat x = (q - z)\\, s

Arithmetic is float32, as in ONNX Runtime, PyTorch and modelopt: ``x / s`` (or
``x * (1/s)`` for the conventions that multiply), the zero point added after
rounding, then the clamp. Missing elements (NaN) get the code ``z`` and
dequantize to NaN so they stay visible as missing.
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


def quantize_rows(values: np.ndarray, params: QParams) -> np.ndarray:
    """Integer codes of ``values`` (shape ``(n_rows, L)``) under per-row ``params``.

    Returns
    -------
    ndarray
        Codes in the smallest integer dtype that holds ``[q_min, q_max]``.
    """
    scale = params.scale.astype(np.float32)[:, None]
    zp = params.zero_point[:, None]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if params.arithmetic == "multiply":
            scaled = values * (np.float32(1.0) / scale)
        else:
            scaled = values / scale
        rounded = ROUNDERS[params.scheme.rounding](scaled)
        rounded = np.where(np.isnan(rounded), 0.0, rounded)
        codes = np.clip(rounded + zp.astype(np.float32), params.qmin, params.qmax)
    return codes.astype(_code_dtype(params.qmin, params.qmax))


def dequantize_rows(codes: np.ndarray, params: QParams) -> np.ndarray:
    """``x_hat = (q - z) * s`` per row, float32."""
    scale = params.scale.astype(np.float32)[:, None]
    return (codes.astype(np.float32) - params.zero_point[:, None].astype(np.float32)) * scale


def fake_quantize_rows(values: np.ndarray, params: QParams) -> np.ndarray:
    """Quantize then dequantize; NaN (missing) stays NaN."""
    x_hat = dequantize_rows(quantize_rows(values, params), params)
    if np.isnan(values).any():
        x_hat = np.where(np.isnan(values), np.float32(np.nan), x_hat)
    return x_hat


def quantize(rows: Rows, params: QParams) -> np.ndarray:
    """Integer codes in the tensor's shape."""
    return rows.restore(quantize_rows(rows.values, params))


def fake_quantize(rows: Rows, params: QParams) -> np.ndarray:
    """Dequantized float32 tensor in the original shape."""
    return rows.restore(fake_quantize_rows(rows.values, params))
