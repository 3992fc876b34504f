"""Plain-language explanations shown next to the numbers, and how the numbers are formatted."""

from __future__ import annotations

import numpy as np

from qcore import ErrorReport, QParams
from qcore.formats import Encoding

EXPLAIN: dict[str, str] = {
    "mse": "Mean squared error: the average of (x̂ − x)² over all values. Lower is better; it is "
    "clipping error + rounding error.",
    "sqnr": "Signal-to-quantization-noise ratio, 10·log10(Σx² / Σ(x̂ − x)²) in dB. Higher is better; "
    "each extra bit adds about 6 dB when nothing is clipped.",
    "cosine": "Cosine similarity between the original and the dequantized tensor: 1.0 means the same "
    "direction. Close to 1 even when the error is visible, so read it with SQNR.",
    "clipped": "Share of values outside the clip range: they are set to the nearest end of the range.",
    "levels": "How many of the 2^bits integer codes actually occur. Few used codes means the range is "
    "much wider than where the values are (wasted resolution).",
    "max_error": "The largest |x̂ − x| of any value: at most s/2 inside the clip range, larger for clipped values.",
    "scale": "Step s between two neighbouring codes: x̂ = (q − z)·s. Inside the clip range each value is off by "
    "at most s/2. With one range per channel or group, the card shows the median and, below, the smallest and largest.",
    "zero_point": "The integer code z that stands for the real value 0 (0 for symmetric schemes). With one range "
    "per channel or group, the card shows the median and, below, the smallest and largest.",
    "breakdown": "Clipping error comes from values outside the range, rounding error from values inside it. "
    "For uniform rounding the rounding error is close to s²/12 (the green mark) when values spread over "
    "many steps.",
    "density": "Where the error lands: each cell counts values with that original value (x) and that error. "
    "Inside the clip range the error stays within ±s/2; outside, it grows linearly.",
    "ranges": "Each point is one channel (or group): its smallest and largest value and the clip range chosen "
    "for it. Channels with a much wider range than the rest are why per-tensor quantization hurts.",
}

ADMM_ASYMMETRIC = (
    "Asymmetric ADMM keeps the iterate of least MSE of w − (q − z)·s in exact arithmetic (s the float32 step); "
    "the float32 dequantized MSE shown differs from it by a few parts per million at 8 bits."
)
"""Shown under the method when ADMM runs asymmetric (:class:`qcore.calibrators.admm.ADMM`'s docstring)."""

# The background articles, by title and author (the README lists the same).
SOURCES: dict[str, str] = {
    "basics": "the article “AI模型的量化” (AI加速 blog; author not named)",
    "int4": "Tommy Huang's “AI模型壓縮技術-量化(Quantization)”",
    "strategies": "极智视界's “极智AI | 谈谈几种量化策略:MinMax、KLD、ADMM、EQ”",
}

# The explanation next to each metric card.
CARD_HELP: dict[str, str] = {
    "MSE": EXPLAIN["mse"],
    "SQNR": EXPLAIN["sqnr"],
    "Cosine": EXPLAIN["cosine"],
    "Clipped": EXPLAIN["clipped"],
    "Levels used": EXPLAIN["levels"],
    "Max |error|": EXPLAIN["max_error"],
    "Scale": EXPLAIN["scale"],
    "Zero point": EXPLAIN["zero_point"],
}


def fmt(v: float | None, digits: int = 4) -> str:
    """Short number: ``None``/inf as '∞', else ``digits`` significant digits."""
    if v is None or v != v or v in (float("inf"), float("-inf")):
        return "∞" if v is None or v == float("inf") else "—"
    return f"{v:.{digits}g}"


def metric_values(r: ErrorReport, p: QParams | Encoding) -> dict[str, str]:
    """The strings shown on the metric cards (tests compare them with qcore's numbers).

    With one range per channel or group, scale and zero point show their median
    (:func:`metric_notes` gives the range underneath).
    """
    one = p.scale.size == 1
    return {
        "MSE": fmt(r.mse),
        "SQNR": "∞ dB" if r.sqnr_db is None else f"{r.sqnr_db:.2f} dB",
        "Cosine": f"{r.cosine:.6f}",
        "Clipped": f"{100 * r.clipped_fraction:.3f} %",
        "Levels used": f"{r.levels_used} / {r.levels_total}",
        "Max |error|": fmt(r.max_abs_error),
        "Scale": fmt(float(p.scale[0] if one else np.median(p.scale))),
        "Zero point": str(int(p.zero_point[0] if one else np.median(p.zero_point))),
    }


def metric_notes(p: QParams | Encoding) -> dict[str, str]:
    """Small text under the scale and zero-point cards when there are several ranges."""
    if p.scale.size == 1:
        return {}
    n = p.scale.size
    return {
        "Scale": f"{n} ranges: {fmt(float(p.scale.min()), 3)} … {fmt(float(p.scale.max()), 3)}",
        "Zero point": f"{n} ranges: {int(p.zero_point.min())} … {int(p.zero_point.max())}",
    }


_MATH: tuple[tuple[str, str], ...] = (
    ("||", "‖"),
    ("^2", "²"),
    ("alpha", "α"),
    ("x_hat", "x̂"),
    (" - ", " − "),
)


def pretty_math(text: str) -> str:
    """ASCII formulas of the core's curve labels as typeset text: ``||w - alpha q||^2`` -> ``‖w − α q‖²``."""
    for ascii_form, typeset in _MATH:
        text = text.replace(ascii_form, typeset)
    return text


def short_label(label: str) -> str:
    """A method's label without its parenthesis (``"ADMM (alternating least squares)"`` -> ``"ADMM"``), for charts."""
    return label.split(" (")[0]
