"""Error against storage for every format on one tensor, with the Pareto front (the chart to pick a format).

Each configuration is analysed with :func:`qcore.analyze` (minmax ranges): the block formats in their own blocks
along the last axis; INT, log2 and the scaled floats per group of :data:`GROUP` along the last axis (per tensor
for a 1-D tensor), INT and log2 at each width of :data:`INT_BITS`. A point is on the Pareto front when no other
point has both fewer bits per weight and a lower MSE (one of them strictly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis import analyze
from .formats import FORMATS
from .scheme import QuantOptionError, QuantScheme

GROUP = 128
INT_BITS = (8, 6, 5, 4, 3)


@dataclass(frozen=True)
class FormatPoint:
    """One configuration's storage and error (``error`` set instead when the format refused the tensor)."""

    name: str
    label: str
    family: str
    bits_per_weight: float
    mse: float
    sqnr_db: float | None
    cosine: float
    clipped_fraction: float
    pareto: bool = False
    error: str | None = None


def configurations(ndim: int, names: tuple[str, ...] | None = None) -> list[tuple[str, QuantScheme]]:
    """``(display name, scheme)`` of every configuration compared (:data:`FORMATS` when ``names`` is None)."""
    layout = {"granularity": "group", "group_size": GROUP, "axis": -1} if ndim >= 2 else {}
    out = []
    for name in names or tuple(FORMATS):
        fmt = FORMATS[name]
        if fmt.bits is None:
            out += [(f"{name}{b}", QuantScheme(bits=b, format=name, **layout)) for b in INT_BITS]
        elif fmt.block_sizes:
            out.append((name, QuantScheme(bits=fmt.bits, format=name)))
        else:
            out.append((name, QuantScheme(bits=fmt.bits, format=name, **layout)))
    return out


def pareto_front(bits: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Mask of the points no other point dominates (``bits <=`` and ``error <=``, one strictly)."""
    bits, error = np.asarray(bits, dtype=np.float64), np.asarray(error, dtype=np.float64)
    le = (bits[None, :] <= bits[:, None]) & (error[None, :] <= error[:, None])
    lt = (bits[None, :] < bits[:, None]) | (error[None, :] < error[:, None])
    return ~np.any(le & lt, axis=1)


def compare_formats(x: np.ndarray, names: tuple[str, ...] | None = None) -> list[FormatPoint]:
    """Every configuration of :func:`configurations` on ``x``, its bits per weight and error, the front marked."""
    points: list[FormatPoint] = []
    for label, scheme in configurations(np.ndim(x), names):
        fmt = FORMATS[scheme.format]
        try:
            a = analyze(x, scheme)
        except QuantOptionError as exc:
            points.append(
                FormatPoint(label, fmt.label, fmt.family, np.nan, np.nan, None, np.nan, np.nan, error=str(exc))
            )
            continue
        r = a.report
        points.append(
            FormatPoint(
                label, fmt.label, fmt.family, a.bits_per_weight(), r.mse, r.sqnr_db, r.cosine, r.clipped_fraction
            )
        )
    ok = [i for i, p in enumerate(points) if p.error is None]
    front = pareto_front([points[i].bits_per_weight for i in ok], [points[i].mse for i in ok])
    for i, on in zip(ok, front, strict=True):
        if on:
            p = points[i]
            points[i] = FormatPoint(**{**p.__dict__, "pareto": True})
    return points
