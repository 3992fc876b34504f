"""Rounding rules used by the quantizers."""

from __future__ import annotations

import numpy as np


def round_half_even(v: np.ndarray) -> np.ndarray:
    """Round to nearest, ties to even (``np.round``, ``torch.round``, ``std::nearbyint``)."""
    return np.round(v)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (C ``roundf``, as ncnn and MNN).

    Exact for every float: ``v - trunc(v)`` is computed without rounding error,
    unlike ``floor(|v| + 0.5)`` which turns 0.49999997 into 1.
    """
    t = np.trunc(v)
    return np.where(np.abs(v - t) >= 0.5, t + np.sign(v), t)


ROUNDERS = {"half_even": round_half_even, "half_away": round_half_away}
