"""Numbers of the lesson "how a float format spends its bits": level density and block scales on outliers.

- :func:`positive_levels`: the non-negative values of INT8, FP8 E4M3 and FP8 E5M2 scaled to the same top value:
  INT spaces its 127 steps evenly; a float halves its step with every binade below the top, so its levels
  crowd near 0 (relative step ``2^-m`` for ``m`` mantissa bits, constant across binades).
- :func:`block_scales_on_outliers`: a gaussian tensor with a few large outliers, quantized at about 4 bits with
  one scale per tensor (INT4, FP4 E2M1) and with block scales (MXFP4, NVFP4, Q4_0, NF4): one outlier only
  coarsens its own block instead of the whole tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis import analyze
from .formats.elements import ELEMENTS
from .scheme import QuantScheme

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


@dataclass(frozen=True)
class OutlierCase:
    """One configuration on the outlier tensor: bits per weight and SQNR."""

    name: str
    bits_per_weight: float
    sqnr_db: float
    scales: str


def outlier_tensor(n_rows: int = 64, n_cols: int = 256, outliers: int = 4, size: float = 40.0, seed: int = 0):
    """Gaussian ``(n_rows, n_cols)`` float32 with ``outliers`` values of ``+-size``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    idx = rng.choice(x.size, outliers, replace=False)
    x.ravel()[idx] = np.float32(size) * rng.choice([-1.0, 1.0], outliers).astype(np.float32)
    return x


def block_scales_on_outliers(x: np.ndarray) -> list[OutlierCase]:
    """SQNR of ~4-bit formats on ``x``: one scale per tensor against block scales."""
    cases = [
        ("int4 per tensor", QuantScheme(bits=4), "one per tensor"),
        ("fp4_e2m1 per tensor", QuantScheme(bits=4, format="fp4_e2m1"), "one per tensor"),
        ("int4 per group 32", QuantScheme(bits=4, granularity="group", group_size=32, axis=-1), "one per 32"),
        ("mxfp4", QuantScheme(bits=4, format="mxfp4"), "E8M0 per 32"),
        ("nvfp4", QuantScheme(bits=4, format="nvfp4"), "E4M3 per 16 + FP32 per tensor"),
        ("q4_0", QuantScheme(bits=4, format="q4_0"), "fp16 per 32"),
        ("nf4", QuantScheme(bits=4, format="nf4"), "fp32 absmax per 64"),
    ]
    out = []
    for name, scheme, scales in cases:
        a = analyze(x, scheme)
        sqnr = float("inf") if a.report.sqnr_db is None else a.report.sqnr_db
        out.append(OutlierCase(name, a.bits_per_weight(), sqnr, scales))
    return out
