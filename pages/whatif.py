"""What-if: sweep one setting at a time on the current tensor and see what it costs.

The page gathers options (bound to the URL), calls :mod:`qcore.sweeps` with a
progress bar, and draws the result; every table can be downloaded as CSV. Each
question is one function in :data:`VIEWS`: adding a question is adding a function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from qcore import CALIBRATORS, CONVENTIONS, CalibrationData, QuantOptionError, QuantScheme
from qcore.sweeps import (
    DEFAULT_GRANULARITIES,
    bits_sweep,
    convention_table,
    granularity_sweep,
    layer_sweep,
    zero_point_costs,
)
from ui import compute, router, state
from ui.clip_notes import clip_dominated, clip_note
from ui.format_sweep import formats_sweep_view
from ui.layer_inputs import layer_input
from ui.layer_methods_view import methods_view
from ui.sidebar import Context
from ui.sweep_charts import (
    METRIC_LABELS,
    bits_figure,
    convention_differences,
    convention_figure,
    csv_bytes,
    granularity_figure,
    layer_figure,
    records_frame,
    symmetry_figure,
)
from ui.sweep_runner import run_sweep
from ui.url import url_choice

Q = "query-params"
DEFAULT_METHODS: tuple[str, ...] = tuple(
    m for m in ("minmax", "percentile", "entropy", "mse", "aciq") if m in CALIBRATORS
)
GRAN_LABELS: tuple[str, ...] = tuple(g.label for g in DEFAULT_GRANULARITIES)


def _shared_data(ctx: Context) -> CalibrationData:
    """The sidebar tensor's rows and histograms for the sidebar granularity, shared with the other pages."""
    return compute.calibration_data(ctx.tensor.digest, ctx.tensor.array, compute.rows_key(ctx.settings.scheme))


def _metric() -> str:
    """The error measure the charts of a view draw (only views whose chart depends on it show this)."""
    return st.selectbox("Error measure", list(METRIC_LABELS), format_func=METRIC_LABELS.get, key="wi_metric", bind=Q)


def _options_of(method: str) -> dict:
    return dict(state.read_options(method))


def _bits_records(ctx: Context, key: tuple, methods: list[str], bits, symmetric: tuple[bool, ...]) -> list[dict] | None:
    """``bits_sweep`` of the sidebar tensor (shared histograms) under a progress bar, cached by ``key``."""
    settings = ctx.settings
    return run_sweep(
        key,
        lambda progress: bits_sweep(
            _shared_data(ctx),
            settings.scheme,
            methods,
            bits,
            symmetric,
            settings.convention,
            {m: _options_of(m) for m in methods},
            progress,
        ),
    )


def _show(
    records: list[dict],
    figure: Callable[[pd.DataFrame], object],
    key: str,
    caption: str,
    name: str,
    notes: Callable[[pd.DataFrame], None] | None = None,
) -> None:
    """One sweep's result: its failed points, the figure built from the table, caption, notes, table and CSV."""
    df = records_frame(records)
    _errors(df)
    st.plotly_chart(figure(df), key=key)
    st.caption(caption)
    if notes is not None:
        notes(df)
    st.dataframe(df, hide_index=True)
    _download(df, name)


def _download(df: pd.DataFrame, name: str) -> None:
    st.download_button(
        "Download the table (CSV)", csv_bytes(df), file_name=f"{name}.csv", mime="text/csv", key=f"dl_{name}"
    )


def _errors(df: pd.DataFrame) -> None:
    if "error" in df and (df["error"] != "").any():
        failed = df[df["error"] != ""]
        st.warning(
            "Some points could not be computed: "
            + "; ".join(sorted(set(failed["error"])))
            + ". They are left out of the chart."
        )


def bits_view(ctx: Context) -> None:
    """SQNR (or another measure) against the bit width, one line per method."""
    st.markdown(
        "**How many bits do I need?** Each method picks its clip range at every bit width from 2 to 16. "
        "For a uniform grid every extra bit halves the step, so SQNR grows by about 6 dB per bit "
        "once clipping no longer dominates."
    )
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    methods = c1.multiselect("Methods", list(CALIBRATORS), default=list(DEFAULT_METHODS), key="wi_methods", bind=Q)
    lo_bits, hi_bits = c2.slider("Bit range", 2, 16, (2, 16), key="wi_bits", bind=Q)
    both = c3.toggle(
        "Both schemes",  # "Symmetric and asymmetric" was cut to "Symmetric and …" at 1280 px
        value=False,
        key="wi_both",
        bind=Q,
        help="Draw symmetric and asymmetric (dashed) instead of the sidebar's scheme only.",
    )
    with c4:
        metric = _metric()
    symmetric = (True, False) if both else (ctx.settings.scheme.symmetric,)
    key = ("bits", ctx.tensor.digest, ctx.settings.key, tuple(methods), lo_bits, hi_bits, symmetric)
    records = _bits_records(ctx, key, methods, range(lo_bits, hi_bits + 1), symmetric)
    if records is not None:
        _show(
            records,
            lambda df: bits_figure(df, metric),
            "wi_bits_fig",
            "One line per method. Where lines bend away from the 6 dB/bit slope, clipping error (values cut off "
            "outside the range) or a poor range choice dominates the rounding error.",
            "bits_sweep",
            lambda df: _clip_notes(ctx, df),
        )


def _clip_notes(ctx: Context, df: pd.DataFrame) -> None:
    """Say which methods' SQNR stops improving with bits because their clipping error dominates, and why."""
    found = clip_dominated(df)
    if not found.empty:
        absmax = float(_shared_data(ctx).rows.absmax.max())
        notes = [
            clip_note(r, CALIBRATORS[r["method"]].label, absmax, ctx.settings.scheme, _options_of("aciq"))
            for _, r in found.iterrows()
        ]
        st.info("  \n".join(notes))


def granularity_view(ctx: Context) -> None:
    """Error against bits per weight (scales and zero points included), one line per granularity."""
    settings = ctx.settings
    st.markdown(
        "**Is a finer granularity worth its storage?** Per-channel and per-group ranges follow the data more "
        "closely, but every range stores a scale (and a zero point when asymmetric). The x axis counts those "
        "bits per weight: `b + ranges × (scale bits + zero-point bits) / elements`."
    )
    c1, c2, c3, c4 = st.columns([2, 2, 3, 2])
    method = c1.selectbox(
        "Method",
        list(CALIBRATORS),
        index=list(CALIBRATORS).index("minmax"),
        key="wi_gmethod",
        bind=Q,
        help="Search methods (entropy, mse, …) run once per range: with thousands of small groups they take "
        "much longer than MinMax; the progress bar shows how far they are.",
    )
    bits = c2.multiselect("Bits", list(range(2, 17)), default=[2, 3, 4, 8], key="wi_gbits", bind=Q)
    grans = c3.multiselect("Granularities", list(GRAN_LABELS), default=list(GRAN_LABELS), key="wi_grans", bind=Q)
    scale_bits = c4.selectbox(
        "Scale stored as",
        (16, 32, 8),
        key="wi_scale_bits",
        bind=Q,
        format_func={16: "fp16 (16 bits)", 32: "fp32 (32 bits)", 8: "8-bit (e.g. E8M0)"}.get,
    )
    metric = _metric()
    channel_axis = state.channel_axis(settings.scheme, ctx.tensor.array.ndim)
    meaning = state.axis_meaning(st.session_state.get(state.ROLE, "weight"), ctx.tensor.array.ndim, channel_axis)
    st.caption(
        f"Channels run along axis {channel_axis} ({meaning}); groups run along the last axis, the input "
        "dimension of a weight W[out, in]."
    )
    specs = tuple(g for g in DEFAULT_GRANULARITIES if g.label in grans)
    scheme = settings.scheme.with_(axis=channel_axis)
    key = ("gran", ctx.tensor.digest, settings.key, channel_axis, method, tuple(bits), tuple(grans), scale_bits)
    try:
        records = run_sweep(
            key,
            lambda progress: granularity_sweep(
                ctx.tensor.array,
                scheme,
                method,
                bits,
                specs,
                -1,
                int(scale_bits),
                settings.convention,
                _options_of(method),
                progress,
            ),
        )
    except QuantOptionError as exc:
        st.error(str(exc))
        records = None
    if records is not None:
        _show(
            records,
            lambda df: granularity_figure(df, metric),
            "wi_gran_fig",
            "Each line is one granularity; its points are the chosen bit widths. Up and to the left is better: "
            "less error for fewer bits. A point to the right of its bit width pays for its scales.",
            "granularity_sweep",
        )


def symmetry_view(ctx: Context) -> None:
    """Symmetric and asymmetric side by side per method at the sidebar's bit width."""
    s = ctx.settings.scheme
    st.markdown(
        f"**Does a zero point help?** Symmetric quantization centres the grid on 0 (zero point 0); asymmetric "
        f"shifts it to cover [min, max]. For data skewed to one side (e.g. after ReLU) symmetric wastes half "
        f"the codes. The chart below compares both schemes per method at {s.bits} bits, {s.granularity} "
        "granularity (the sidebar's)."
    )
    c1, c2 = st.columns([3, 1])
    methods = c1.multiselect("Methods", list(CALIBRATORS), default=list(DEFAULT_METHODS), key="wi_smethods", bind=Q)
    with c2:
        metric = _metric()
    key = ("sym", ctx.tensor.digest, ctx.settings.key, tuple(methods))
    records = _bits_records(ctx, key, methods, (s.bits,), (True, False))
    if records is not None:
        _show(
            records,
            lambda df: symmetry_figure(df, metric),
            "wi_sym_fig",
            "Bars side by side per method. The asymmetric grid pays a zero point per range and an extra "
            "run-time term in matrix products (see Learn → weights vs activations).",
            "symmetry",
        )


def conventions_view(ctx: Context) -> None:
    """The same range under each toolchain's rules: what differs (grid, scale, zero point, rounding, error)."""
    settings = ctx.settings
    st.markdown(
        '**Why is "the same INT8" not the same everywhere?** '
        f"The same range from **{CALIBRATORS[settings.method].label}** "
        f"turned into scale and zero point by each toolchain's rules, at {settings.scheme.bits} bits: the grid "
        "(narrow or full range), the scale formula (T/127, T/127.5, …), rounding and float32 arithmetic differ."
    )
    c1, c2 = st.columns([4, 1])
    chosen = c1.multiselect("Presets", list(CONVENTIONS), default=list(CONVENTIONS), key="wi_convs", bind=Q)
    conv_scheme = c2.radio(
        "Scheme",
        ("symmetric", "asymmetric"),
        key="wi_csym",
        bind=Q,
        help="Compared here independently of the sidebar: TensorRT and ncnn/MNN have no zero point, so they "
        "only take part in the symmetric comparison.",
    )
    scheme = settings.scheme.with_(symmetric=conv_scheme == "symmetric")
    key = ("conv", ctx.tensor.digest, settings.key, tuple(chosen), conv_scheme)
    try:
        records = run_sweep(
            key,
            lambda progress: convention_table(
                _shared_data(ctx), scheme, settings.method, chosen, dict(settings.options), progress
            ),
        )
    except QuantOptionError as exc:
        st.error(str(exc))
        return
    if records is None:
        return
    df = records_frame(records)
    _errors(df)
    differs, table = convention_differences(df)
    st.markdown(differs)
    st.dataframe(table, hide_index=True, key="wi_conv_diff")
    st.plotly_chart(convention_figure(df), key="wi_conv_fig")
    st.caption(
        "Each bar spans the real values the preset can represent, (q_min − z)·s to (q_max − z)·s; the label "
        "gives its scale s, zero point z (means over ranges when per-channel/group), integer grid and SQNR."
    )
    _download(df, "conventions")
    with st.expander("What each preset does"):
        for name in chosen:
            st.markdown(f"**{CONVENTIONS[name].label}**: {CONVENTIONS[name].description}")


def _weight_scheme_inputs() -> QuantScheme:
    """The layer view's weight quantization: bits, symmetry, granularity (channels = rows, groups along K)."""
    st.markdown("**Weights W** (out × K)")
    bits = st.slider("W bits", 2, 16, 8, key="wi_wbits", bind=Q)
    sym = st.toggle("W symmetric", value=True, key="wi_wsym", bind=Q)
    c1, c2 = st.columns(2)
    gran = c1.selectbox(
        "W granularity",
        ("channel", "group", "tensor"),
        key="wi_wgran",
        bind=Q,
        help="channel = one range per output channel (row of W, axis 0); group = one range per group of "
        "consecutive inputs along K (the last axis), as in GPTQ/AWQ-style weight-only formats.",
    )
    group = c2.number_input(
        "W group size", 1, 1 << 16, 128, key="wi_wgroup", bind=Q, disabled=gran != "group", help="Inputs per group."
    )
    axis = 1 if gran == "group" else 0
    return QuantScheme(bits=bits, symmetric=sym, granularity=gran, axis=axis, group_size=int(group))


def layer_view(ctx: Context) -> None:
    """Output error of a real layer Y = X Wᵀ with W only, X only or both quantized."""
    st.markdown(
        "**What does quantization do to a layer's output?** A linear layer computes Y = X Wᵀ. Quantize the "
        "weights W only, the activations X only, or both, and measure the error of Y (not of the tensors). "
        "This view uses its own settings for W and X; the sidebar tensor is not used here."
    )
    layer = layer_input()
    if layer is None:
        return
    st.caption(f"{layer.label} · W {'×'.join(map(str, layer.w.shape))}, X {'×'.join(map(str, layer.x.shape))}")
    cw, cx = st.columns(2)
    with cw:
        w_scheme = _weight_scheme_inputs()
    with cx:
        st.markdown("**Activations X** (tokens × K)")
        x_bits = st.slider("X bits", 2, 16, 8, key="wi_xbits", bind=Q)
        x_sym = st.toggle("X symmetric", value=False, key="wi_xsym", bind=Q)
        st.caption("X uses one range for the whole tensor (static per-tensor activations).")
    c1, c2 = st.columns([3, 1])
    methods = c1.multiselect(
        "Methods (used for both W and X)", list(CALIBRATORS), default=["minmax", "entropy"], key="wi_lmethods", bind=Q
    )
    with c2:
        metric = _metric()
    x_scheme = QuantScheme(bits=x_bits, symmetric=x_sym)
    key = ("layer", layer.key, repr(w_scheme), repr(x_scheme), tuple(methods))
    try:
        records = run_sweep(
            key,
            lambda progress: layer_sweep(
                layer.w,
                layer.x,
                w_scheme,
                x_scheme,
                methods,
                method_options={m: _options_of(m) for m in methods},
                progress=progress,
            ),
        )
    except QuantOptionError as exc:
        st.error(str(exc))
        records = None
    if records is not None:
        _show(
            records,
            lambda df: layer_figure(df, metric),
            "wi_layer_fig",
            "Bars per method: W only, X only, both. Quantizing both is usually close to the worse of the two; "
            "an activation method that clips real outliers can ruin Y even when the tensor error looks small.",
            "layer",
        )
    st.markdown(
        '**What zero points cost** (from the article "AI模型的量化"). With codes Wq, Xq and zero points z_W, z_x, '
        "each output is s_W s_x [Σ Wq·Xq − z_W Σ Xq − z_x Σ Wq + K z_W z_x]. The z_W term needs the input, so it "
        "runs at inference; the z_x terms are constants folded into the bias."
    )
    costs = records_frame(zero_point_costs(int(layer.w.shape[1]), int(layer.w.shape[0])))
    st.dataframe(costs, hide_index=True)
    st.caption(
        f"Multiply-adds per output element with K = {layer.w.shape[1]} and {layer.w.shape[0]} outputs. "
        "Symmetric weights keep the inner loop a plain integer GEMM, which is why weights are symmetric and "
        "activations may be asymmetric (Learn → lesson 5)."
    )


@dataclass(frozen=True)
class View:
    """One question of the page: its label and the function that draws it."""

    label: str
    draw: Callable[[Context], None]
    uses_sidebar: bool = True


VIEWS: dict[str, View] = {
    "bits": View("Bits", bits_view),
    "granularity": View("Granularity", granularity_view),
    "symmetry": View("Symmetric vs asymmetric", symmetry_view),
    "conventions": View("Conventions", conventions_view),
    "layer": View("Layer", layer_view, uses_sidebar=False),
    "methods": View("Layer methods", methods_view, uses_sidebar=False),
    "formats": View("Formats", formats_sweep_view),
}

ctx = router.page(
    "What-if",
    "Change one thing at a time on the tensor chosen in the sidebar and watch the error. "
    "The sidebar's other settings (signedness, rounding, convention, method options) stay as they are.",
)
view = url_choice(st.radio, "Question", {k: v.label for k, v in VIEWS.items()}, "wi_view", horizontal=True)
VIEWS[view].draw(ctx)
if VIEWS[view].uses_sidebar:
    st.divider()
    st.caption(f"Tensor: {ctx.tensor.label} · shape {'×'.join(map(str, ctx.tensor.array.shape))}.")
