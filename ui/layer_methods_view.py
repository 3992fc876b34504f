"""What-if, layer methods: LLM.int8(), SmoothQuant, AWQ, GPTQ, Hadamard rotation against round to nearest.

:func:`methods_view` is one view of the What-if page (the same real layer as the Layer view: the
pair and uploads share their widgets). The W and X schemes chosen here are passed through unchanged
to :mod:`qcore.layer_methods`, so every method composes with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from qcore import CALIBRATORS, QuantScheme
from qcore.formats import FORMATS
from qcore.layer_methods import METHODS, Side, prepare_layer, sides_for
from qcore.layer_methods.llm_int8 import outlier_columns
from qcore.layer_methods.smoothquant import smoothquant
from qcore.layer_methods.sweeps import alpha_records, bits_records, method_records

from . import layer_method_charts as charts
from .layer_inputs import Layer, layer_input
from .sidebar import Context
from .sweep_charts import csv_bytes
from .sweep_runner import run_sweep
from .url import url_choice

Q = "query-params"
CHOICES = tuple(m for m in METHODS if m != "rtn")
SIDES = {"both": "W and X", "weights": "W only", "activations": "X only"}
WEIGHT_ONLY = ("gptq", "awq")


def _options() -> dict[str, dict[str, Any]]:
    """Each method's options from the widgets (bounds as declared in the registry)."""
    c1, c2, c3, c4 = st.columns(4)
    threshold = c1.number_input(
        "LLM.int8() threshold",
        0.0,
        1e6,
        6.0,
        0.5,
        key="wi_lm_thr",
        bind=Q,
        help="|x| ≥ threshold marks an outlier column",
    )
    alpha = c2.slider("SmoothQuant α", 0.0, 1.0, 0.5, 0.05, key="wi_lm_alpha", bind=Q, help="migration strength")
    act_order = c3.toggle("GPTQ act-order", value=False, key="wi_lm_actorder", bind=Q)
    clip = c3.toggle("AWQ clip search", value=False, key="wi_lm_clip", bind=Q)
    seed = c4.number_input("Rotation seed", 0, 2**31 - 1, 0, key="wi_lm_seed", bind=Q)
    return {
        "llm_int8": {"threshold": float(threshold)},
        "smoothquant": {"alpha": float(alpha)},
        "gptq": {"act_order": bool(act_order)},
        "awq": {"clip": bool(clip)},
        "hadamard": {"seed": int(seed)},
    }


def _table(df: pd.DataFrame, name: str) -> None:
    failed = df[df["error"] != ""]
    if len(failed):
        st.warning("; ".join(f"{r.label}: {r.error}" for r in failed.itertuples()))
    st.dataframe(df, hide_index=True)
    st.download_button(
        "Download the table (CSV)", csv_bytes(df), file_name=f"{name}.csv", mime="text/csv", key=f"dl_{name}"
    )


def _format_scheme(scheme: QuantScheme, name: str) -> QuantScheme:
    """``scheme`` in format ``name``: the format's element width, and its own blocks along K for a block format."""
    fmt = FORMATS[name]
    if name == "int":
        return scheme
    changes: dict[str, Any] = {"format": name, "bits": fmt.bits or scheme.bits}
    if fmt.block_sizes:
        changes.update(granularity="tensor", axis=0)
        st.caption(f"{fmt.label}: its own blocks of {fmt.block} along K set the scales.")
    return scheme.with_(**changes)


def _scheme_inputs() -> tuple[QuantScheme, QuantScheme]:
    """Format, bits, symmetry and ranges of W and X for the methods (W per output row or groups along K)."""
    cw, cx = st.columns(2)
    with cw:
        st.markdown("**Weights W** (out × K)")
        w_fmt = st.selectbox("W format", list(FORMATS), key="wi_lm_wfmt", bind=Q, help="number format of W")
        w_bits = st.slider("W bits", 2, 16, 8, key="wi_lm_wbits", bind=Q, disabled=FORMATS[w_fmt].bits is not None)
        w_sym = st.toggle("W symmetric", value=True, key="wi_lm_wsym", bind=Q)
        c1, c2 = st.columns(2)
        w_gran = c1.selectbox(
            "W ranges",
            ("channel", "group", "tensor"),
            key="wi_lm_wgran",
            bind=Q,
            help="channel = one range per output row; group = groups of consecutive inputs along K (GPTQ/AWQ).",
        )
        group = c2.number_input("W group size", 1, 1 << 16, 128, key="wi_lm_wgroup", bind=Q, disabled=w_gran != "group")
        w_scheme = QuantScheme(
            bits=w_bits, symmetric=w_sym, granularity=w_gran, axis=1 if w_gran == "group" else 0, group_size=int(group)
        )
        w_scheme = _format_scheme(w_scheme, w_fmt)
    with cx:
        st.markdown("**Activations X** (tokens × K)")
        x_fmt = st.selectbox("X format", list(FORMATS), key="wi_lm_xfmt", bind=Q, help="number format of X")
        x_bits = st.slider("X bits", 2, 16, 8, key="wi_lm_xbits", bind=Q, disabled=FORMATS[x_fmt].bits is not None)
        x_sym = st.toggle("X symmetric", value=True, key="wi_lm_xsym", bind=Q)
        x_gran = st.radio(
            "X ranges",
            ("tensor", "token"),
            key="wi_lm_xgran",
            bind=Q,
            horizontal=True,
            help="token = one range per row of X (LLM.int8()'s vector-wise quantization); tensor = one static range.",
        )
        x_scheme = QuantScheme(bits=x_bits, symmetric=x_sym, granularity="channel" if x_gran == "token" else "tensor")
        x_scheme = _format_scheme(x_scheme, x_fmt)
    return w_scheme, x_scheme


def methods_view(ctx: Context) -> None:
    """Method selector and options; Y error of RTN vs each method; the α sweep; GPTQ/AWQ at 2, 3, 4 bits."""
    st.markdown(
        "**What do the outlier methods buy on a real layer?** Each method changes W and X before (or while) "
        "quantizing them with the schemes below and is measured on Y = X Wᵀ against round to nearest (RTN) with "
        "the same schemes. LLM.int8() keeps outlier columns in 16 bit; SmoothQuant moves activation range into "
        "the weights; Hadamard rotation spreads outliers over all channels; AWQ and GPTQ are weight-only. The "
        "sidebar tensor is not used here."
    )
    layer = layer_input()
    if layer is None:
        return
    st.caption(f"{layer.label} · W {'×'.join(map(str, layer.w.shape))}, X {'×'.join(map(str, layer.x.shape))}")
    w_scheme, x_scheme = _scheme_inputs()
    _methods(layer, w_scheme, x_scheme)


def _methods(layer: Layer, w_scheme: QuantScheme, x_scheme: QuantScheme) -> None:
    """The method part of the view on a layer and two schemes."""
    c1, c2, c3 = st.columns([4, 2, 2])
    methods = c1.multiselect(
        "Methods",
        list(CHOICES),
        default=list(CHOICES),
        key="wi_lm_methods",
        bind=Q,
        help="; ".join(f"{m}: {METHODS[m].label} ({METHODS[m].reference})" for m in CHOICES),
    )
    with c2:
        side = url_choice(st.radio, "Quantize", SIDES, "wi_lm_sides")
    calibrator = c3.selectbox(
        "Calibrator",
        list(CALIBRATORS),
        index=list(CALIBRATORS).index("minmax"),
        key="wi_lm_cal",
        bind=Q,
        help="Calibration method of W and X (the methods take it as it is).",
    )
    with st.expander("Method options", expanded=False):
        options = _options()
    w_side, x_side = sides_for(side, Side(w_scheme, calibrator), Side(x_scheme, calibrator))
    if side == "activations":
        dropped = [METHODS[m].label for m in methods if m in WEIGHT_ONLY]
        methods = [m for m in methods if m not in WEIGHT_ONLY]
        if dropped:
            st.info(f"{', '.join(dropped)} quantize the weights: choose W only or W and X to include them.")
    chosen = {m: options.get(m, {}) for m in methods}
    base_key = (layer.key, repr(w_side), repr(x_side))
    records = run_sweep(
        ("lm", *base_key, tuple(sorted((m, tuple(sorted(o.items()))) for m, o in chosen.items()))),
        lambda progress: method_records(layer.w, layer.x, methods, w_side, x_side, chosen, progress),
    )
    if records is not None:
        df = pd.DataFrame(records)
        st.plotly_chart(charts.methods_figure(df), key="wi_lm_fig")
        st.caption(
            "Output SQNR of Y = X Wᵀ (float64 products) per method; the grey bar is round to nearest with the same "
            "schemes, the labels the gain over it. The table lists what each method chose."
        )
        _table(df, "layer_methods")
        _channel_figures(layer, methods, chosen)
    if "smoothquant" in methods and x_side is not None:
        st.markdown("**SmoothQuant α sweep.** α = 0 leaves X as it is; α = 1 moves all of its range into W.")
        sweep = run_sweep(
            ("lm_alpha", *base_key), lambda progress: alpha_records(layer.w, layer.x, w_side, x_side, progress)
        )
        if sweep is not None:
            st.plotly_chart(charts.alpha_figure(pd.DataFrame(sweep)), key="wi_lm_alpha_fig")
    weight_only = [m for m in methods if m in WEIGHT_ONLY]
    if weight_only and w_side is not None and FORMATS[w_side.scheme.format].bits is not None:
        st.caption(f"The 2/3/4-bit comparison needs a format of any width (W is {w_side.scheme.format}).")
    elif weight_only and w_side is not None:
        st.markdown(f"**{' and '.join(METHODS[m].label for m in weight_only)} at 2, 3 and 4 bits** (X in float).")
        by_bits = run_sweep(
            (
                "lm_bits",
                layer.key,
                repr(w_side),
                tuple(weight_only),
                tuple(sorted(str(chosen[m]) for m in weight_only)),
            ),
            lambda progress: bits_records(
                layer.w, layer.x, w_side, weight_only, (2, 3, 4), {m: chosen[m] for m in weight_only}, progress
            ),
        )
        if by_bits is not None:
            st.plotly_chart(charts.bits_figure(pd.DataFrame(by_bits)), key="wi_lm_bits_fig")
            st.caption("Weight-only quantization with the W scheme above at each bit width; RTN in grey.")


def _channel_figures(layer: Layer, methods: list[str], chosen: dict[str, dict[str, Any]]) -> None:
    """LLM.int8()'s outlier columns and SmoothQuant's per-channel maxima before/after (float, no quantization)."""
    w, x = prepare_layer(layer.w, layer.x)  # already checked by the method run above
    if "llm_int8" in methods:
        with st.expander("LLM.int8(): which input columns are outliers"):
            threshold = chosen["llm_int8"]["threshold"]
            cols = outlier_columns(x, threshold)
            col_max = np.max(np.abs(x), axis=0)
            st.plotly_chart(
                charts.channel_max_figure(col_max, None, "max |X_j| per input column", threshold), key="wi_lm_cols"
            )
            st.caption(
                f"{cols.size} of {col_max.size} columns reach |x| ≥ {threshold:g}"
                + (f": {', '.join(map(str, cols[:20]))}{' …' if cols.size > 20 else ''}." if cols.size else ".")
            )
    if "smoothquant" in methods:
        with st.expander("SmoothQuant: per-channel maxima of X and W before and after smoothing"):
            alpha = chosen["smoothquant"]["alpha"]
            a = smoothquant(w, x, None, None, alpha).arrays
            st.plotly_chart(
                charts.smoothing_figure(a["x_max_before"], a["w_max_before"], a["x_max_after"], a["w_max_after"]),
                key="wi_lm_smooth",
            )
            st.caption(f"α = {alpha:g}: X ← X diag(s)⁻¹, W ← W diag(s); the product X Wᵀ is unchanged.")
