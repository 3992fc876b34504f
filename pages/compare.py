"""Compare: several calibration methods (MinMax vs KL vs ADMM ...) or number formats on the same tensor.

All methods share one :class:`qcore.CalibrationData` (the rows and their histograms are
collected once; each method only searches).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from qcore import CALIBRATORS
from ui import compute, downloads, figures, router, sidebar, state
from ui.curve_caption import lower_curve
from ui.format_compare import formats_view
from ui.text import EXPLAIN, short_label
from ui.url import url_choice
from ui.verdict import METRICS, mse_method_note, verdict, winners

WANTED = ("minmax", "percentile", "entropy", "mse", "admm")
MODES = {"methods": "Calibration methods", "formats": "Number formats"}

chosen = st.session_state.get("cmp_mode", st.query_params.get("cmp_mode"))  # the mode widget comes after the frame
ctx = router.page("Compare number formats" if chosen == "formats" else "Compare calibration methods")
settings, tensor = ctx.settings, ctx.tensor
mode = url_choice(st.segmented_control, "Compare", MODES, "cmp_mode", label_visibility="collapsed")
if mode == "formats":
    st.caption("The same tensor under several number formats: storage and error side by side.")
    formats_view(ctx)
    st.stop()
st.caption("The same tensor, bits, scheme and granularity (sidebar); only the way the clip range is chosen changes.")

methods = st.multiselect(
    "Methods",
    list(CALIBRATORS),
    default=[m for m in WANTED if m in CALIBRATORS],
    key="cmp",
    bind="query-params",
)
with st.expander("Method options"):
    st.caption("The options of each compared method (the sidebar's options belong to the sidebar's method).")
    for m in methods:
        sidebar.method_option_widgets(m, "cmp", f"{CALIBRATORS[m].label}: ")
if not methods:
    st.info("Pick at least one method.")
    st.stop()

by_method = {m: settings.with_method(m, state.read_options(m, "cmp")) for m in methods}
kept = compute.run_methods("compare", tensor.digest, tensor.array, by_method)
if kept is None:  # stopped, nothing earlier to show
    st.stop()
results, failed = kept.value  # after a stop: the previous comparison
for m, msg in failed.items():
    st.error(f"{CALIBRATORS[m].label}: {msg}")
if not results:
    st.stop()

first = next(iter(results.values()))
rows = first.rows
unit = rows.granularity
row = 0
c1, c2 = st.columns([3, 1])
if rows.n_rows > 1:
    row = int(
        c1.number_input(
            f"Show {unit} (0 … {rows.n_rows - 1})",
            0,
            rows.n_rows - 1,
            0,
            key="cmp_row",
            help=f"Histograms and curves show one {unit} (axis {rows.axis}); the table covers all.",
        )
    )
log_y = c2.toggle("Log count", value=True, key="cmp_logy")
labels = {m: CALIBRATORS[m].label for m in results}
short = {m: short_label(CALIBRATORS[m].label) for m in results}
ranges = {short[m]: (float(a.params.clip_min[row]), float(a.params.clip_max[row])) for m, a in results.items()}
lo = min(float(rows.min[row]), *(r[0] for r in ranges.values()))
hi = max(float(rows.max[row]), *(r[1] for r in ranges.values()))
counts, edges = compute.row_histogram(
    tensor.digest, (rows.granularity, rows.axis, rows.group_size), row, lo, hi, compute.present_values(rows, row)
)

# --- verdict ------------------------------------------------------------------------------------------------
c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
rank_by = c1.selectbox(
    "Best by", list(METRICS), key="cmp_by", bind="query-params", help="The metric the verdict ranks on."
)
with c2.container(border=True, key="cmp_verdict"):
    st.markdown(verdict(results, labels, rank_by))
if note := mse_method_note(results, labels):
    st.info(note)

# --- metrics table ----------------------------------------------------------------------------------------
table = pd.DataFrame(
    {
        "method": [labels[m] for m in results],
        "MSE": [a.report.mse for a in results.values()],
        "clip MSE": [a.report.clip_mse for a in results.values()],
        "round MSE": [a.report.round_mse for a in results.values()],
        "SQNR (dB)": [np.inf if a.report.sqnr_db is None else a.report.sqnr_db for a in results.values()],
        "cosine": [a.report.cosine for a in results.values()],
        "clipped %": [100 * a.report.clipped_fraction for a in results.values()],
        "levels used": [a.report.levels_used for a in results.values()],
        "max |error|": [a.report.max_abs_error for a in results.values()],
    }
).set_index("method")


def _greens(column: pd.Series) -> list[str]:
    """Green where a value ties with the column's best, and only when the column has a real winner."""
    won = set(winners(dict(column.items()), METRICS[column.name]))
    return ["background-color: #c7e9c0" if name in won else "" for name in column.index]


styled = (
    table.style.apply(_greens, subset=list(METRICS))
    .format("{:.4g}", subset=["MSE", "clip MSE", "round MSE", "max |error|", "clipped %"])
    .format("{:.2f}", subset=["SQNR (dB)"])
    .format("{:.6f}", subset=["cosine"])
)
st.subheader("Metrics (whole tensor)")
st.dataframe(styled, key="cmp_table")
st.caption(
    "Green: the best value of MSE, SQNR, cosine and max |error|, and those within "
    "0.05 dB / 1% / 1e-5 of it; no green when every method ties. Clip and round MSE are the two parts of MSE, "
    "not scores: a small rounding error often comes with a large clipping error. "
    + EXPLAIN["sqnr"]
    + " "
    + EXPLAIN["clipped"]
)
for m, a in results.items():
    if warning := a.calibration.details.get("warning"):
        st.warning(f"{labels[m]}: {warning}")
st.download_button(
    "Metrics table (CSV)",
    partial(downloads.csv_bytes, table.reset_index()),
    file_name="compare.csv",
    mime="text/csv",
    on_click="ignore",
    key="dl_cmp",
)

# --- histograms -------------------------------------------------------------------------------------------
where = f"{unit} {row}" if rows.n_rows > 1 else "whole tensor"
st.subheader(f"Thresholds · {where}")
st.plotly_chart(figures.overlay(edges, counts, ranges, log_y), key="cmp_overlay")
st.plotly_chart(figures.small_multiples(edges, counts, ranges, log_y), key="cmp_multiples")

left, right = st.columns(2, vertical_alignment="center")
with left:
    fig = figures.breakdown(
        list(ranges),
        [a.report.clip_mse for a in results.values()],
        [a.report.round_mse for a in results.values()],
        [a.report.round_mse_reference for a in results.values()],
        title="MSE = clipping + rounding · whole tensor",
    )
    st.plotly_chart(fig, key="cmp_breakdown")
right.caption(EXPLAIN["breakdown"])

# --- objective curves ---------------------------------------------------------------------------------------
st.subheader(f"Why each threshold · {where}")
without = [labels[m] for m, a in results.items() if a.calibration.curve is None]
st.caption(
    "The objective each searching method optimises over its candidate thresholds, the chosen one marked (red ×)."
    + (f" {', '.join(without)}: no search (the range is computed directly)." if without else "")
)
curved = [(m, a) for m, a in results.items() if a.calibration.curve is not None]
for start in range(0, len(curved), 3):
    cols = st.columns(3)
    for col, (m, a) in zip(cols, curved[start : start + 3], strict=False):
        fig = figures.curve(a.calibration.curve, row, short[m], lower_curve(a.calibration))
        col.plotly_chart(fig, key=f"cmp_curve_{m}")  # the objective is the y title
