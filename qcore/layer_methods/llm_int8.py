r"""LLM.int8(): mixed-precision decomposition of the outlier input channels (Dettmers et al., 2022).

As bitsandbytes' ``int8_vectorwise_quant`` (``backends/default/ops.py``) and ``int8_mixed_scaled_mm``:

- outlier columns ``O = {j : max_i |X_ij| >= threshold}`` (``threshold = 6.0``, transformers'
  ``llm_int8_threshold``; ``threshold = 0`` keeps none);
- the 16-bit part ``Y_16 = fp16(X[:, O]) fp16(W[:, O])^T`` (``outlier_weights="int8"``: the weight
  columns come from the int8 weights, as bitsandbytes' kernel with int8-stored weights does);
- the int8 part: ``X`` with its outlier *elements* set to 0 is calibrated and rounded with the X
  side's scheme (vector-wise by default: one absmax per row, ``q = round(x 127 / absmax)``), then its
  outlier columns are zeroed; ``W`` is calibrated and rounded whole with the W side's scheme;
- ``Y_hat = X_8 W_8^T + Y_16``.

Effective bits per multiply-add operand: ``(8 (K - |O|) + 16 |O|) / K`` with the sides' bit widths.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..scheme import QuantOptionError
from .base import MethodOutput, Side, check_number, round_trip

DEFAULT_THRESHOLD = 6.0


def outlier_columns(x: np.ndarray, threshold: float) -> np.ndarray:
    """Sorted indices ``j`` with any ``|X_ij| >= threshold`` (none for ``threshold = 0``)."""
    if threshold <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.any(np.abs(x) >= threshold, axis=0))


def llm_int8(
    w: np.ndarray,
    x: np.ndarray,
    w_side: Side | None,
    x_side: Side | None,
    threshold: float = DEFAULT_THRESHOLD,
    outlier_weights: Literal["fp16", "int8"] = "fp16",
) -> MethodOutput:
    """Decompose ``Y = X W^T`` into a 16-bit outlier part and a quantized rest (see the module docstring).

    Parameters
    ----------
    w, x : ndarray of float32, shapes (out, K), (n, K)
    w_side, x_side : Side or None
        How the rest is quantized (None: that side stays float).
    threshold : float
        ``|x| >= threshold`` marks an outlier column; 0 disables the decomposition.
    outlier_weights : {'fp16', 'int8'}
        The weight columns of the 16-bit part: float16 (the paper) or the int8 weights (bitsandbytes).
    """
    threshold = check_number(threshold, "threshold", 0.0, 1e30)
    if outlier_weights not in ("fp16", "int8"):
        raise QuantOptionError(f"outlier_weights must be 'fp16' or 'int8', got {outlier_weights!r}")
    cols = outlier_columns(x, threshold)
    f16_max = float(np.finfo(np.float16).max)
    if cols.size and (np.max(np.abs(x[:, cols])) > f16_max or np.max(np.abs(w[:, cols])) > f16_max):
        raise QuantOptionError(f"LLM.int8() keeps outlier columns in float16: values beyond {f16_max:g} overflow")
    k = x.shape[1]
    x_rest = np.where(np.abs(x) >= threshold, np.float32(0.0), x) if cols.size else x
    x_eff = round_trip(x_rest, x_side).copy()
    w_q = round_trip(w, w_side)
    w_eff = w_q.copy()
    x_eff[:, cols] = x[:, cols].astype(np.float16).astype(np.float32)
    if outlier_weights == "fp16":
        w_eff[:, cols] = w[:, cols].astype(np.float16).astype(np.float32)
    x_bits = x_side.scheme.bits if x_side is not None else 32
    w_bits = w_side.scheme.bits if w_side is not None else 32
    share = cols.size / k
    col_max = np.max(np.abs(x), axis=0)
    details = {
        "threshold": threshold,
        "outlier_weights": outlier_weights,
        "outlier_columns": [int(c) for c in cols],
        "outlier_count": int(cols.size),
        "share_16bit": share,
        "effective_bits_x": x_bits * (1 - share) + 16 * share,
        "effective_bits_w": w_bits * (1 - share) + (16 if outlier_weights == "fp16" else w_bits) * share,
        "outlier_column_absmax": [float(col_max[c]) for c in cols],
    }
    return MethodOutput(x_eff, w_eff, details, {"column_absmax": col_max.astype(np.float64)})
