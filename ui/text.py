"""Plain-language explanations shown next to the numbers, and how the numbers are formatted."""

from __future__ import annotations

from dataclasses import dataclass

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
    "at most s/2. With one range per channel or group, the card shows the median of the ranges and, below, the "
    "smallest … largest.",
    "zero_point": "The integer code z that stands for the real value 0 (0 for symmetric schemes). With one range "
    "per channel or group, the card shows the median of the ranges and, below, the smallest … largest.",
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


NOTE_CHARS = 20
"""Longest note under a card: Streamlit cuts a longer one with "…" on a 1280 px wide window."""


@dataclass(frozen=True)
class ZeroPointRule:
    """What a format without an integer zero point stores instead: a short note under the card and its help."""

    note: str
    help: str


_NO_Z = "no integer zero point"
_FLOAT = ZeroPointRule(
    "symmetric float grid",
    f"None: x̂ = s·fp(x / s), a sign bit and a float grid symmetric around 0 (0 is a level); {_NO_Z} shifts it.",
)
_NF4 = ZeroPointRule(
    "absmax scale only",
    f"None: x̂ = absmax·NF4[q], 16 fixed normal-quantile levels (one is exactly 0) times the block's absmax; {_NO_Z}.",
)
_MX = ZeroPointRule(
    "E8M0 scale only",
    f"None: x̂ = 2^e·element, signed elements and one power-of-two (E8M0) scale per block of 32; {_NO_Z}.",
)
_BLOCK_MIN = "x̂ = d·q + m: a fp16 step d and a fp16 block minimum m per block of 32 instead of an integer zero point."
_K_MIN = (
    "x̂ = d·sc·q − dmin·m: each sub-block of 32 stores a 6-bit scale sc and a 6-bit minimum m (times the "
    "super-block's fp16 d and dmin) instead of an integer zero point."
)

ZERO_POINT_RULES: dict[str, ZeroPointRule] = {
    "log2": ZeroPointRule(
        "sign + power of two",
        f"None: the levels are 0 and ±2^k, the sign stored apart, so 0 is always a level; {_NO_Z} (an asymmetric "
        "scheme only clips the reported range to [min, max]).",
    ),
    **{name: _FLOAT for name in ("fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1")},
    "nf4": _NF4,
    "nf4_dq": _NF4,
    **{name: _MX for name in ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8", "gguf_mxfp4")},
    "nvfp4": ZeroPointRule(
        "E4M3 scale only",
        f"None: x̂ = s_tensor·s_block·e, signed E2M1 elements e, an E4M3 scale per block of 16 over a float32 "
        f"tensor scale; {_NO_Z}.",
    ),
    "q8_0": ZeroPointRule("signed q: x̂ = d·q", f"None: x̂ = d·q, signed int8 q and a fp16 d per block of 32; {_NO_Z}."),
    "q4_0": ZeroPointRule(
        "fixed: d·(q − 8)",
        "None stored: x̂ = d·(q − 8) for 4-bit q in 0…15, so the constant 8 acts as the zero point of every block.",
    ),
    "q5_0": ZeroPointRule(
        "fixed: d·(q − 16)",
        "None stored: x̂ = d·(q − 16) for 5-bit q in 0…31, so the constant 16 acts as the zero point of every block.",
    ),
    "q4_1": ZeroPointRule("block minimum m", f"None: {_BLOCK_MIN}"),
    "q5_1": ZeroPointRule("block minimum m", f"None: {_BLOCK_MIN}"),
    "q4_k": ZeroPointRule("sub-block minimums", f"None: {_K_MIN}"),
    "q5_k": ZeroPointRule("sub-block minimums", f"None: {_K_MIN}"),
    "q6_k": ZeroPointRule(
        "fixed: d·sc·(q − 32)",
        "None stored: x̂ = d·sc·(q − 32) for 6-bit q in 0…63 (an int8 scale sc per sub-block of 16), so the "
        "constant 32 acts as the zero point.",
    ),
    "iq4_nl": ZeroPointRule(
        "table × block scale",
        f"None: x̂ = d·v[q], v 16 fixed non-uniform int8 levels, a fp16 d per block of 32; {_NO_Z}.",
    ),
}
"""Every registered format but INT (which has an integer zero point z), by name."""


def zero_point_rule(format_name: str) -> ZeroPointRule | None:
    """What format ``format_name`` stores instead of an integer zero point (None for INT, which has one)."""
    return ZERO_POINT_RULES.get(format_name)


def card_help(format_name: str = "int") -> dict[str, str]:
    """:data:`CARD_HELP` with the zero-point card's help of the format."""
    rule = zero_point_rule(format_name)
    return CARD_HELP if rule is None else {**CARD_HELP, "Zero point": rule.help}


def metric_values(r: ErrorReport, p: QParams | Encoding, format_name: str = "int") -> dict[str, str]:
    """The strings shown on the metric cards (tests compare them with qcore's numbers).

    With one range per channel or group, scale and zero point show their median
    (:func:`metric_notes` gives the range underneath). A format without an integer
    zero point shows "none" (:func:`zero_point_rule`).
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
        "Zero point": "none"
        if zero_point_rule(format_name)
        else str(int(p.zero_point[0] if one else np.median(p.zero_point))),
    }


def metric_notes(p: QParams | Encoding, format_name: str = "int") -> dict[str, str]:
    """Small text under the scale and zero-point cards: smallest … largest when there are several ranges, and
    what a format stores instead of a zero point (each at most :data:`NOTE_CHARS` long)."""
    notes = {}
    if p.scale.size > 1:
        notes["Scale"] = f"{fmt(float(p.scale.min()), 3)} … {fmt(float(p.scale.max()), 3)}"
        notes["Zero point"] = f"{int(p.zero_point.min())} … {int(p.zero_point.max())}"
    if rule := zero_point_rule(format_name):
        notes["Zero point"] = rule.note
    return notes


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
