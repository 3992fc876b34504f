"""Two Learn lessons on outliers in a real layer: LLM.int8()'s decomposition and SmoothQuant's migration.

Each is one function ``lesson(inputs)`` for the Learn page's lesson table; the numbers come from
:mod:`qcore.layer_methods.lessons` on a bundled pair (the MiniLM FFN input and W_up by default).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from qcore.layer_methods.lessons import INT8_ROWS, INT8_TENSOR, OutlierStory, SmoothingSteps, outlier_story
from qcore.layer_methods.lessons import smoothing_steps as compute_smoothing
from qcore.layer_methods.sweeps import alpha_records
from qcore.samples import sample_pairs

from . import layer_method_charts as charts
from .layer_inputs import bundled_layer
from .lesson_inputs import step_nav
from .text import SOURCES

Q = "query-params"
DEFAULT_PAIR = "minilm/layer3/ffn_up"


def _pair_input(key: str) -> str:
    names = [p.name for p in sample_pairs()]
    return st.selectbox(
        "Layer",
        names,
        index=names.index(DEFAULT_PAIR) if DEFAULT_PAIR in names else 0,
        key=key,
        bind=Q,
        help="A bundled weight/activation pair of one real layer (Y = X Wᵀ).",
    )


@st.cache_data(max_entries=8, show_spinner="Quantizing the layer…")
def _story(pair: str, threshold: float) -> OutlierStory:
    layer = bundled_layer(pair)
    return outlier_story(layer.w, layer.x, threshold)


@st.cache_data(max_entries=16, show_spinner="Smoothing the layer…")
def _smoothing(pair: str, alpha: float) -> SmoothingSteps:
    layer = bundled_layer(pair)
    return compute_smoothing(layer.w, layer.x, alpha)


@st.cache_data(max_entries=8, show_spinner="Sweeping α…")
def _alpha_table(pair: str) -> pd.DataFrame:
    layer = bundled_layer(pair)
    return pd.DataFrame(alpha_records(layer.w, layer.x, INT8_ROWS, INT8_TENSOR))


def _errors_table(errors: dict, labels: dict[str, str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "choice": [(labels or {}).get(k, k) for k in errors],
            "output SQNR (dB)": [e.sqnr_db for e in errors.values()],
            "output MSE": [e.mse for e in errors.values()],
            "cosine": [e.cosine for e in errors.values()],
        }
    )


def outliers_lesson(inputs: DeltaGenerator) -> None:
    """LLM.int8() and outlier features: the outlier columns, per-tensor int8, per-token int8, the decomposition."""
    with inputs:
        pair = _pair_input("lo_pair")
        threshold = st.number_input(
            "Outlier threshold", 0.5, 100.0, 6.0, 0.5, key="lo_thr", bind=Q, help="LLM.int8()'s default is 6.0"
        )
    with st.expander("What this lesson shows", expanded=False):
        st.markdown(
            f"{SOURCES['basics']} says uniform quantization suits data with a wide, evenly spread range (most "
            "CV models) and files data with many outliers, such as large language models, under non-uniform "
            "quantization, citing the paper LLM.int8() (Dettmers et al., 2022) as showing that LLM data is not "
            "evenly spread. This lesson looks at those outliers in a real activation, what one int8 scale does to "
            "the other values, and what LLM.int8()'s own remedy, a mixed-precision decomposition, keeps."
        )
    k = step_nav(4)
    s = _story(pair, float(threshold))
    n_out = int(s.outliers.size)
    median = float(np.median(s.column_absmax))
    titles = (
        "the outlier columns",
        "one int8 step for the whole tensor",
        "one step per token",
        "LLM.int8(): outlier columns in 16 bit",
    )
    st.markdown(f"**Step {k}: {titles[k - 1]}**")
    if k == 1:
        st.plotly_chart(
            charts.channel_max_figure(s.column_absmax, None, "max |X_j| per input column", s.threshold),
            key="lo_cols",
        )
        cols = ", ".join(map(str, s.outliers[:12])) + (" …" if n_out > 12 else "")
        st.markdown(
            f"{n_out} of {s.column_absmax.size} input columns reach |x| ≥ {s.threshold:g} ({cols or 'none'}). "
            f"The largest column maximum is {np.max(s.column_absmax):.3g}, "
            f"{np.max(s.column_absmax) / median:.1f}× the median column's {median:.3g}. The same few columns are "
            "large for almost every token: they are features of the model, not noise."
        )
    elif k == 2:
        st.plotly_chart(charts.codes_figure(s.column_codes, s.outliers), key="lo_codes")
        st.markdown(
            f"Per-tensor symmetric int8 sets s = max|X| / 127 = {s.step:.4g}. The outlier columns (red) use the "
            f"whole grid, but the median column only reaches code {np.median(s.column_codes):.1f}: its values "
            f"fall on about {2 * np.median(s.column_codes) + 1:.0f} of the 255 codes, as if it had "
            f"{np.log2(2 * np.median(s.column_codes) + 1):.1f} bits. Output SQNR of Y with int8 weights (per "
            f"output row) and these activations: **{s.errors['int8 per tensor'].sqnr_db:.2f} dB**."
        )
    elif k == 3:
        st.dataframe(
            _errors_table({key: s.errors[key] for key in ("int8 per tensor", "int8 per token")}), hide_index=True
        )
        st.markdown(
            "Vector-wise quantization gives each token (row of X) its own absmax, which helps tokens without a "
            "large value. But the outlier columns appear in nearly every token, so most rows keep a range set by "
            "one outlier."
        )
    else:
        st.dataframe(_errors_table(s.errors), hide_index=True)
        st.markdown(
            f"LLM.int8() takes the {n_out} outlier columns of X and the matching columns of W out of the int8 "
            f"product and multiplies them in float16: {100 * s.share_16bit:.2f} % of the multiply-adds, "
            f"{s.effective_bits:.3f} bits per activation on average. The rest is int8 with one range per token and "
            f"per output row. Output SQNR: {s.errors['int8 per tensor'].sqnr_db:.1f} dB (per tensor) → "
            f"{s.errors['int8 per token'].sqnr_db:.1f} dB (per token) → "
            f"**{s.errors['LLM.int8()'].sqnr_db:.1f} dB** (decomposed). Try the threshold: lower keeps more "
            "columns in 16 bit."
        )


def smoothquant_lesson(inputs: DeltaGenerator) -> None:
    """SmoothQuant step by step: per-channel maxima, the factor s, the migrated maxima, W8A8 before and after."""
    with inputs:
        pair = _pair_input("ls_pair")
        alpha = st.slider("α (migration strength)", 0.0, 1.0, 0.5, 0.05, key="ls_alpha", bind=Q)
    with st.expander("What this lesson shows", expanded=False):
        st.markdown(
            "SmoothQuant (Xiao et al., 2023) makes activations easier to quantize by moving part of their range "
            "into the weights: X Wᵀ = (X diag(s)⁻¹)(W diag(s))ᵀ exactly, for any positive s. Dividing an outlier "
            "channel of X by a large s_j shrinks it; the matching column of W grows by the same factor. α sets how "
            "much of the difficulty moves."
        )
    k = step_nav(4)
    m = _smoothing(pair, float(alpha))
    titles = ("two kinds of channel maxima", "the smoothing factor", "after the migration", "quantize W8A8")
    st.markdown(f"**Step {k}: {titles[k - 1]}**")
    ratio = lambda v: float(np.max(v) / np.median(v)) if np.median(v) > 0 else 0.0  # noqa: E731
    if k == 1:
        st.plotly_chart(charts.smoothing_figure(m.x_max, m.w_max), key="ls_before")
        st.markdown(
            f"Per input channel j: max|X_j| over the tokens and max|W_j| over the output rows. The activation's "
            f"largest channel is {ratio(m.x_max):.1f}× its median, the weight's only {ratio(m.w_max):.1f}×: "
            "activations are hard to quantize per tensor, weights are easy."
        )
    elif k == 2:
        st.latex(r"s_j = \frac{\max|X_j|^{\alpha}}{\max|W_j|^{1-\alpha}}\ (\ge 10^{-5}),\qquad")
        st.latex(r"X' = X\,\mathrm{diag}(s)^{-1},\qquad W' = W\,\mathrm{diag}(s),\qquad X' W'^{T} = X W^{T}")
        st.plotly_chart(charts.channel_max_figure(m.s, None, f"s_j at α = {m.alpha:g}", log=True), key="ls_s")
        st.markdown(
            f"At α = {m.alpha:g}, s ranges from {np.min(m.s):.3g} to {np.max(m.s):.3g}. "
            "α = 0.5 balances the two maxima of each channel: max|X'_j| = max|W'_j| = √(max|X_j| max|W_j|)."
        )
    elif k == 3:
        st.plotly_chart(charts.smoothing_figure(m.x_max, m.w_max, m.x_max_after, m.w_max_after), key="ls_after")
        st.markdown(
            f"Largest channel over median: activations {ratio(m.x_max):.1f}× → {ratio(m.x_max_after):.1f}×, "
            f"weights {ratio(m.w_max):.1f}× → {ratio(m.w_max_after):.1f}×. The product is unchanged (up to float "
            "rounding); only what each side must represent moved."
        )
    else:
        st.dataframe(
            _errors_table(
                {"plain": m.plain, "smoothed": m.smoothed},
                {"plain": "W8A8 (no smoothing)", "smoothed": f"SmoothQuant α = {m.alpha:g}"},
            ),
            hide_index=True,
        )
        st.plotly_chart(charts.alpha_figure(_alpha_table(pair)), key="ls_sweep")
        st.markdown(
            f"Weights int8 per output row, activations int8 per tensor (SmoothQuant's static setting). Output "
            f"SQNR {m.plain.sqnr_db:.1f} dB → **{m.smoothed.sqnr_db:.1f} dB** at α = {m.alpha:g}. Too large an α "
            "moves the outliers into W, where one output row's range now spans them: the curve falls again."
        )
