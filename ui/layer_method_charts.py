"""Figures of the layer methods (What-if layer view and the two outlier lessons).

They take the small record tables of :mod:`qcore.layer_methods.sweeps` or per-channel
vectors (one value per input channel, K <= a few thousand), never raw tensors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import PALETTE

RTN_COLOR, METHOD_COLOR, OUTLIER_COLOR, AFTER_COLOR = "#9D9D9D", "#4C78A8", "#E45756", "#F58518"
METHOD_COLORS = {"rtn": RTN_COLOR, "gptq": PALETTE[0], "awq": PALETTE[4], "smoothquant": PALETTE[1]}


def _layout(fig: go.Figure, x_title: str, y_title: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.08},
        xaxis_title=x_title,
        yaxis_title=y_title,
    )
    return fig


def methods_figure(df: pd.DataFrame) -> go.Figure:
    """One bar per method: output SQNR (dB) of ``Y``, round to nearest in grey, the gain over it as text."""
    ok = df[df["error"] == ""]
    colors = [RTN_COLOR if m == "rtn" else METHOD_COLOR for m in ok["method"]]
    text = [
        "" if m == "rtn" or g is None or g != g else f"{g:+.1f} dB"
        for m, g in zip(ok["method"], ok["gain_db"], strict=True)
    ]
    fig = go.Figure(
        go.Bar(x=ok["label"], y=ok["sqnr_db"], marker_color=colors, text=text, textposition="outside", name="SQNR")
    )
    return _layout(fig, "method", "output SQNR of Y (dB, higher is better)")


def alpha_figure(df: pd.DataFrame) -> go.Figure:
    """SmoothQuant's output SQNR against alpha, with round to nearest as a horizontal line and the best alpha marked."""
    sweep = df[df["method"] == "smoothquant"]
    fig = go.Figure(
        go.Scatter(
            x=sweep["alpha"], y=sweep["sqnr_db"], mode="lines+markers", name="SmoothQuant", line_color=METHOD_COLOR
        )
    )
    base = df[df["method"] == "rtn"]["sqnr_db"]
    if len(base) and base.iloc[0] is not None:
        fig.add_hline(y=float(base.iloc[0]), line_dash="dash", line_color=RTN_COLOR, annotation_text="round to nearest")
    if len(sweep):
        best = sweep.loc[sweep["sqnr_db"].astype(float).idxmax()]
        fig.add_vline(x=float(best["alpha"]), line_dash="dot", line_color=AFTER_COLOR)
    return _layout(fig, "α (migration strength)", "output SQNR of Y (dB)")


def bits_figure(df: pd.DataFrame) -> go.Figure:
    """Weight-only output SQNR per bit width: one line per method (round to nearest grey)."""
    ok = df[df["error"] == ""]
    fig = go.Figure()
    for i, (method, part) in enumerate(ok.groupby("method", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=part["bits"],
                y=part["sqnr_db"],
                mode="lines+markers",
                name=str(method),
                line_color=METHOD_COLORS.get(str(method), PALETTE[(i + 2) % len(PALETTE)]),
            )
        )
    fig.update_xaxes(dtick=1)
    return _layout(fig, "weight bits", "output SQNR of Y (dB)")


def channel_max_figure(
    before: np.ndarray, after: np.ndarray | None, title: str, threshold: float | None = None, log: bool = False
) -> go.Figure:
    """Per-input-channel maxima as bars (before) and, optionally, a line (after); a threshold as a dashed line."""
    k = np.arange(before.size)
    fig = go.Figure(go.Bar(x=k, y=before, name="before", marker_color=METHOD_COLOR, marker_line_width=0))
    if after is not None:
        fig.add_trace(go.Scatter(x=k, y=after, name="after", mode="lines", line={"color": AFTER_COLOR, "width": 1}))
    if threshold is not None:
        fig.add_hline(
            y=threshold, line_dash="dash", line_color=OUTLIER_COLOR, annotation_text=f"threshold {threshold:g}"
        )
    fig.update_layout(title=title, bargap=0)
    if log:
        fig.update_yaxes(type="log")
    return _layout(fig, "input channel j", "max |value|", height=320)


def smoothing_figure(
    x_max: np.ndarray, w_max: np.ndarray, x_after: np.ndarray | None = None, w_after: np.ndarray | None = None
) -> go.Figure:
    """SmoothQuant's own figure: per-channel max|X_j| (top) and max|W_j| (bottom), before and after smoothing."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("activation X", "weight W"))
    k = np.arange(x_max.size)
    for row, before, after in ((1, x_max, x_after), (2, w_max, w_after)):
        fig.add_trace(
            go.Bar(x=k, y=before, name="before", marker_color=METHOD_COLOR, marker_line_width=0, showlegend=row == 1),
            row=row,
            col=1,
        )
        if after is not None:
            fig.add_trace(
                go.Scatter(x=k, y=after, name="after", mode="lines", line_color=AFTER_COLOR, showlegend=row == 1),
                row=row,
                col=1,
            )
    fig.update_layout(height=460, bargap=0, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(title_text="max |value|")
    fig.update_xaxes(title_text="input channel j", row=2, col=1)
    return fig


def codes_figure(column_codes: np.ndarray, outliers: np.ndarray) -> go.Figure:
    """Largest int8 code each input column reaches under one per-tensor step (outlier columns in red)."""
    colors = np.full(column_codes.size, METHOD_COLOR, dtype=object)
    colors[outliers] = OUTLIER_COLOR
    fig = go.Figure(
        go.Bar(x=np.arange(column_codes.size), y=column_codes, marker_color=colors.tolist(), marker_line_width=0)
    )
    fig.add_hline(y=float(np.median(column_codes)), line_dash="dot", annotation_text="median column")
    fig.update_layout(bargap=0, showlegend=False)
    return _layout(fig, "input channel j", "largest code |q| reached (of 127)", height=320)
