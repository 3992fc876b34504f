"""Explore: one tensor under one quantization configuration."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from qcore import CALIBRATORS, CONVENTIONS, QuantOptionError
from ui import compute, downloads, figures, format_charts, format_views, router, state
from ui.advice import Setting, advise
from ui.curve_caption import curve_caption, lower_curve
from ui.text import EXPLAIN, card_help, metric_notes, metric_values

ZOOMS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
WORST = 5
SEEN_INTRO = "_qx_seen_intro"
Q = "query-params"


def _show_row(i: int) -> None:
    """``on_click`` of a worst-channel button: show that channel in every channel chart."""
    st.session_state["row"] = i


def zoom_window(full: tuple[float, float], zoom: int, centre: float) -> tuple[float, float]:
    """The x range at ``zoom``: width ``(hi - lo) / zoom`` around ``centre``, moved inside ``full``."""
    lo, hi = full
    if zoom <= 1:
        return lo, hi
    width = (hi - lo) / zoom
    start = min(max(centre - width / 2, lo), hi - width)
    return start, start + width


ctx = router.page("Explore one configuration")
settings, tensor = ctx.settings, ctx.tensor
try:
    kept = compute.run_stoppable("explore", tensor.digest, tensor.array, settings)
except QuantOptionError as exc:
    st.error(f"Cannot quantize this tensor with these settings: {exc}")
    st.stop()
if kept is None:  # stopped, nothing earlier to show
    st.stop()
settings, a = kept.value  # after a stop: the previous result and its own settings

p, r, rows = a.params, a.report, a.rows
unit = {"tensor": "tensor", "channel": "channel", "group": "group"}[rows.granularity]
role = st.session_state.get(state.ROLE, state.DEFAULTS[state.ROLE])

range_from = (
    f"with the **{CALIBRATORS[settings.method].label}** range (sidebar)"
    if a.format.calibrated
    else "with block scales set by the format's own rule (no calibration method applies)"
)
with st.expander("What you are looking at, and what to try", expanded=not st.session_state.get(SEEN_INTRO)):
    st.markdown(
        (
            f"**{tensor.label}** quantized to {p.scheme.bits}-bit integers {range_from}. "
            if a.format.name == "int"
            else f"**{tensor.label}** stored as **{a.format.label}** {range_from}. "
        )
        + "The cards give the error over the whole "
        "tensor; the histogram shows the values (blue), "
        "where they land after quantize → dequantize (orange) and the clip range (red, shaded outside); the bars "
        "split the error into clipping and rounding"
        + ("; the curve shows why the method chose its range.\n\n" if a.format.calibrated else ".\n\n")
        + (
            (
                "**Try this:** zoom to 16× to see the integer grid; "
                + (
                    "switch the method to MinMax and watch clipping error vanish while rounding error grows; "
                    if settings.method != "minmax"
                    else "switch the method to Entropy (KL) or Percentile and watch rounding error fall while "
                    "clipping error appears; "
                )
                + "set the granularity to per-channel and open the worst channels; open *Compare methods* for all "
                "methods side by side."
            )
            if a.format.name == "int"
            else "**Try this:** zoom in around 0 to see the format's levels (grey lines, when few enough are in "
            "view); read the codes chart for the levels the data uses; open *Compare → Number formats* for several "
            "formats side by side, or *What-if → Formats* for error against bits per weight."
        )
    )
st.session_state[SEEN_INTRO] = True

# --- metric cards (whole tensor) -------------------------------------------------------------------------
values = list(metric_values(r, a.encoding, a.format.name).items())  # the format's row scales (INT: the params' own)
notes = metric_notes(a.encoding, a.format.name)
helps = card_help(a.format.name)
for start in (0, 4):
    for col, (label, value) in zip(st.columns(4), values[start : start + 4], strict=False):
        col.metric(label, value, notes.get(label), help=helps[label], border=True, delta_color="off", delta_arrow="off")
format_views.storage_cards(a)
axis_text = (
    ""
    if rows.granularity == "tensor"
    else f" along axis {rows.axis} ({state.axis_meaning(role, tensor.array.ndim, rows.axis)})"
)
st.caption(
    f"Cards: the whole tensor. {p.scheme.bits}-bit {'symmetric' if p.scheme.symmetric else 'asymmetric'} "
    f"{'signed' if p.scheme.signed else 'unsigned'} codes [{p.qmin}, {p.qmax}] · "
    f"{CALIBRATORS[settings.method].label} · {CONVENTIONS[p.convention].label} · {rows.n_rows} {unit} range(s)"
    f"{axis_text}"
    if a.format.name == "int"
    else format_views.scheme_caption(a, CALIBRATORS[settings.method].label, rows.n_rows, unit, axis_text)
)
if rows.n_rows > 1:
    st.caption(f"Scale and zero point: the median of the {rows.n_rows:,} ranges; under it, the smallest … largest.")
if warning := a.calibration.details.get("warning"):
    st.warning(f"{CALIBRATORS[settings.method].label}: {warning}")
for advice in advise(a, Setting(role, tuple(tensor.array.shape), settings.method, CALIBRATORS[settings.method].label)):
    (st.warning if advice.level == "warning" else st.info)(advice.text)
if a.format.name == "int" and p.scheme != settings.scheme:
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
    for label, text in helps.items():
        st.markdown(f"**{label}**: {text}")

# --- which row and which part of the axis to show ---------------------------------------------------------
row = 0
if rows.n_rows > 1:
    if not 0 <= st.session_state.get("row", 0) < rows.n_rows:
        st.session_state["row"] = 0
    total = r.rows.clip_mse + r.rows.round_mse
    worst = np.argsort(-total, kind="stable")[:WORST]
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    row = int(
        c1.number_input(
            f"Show {unit} (0 … {rows.n_rows - 1})",
            0,
            rows.n_rows - 1,
            0,
            key="row",
            bind=Q,
            help=f"Drives every chart marked '{unit} N'; {unit}s run along axis {rows.axis} of shape "
            f"{list(rows.shape)}.",
        )
    )
    with c2:
        st.caption(f"Worst {unit}s by MSE (click to show):")
        for col, i in zip(st.columns(len(worst)), worst, strict=True):
            col.button(
                f"{unit} {int(i)}",
                key=f"worst_{int(i)}",
                on_click=_show_row,
                args=(int(i),),
                help=f"MSE {total[i]:.3g} (clipping {r.rows.clip_mse[i]:.3g})",
                width="stretch",
                type="primary" if int(i) == st.session_state.get("row") else "secondary",
            )
lo_r, hi_r = float(rows.min[row]), float(rows.max[row])
lo_c, hi_c = float(p.clip_min[row]), float(p.clip_max[row])
full = (min(lo_r, lo_c), max(hi_r, hi_c))
c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
zoom = c1.select_slider(
    "Zoom (×)",
    ZOOMS,
    value=1,
    key="zoom",
    bind=Q,
    help="Show 1/zoom of the range around the zoom centre; the integer grid appears when at most "
    f"{figures.MAX_GRID_LINES} codes are in view.",
)
centre = c2.number_input(
    "Zoom centre",
    value=0.0,
    format="%g",
    key="zc",
    bind=Q,
    disabled=zoom == 1,
    help="The value the zoomed view is centred on (kept inside the data's range).",
)
log_y = c3.toggle("Log count", value=True, key="logy", help="Logarithmic y axis: shows the sparse tails.")
window = zoom_window(full, zoom, float(centre))
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
        f"Values and their dequantized copy · {where}" + (f" · zoom {zoom}×" if zoom > 1 else ""),
        grid_name=format_views.grid_name(a),
    )
    st.plotly_chart(fig, key="hist")
    step = float(p.scale[row])
    st.caption(
        "Blue bars: original values. Orange line: dequantized values in the same bins (they all sit on the "
        f"{'integer grid' if a.encoding.uniform else 'format’s levels'}). Dashed red lines: the clip range, "
        "shaded beyond"
        + (
            f" (when in view). The view spans {(window[1] - window[0]) / step:.0f} steps of s = {step:.4g}."
            if zoom > 1 and a.encoding.uniform
            else f" (when in view). {view.grid.size} level(s) in view: their spacing is not uniform."
            if zoom > 1
            else "."
        )
    )
with right:
    reference = format_views.rounding_reference(a)
    names, clip, rnd, ref = ["whole tensor"], [r.clip_mse], [r.round_mse], [reference.whole]
    if rows.n_rows > 1:
        names.insert(0, where)
        clip.insert(0, float(r.rows.clip_mse[row]))
        rnd.insert(0, float(r.rows.round_mse[row]))
        ref.insert(0, float(reference.rows[row]))
    fig = figures.breakdown(
        names,
        clip,
        rnd,
        ref,
        title=f"MSE = clipping + rounding · {' vs '.join(names)}",
        reference_name="s²/12 reference (rounding)" if not reference.local else "local spacing reference (rounding)",
    )
    st.plotly_chart(fig, key="breakdown")
    what = "the s²/12 reference" if not reference.local else "the local-spacing reference"
    ratio = (
        f" Whole tensor: rounding error is {r.round_mse / reference.whole:.2f}× {what}."
        if reference.whole and np.isfinite(reference.whole)
        else ""
    )
    local = (
        " For a non-uniform grid the reference is Δ²/12 per value, Δ the spacing of the two levels around it "
        "(s²/12 on a uniform grid)."
        if reference.local
        else ""
    )
    st.caption(EXPLAIN["breakdown"] + ratio + local)

left, right = st.columns(2)
with left:
    xe, ye, dens = view.density
    fig = figures.density(xe, ye, dens, f"Error vs value · {where}")
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
        fig = figures.curve(curve, row, f"Why this threshold · {where}", lower_curve(a.calibration))
        st.plotly_chart(fig, key="curve")
        st.caption(curve_caption(a.calibration, row, unit))
    elif not a.format.calibrated:
        st.markdown(
            f"**{a.format.label}** sets its block scales by its own rule (sidebar), so no calibration method's "
            "objective curve applies; with INT or a scaled float format, Entropy, MSE and ADMM show theirs here."
        )
    else:
        st.markdown(
            f"**{CALIBRATORS[a.calibration.method].label}** takes the range directly, without a search; "
            "methods such as Entropy, MSE and ADMM show their objective curve here."
        )

# --- codes used (beside the error density when the method draws no curve) ---------------------------------------
codes, code_count = format_views.code_counts(tensor.digest, settings.key, a)
used = int((code_count > 0).sum())
codes_box = right if curve is None else st.container()
codes_box.plotly_chart(
    format_charts.codes_figure(codes, code_count, f"Codes used · whole tensor: {used} of {codes.size}", log_y),
    key="codes",
)
codes_box.caption(
    "How many values took each code (grey: never used). "
    + (
        "Integer codes q of the grid."
        if a.encoding.uniform
        else f"Level index of {a.format.label}, lowest level first (the middle codes are the levels nearest 0). "
        "Grey codes are levels the data never reaches; where levels crowd (near 0 for floats and NF4) each "
        "catches fewer values."
    )
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
    pooled = f" · {summary.pooled:,} pooled per point" if summary.pooled > 1 else ""  # whole at 1280 px
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
    left.caption(
        EXPLAIN["ranges"]
        + (
            f" Each point pools {summary.pooled:,} consecutive {unit}s: the lowest of their minima and clip "
            "minima, the highest of their maxima and clip maxima, the mean of their errors."
            if summary.pooled > 1
            else ""
        )
    )
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
