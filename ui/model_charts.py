"""Figures and the cached core calls of the Model what-if page (results as plain dicts, one point per layer).

The core calls are cached by (model, spec) with ``st.cache_data``; the sensitivity sweep draws its own progress bar
inside the cached call (so a cached sweep replays the finished bar and returns at once).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from qcore.model_cli import result_dict
from qcore.models import parse_config, session

from .figures import PALETTE, wrap

#: Model metrics shown as cards: key -> (label, higher is better).
METRIC_CARDS: dict[str, dict[str, tuple[str, bool]]] = {
    "minilm": {
        "cosine_mean": ("mean cosine to float", True),
        "cosine_min": ("worst sentence cosine", True),
        "spearman": ("Spearman of similarities", True),
        "neighbour_change": ("nearest neighbour changed", False),
    },
    "digits": {
        "accuracy": ("held-out accuracy", True),
        "top1_agreement": ("same top-1 as float", True),
        "kl_mean": ("mean KL (nats)", False),
        "kl_max": ("max KL (nats)", False),
    },
}


@st.cache_data(show_spinner=False, max_entries=32)
def model_run(model: str, spec: str) -> dict[str, Any]:
    """:func:`qcore.model_cli.result_dict` of one configuration (the CLI's JSON object)."""
    s = session(model)
    return result_dict(s.run(parse_config(spec)), s.model.description, None) | {"loss_name": s.model.loss_name}


@st.cache_data(show_spinner=False, max_entries=16)
def model_sensitivity(model: str, spec: str, keep: int, keep_as: str = "float") -> dict[str, Any]:
    """The one-at-a-time / all-but-one sweep and the keep-in-float steps (the CLI's ``sensitivity`` object), under
    a progress bar."""
    bar = st.progress(0.0, text="Sensitivity sweep…")

    def progress(done: int, total: int, what: str) -> None:
        bar.progress(done / total, text=f"Sensitivity sweep: {what} ({done}/{total})")

    s = session(model)
    config = parse_config(spec)
    sens = s.sensitivity(config, keep=keep, progress=progress, keep_as=keep_as)
    bar.progress(1.0, text=f"Sensitivity sweep done: {len(sens.layers)} layers, {1 + 2 * len(sens.layers)} runs")
    return result_dict(s.run(config, per_layer=False), s.model.description, sens)["sensitivity"]


def _short(layer: str) -> str:
    """``encoder.layer.3.intermediate.dense`` -> ``3.intermediate.dense``."""
    return layer.removeprefix("encoder.layer.")


def layer_error_figure(layers: list[dict[str, Any]]) -> go.Figure:
    """Output SQNR of every linear layer against the float model (exact layers drawn at the top as 'exact')."""
    names = [_short(e["layer"]) for e in layers]
    finite = [e["sqnr_db"] for e in layers if e["sqnr_db"] is not None]
    top = (max(finite) if finite else 0.0) + 10.0
    y = [top if e["sqnr_db"] is None else e["sqnr_db"] for e in layers]
    colors = [PALETTE[2] if e["sqnr_db"] is None else PALETTE[0] for e in layers]
    text = ["exact" if e["sqnr_db"] is None else "" for e in layers]
    fig = go.Figure(go.Bar(x=names, y=y, marker_color=colors, text=text, textposition="inside"))
    fig.update_layout(
        xaxis_title="linear layer (execution order)",
        yaxis_title="output SQNR vs float<br>(dB, higher is better)",  # two lines: the rotated layer names
        height=420,  # take ~130 px below the plot, one line would not fit beside it
        margin={"t": 30, "b": 10},
    )
    return fig


def sensitivity_figure(sens: dict[str, Any], top: int = 15) -> go.Figure:
    """The ``top`` most sensitive layers: loss with only that layer quantized, and what all-but-it saves."""
    by_name = {row["layer"]: row for row in sens["layers"]}
    ranked = sens["ranking"][:top][::-1]
    only = [by_name[n]["only"] or 0.0 for n in ranked]
    saved = [max(sens["all_loss"] - (by_name[n]["all_but"] or 0.0), 0.0) for n in ranked]
    names = [_short(n) for n in ranked]
    fig = go.Figure(
        [
            go.Bar(y=names, x=only, orientation="h", name="only this layer quantized", marker_color=PALETTE[1]),
            go.Bar(y=names, x=saved, orientation="h", name="saved by leaving it in float", marker_color=PALETTE[0]),
        ]
    )
    fig.update_layout(
        barmode="group",
        xaxis_title=f"loss: {sens['loss_name']}",
        height=max(260, 28 * len(names) + 80),
        margin={"t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02},  # above the plot, clear of the top bars
    )
    return fig


def keep_figure(sens: dict[str, Any]) -> go.Figure:
    """Loss with the ``k`` most sensitive layers kept in higher precision, ``k = 0, 1, ...``."""
    ks = [0, *[len(s["kept"]) for s in sens["keep"]]]
    losses = [sens["all_loss"], *[s["loss"] for s in sens["keep"]]]
    labels = ["none", *[_short(s["kept"][-1]) for s in sens["keep"]]]
    fig = go.Figure(go.Bar(x=[f"{k}: +{n}" if k else "0" for k, n in zip(ks, labels, strict=True)], y=losses))
    fig.update_traces(marker_color=PALETTE[0])
    fig.update_layout(
        # wrapped: the chart is two fifths of the page wide, one-line titles were cut off
        xaxis_title=wrap(f"layers kept as {sens['keep_as']} (the one added at each step)", 40),
        yaxis_title=wrap(sens["loss_name"], 30),
        height=320,
        margin={"t": 30, "b": 10},
    )
    if losses and max(losses) > 0 and min(v for v in losses if v is not None) > 0:
        fig.update_yaxes(type="log")
    return fig


SHARES: frozenset[str] = frozenset({"neighbour_change", "accuracy", "top1_agreement"})
"""Metrics that are shares, shown as percentages (their differences in percentage points)."""


def format_metric(key: str, value: float | None) -> str:
    """A metric value for a card (shares as percentages)."""
    if value is None or not np.isfinite(value):
        return "-"
    if key in SHARES:
        return f"{100 * value:.1f} %"
    return f"{value:.5f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def format_delta(key: str, delta: float) -> str:
    """A card's difference to float, signed: percentage points for shares (the card shows a percentage)."""
    return f"{100 * delta:+.2f} pp" if key in SHARES else f"{delta:+.2e}"
