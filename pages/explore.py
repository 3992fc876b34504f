"""Explore: one tensor under one quantization configuration."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from qcore import CALIBRATORS, CONVENTIONS, QuantOptionError
from ui import compute, downloads, figures, router, state
from ui.text import CARD_HELP, EXPLAIN, metric_notes, metric_values

ZOOMS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

ctx = router.page("Explore one configuration")
settings, tensor = ctx.settings, ctx.tensor
try:
    a = compute.run(tensor.digest, tensor.array, settings)
except QuantOptionError as exc:
    st.error(f"Cannot quantize this tensor with these settings: {exc}")
    st.stop()

p, r, rows = a.params, a.report, a.rows
unit = {"tensor": "tensor", "channel": "channel", "group": "group"}[rows.granularity]

# --- metric cards ------------------------------------------------------------------------------------------
values = list(metric_values(r, p).items())
notes = metric_notes(p)
for start in (0, 4):
    for col, (label, value) in zip(st.columns(4), values[start : start + 4], strict=False):
        col.metric(
            label, value, notes.get(label), help=CARD_HELP[label], border=True, delta_color="off", delta_arrow="off"
        )
st.caption(
    f"{p.scheme.bits}-bit {'symmetric' if p.scheme.symmetric else 'asymmetric'} "
    f"{'signed' if p.scheme.signed else 'unsigned'} codes [{p.qmin}, {p.qmax}] · "
    f"{CALIBRATORS[settings.method].label} · {CONVENTIONS[p.convention].label} · {rows.n_rows} {unit} range(s)"
)
if warning := a.calibration.details.get("warning"):
    st.warning(f"{CALIBRATORS[settings.method].label}: {warning}")
if p.scheme != settings.scheme:
    st.info(
        f"The {p.convention} convention adjusts the grid: codes [{p.qmin}, {p.qmax}], rounding {p.scheme.rounding}."
    )
with st.expander("What do these numbers mean?"):
    st.latex(
        r"q = \operatorname{clamp}\big(\operatorname{round}(x / s) + z,\ q_{min},\ q_{max}\big), \qquad"
        r"\hat x = (q - z)\, s"
    )
    st.latex(
        r"\mathrm{MSE} = \tfrac{1}{N}\textstyle\sum (\hat x - x)^2 = \text{clip} + \text{round}, \qquad"
        r"\mathrm{SQNR} = 10 \log_{10} \frac{\sum x^2}{\sum (\hat x - x)^2}\ \text{dB}"
    )
    for label, text in CARD_HELP.items():
        st.markdown(f"**{label}**: {text}")

# --- which row and which part of the axis to show ---------------------------------------------------------
c1, c2, c3 = st.columns([2, 2, 1])
row = 0
if rows.n_rows > 1:
    axis_note = f"axis {rows.axis} of shape {list(rows.shape)}"
    row = int(
        c1.number_input(
            f"Show {unit} (0 … {rows.n_rows - 1})",
            0,
            rows.n_rows - 1,
            0,
            key="row",
            help=f"The histogram shows one {unit}; {unit}s run along {axis_note}.",
        )
    )
zoom = c2.select_slider(
    "Zoom",
    ZOOMS,
    value=1,
    key="zoom",
    format_func=lambda z: f"{z}×",
    help="Zoom in around zero (or the middle of the range); the integer grid appears when "
    f"at most {figures.MAX_GRID_LINES} codes are in view.",
)
log_y = c3.toggle("Log count", value=True, key="logy", help="Logarithmic y axis: shows the sparse tails.")
lo_r, hi_r = float(rows.min[row]), float(rows.max[row])
lo_c, hi_c = float(p.clip_min[row]), float(p.clip_max[row])
full = (min(lo_r, lo_c), max(hi_r, hi_c))
center = 0.0 if full[0] <= 0.0 <= full[1] else (full[0] + full[1]) / 2
half = max(full[1] - center, center - full[0]) / zoom
window = (full[0], full[1]) if zoom == 1 else (max(full[0], center - half), min(full[1], center + half))
view = compute.row_view(tensor.digest, settings.key, row, window, a)

where = f"{unit} {row}" if rows.n_rows > 1 else "whole tensor"
left, right = st.columns(2)
with left:
    fig = figures.histogram(
        view.edges,
        view.counts,
        view.deq_counts,
        lo_c,
        hi_c,
        view.grid,
        log_y,
        f"Values and their dequantized copy ({where})",
    )
    st.plotly_chart(fig, key="hist")
    st.caption(
        "Blue bars: original values. Orange line: dequantized values in the same bins (they all sit on the "
        "integer grid). Dashed red lines: "
        "the clip range; shaded: values that get clipped."
    )
with right:
    ref = r.round_mse_reference
    fig = figures.breakdown([a.calibration.method], [r.clip_mse], [r.round_mse], [ref])
    st.plotly_chart(fig, key="breakdown")
    ratio = f" Rounding error is {r.round_mse / ref:.2f}× the s²/12 reference." if ref and np.isfinite(ref) else ""
    st.caption(EXPLAIN["breakdown"] + ratio)

left, right = st.columns(2)
with left:
    xe, ye, dens = view.density
    fig = figures.density(xe, ye, dens, f"Error vs value ({where})")
    st.plotly_chart(fig, key="density")
    sample = (
        ""
        if view.sampled == view.total
        else f" Drawn from {view.sampled:,} evenly spaced of the {view.total:,} values (as is the orange line); "
        "the metrics use every value."
    )
    st.caption(EXPLAIN["density"] + sample)
with right:
    curve = a.calibration.curve
    if curve is not None:
        fig = figures.curve(curve, row, f"Why this threshold: {curve.objective} vs {curve.parameter} ({where})")
        st.plotly_chart(fig, key="curve")
        verb = {"min": "minimises", "max": "maximises"}.get(curve.goal)
        chosen = f"takes the one that {verb} {curve.objective}" if verb else f"marks the chosen {curve.objective}"
        st.caption(f"The method evaluates {curve.x.shape[1]} candidates and {chosen} (red ×).")
    else:
        st.markdown(
            f"**{a.calibration.method}** takes the range directly, without a search; "
            "methods such as Entropy, MSE and ADMM show their objective curve here."
        )

# --- per channel / per group --------------------------------------------------------------------------------
if rows.n_rows > 1:
    st.subheader(f"Per {unit}")
    order = st.segmented_control(
        "Order",
        ["index", "range"],
        default="index",
        key="row_order",
        format_func={"index": f"{unit} order", "range": "sorted by range"}.get,
    )
    summary = compute.row_summary(a, order or "index")
    pooled = f" ({summary.pooled} consecutive {unit}s pooled per point)" if summary.pooled > 1 else ""
    xlabel = f"{unit} (axis {rows.axis})" if order != "range" else f"{unit}s sorted by range width"
    left, right = st.columns(2)
    left.plotly_chart(
        figures.channel_ranges(
            summary.index,
            summary.vmin,
            summary.vmax,
            summary.clip_min,
            summary.clip_max,
            xlabel,
            f"Range per {unit}{pooled}",
        ),
        key="ranges",
    )
    left.caption(EXPLAIN["ranges"])
    right.plotly_chart(
        figures.channel_errors(summary.index, summary.clip_mse, summary.round_mse, xlabel, f"Error per {unit}{pooled}"),
        key="row_errors",
    )

# --- downloads and the CLI ----------------------------------------------------------------------------------
st.subheader("Take it with you")
c1, c2, c3 = st.columns(3)
c1.download_button(
    "Parameters (JSON)",
    partial(downloads.params_json, a, settings, tensor.name),
    file_name="qparams.json",
    mime="application/json",
    on_click="ignore",
    key="dl_params",
)
c2.download_button(
    "Quantized + dequantized (.npz)",
    partial(downloads.arrays_npz, a),
    file_name="quantized.npz",
    mime="application/octet-stream",
    on_click="ignore",
    key="dl_npz",
)
c3.download_button(
    f"Per-{unit} metrics (CSV)",
    partial(downloads.csv_bytes, downloads.row_table(a)),
    file_name="metrics.csv",
    mime="text/csv",
    on_click="ignore",
    key="dl_csv",
)
st.markdown("The command that reproduces these numbers:")
command, caveats = state.cli_command(settings, tensor.cli_path, None if tensor.origin == "synthetic" else tensor.name)
st.code(command, language="bash", wrap_lines=True)
for caveat in caveats:
    st.caption(f"Not on the command line: {caveat}.")
if tensor.origin == "synthetic":
    st.download_button(
        "This synthetic tensor (.npy)",
        partial(downloads.tensor_npy, tensor.array),
        file_name="TENSOR.npy",
        on_click="ignore",
        key="dl_tensor",
    )
