"""Compare → formats: the sidebar tensor under several number formats, one table and one histogram each.

INT and the scaled floats take the ranges and method chosen here (INT's bits too); block formats use their
own blocks along the last axis. Every analysis goes through :func:`ui.compute.run` (cached).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from qcore import CALIBRATORS, Analysis, QuantOptionError, QuantScheme
from qcore.formats import FORMATS, NumberFormat

from . import compute, downloads, format_charts, format_views
from .format_state import format_convention, format_method, format_scheme
from .sidebar import Context
from .state import Settings, read_options
from .verdict import METRICS, Metric, winners

Q = "query-params"
DEFAULT_FORMATS: tuple[str, ...] = ("int", "fp4_e2m1", "nf4", "mxfp4", "nvfp4", "q4_0")
RANGE_CHOICES: dict[str, str] = {"channel": "per channel", "group": "per group", "tensor": "per tensor"}
GROUP_SIZES: tuple[int, ...] = (32, 64, 128, 256)
GREEN: tuple[str, ...] = ("bits per weight", "MSE", "SQNR (dB)", "cosine")
PANEL_SAMPLE = 1 << 18


def format_settings(base: Settings, fmt: NumberFormat, int_scheme: QuantScheme, ndim: int) -> Settings:
    """The sidebar settings with ``fmt``: INT takes ``int_scheme``, other formats what they fix over it."""
    scheme = format_scheme(int_scheme, fmt, ndim)
    options = base.format_options if any(k in fmt.option_names for k, _ in base.format_options) else ()
    return replace(
        base,
        scheme=scheme,
        method=format_method(fmt, base.method),
        convention=format_convention(fmt, base.convention),
        format_options=options,
    )


def _inputs(ctx: Context) -> tuple[list[str], QuantScheme, str]:
    """The formats to compare, the INT / float layout (bits, ranges) and their calibrator, chosen on this page."""
    base = ctx.settings.scheme
    names = st.multiselect(
        "Formats",
        list(FORMATS),
        default=[f for f in DEFAULT_FORMATS if f in FORMATS],
        format_func=lambda n: FORMATS[n].label,
        key="cmp_formats",
        help="Block formats (NF4, MX, NVFP4, GGUF) use their own blocks along the last axis.",
    )
    c0, c1, c2, c3 = st.columns(4)
    method = c0.selectbox(
        "INT and FP range by",
        list(CALIBRATORS),
        index=list(CALIBRATORS).index("minmax"),
        key="cmp_fmt_method",
        bind=Q,
        help="The calibrator of INT and the scaled floats. MinMax (absmax) is what the block formats use in every "
        "block, so the rows compare like for like.",
    )
    bits = c1.slider("INT bits", 2, 8, 4, key="cmp_int_bits", bind=Q, help="Width of the INT row only.")
    ranges = c2.selectbox(
        "INT and FP ranges",
        list(RANGE_CHOICES),
        index=1,
        format_func=RANGE_CHOICES.get,
        key="cmp_fmt_ranges",
        bind=Q,
        help="One scale per tensor, per channel or per group, for INT and the scaled floats (FP8/FP6/FP4).",
    )
    group = c3.selectbox("Group size", GROUP_SIZES, index=2, key="cmp_fmt_group", bind=Q, disabled=ranges != "group")
    ndim = ctx.tensor.array.ndim
    axis = max(ndim - 1, 0) if ranges == "group" else min(base.axis, max(ndim - 1, 0))
    scheme = base.with_(format="int", bits=bits, granularity=ranges, axis=axis, group_size=int(group))
    return names, scheme, method


def _table(results: dict[str, Analysis]) -> pd.DataFrame:
    rows = []
    for name, a in results.items():
        r, s = a.report, format_views.storage(a)
        rows.append(
            {
                "format": FORMATS[name].label if name != "int" else f"INT{a.params.scheme.bits}",
                "bits per weight": s.bits_per_weight,
                "bytes": s.bytes,
                "MSE": r.mse,
                "SQNR (dB)": np.inf if r.sqnr_db is None else r.sqnr_db,
                "cosine": r.cosine,
                "clipped %": 100 * r.clipped_fraction,
                "clip MSE": r.clip_mse,
                "round MSE": r.round_mse,
                "levels used": f"{r.levels_used} / {r.levels_total}",
            }
        )
    return pd.DataFrame(rows).set_index("format")


def _greens(column: pd.Series) -> list[str]:
    """Green where a value is the column's best (ties within the Compare verdict's tolerances)."""
    metric = METRICS.get(column.name, Metric("bits per weight", "", False, 1e-9, True))
    won = set(winners(dict(column.items()), metric))
    return ["background-color: #c7e9c0" if name in won else "" for name in column.index]


@st.cache_data(max_entries=16, show_spinner=False)
def _panel(tensor_key: str, settings_key: str, lo: float, hi: float, edges_n: int, _a: Analysis) -> tuple:
    """Dequantized histogram on the shared edges (from at most PANEL_SAMPLE values) and the levels in view.

    The levels are those of the row (block, channel) holding the tensor's largest |x|.
    """
    rows = _a.rows
    x_hat = _a.encoding.dequantized_rows()
    present = rows.finite_mask
    flat = x_hat[present] if present is not None else x_hat.ravel()
    step = max(1, -(-flat.size // PANEL_SAMPLE))
    edges = np.linspace(lo, hi, edges_n + 1)
    deq = np.histogram(flat[::step], bins=edges)[0] * (flat.size / max(flat[::step].size, 1))
    values = np.where(np.isnan(rows.values), 0.0, np.abs(rows.values))
    row = int(np.unravel_index(np.argmax(values), values.shape)[0])
    grid = _a.encoding.row_levels(row)
    return deq, grid[(grid >= lo) & (grid <= hi)], row


def formats_view(ctx: Context) -> None:
    """The 'formats' mode of Compare."""
    names, int_scheme, method = _inputs(ctx)
    if not names:
        st.info("Pick at least one format.")
        return
    tensor, ndim = ctx.tensor, ctx.tensor.array.ndim
    results: dict[str, Analysis] = {}
    failed: dict[str, str] = {}
    base = ctx.settings.with_method(method, read_options(method))
    progress = st.progress(0.0, text="Quantizing…")
    for i, name in enumerate(names):
        progress.progress(i / len(names), text=f"{FORMATS[name].label} ({i + 1}/{len(names)})…")
        try:
            settings = format_settings(base, FORMATS[name], int_scheme, ndim)
            a = compute.run(tensor.digest, tensor.array, settings)
        except QuantOptionError as exc:
            failed[name] = str(exc)
            continue
        results[name] = a
    progress.empty()
    for name, msg in failed.items():
        st.error(f"{FORMATS[name].label}: {msg}")
    if not results:
        return
    table = _table(results)
    styled = (
        table.style.apply(_greens, subset=list(GREEN))
        .format("{:.4g}", subset=["bits per weight", "MSE", "clip MSE", "round MSE", "clipped %"])
        .format(format_views.fmt_bytes, subset=["bytes"])
        .format("{:.2f}", subset=["SQNR (dB)"])
        .format("{:.6f}", subset=["cosine"])
    )
    st.subheader("Metrics (whole tensor)")
    st.dataframe(styled, key="cmp_fmt_table")
    int_text = f"INT{int_scheme.bits} {'symmetric' if int_scheme.symmetric else 'asymmetric'}"
    layout = RANGE_CHOICES[int_scheme.granularity] + (
        f" {int_scheme.group_size}" if int_scheme.granularity == "group" else ""
    )
    st.caption(
        f"{int_text} and the scaled floats: {layout}, range by {CALIBRATORS[method].label}; "
        "NF4, MX, NVFP4 and GGUF: their own blocks along the last axis and their own "
        "scale rule. Bits per weight include every scale, zero point and per-tensor scale. Green: the best value "
        "of a column."
    )
    st.download_button(
        "Metrics table (CSV)",
        partial(downloads.csv_bytes, table.reset_index()),
        file_name="compare_formats.csv",
        mime="text/csv",
        on_click="ignore",
        key="dl_cmp_formats",
    )
    _histograms(ctx, results)


def _histograms(ctx: Context, results: dict[str, Analysis]) -> None:
    """Small multiples: the tensor's histogram with each format's dequantized values and levels."""
    tensor = ctx.tensor
    first = next(iter(results.values()))
    lo = float(min(np.nanmin(a.rows.min) for a in results.values()))
    hi = float(max(np.nanmax(a.rows.max) for a in results.values()))
    c1, c2, c3 = st.columns([3, 2, 1], vertical_alignment="bottom")
    zoom = c1.select_slider("Zoom (×)", (1, 2, 4, 8, 16, 32, 64), value=1, key="cmp_fmt_zoom", bind=Q)
    centre = c2.number_input("Zoom centre", value=0.0, format="%g", key="cmp_fmt_zc", disabled=zoom == 1)
    log_y = c3.toggle("Log count", value=True, key="cmp_fmt_logy")
    if zoom > 1:
        width = (hi - lo) / zoom
        start = min(max(float(centre) - width / 2, lo), hi - width)
        lo, hi = start, start + width
    values = first.rows.values
    present = values[~np.isnan(values)] if first.rows.has_missing else values.ravel()
    counts, edges = compute.row_histogram(tensor.digest, ("all values",), -1, lo, hi, present)
    panels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, a in results.items():
        settings_key = repr((a.params.scheme, a.format))
        deq, grid, _ = _panel(tensor.digest, settings_key, lo, hi, edges.size - 1, a)
        panels[FORMATS[name].label.split(" (")[0]] = (deq, grid)
    st.subheader("Histograms with each format's levels")
    st.plotly_chart(format_charts.format_multiples(edges, counts, panels, log_y), key="cmp_fmt_multiples")
    st.caption(
        "Blue: the tensor's values (all of them, pre-binned). Orange: where they land in each format. Grey ticks: "
        "the levels of the block / channel holding the largest |x|, drawn when at most 80 fall in view (zoom in "
        "around 0 to see the non-uniform float and NF4 levels crowd near zero)."
    )
