r"""AWQ: activation-aware weight scaling (Lin et al., 2024; mit-han-lab/llm-awq ``auto_scale.py``, ``auto_clip.py``).

Scale search (``_search_module_scale``): with ``\bar x_j = mean_i |X_ij|``, for each ratio
``r in {0, 0.05, ..., 0.95}``

.. math::

    s = \max(\bar x^{\,r}, 10^{-4}),\quad s \leftarrow s / \sqrt{\max s \cdot \min s},\quad
    W' = Q(W \mathrm{diag}(s))\, \mathrm{diag}(s)^{-1}

and the ``r`` with the smallest ``mean((X W^T - X W'^T)^2)`` wins (first minimum). Optional clip search
(``auto_clip_layer``), on ``W diag(s)`` and ``X diag(s)^{-1}``: per output row and group, the max ``m``
shrinks over ``m (1 - i/20)``, ``i = 0..9``; ``W`` is clamped to ``[-m, m]`` and quantized; the shrink
with the smallest mean squared partial output ``X_g (W_g - \hat W_g)^T`` over (at most 512 strided)
tokens wins. Quantization itself is the W side's scheme and calibrator.
"""

from __future__ import annotations

import numpy as np

from ..scheme import QuantOptionError
from .base import MethodOutput, Side, round_trip

N_GRID = 20
RATIOS = np.arange(N_GRID) / N_GRID
CLIP_GRID = 20
CLIP_MAX_SHRINK = 0.5
CLIP_TOKENS = 512


def awq_scales(x: np.ndarray, ratio: float) -> np.ndarray:
    """``s`` of the module docstring for one ratio, float32 (as the reference computes it)."""
    mean_abs = np.mean(np.abs(x), axis=0, dtype=np.float32)
    s = np.maximum(mean_abs ** np.float32(ratio), np.float32(1e-4))
    return (s / np.sqrt(s.max() * s.min())).astype(np.float32)


def _y_mse(y: np.ndarray, x: np.ndarray, w_hat: np.ndarray) -> float:
    d = x.astype(np.float64) @ w_hat.astype(np.float64).T - y
    return float(np.mean(d * d))


def search_scale(w: np.ndarray, x: np.ndarray, w_side: Side) -> tuple[float, np.ndarray, np.ndarray]:
    """``(best ratio, its s, mse per ratio)``: the grid search over ``r`` (see the module docstring)."""
    y = x.astype(np.float64) @ w.astype(np.float64).T
    history = np.empty(RATIOS.size)
    for i, r in enumerate(RATIOS):  # each candidate is a full quantization of W: no shared array form
        s = awq_scales(x, r)
        history[i] = _y_mse(y, x, round_trip(w * s[None, :], w_side) / s[None, :])
    best = int(np.argmin(history))
    return float(RATIOS[best]), awq_scales(x, RATIOS[best]), history


def _groups(w_side: Side, k: int) -> int:
    s = w_side.scheme
    if s.granularity == "group":
        if s.axis in (1, -1) and s.group_size >= k:
            return k  # one (padded) group per row
        if s.axis not in (1, -1) or k % s.group_size:
            raise QuantOptionError("AWQ clip search needs groups along the input dimension (axis 1) that divide K")
        return s.group_size
    return k


def search_clip(w: np.ndarray, x: np.ndarray, w_side: Side) -> tuple[np.ndarray, np.ndarray]:
    """``(m, max|W_g|)`` per ``(output row, group)`` (shape (out, K/g)): the clip max minimising the partial error."""
    out, k = w.shape
    g = _groups(w_side, k)
    n_groups = k // g
    step = max(x.shape[0] // CLIP_TOKENS, 1)
    xs = x[::step].astype(np.float64).reshape(-1, n_groups, g)
    wg = w.reshape(out, n_groups, g)
    org_max = np.max(np.abs(wg), axis=-1)
    org_out = np.einsum("tgk,ogk->ogt", xs, wg.astype(np.float64))
    best_max = org_max.copy()
    best_err = np.full(org_max.shape, np.inf)
    for i in range(int(CLIP_MAX_SHRINK * CLIP_GRID)):
        m = (org_max * (1 - i / CLIP_GRID)).astype(np.float32)
        clamped = np.clip(wg, -m[..., None], m[..., None]).reshape(out, k)
        q = round_trip(clamped, w_side).reshape(out, n_groups, g)
        err = np.mean((np.einsum("tgk,ogk->ogt", xs, q.astype(np.float64)) - org_out) ** 2, axis=-1)
        better = err < best_err
        best_err[better] = err[better]
        best_max[better] = m[better]
    return best_max, org_max


def awq(w: np.ndarray, x: np.ndarray, w_side: Side | None, x_side: Side | None, clip: bool = False) -> MethodOutput:
    """AWQ weights: scale search, optional clip search, ``W_hat = Q(clip(W s)) / s``; X rounded on its own."""
    if w_side is None:
        raise QuantOptionError("AWQ quantizes the weights: choose W or both")
    ratio, s, history = search_scale(w, x, w_side)
    w_s = w * s[None, :]
    details: dict = {"ratio": ratio, "ratio_mse": [float(v) for v in history], "clip": bool(clip)}
    if clip:
        out, k = w.shape
        m, org_max = search_clip(w_s, x / s[None, :], w_side)
        g = k // m.shape[1]
        w_s = np.clip(w_s.reshape(out, -1, g), -m[..., None], m[..., None]).reshape(out, k)
        details["clip_mean_ratio"] = float(np.mean(np.where(org_max > 0, m / np.where(org_max > 0, org_max, 1), 1)))
    w_hat = round_trip(w_s, w_side) / s[None, :]
    return MethodOutput(round_trip(x, x_side), w_hat, details, {"s": s.astype(np.float64), "ratio_mse": history})
