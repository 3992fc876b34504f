"""The sentence under a method's objective curve: what the search covered, what the chart draws, and why they differ.

A search may evaluate far more candidates than its curve keeps (entropy per channel: 1,921 thresholds searched,
every 16th drawn), or only those that could win (MSE per channel: of 1,920 candidates, those a bound did not rule
out; per group: the group's own values); the caption states both counts and the reason, and names the two sides of a
two-sided search (asymmetric entropy: ``details['lower_curve']``).
"""

from __future__ import annotations

import numpy as np

from qcore import Calibration, Curve
from qcore.calibrators.entropy import CURVE_STEP

from .text import pretty_math


def lower_curve(cal: Calibration) -> Curve | None:
    """The lower side's curve of a two-sided search (asymmetric entropy), or None."""
    lower = cal.details.get("lower_curve")
    return lower if isinstance(lower, Curve) else None


def drawn_candidates(c: Curve, row: int) -> tuple[int, int]:
    """``(distinct candidates drawn, of them with an infinite objective)`` for ``row``.

    Entries without a candidate (NaN ``x``) are not drawn; a repeated candidate (ADMM's iterations after
    convergence, entropy's chosen grid point) is one point on the chart and counts once.
    """
    evaluated = ~np.isnan(c.x[row])
    _, first = np.unique(c.x[row][evaluated], return_index=True)
    return int(first.size), int(np.count_nonzero(~np.isfinite(c.y[row][evaluated][first])))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _searched(points: str, candidates: int, shown: str, sides: str, unit: str, all_shown: bool) -> str:
    """What an entropy search covered and what its curve draws (``details['curve_points']``)."""
    if points == "grid":
        return (
            f"The search covered all {candidates:,} candidate thresholds{sides}, but a lower bound ruled out most "
            f"of them before their KL was computed; the curve draws {shown}: every {_ordinal(CURVE_STEP)} "
            "candidate, the last one and the chosen one"
        )
    if points == "could_win":
        return (
            f"The search covered {candidates:,} candidate thresholds{sides}, but this {unit} holds fewer values "
            "than the histogram has bins: only a threshold just past a non-empty bin has a finite KL, a lower "
            f"bound ruled out most of those, and the curve draws the {shown} evaluated"
        )
    if all_shown:
        return f"The curve shows all {candidates:,} candidate thresholds the search tried{sides}"
    return (
        f"The search tried {candidates:,} candidate thresholds{sides}; the curve shows {shown} distinct ones "
        "(candidates at the same threshold count once)"
    )


def _mse_searched(cal: Calibration, row: int, unit: str) -> str | None:
    """What a pruned MSE search (per channel or group: ``details['evaluated']``) covered and what its curve draws."""
    evaluated = cal.details.get("evaluated")
    if cal.method != "mse" or evaluated is None:
        return None
    n_evaluated = int(np.asarray(evaluated)[row])
    drawn = drawn_candidates(cal.curve, row)[0] if cal.curve is not None else n_evaluated  # equal candidates: 1 point
    what = "thresholds" if cal.curve is not None and cal.curve.parameter.startswith("threshold") else "shrink factors"
    if cal.details.get("source") == "distinct":
        return (
            f"The candidates are this {unit}'s own values (clipping exactly at one of them, {what} scored exactly on "
            f"the raw values); the curve draws the {drawn:,} that could win: the others' clipping error alone exceeds "
            "the best error found"
        )
    candidates = int(cal.details.get("candidates", n_evaluated))
    if n_evaluated >= candidates:
        return f"The curve shows all {candidates:,} candidate {what} the search tried"
    return (
        f"The search covered all {candidates:,} candidate {what}; {candidates - n_evaluated:,} of them were ruled out "
        f"without computing their error (their clipping error alone exceeded the best error found), so the curve "
        f"draws the {drawn:,} evaluated"
    )


def curve_caption(cal: Calibration, row: int, unit: str) -> str:
    """The caption of ``cal``'s curve for ``row`` (``unit``: "channel", "group" or "tensor")."""
    curve = cal.curve
    if curve is None:
        return ""
    lower = lower_curve(cal)
    counts = [drawn_candidates(c, row) for c in ((curve,) if lower is None else (curve, lower))]
    n_shown, n_inf = (sum(c[i] for c in counts) for i in (0, 1))
    objective = pretty_math(curve.objective)
    verb = {"min": "minimises", "max": "maximises"}.get(curve.goal)
    chosen = f"takes the one that {verb} {objective}" if verb else f"marks the chosen {objective}"
    shown = f"{counts[0][0]:,}" if lower is None else f"{counts[0][0]:,} (upper side) and {counts[1][0]:,} (lower side)"
    candidates = cal.details.get("candidates")
    mse_text = _mse_searched(cal, row, unit)
    if mse_text is not None:
        text = mse_text
    elif candidates is not None:
        all_shown = all(c[0] == candidates for c in counts)
        sides = "" if lower is None else " on each side"
        text = _searched(str(cal.details.get("curve_points")), int(candidates), shown, sides, unit, all_shown)
    elif n_shown == 1:
        text = (
            "The curve shows one candidate only (a bound ruled out every other one without evaluating it, or the "
            "search stopped at once)"
        )
    else:
        text = f"The curve shows {shown} distinct candidates"
    text += f"; the method {chosen} (red ×)."
    if lower is not None:
        text += (
            " Each side is searched on its own histogram (x > 0, and −x for x < 0): the upper side's curve sets the "
            "clip maximum T, the lower side's, drawn at −T, the clip minimum."
        )
    if n_inf:
        text += (
            f" {n_inf:,} of {n_shown:,} candidates have {objective} = ∞ (grey ticks at the top, not drawn): there the "
            "clipped histogram P has mass in a bin where the merged Q has none, so they can never win; the line "
            "joins the finite ones."
        )
    return text
