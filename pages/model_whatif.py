"""Model what-if: run all-MiniLM-L6-v2 or the digits MLP with quantized linear layers and see what the model loses.

Options in the sidebar (bound to the URL) make one configuration spec (the CLI's ``--config``); the core runs the
model (:mod:`qcore.models`), cached by (model, spec); the sensitivity sweep runs under a progress bar.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qcore import CALIBRATORS, CONVENTIONS, QuantOptionError
from qcore.formats import FORMATS
from qcore.models import ModelUnavailableError
from ui import router
from ui.model_charts import (
    METRIC_CARDS,
    format_delta,
    format_metric,
    keep_figure,
    layer_error_figure,
    model_run,
    model_sensitivity,
    sensitivity_figure,
)
from ui.url import url_choice

Q = "query-params"
METHODS = list(CALIBRATORS)
PLACEHOLDERS = {
    "minilm": "encoder.layer.?.output.dense: float; *.self.key: bits=16",
    "digits": "fc2: float; fc3: bits=8",
}
FORMAT_LABELS = {name: f.label for name, f in FORMATS.items()}

MODEL_LABELS = {"minilm": "all-MiniLM-L6-v2 (sentence embeddings)", "digits": "digits MLP (classifier)"}

ctx = router.page(
    "Model what-if",
    "Quantize the linear layers of a real model and measure what the model loses, not just one tensor: sentence "
    "embeddings against the float model's (MiniLM) or held-out accuracy and KL (digits MLP). Static input ranges "
    "are calibrated on a separate calibration split, as deployed.",
    needs_settings=False,
)
box = ctx.inputs if ctx.inputs is not None else st.sidebar
with box:
    st.subheader("Model and quantization")
    model = url_choice(st.radio, "Model", MODEL_LABELS, "mw_model")
    fmt = url_choice(st.selectbox, "Number format", FORMAT_LABELS, "mw_format")
    element_bits = FORMATS[fmt].bits
    bits = st.select_slider(
        "Bits",
        list(range(2, 17)),
        value=8,
        key="mw_bits",
        bind=Q,
        disabled=element_bits is not None,
        help="the format's element width when it has one",
    )
    bits = element_bits or bits
    target = st.radio("Quantize", ["both", "weight", "input"], key="mw_target", horizontal=True, bind=Q)
    scheme = st.radio("Scheme", ["symmetric", "asymmetric"], key="mw_scheme", horizontal=True, bind=Q)
    wgran = st.selectbox("Weight granularity", ["channel", "tensor", "group"], key="mw_wgran", bind=Q)
    wmethod = st.selectbox("Weight calibrator", METHODS, METHODS.index("minmax"), key="mw_wmethod", bind=Q)
    xgran = st.selectbox(
        "Input granularity",
        ["tensor", "channel", "token"],
        key="mw_xgran",
        help="token: one range per token, computed at run time (dynamic)",
        bind=Q,
    )
    xmethod = st.selectbox("Input calibrator", METHODS, METHODS.index("minmax"), key="mw_xmethod", bind=Q)
    dynamic = st.toggle(
        "Dynamic inputs",
        key="mw_dyn",
        help="calibrate every input on itself at run time (block formats such as MXFP4 need it)",
        bind=Q,
    )
    convention = st.selectbox("Convention", list(CONVENTIONS), key="mw_conv", bind=Q)
    extra = st.text_input(
        "Per-layer overrides",
        key="mw_extra",
        placeholder=PLACEHOLDERS[model],
        help="PATTERN: float or PATTERN: KEY=VALUE,... separated by ';' (see README, 'Model what-if')",
        bind=Q,
    )
    sweep = st.toggle("Sensitivity sweep (one layer at a time)", key="mw_sens", bind=Q)
    keep = st.slider("Most sensitive layers to keep", 1, 5, 3, key="mw_keep", bind=Q, disabled=not sweep)
    keep_as = st.selectbox(
        "Keep them in",
        ["float", "bits=16", "bits=8"],
        key="mw_keep_as",
        help="float, or these settings on top of the ones above (e.g. 8 bits while the rest are at 4)",
        bind=Q,
        disabled=not sweep,
    )


def make_spec(quantized: str) -> str:
    """The configuration spec of the sidebar, quantizing ``quantized`` (``both``, ``weight`` or ``input``)."""
    text = (
        f"bits={bits},scheme={scheme},target={quantized},convention={convention},"
        f"weight.granularity={wgran},weight.method={wmethod},input.granularity={xgran},input.method={xmethod}"
    )
    text += f",format={fmt}" if fmt != "int" else ""
    text += ",input.dynamic=true" if dynamic else ""
    return text + ("; " + extra.strip() if extra.strip() else "")


spec = make_spec(target)
st.caption("Same run from the shell:")
st.code(f'python -m qcore model {model} --config "{spec}"', language="bash", wrap_lines=True)

try:
    with st.spinner("Running the model…"):
        result = model_run(model, spec)
except ModelUnavailableError as exc:
    st.info(str(exc))
    st.stop()
except QuantOptionError as exc:
    st.error(f"This configuration cannot run: {exc}")
    st.stop()

st.caption(result["description"])
cards = METRIC_CARDS[model]
for col, (key, (label, higher)) in zip(st.columns(len(cards)), cards.items(), strict=True):
    value, ref = result["metrics"][key], result["float_metrics"][key]
    delta = None if value is None or ref is None else value - ref
    col.metric(
        label,
        format_metric(key, value),
        None if delta is None else f"{format_delta(key, delta)} vs float ({format_metric(key, ref)})",
        delta_color="normal" if higher else "inverse",
    )

if target == "both":
    st.markdown("**Where the loss comes from** (AIMET's weight-only / activation-only runs, same settings)")
    parts = {"both": result}
    try:
        for quantized in ("weight", "input"):
            parts[quantized] = model_run(model, make_spec(quantized))
    except QuantOptionError as exc:
        st.error(f"The weight-only / input-only runs could not run: {exc}")
    else:
        st.dataframe(
            pd.DataFrame([{"quantized": k, "loss": r["loss"], **r["metrics"]} for k, r in parts.items()]).set_index(
                "quantized"
            ),
        )

st.subheader("Per-layer output error")
st.caption(
    "Each linear layer's output in the quantized model against the float model's on the evaluation split "
    "(AIMET QuantAnalyzer's per-layer MSE, as SQNR): errors add up along the network."
)
st.plotly_chart(layer_error_figure(result["layers"]), key="mw_layers")
with st.expander("Per-layer table"):
    st.dataframe(pd.DataFrame(result["layers"]), hide_index=True)

if not sweep:
    st.info("Turn on the sensitivity sweep in the sidebar to rank the layers and see what leaving them in float gains.")
    st.stop()

st.subheader("Sensitivity")
try:
    sens = model_sensitivity(model, spec, keep, keep_as)
except QuantOptionError as exc:
    st.error(f"The sweep could not run: {exc}")
    st.stop()
st.caption(
    f"Loss = {sens['loss_name']}. Orange: the loss with only that layer quantized (AIMET's one-at-a-time sweep); "
    "blue: how much of the all-quantized loss goes away when that layer alone stays in float."
)
c1, c2 = st.columns([3, 2])
c1.plotly_chart(sensitivity_figure(sens), key="mw_sensitivity")
with c2:
    st.markdown(f"**Keeping the most sensitive layers as {keep_as}**")
    st.plotly_chart(keep_figure(sens), key="mw_keep_fig")
    rows = [{"kept": "(none)", "loss": sens["all_loss"], **sens["all_metrics"]}] + [
        {"kept": ", ".join(s["kept"]), "loss": s["loss"], **s["metrics"]} for s in sens["keep"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
