"""Round to nearest: each quantized side calibrated and rounded on its own (the baseline of every method)."""

from __future__ import annotations

import numpy as np

from .base import MethodOutput, Side, round_trip


def rtn(w: np.ndarray, x: np.ndarray, w_side: Side | None, x_side: Side | None) -> MethodOutput:
    """``Y_hat = Q(X) Q(W)^T`` with each side's scheme and calibrator (a float side stays as it is)."""
    return MethodOutput(round_trip(x, x_side), round_trip(w, w_side))
