"""Views of the number formats on the sidebar tensor: error against bits per weight with the Pareto front, and
the table the Compare page shows. Numbers from :func:`qcore.format_frontier.compare_formats` (cached)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from qcore.format_frontier import GROUP, compare_formats
from qcore.format_lesson import block_scales_on_outliers, outlier_tensor, positive_levels, relative_step

from .sidebar import Context
from .sweep_charts import csv_bytes

FAMILY_COLOURS = {"int": "#4c78a8", "log2": "#9d755d", "float": "#f58518", "nf4": "#54a24b", "mx": "#e45756",
                  "nvfp4": "#b279a2", "gguf": "#72b7b2"}  # fmt: skip


@st.cache_data(max_entries=8, show_spinner="Quantizing the tensor in every format…")
def format_table(tensor_key: str, _x) -> pd.DataFrame:
    """One row per configuration: bits per weight, MSE, SQNR, cosine, clipped %, on the Pareto front, refusal."""
    points = compare_formats(_x)
    return pd.DataFrame(
        {
            "format": [p.name for p in points],
            "family": [p.family for p in points],
            "label": [p.label for p in points],
            "bits per weight": [p.bits_per_weight for p in points],
            "MSE": [p.mse for p in points],
            "SQNR (dB)": [float("inf") if p.sqnr_db is None else p.sqnr_db for p in points],
            "cosine": [p.cosine for p in points],
            "clipped %": [100 * p.clipped_fraction for p in points],
            "Pareto": [p.pareto for p in points],
            "error": [p.error or "" for p in points],
        }
    )


def frontier_figure(df: pd.DataFrame) -> go.Figure:
    """SQNR against bits per weight, one colour per family, the Pareto front (lowest MSE per storage) joined."""
    fig = go.Figure()
    ok = df[df["error"] == ""]
    for family, part in ok.groupby("family", sort=False):
        fig.add_scatter(
            x=part["bits per weight"], y=part["SQNR (dB)"], mode="markers+text", name=family,
            text=part["format"], textposition="top center", marker={"color": FAMILY_COLOURS.get(family), "size": 9},
            hovertemplate="%{text}: %{x:.4g} bits per weight, %{y:.2f} dB<extra></extra>",
        )  # fmt: skip
    front = ok[ok["Pareto"]].sort_values("bits per weight")
    fig.add_scatter(
        x=front["bits per weight"], y=front["SQNR (dB)"], mode="lines", name="Pareto front",
        line={"color": "black", "dash": "dot"}, hoverinfo="skip",
    )  # fmt: skip
    fig.update_layout(
        xaxis_title="bits per weight (scales and zero points included)", yaxis_title="SQNR (dB)", height=520,
        margin={"t": 30}, legend_title_text="family",
    )  # fmt: skip
    return fig


def formats_view(ctx: Context) -> None:
    """Error against storage for every format on the sidebar tensor (What-if)."""
    st.markdown(
        "**Which format at about this many bits per weight?** Every number format quantizes the tensor "
        "(minmax ranges): the block formats in their own blocks along the last axis, INT / log2 (8 to 3 bits) and "
        f"the scaled floats per group of {GROUP} along the last axis. Storage counts every scale and zero point. "
        "The dotted line joins the Pareto front: no other format is both smaller and more accurate."
    )
    df = format_table(ctx.tensor.digest, ctx.tensor.array)
    refused = df[df["error"] != ""]
    if len(refused):
        st.warning("Not drawn: " + "; ".join(f"{r.format}: {r.error}" for r in refused.itertuples()))
    st.plotly_chart(frontier_figure(df), key="wi_formats_fig")
    st.dataframe(df.drop(columns=["error"]), hide_index=True)
    st.download_button("Download the table (CSV)", csv_bytes(df), file_name="formats.csv", mime="text/csv",
                       key="dl_formats")  # fmt: skip


def formats_table(ctx: Context) -> None:
    """The Compare page's formats table: the same tensor under every format, best values per column in green."""
    df = format_table(ctx.tensor.digest, ctx.tensor.array)
    shown = df[df["error"] == ""].set_index("format")[["bits per weight", "MSE", "SQNR (dB)", "cosine", "clipped %",
                                                        "Pareto"]]  # fmt: skip
    st.dataframe(
        shown.style.format("{:.4g}", subset=["bits per weight", "MSE", "clipped %"])
        .format("{:.2f}", subset=["SQNR (dB)"])
        .format("{:.6f}", subset=["cosine"]),
        key="cmp_formats_table",
    )
    st.caption(
        "The same tensor in every number format (minmax ranges; block formats in their blocks along the last "
        f"axis, INT / log2 / scaled floats per group of {GROUP}). Pareto: no other format has both fewer bits per "
        "weight and a lower MSE. What-if → Formats draws it."
    )


def float_bits_lesson(inputs) -> None:
    """Learn: how a float format spends its bits (INT8 vs E4M3 vs E5M2), and why block scales help on outliers."""
    with inputs:
        log_x = st.toggle("Logarithmic axis", value=True, key="fb_log")
        size = st.slider("Outlier size (x sigma)", 5, 100, 40, key="fb_size")
        count = st.slider("Outliers", 0, 32, 4, key="fb_count")
    st.markdown(
        "An INT code spends its bits on **evenly spaced** steps: INT8 has 127 steps of the same size between 0 and "
        "the top. A float spends some bits on an **exponent**: every binade below the top halves the step, so the "
        "levels crowd near 0 and the *relative* step stays the same (2^-3 for E4M3's 3 mantissa bits, 2^-2 for "
        "E5M2). E4M3 has more precision per binade, E5M2 more binades (range). Below, all three scaled to the "
        "same top value 1."
    )
    levels = positive_levels()
    fig = go.Figure()
    for i, (name, v) in enumerate(levels.items()):
        pos = v[v > 0]
        fig.add_scatter(x=pos, y=[i] * pos.size, mode="markers", name=f"{name} ({pos.size} levels > 0)",
                        marker={"symbol": "line-ns-open", "size": 14})  # fmt: skip
    axis_type = "log" if log_x else "linear"
    fig.update_layout(
        height=260,
        margin={"t": 20},
        yaxis={"tickvals": list(range(len(levels))), "ticktext": list(levels)},
        xaxis={"type": axis_type, "title": "level"},
    )
    st.plotly_chart(fig, key="fb_levels")
    steps = go.Figure()
    for name, v in levels.items():
        pos = v[v > 0]
        steps.add_scatter(x=pos[1:], y=relative_step(v), mode="lines+markers", name=name, marker={"size": 4})
    steps.update_layout(height=300, margin={"t": 20}, xaxis={"type": "log" if log_x else "linear", "title": "level"},
                        yaxis={"type": "log", "title": "relative step to the level below"})  # fmt: skip
    st.plotly_chart(steps, key="fb_steps")
    st.markdown(
        "**Why block scales win on outliers.** One scale per tensor must reach the largest value, so a single "
        "outlier stretches every step. A block format (MX: a power-of-two E8M0 scale per 32 values; NVFP4: an E4M3 "
        "scale per 16 over a float32 tensor scale; llama.cpp's Q4_0: an fp16 scale per 32; NF4: an absmax per 64) "
        "lets an outlier coarsen only its own block. The cost is the scale bits, counted below."
    )
    cases = block_scales_on_outliers(outlier_tensor(outliers=count, size=float(size)))
    table = pd.DataFrame({"configuration": [c.name for c in cases], "scales": [c.scales for c in cases],
                          "bits per weight": [c.bits_per_weight for c in cases],
                          "SQNR (dB)": [c.sqnr_db for c in cases]})  # fmt: skip
    bars = go.Figure(go.Bar(x=table["configuration"], y=table["SQNR (dB)"], text=table["bits per weight"].round(3),
                            hovertemplate="%{x}: %{y:.2f} dB at %{text} bits per weight<extra></extra>"))  # fmt: skip
    bars.update_layout(height=320, margin={"t": 20}, yaxis_title="SQNR (dB), higher is better")
    st.plotly_chart(bars, key="fb_blocks")
    st.dataframe(table, hide_index=True)
    st.caption(
        f"A 64 x 256 gaussian tensor with {count} outliers of ±{size} sigma; bars labelled with bits per weight."
    )
