"""Numbers of the lesson "how a float format spends its bits": where each format puts its levels.

- :func:`positive_levels`: the non-negative values of INT8, FP8 E4M3 and FP8 E5M2 scaled to the same top value:
  INT spaces its 127 steps evenly; a float halves its step with every binade below the top, so its levels
  crowd near 0 (relative step ``2^-m`` for ``m`` mantissa bits, constant across binades).
"""

from __future__ import annotations

import numpy as np

from .formats.elements import ELEMENTS

FLOAT_ELEMENTS = ("e4m3", "e5m2")


def positive_levels(top: float = 1.0) -> dict[str, np.ndarray]:
    """Non-negative levels of INT8 (symmetric, ``k / 127``) and of the FP8 elements, each scaled so its largest is
    ``top`` (float64, sorted, 0 included)."""
    out = {"int8": np.arange(128, dtype=np.float64) / 127.0 * top}
    for name in FLOAT_ELEMENTS:
        v = ELEMENTS[name].values
        v = v[v >= 0]
        out[f"fp8_{name}"] = v / v[-1] * top
    return out


def relative_step(levels: np.ndarray) -> np.ndarray:
    """``(l_{i+1} - l_i) / l_{i+1}`` for consecutive positive levels: the relative rounding error a format allows."""
    pos = levels[levels > 0]
    return np.diff(pos) / pos[1:]
