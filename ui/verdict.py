"""Compare's verdict: which method is best on a chosen metric, by how much, and why in one sentence.

Also which table cells deserve a green mark: only where the best value is meaningfully
better than the rest (ties within a tolerance are not a win).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from qcore import Analysis

from .advice import clipped_energy_share


@dataclass(frozen=True)
class Metric:
    """A column the verdict can rank on: report attribute, higher-is-better, and when two values tie."""

    label: str
    attr: str
    higher: bool
    tie: float
    relative: bool


METRICS: dict[str, Metric] = {
    "SQNR (dB)": Metric("SQNR", "sqnr_db", True, 0.05, False),
    "MSE": Metric("MSE", "mse", False, 0.01, True),
    "cosine": Metric("cosine", "cosine", True, 1e-5, False),
    "max |error|": Metric("max |error|", "max_abs_error", False, 0.01, True),
}
"""Rankable columns; ``tie``: absolute (dB, cosine) or relative difference below which values count as equal."""


def value(a: Analysis, m: Metric) -> float:
    """The report's value of ``m`` (an infinite SQNR for an exact round trip)."""
    v = getattr(a.report, m.attr)
    return float("inf") if v is None else float(v)


def ties(a: float, b: float, m: Metric) -> bool:
    """Whether ``a`` and ``b`` differ by less than the metric's tolerance."""
    if a == b:
        return True
    if m.relative:
        return abs(a - b) <= m.tie * max(abs(a), abs(b))
    return abs(a - b) <= m.tie


def winners(values: Mapping[str, float], m: Metric) -> list[str]:
    """The names tied with the best value, or none when every value ties with the best (no real winner)."""
    best = (max if m.higher else min)(values.values())
    tied = [k for k, v in values.items() if ties(v, best, m)]
    return [] if len(tied) == len(values) else tied


def _fmt(v: float, m: Metric) -> str:
    return f"{v:.2f} dB" if m.attr == "sqnr_db" else (f"{v:.6f}" if m.attr == "cosine" else f"{v:.4g}")


def _gap(a: float, b: float, m: Metric) -> str:
    if m.attr == "sqnr_db":
        return f"{abs(a - b):.2f} dB"
    if m.relative and min(abs(a), abs(b)) > 0:
        return f"{max(a, b) / min(a, b):.2f}×"
    return f"{abs(a - b):.3g}"


def _why(best: str, worst: str, results: Mapping[str, Analysis], labels: Mapping[str, str]) -> str:
    """One sentence: clipping (outliers lost) or rounding (a wider range, a coarser step) explains the gap."""
    b, w = results[best], results[worst]
    rows = b.rows
    if w.report.clip_mse > b.report.clip_mse and w.report.clip_mse >= w.report.round_mse:
        # where the worse method clips most: its row of largest clipping error, the end it cuts deeper
        top = int(np.argmax(w.report.rows.clip_mse))
        upper = rows.max[top] - w.params.clip_max[top] >= w.params.clip_min[top] - rows.min[top]
        end, peak = ("clip_max", float(rows.max[top])) if upper else ("clip_min", float(rows.min[top]))
        w_end, b_end = float(getattr(w.params, end)[top]), float(getattr(b.params, end)[top])
        share = 100 * clipped_energy_share(w)
        lost = f"{share:.2g}" if share < 1 else f"{share:.0f}"
        keeps = "keeps it" if abs(b_end) >= abs(peak) * 0.99 else f"clips it only to {b_end:.4g}"
        where = f" of {rows.granularity} {top}" if rows.n_rows > 1 else ""
        return (
            f"{labels[worst]} clips the {'largest' if upper else 'most negative'} value{where}, {peak:.4g}, to "
            f"{w_end:.4g} and loses {lost}% of the signal energy to clipping; "
            f"{labels[best]} {keeps}."
        )
    top = int(np.argmax(np.maximum(np.abs(rows.min), np.abs(rows.max))))
    end = "clip_max" if abs(rows.max[top]) >= abs(rows.min[top]) else "clip_min"
    w_end, b_end = float(getattr(w.params, end)[top]), float(getattr(b.params, end)[top])
    b_step, w_step = float(np.median(b.params.scale)), float(np.median(w.params.scale))
    return (
        f"{labels[worst]}'s range reaches {w_end:.4g}, so its step is {w_step / b_step:.2f}× {labels[best]}'s "
        f"(reaching {b_end:.4g}) and its rounding error {w.report.round_mse / max(b.report.round_mse, 1e-300):.1f}× "
        f"larger, while {labels[best]} clips only {100 * b.report.clipped_fraction:.3g}% of the values."
    )


def verdict(results: Mapping[str, Analysis], labels: Mapping[str, str], column: str) -> str:
    """Markdown: the best method on ``column`` (a key of :data:`METRICS`), its margin, and why."""
    m = METRICS[column]
    values = {k: value(a, m) for k, a in results.items()}
    order = sorted(values, key=lambda k: values[k], reverse=m.higher)
    best, worst = order[0], order[-1]
    if len(order) == 1:
        return f"Only **{labels[best]}** was computed: {m.label} {_fmt(values[best], m)}."
    if ties(values[best], values[worst], m):
        return f"All methods give the same {m.label} here (within {m.tie:g}{'' if not m.relative else ' relative'})."
    second = order[1]
    tied = [labels[k] for k in order[1:] if ties(values[k], values[best], m)]
    lead = (
        f"tied with {', '.join(tied)} (within the tolerance)"
        if tied
        else f"{_gap(values[best], values[second], m)} ahead of {labels[second]}"
    )
    return (
        f"**Best {m.label}: {labels[best]}** ({_fmt(values[best], m)}), {lead}; "
        f"{_gap(values[best], values[worst], m)} ahead of {labels[worst]} (last). Why: "
        + _why(best, worst, results, labels)
    )


def mse_method_note(results: Mapping[str, Analysis], labels: Mapping[str, str]) -> str | None:
    """Why the MSE method can lose on MSE: its threshold grid (bin centres) and histogram estimate; None if it wins."""
    if "mse" not in results:
        return None
    own = results["mse"].report.mse
    m = METRICS["MSE"]
    better = {k: a.report.mse for k, a in results.items() if k != "mse" and not ties(a.report.mse, own, m)}
    better = {k: v for k, v in better.items() if v < own}
    if not better:
        return None
    k = min(better, key=better.get)
    source = results["mse"].calibration.details.get("source", "histogram")
    how = (
        "estimates each candidate's error from bin centres weighted by their counts"
        if source == "histogram"
        else "measures each candidate's error exactly"
    )
    return (
        f"The MSE method loses to {labels[k]} on its own objective ({own:.4g} vs {better[k]:.4g}): it only tries "
        f"thresholds at the centres of its histogram bins (and shrinks an asymmetric range in fixed steps) and "
        f"{how}, so a range between its candidates, like {labels[k]}'s, can do slightly better. More bins "
        "(Method options) make its grid finer."
    )
