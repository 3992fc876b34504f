"""Learn: how a float format spends its bits (INT8 vs E4M3 vs E5M2), and why block scales beat one scale on outliers.

One function ``float_bits_lesson(inputs)`` for the Learn page's lesson table. Levels come from
:mod:`qcore.formats.elements` (``ml_dtypes``) and the INT grid of :class:`qcore.QuantScheme`; the outlier
step quantizes a bundled real tensor with :func:`qcore.analyze`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from qcore import QuantScheme, analyze
from qcore.format_lesson import positive_levels, relative_step
from qcore.formats import FORMATS
from qcore.samples import load_sample

from . import format_charts
from .data import sample_names
from .lesson_inputs import step_nav

Q = "query-params"
BLOCK_FORMATS: tuple[tuple[str, str], ...] = (
    ("int", "INT4, one scale per tensor"),
    ("fp4_e2m1", "FP4 E2M1, one scale per tensor"),
    ("q4_0", "GGUF Q4_0, blocks of 32"),
    ("mxfp4", "MXFP4, blocks of 32"),
    ("nvfp4", "NVFP4, blocks of 16"),
    ("nf4", "NF4, blocks of 64"),
)
LESSON_BLOCK = 32
"""Block length over which the lesson's error chart averages (MX's and Q4_0's block)."""
STEPS = ("The levels", "On a log axis", "Relative step", "Block scales and outliers")


NAMES = {"int8": "INT8", "fp8_e4m3": "FP8 E4M3", "fp8_e5m2": "FP8 E5M2"}


def unit_levels() -> dict[str, np.ndarray]:
    """Non-negative levels of INT8 (symmetric), E4M3 and E5M2, each scaled so its largest level is 1."""
    return {NAMES[k]: v for k, v in positive_levels().items()}


def level_stats(levels: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per format: positive levels, smallest positive level, dynamic range, levels per power of two near the top."""
    rows = []
    for name, v in levels.items():
        pos = v[v > 0]
        top_octave = int(np.count_nonzero(pos > 0.5))
        rows.append(
            {
                "format": name,
                "positive levels": pos.size,
                "smallest positive (max = 1)": float(pos.min()),
                "dynamic range (dB)": 20 * np.log10(pos.max() / pos.min()),
                "levels in [0.5, 1]": top_octave,
                "levels below 1/100": int(np.count_nonzero(pos < 0.01)),
            }
        )
    return pd.DataFrame(rows)


def relative_steps(levels: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per format: positive levels (but the smallest) and the gap to the level below divided by the level."""
    return {name: (v[v > 0][1:], relative_step(v)) for name, v in levels.items()}


@st.cache_data(max_entries=8, show_spinner="Quantizing the tensor in each format…")
def block_story(sample: str) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray], int]:
    """Whole-tensor metrics per format, and the line holding the largest |x| with each format's error on it."""
    x, _ = load_sample(sample)
    x = np.asarray(x, dtype=np.float32).reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(1, -1)
    line = int(np.unravel_index(np.argmax(np.abs(np.nan_to_num(x))), x.shape)[0])
    records, errors = [], {}
    for name, label in BLOCK_FORMATS:
        fmt = FORMATS[name]
        scheme = QuantScheme(bits=fmt.bits or 4, format=name)
        try:
            a = analyze(x, scheme, "minmax")
        except ValueError as exc:
            records.append({"format": label, "bits per weight": np.nan, "SQNR (dB)": np.nan, "note": str(exc)})
            continue
        r = a.report
        records.append(
            {
                "format": label,
                "bits per weight": a.bits_per_weight(),
                "SQNR (dB)": np.inf if r.sqnr_db is None else r.sqnr_db,
                "MSE": r.mse,
                "levels used": f"{r.levels_used} / {r.levels_total}",
                "note": "",
            }
        )
        errors[label.split(",")[0]] = block_rms(a.dequantized()[line] - x[line], LESSON_BLOCK)
    return pd.DataFrame(records), x[line], errors, line


def block_rms(err: np.ndarray, block: int) -> np.ndarray:
    """``sqrt(mean(e^2))`` over consecutive blocks of ``block`` values (a short last block over its own values)."""
    pad = -err.size % block
    sq = np.pad(err.astype(np.float64) ** 2, (0, pad), constant_values=np.nan).reshape(-1, block)
    return np.sqrt(np.nanmean(sq, axis=1))


def float_bits_lesson(inputs: DeltaGenerator) -> None:
    """INT8 vs E4M3 vs E5M2 level density, and block scales on outliers."""
    names = sample_names()
    with inputs:
        sample = st.selectbox(
            "Tensor (step 4)",
            names,
            key="fb_sample",
            bind=Q,
            help="A bundled real tensor; the MiniLM FFN input (default) has a few outlier hidden dims.",
        )
    with st.expander("What this lesson shows", expanded=False):
        st.markdown(
            "8 bits can be spent on 255 evenly spaced integers (INT8) or on a sign, an exponent and a mantissa "
            "(FP8 E4M3: 4 exponent bits, 3 mantissa bits; E5M2: 5 and 2). A float keeps the *relative* step "
            "constant: as many levels between 1/4 and 1/2 as between 1/2 and 1, so small values keep their "
            "precision and the range spans many powers of two. The last step shows why the new 4-bit formats "
            "(MX, NVFP4, llama.cpp's Q4_0) put a scale on every small block: one outlier then only coarsens its "
            "own block."
        )
    k = step_nav(len(STEPS))
    st.subheader(f"Step {k}: {STEPS[k - 1]}")
    levels = unit_levels()
    if k == 1:
        st.markdown(
            "The non-negative levels of each format, scaled so that the largest is 1 (a per-tensor scale does "
            "exactly this). INT8's 128 levels are evenly spaced, 1/127 apart; E4M3's crowd towards 0 and thin "
            "out towards the top; E5M2 has fewer levels but reaches much closer to 0."
        )
        st.plotly_chart(format_charts.level_strips(levels, "Levels on a linear axis (max = 1)"), key="fb_linear")
    elif k == 2:
        st.markdown(
            "On a log axis a float's levels are evenly spread: every power of two (binade) holds 2^m levels "
            "(8 for E4M3, 4 for E5M2), down to the subnormals. INT8's levels pile up at the top and stop at "
            "1/127: everything smaller rounds to 0 or to that first step."
        )
        st.plotly_chart(format_charts.level_strips(levels, "Levels on a log axis", log_x=True), key="fb_log")
        st.dataframe(
            level_stats(levels).style.format({"smallest positive (max = 1)": "{:.3g}", "dynamic range (dB)": "{:.1f}"}),
            hide_index=True,
        )
    elif k == 3:
        st.markdown(
            "The gap to the level below divided by the level: the relative rounding error a value of that size can "
            "get. INT8's grows as values shrink (1 step of 1/127 is 100% of the smallest value); a float's stays "
            "between 2^-(m+1) and 2^-m (6.25–12.5% for E4M3, 12.5–25% for E5M2) across its normal range and "
            "only grows in the subnormals. Near the "
            "top INT8 is finer than both: for evenly spread values INT8 wins, for values spread over several "
            "powers of two (activations, gradients) a float does."
        )
        st.plotly_chart(
            format_charts.relative_step_figure(relative_steps(levels), "Relative step: gap to the level below / level"),
            key="fb_rel",
        )
    else:
        table, line_values, errors, line = block_story(sample)
        st.markdown(
            "With one scale per tensor the largest |x| sets the step for every value, so one outlier makes the "
            "grid coarse everywhere. A scale per block of 16–64 values confines it: only the outlier's block is "
            "coarse. The blocks pay for their scales (8 bits per 32 values for MXFP4: +0.25 bits per weight; "
            "an E4M3 scale per 16 for NVFP4: +0.5; an fp16 per 32 for Q4_0: +0.5). Watch MXFP4 in the outlier's "
            "block: its power-of-two scale follows the OCP floor rule, which can leave the largest value above the "
            "element's maximum 6, so the outlier itself is clipped (choose 'ceil' scale rounding on Explore to "
            "avoid it)."
        )
        left, right = st.columns([3, 2])
        left.plotly_chart(
            format_charts.block_error_figure(
                line_values, errors, LESSON_BLOCK, f"Line {line} (holding the largest |x|): values and error per block"
            ),
            key="fb_blocks",
        )
        right.dataframe(
            table.style.format({"bits per weight": "{:.4g}", "SQNR (dB)": "{:.2f}", "MSE": "{:.4g}"}),
            hide_index=True,
        )
        per_tensor = table[table["format"].str.contains("per tensor")]
        blocks = table[~table["format"].str.contains("per tensor")]
        right.caption(
            "Whole tensor, minmax ranges (absmax), blocks along the last axis. Here the best per-tensor format "
            f"reaches {per_tensor['SQNR (dB)'].max():.1f} dB, the block formats "
            f"{blocks['SQNR (dB)'].min():.1f}–{blocks['SQNR (dB)'].max():.1f} dB for "
            f"{blocks['bits per weight'].min() - per_tensor['bits per weight'].max():.2f}–"
            f"{blocks['bits per weight'].max() - per_tensor['bits per weight'].max():.2f} more bits per weight."
        )
