"""Rounding rules used by the quantizers."""

from __future__ import annotations

import numpy as np

from .scheme import QuantScheme


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


def codes(scaled: np.ndarray, zero: np.ndarray | float, scheme: QuantScheme) -> np.ndarray:
    """``clip(round(scaled) + z, q_min, q_max)`` computed in place in ``scaled`` (float32, finite or +-inf).

    Rounding as :data:`qcore.rounding.ROUNDERS` (half away: ``trunc(v) + sign(v)`` when
    ``|v - trunc(v)| >= 0.5``, exact for every float).
    """
    if scheme.rounding == "half_even":
        np.rint(scaled, out=scaled)
    else:
        whole = np.trunc(scaled)
        with np.errstate(invalid="ignore"):  # inf - inf: the sign step below adds 0 to the infinity
            np.subtract(scaled, whole, out=scaled)
        np.copysign(np.abs(scaled) >= 0.5, scaled, out=scaled)
        scaled += whole
    if np.any(zero):
        scaled += zero
    return np.clip(scaled, scheme.qmin, scheme.qmax, out=scaled)
