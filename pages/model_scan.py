"""Model scan: every tensor of a checkpoint under a few configurations, and a mixed-precision plan.

Options sit in the sidebar; the scan runs on the "Scan" button, one tensor at a time
(:mod:`qcore.scan`), with its progress and a stop button (a stopped scan shows the tensors
scanned so far, marked partial); finished scans are cached by the checkpoint files' identity
(path, size, modification time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import streamlit as st

from qcore import QuantOptionError
from qcore.io import TensorLoadError
from qcore.scan import DEFAULT_SPECS, TensorFilter, parse_config
from ui import checkpoint_paths, router, scan_view

Q = "query-params"
RESULT_KEY = "_qx_scan_result"

router.page(
    "Model scan",
    "A whole checkpoint, tensor by tensor: which tensors suffer most under each configuration, what the model "
    "weighs, and which tensors to keep in higher precision for a target size.",
    needs_settings=False,
)

with st.sidebar:
    st.header("Model scan")
    source = st.radio("Checkpoint", ("path", "upload"), key="scan_source", horizontal=True, bind=Q)
    path: Path | None = None
    try:
        if source == "path":
            text = st.text_input(
                "Path",
                value="data/minilm_l6.safetensors",
                key="scan_path",
                bind=Q,
                help="A .safetensors / .gguf / .onnx / .pt / .bin / .npz file, a model.safetensors.index.json or a "
                "model folder, inside: " + ", ".join(str(r) for r in checkpoint_paths.roots()),
            )
            path = checkpoint_paths.resolve_path(text, checkpoint_paths.roots())
        else:
            up = st.file_uploader("Checkpoint file", type=list(scan_view.UPLOAD_TYPES), key="scan_upload")
            if up is not None:
                path = scan_view.upload_path(up.getvalue(), up.name)
    except checkpoint_paths.PathRefused as exc:
        st.error(str(exc))
    chosen = st.multiselect(
        "Configurations",
        list(scan_view.PRESETS),
        default=[parse_config(spec).label for spec in DEFAULT_SPECS],
        key="scan_configs",
        bind=Q,
        max_selections=scan_view.MAX_CONFIGS,
    )
    custom = st.text_area(
        "More configurations (one spec per line)",
        key="scan_custom",
        bind=Q,
        placeholder="bits=6,granularity=group,group_size=64,method=percentile",
        help="Keys (the grammar of the CLI and Model what-if): bits, scheme, signed, narrow_range, reduce_range, "
        "granularity, axis, group_size, rounding, method, convention, format, the method's options (percentile, "
        "bins, ...) and the format's (scale_rounding for MX, double_quant for NF4, block_size).",
    )
    pattern = st.text_input("Tensor name filter (regular expression)", key="scan_filter", bind=Q)
    only_2d = st.toggle("2-D (and larger) tensors only", value=True, key="scan_2d", bind=Q)
    min_size = st.number_input("Minimum elements", 0, 1 << 40, 0, step=1024, key="scan_min", bind=Q)

configs, problems = [], []
for spec in [scan_view.PRESETS[c] for c in chosen] + [s for s in custom.splitlines() if s.strip()]:
    try:
        configs.append(parse_config(spec))
    except QuantOptionError as exc:
        problems.append(f"`{spec}`: {exc}")
for p in problems:
    st.error(f"Configuration not usable: {p}")
if len(configs) > scan_view.MAX_CONFIGS:
    st.warning(f"Only the first {scan_view.MAX_CONFIGS} configurations are scanned.")
    configs = configs[: scan_view.MAX_CONFIGS]
try:
    select = TensorFilter(pattern or None, only_2d, int(min_size))
except QuantOptionError as exc:
    st.error(str(exc))
    select = None

ready = path is not None and configs and select is not None
buttons = st.container(horizontal=True)  # Stop right beside Scan
start_scan = buttons.button("Scan", type="primary", disabled=not ready, key="scan_go")
buttons.button("Stop", key="scan_stop", help="Stops a running scan; the tensors scanned so far are shown (not cached).")
if not ready:
    st.info("Choose a checkpoint and at least one configuration in the sidebar, then press Scan.")

current = scan_view.cache_key(path, configs, select) if ready else None
if start_scan and ready and (hit := scan_view.cached_report(path, configs, select)) is not None:
    st.session_state[RESULT_KEY] = (str(path), hit, True, 0.0, current)
elif start_scan and ready:
    bar = st.progress(0.0, text="Listing tensors…")
    start = time.monotonic()
    try:
        # The session keeps the report after every tensor: a stop (which interrupts this run) leaves it partial.
        for report in scan_view.scan_steps(path, configs, select):
            elapsed = time.monotonic() - start
            st.session_state[RESULT_KEY] = (str(path), report, False, elapsed, current)
            if not report.done:
                bar.progress(0.0, text=f"0/{report.total} · scanning the first tensors…")
            else:
                left = elapsed / report.done * (report.total - report.done)
                bar.progress(
                    report.done / report.total,
                    text=f"{report.done}/{report.total} · {report.last} · {elapsed:.0f} s, about {left:.0f} s left",
                )
    except (TensorLoadError, QuantOptionError, OSError) as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(f"Could not scan {path.name}: {exc}")
    bar.empty()

elif ready and (hit := scan_view.cached_report(path, configs, select)) is not None:
    st.session_state[RESULT_KEY] = (str(path), hit, True, 0.0, current)  # scanned before, by any session: at once

result = st.session_state.get(RESULT_KEY)
if result is None:
    st.stop()
where, report, cached, seconds, key = result
if key != current:
    st.info("These results are for other settings (or files that changed since): press Scan to update them.")
ok, errors = report.ok_rows, report.error_rows
st.caption(f"**{where}** · {report.total} tensors selected · " + ("from the cache" if cached else f"{seconds:.1f} s"))
if report.cancelled:
    st.warning(
        f"Partial results: {report.done} of {report.total} tensors scanned (the scan was stopped). Sizes and the "
        "plan cover the scanned tensors only; press Scan to run the whole scan (partial results are not cached)."
    )
m1, m2, m3 = st.columns(3)
m1.metric("Tensors scanned", len({r["tensor"] for r in ok}))
m2.metric("Configurations", len(report.configs))
m3.metric("Errors", len(errors))
if errors:
    st.warning("Some tensors or shards could not be read; the rest was scanned.")
    st.dataframe(
        [
            {"tensor or shard": r["tensor"] or r["file"], "configuration": r["config"] or "all", "reason": r["error"]}
            for r in errors
        ],
        hide_index=True,
        key="scan_errors",
    )
skipped = [r for r in report.rows if r["status"] == "skipped"]  # e.g. a per-channel config on a 1-D tensor
if skipped:
    names = sorted({r["tensor"] for r in skipped})
    with st.expander(f"Not applicable: {len(skipped)} tensor × configuration pair(s), {len(names)} tensor(s)"):
        st.dataframe(
            [{"tensor": r["tensor"], "configuration": r["config"], "reason": r["error"]} for r in skipped],
            hide_index=True,
            key="scan_skipped",
        )
if not ok:
    if not report.cancelled:
        st.error("No tensor could be scanned with these settings.")
    st.stop()

link_path = scan_view.linkable(Path(where))
df = scan_view.table(report, link_path)
labels = [c.label for c in report.configs]
st.subheader("Tensors")
st.caption("Click a column header to sort. *explore* opens the tensor in Explore with the same settings.")
if link_path is None and df["explore"].isna().any():
    st.info(
        "Rows of an uploaded checkpoint cannot open in Explore by link: the upload belongs to this page only. Put "
        "the file inside the allowed folders and scan it by path, or upload it in Explore's sidebar."
    )
st.dataframe(
    df,
    hide_index=True,
    key="scan_table",
    column_config={
        "explore": st.column_config.LinkColumn("explore", display_text="open"),
        "layer": st.column_config.NumberColumn(
            help="Block index; empty (None) for a tensor outside the numbered blocks (embeddings, final norm, head): "
            f"the heatmap's '{scan_view.NO_LAYER}' column"
        ),
        "SQNR (dB)": st.column_config.NumberColumn(format="%.2f"),
        "rel. MSE": st.column_config.NumberColumn(format="%.3e"),
        "clipped %": st.column_config.NumberColumn(format="%.4f"),
        "bits/weight": st.column_config.NumberColumn(format="%.3f"),
    },
)

view = st.selectbox("Configuration shown in the charts", labels, key="scan_view")
left, right = st.columns(2)
grid = scan_view.heatmap_data(df, view)
left.plotly_chart(scan_view.heatmap(grid, view), key="scan_heatmap")
n_worst = right.slider("Worst N", 3, 30, 10, key="scan_worst")
right.plotly_chart(scan_view.worst_bars(df, view, n_worst), key="scan_worst_bars")

st.subheader("Model size")
sizes = report.model_size()
stored = sum({r["tensor"]: r["stored_bytes"] for r in report.rows if r["tensor"]}.values())
st.plotly_chart(scan_view.size_bars(sizes, stored), key="scan_sizes")

st.subheader("Mixed-precision plan")
st.caption(
    "One configuration per tensor, chosen among the scanned ones to minimise the total error (relative MSE weighted "
    "by tensor size) within the average bits per weight you allow."
)
bpws = [r["bits_per_weight"] for r in ok]
target = st.number_input(
    "Target average bits per weight", min(bpws), max(bpws), (min(bpws) + max(bpws)) / 2, 0.25, key="scan_bpw"
)
try:
    plan, body = report.plan(float(target))
except QuantOptionError as exc:
    st.error(str(exc))
    st.stop()
p1, p2, p3 = st.columns(3)
p1.metric("Plan size", f"{body['total_bytes'] / 1e6:.3f} MB")
p2.metric("Plan bits per weight", f"{body['bits_per_weight']:.3f}")
p3.metric("Plan rel. MSE", f"{body['rel_mse']:.3e}", help="Optimal" if plan.optimal else "Greedy (LP bound shown)")
compare = [{"choice": "plan", "bits/weight": body["bits_per_weight"], "rel. MSE": body["rel_mse"]}]
compare += [
    {"choice": u["config"], "bits/weight": u["bits_per_weight"], "rel. MSE": u["rel_mse"]} for u in body["uniform"]
]
st.dataframe(compare, hide_index=True, key="scan_plan_compare")
st.dataframe(body["tensors"], hide_index=True, key="scan_plan_table")
st.download_button(
    "Download the plan (JSON)",
    json.dumps(body, indent=1, allow_nan=False),
    file_name="mixed_precision_plan.json",
    mime="application/json",
    key="scan_plan_download",
)
