"""A rule-based advisor: configurations that are almost surely wrong, said in words, with the usual fix.

Each rule is a small function of the analysis (no pass over the tensor): it returns
one :class:`Advice` or None. :func:`advise` runs them all. The shares come from the
error report: the signal energy is ``sum x^2 = N * MSE * 10^(SQNR / 10)``, so the
share of the signal lost to clipping is ``clip_MSE / (MSE * 10^(SQNR / 10))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qcore import Analysis

CLIPPED_TOO_MANY = 0.10
"""A share of clipped values above which the range is almost surely too narrow (calibrators clip well under 1%)."""
CLIPPED_ENERGY = 0.05
"""A share of the signal energy lost to clipping worth saying out loud (outliers carry it)."""
FEW_LEVELS = 0.10
"""Fewer used codes than this share of the grid: the range is far wider than where the values are."""


@dataclass(frozen=True)
class Advice:
    """One finding: ``level`` 'warning' (almost surely wrong) or 'info' (worth knowing), and its text."""

    level: str
    text: str


@dataclass(frozen=True)
class Setting:
    """What the rules need besides the analysis: the role, the tensor's shape and the method's label."""

    role: str
    shape: tuple[int, ...]
    method: str
    method_label: str


def clipped_energy_share(a: Analysis) -> float:
    """Share of the signal energy removed by clipping: ``clip_MSE / (MSE 10^(SQNR/10))`` (0 without signal)."""
    r = a.report
    if r.sqnr_db is None or not r.mse > 0:
        return 0.0
    signal = r.mse * 10.0 ** (r.sqnr_db / 10.0)
    return float(r.clip_mse / signal) if signal > 0 else 0.0


def _unsigned_symmetric(a: Analysis, s: Setting) -> Advice | None:
    p = a.params
    if p.scheme.signed or not p.scheme.symmetric or not float(np.min(a.rows.min)) < 0:
        return None
    return Advice(
        "warning",
        f"Unsigned codes with a symmetric range: the grid starts at code 0 = the value 0, so every negative value "
        f"is clipped to 0 ({100 * a.report.clipped_fraction:.1f}% of the values clipped). "
        "Usual fix: signed codes (int8), or an asymmetric scheme if the data really is mostly positive.",
    )


def _clips_too_many(a: Analysis, s: Setting) -> Advice | None:
    share = a.report.clipped_fraction
    if share <= CLIPPED_TOO_MANY or (not a.params.scheme.signed and a.params.scheme.symmetric):
        return None
    why = ""
    if s.method == "ema":
        why = (
            " EMA averages the ranges of successive batches, so each range shrinks towards a typical batch and "
            "clips the rare extremes."
        )
    if a.rows.granularity == "channel" and s.role == "activation":
        why += (
            f" Per-channel ranges on an activation run along axis {a.rows.axis} of {list(s.shape)}: "
            "activations are usually quantized per tensor (one static range), or per feature channel."
        )
    return Advice(
        "warning",
        f"{100 * share:.1f}% of the values are clipped: far more than any calibrator normally clips (well under 1%)."
        f"{why} Usual fix: MinMax or Percentile, or per-tensor granularity for an activation.",
    )


def _clips_the_signal(a: Analysis, s: Setting) -> Advice | None:
    share = clipped_energy_share(a)
    if share <= CLIPPED_ENERGY or _unsigned_symmetric(a, s) is not None:
        return None
    p, rows = a.params, a.rows
    top = int(np.argmax(np.maximum(np.abs(rows.min), np.abs(rows.max))))
    peak = float(rows.max[top]) if abs(rows.max[top]) >= abs(rows.min[top]) else float(rows.min[top])
    clip = float(p.clip_max[top]) if peak > 0 else float(p.clip_min[top])
    return Advice(
        "warning",
        f"{s.method_label} clips outliers that carry a large share of the signal: clipping removes "
        f"{100 * share:.0f}% of the signal energy (the largest value {peak:.4g} becomes {clip:.4g}). "
        "These are often the real outlier features of a transformer, not noise. Usual fix: a range that keeps "
        "them (MinMax, MSE), per-channel ranges, or more bits.",
    )


def _few_levels(a: Analysis, s: Setting) -> Advice | None:
    r = a.report
    if r.levels_total < 16 or r.levels_used >= FEW_LEVELS * r.levels_total:
        return None
    return Advice(
        "info",
        f"Only {r.levels_used} of {r.levels_total} codes are used: the range is far wider than where most values "
        "are (one outlier sets it). Per-channel or per-group ranges, or a clipping method, use the codes better.",
    )


RULES: tuple[Callable[[Analysis, Setting], Advice | None], ...] = (
    _unsigned_symmetric,
    _clips_too_many,
    _clips_the_signal,
    _few_levels,
)


def advise(a: Analysis, s: Setting) -> list[Advice]:
    """Every finding of :data:`RULES` for this analysis, warnings first."""
    found = [advice for rule in RULES if (advice := rule(a, s)) is not None]
    return sorted(found, key=lambda adv: adv.level != "warning")
