r"""SmoothQuant: migrate activation outliers into the weights (Xiao et al., 2023; mit-han-lab ``smooth.py``).

.. math::

    s_j = \max\Big(\frac{\max_i |X_{ij}|^{\alpha}}{\max(\max_o |W_{oj}|,\ 10^{-5})^{1-\alpha}},\ 10^{-5}\Big),
    \qquad X' = X\,\mathrm{diag}(s)^{-1},\quad W' = W\,\mathrm{diag}(s)

so ``X' W'^T = X W^T`` exactly in real arithmetic; ``X'`` and ``W'`` are then quantized with the sides'
schemes. ``alpha = 0.5`` is the paper's default; :func:`alpha_sweep` scores ``alpha`` in ``0, 0.05, ..., 1``.
"""

from __future__ import annotations

import numpy as np

from .base import MethodOutput, Side, channel_absmax, check_number, round_trip

DEFAULT_ALPHA = 0.5
#: The sweep's grid: 0, 0.05, ..., 1.
ALPHAS = np.round(np.linspace(0.0, 1.0, 21), 2)
CLAMP = 1e-5


def smoothing_factors(w: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """``s_j`` of the module docstring in float64 (``0^0 = 1`` as in torch's ``pow``)."""
    act = channel_absmax(x, 0)
    wmax = np.maximum(channel_absmax(w, 0), CLAMP)
    return np.maximum(act**alpha / wmax ** (1.0 - alpha), CLAMP)


def smooth(w: np.ndarray, x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W diag(s), X diag(s)^-1, s)`` in float32 (``s`` float64)."""
    s = smoothing_factors(w, x, alpha)
    s32 = s.astype(np.float32)
    return w * s32[None, :], x / s32[None, :], s


def smoothquant(
    w: np.ndarray, x: np.ndarray, w_side: Side | None, x_side: Side | None, alpha: float = DEFAULT_ALPHA
) -> MethodOutput:
    """Smooth with migration strength ``alpha`` in [0, 1], then quantize the smoothed sides."""
    alpha = check_number(alpha, "alpha", 0.0, 1.0)
    w_s, x_s, s = smooth(w, x, alpha)
    details = {
        "alpha": alpha,
        "x_channel_max_ratio_before": _ratio(channel_absmax(x, 0)),
        "x_channel_max_ratio_after": _ratio(channel_absmax(x_s, 0)),
        "w_channel_max_ratio_before": _ratio(channel_absmax(w, 0)),
        "w_channel_max_ratio_after": _ratio(channel_absmax(w_s, 0)),
    }
    arrays = {
        "s": s,
        "x_max_before": channel_absmax(x, 0),
        "x_max_after": channel_absmax(x_s, 0),
        "w_max_before": channel_absmax(w, 0),
        "w_max_after": channel_absmax(w_s, 0),
    }
    return MethodOutput(round_trip(x_s, x_side), round_trip(w_s, w_side), details, arrays)


def _ratio(m: np.ndarray) -> float:
    """``max / median`` of per-channel maxima (0 when the median is 0)."""
    med = float(np.median(m))
    return float(np.max(m) / med) if med > 0 else 0.0
