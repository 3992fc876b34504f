"""Figures and tables of the Learn page, built from :mod:`qcore.lessons` results.

Lessons work on short vectors (a few dozen values) or on pre-binned histograms,
so every figure here is small.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qcore.lessons import ADMMReplay, CrossTerms, KLSearch, Trace

ORIGINAL, DEQUANT, CLIP, ROUND, GRID = "#4C78A8", "#F58518", "#E45756", "#72B7B2", "#9D9D9D"
MAX_GRID_TICKS = 300

TRACE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("x", "x"),
    ("scaled", "x/s"),
    ("rounded", "round"),
    ("codes", "q"),
    ("x_hat", "x̂"),
    ("error", "x̂ − x"),
)
"""(attribute, short header): the lesson's formulas above each table say what each column is, and short headers
keep two tables side by side readable on a 1280-pixel projector."""


def trace_table(tr: Trace, columns: int | None = None) -> pd.DataFrame:
    """The per-element numbers of a trace, the first ``columns`` steps only (all by default)."""
    keep = TRACE_COLUMNS if columns is None else TRACE_COLUMNS[: max(1, columns)]
    data = {label: np.asarray(getattr(tr, attr)) for attr, label in keep}
    if columns is None or columns >= len(TRACE_COLUMNS):
        data["kind"] = np.where(tr.clipped, "clip", "round")
    return pd.DataFrame(data)


def number_line(tr: Trace, show_grid: bool = True, show_result: bool = True) -> go.Figure:
    """Values on top, the integer grid in the middle, the round trip below; clipped values in red.

    Each value is joined to its dequantized value: a short segment is rounding
    error (``|e| <= s/2``), a long red one clipping error.
    """
    fig = go.Figure()
    x = tr.x.astype(np.float64)
    lo, hi = float(tr.params.clip_min[0]), float(tr.params.clip_max[0])
    grid = tr.grid()
    span_lo = min(float(x.min()), float(grid[0]), lo)
    span_hi = max(float(x.max()), float(grid[-1]), hi)
    pad = 0.05 * (span_hi - span_lo or 1.0)
    fig.add_vrect(x0=span_lo - pad, x1=lo, fillcolor=CLIP, opacity=0.08, line_width=0)
    fig.add_vrect(x0=hi, x1=span_hi + pad, fillcolor=CLIP, opacity=0.08, line_width=0)
    if show_grid and grid.size <= MAX_GRID_TICKS:
        fig.add_trace(
            go.Scatter(
                x=grid,
                y=np.zeros_like(grid),
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 18, "color": GRID},
                name=f"grid: {grid.size} values (q − z)·s",
                hovertemplate="%{x:.5g}<extra>grid</extra>",
            )
        )
    colors = np.where(tr.clipped, CLIP, ORIGINAL)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=np.ones_like(x),
            mode="markers",
            marker={"size": 11, "color": colors},
            name="x (red: clipped)",
            customdata=np.stack([tr.codes, tr.x_hat, tr.error], axis=1),
            hovertemplate="x=%{x:.5g}<br>q=%{customdata[0]}<br>x̂=%{customdata[1]:.5g}<br>"
            "error=%{customdata[2]:.3g}<extra></extra>",
        )
    )
    if show_result:
        xs = np.full(3 * x.size, np.nan)
        ys = np.full(3 * x.size, np.nan)
        xs[0::3], xs[1::3] = x, tr.x_hat
        ys[0::3], ys[1::3] = 1.0, -1.0
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line={"color": GRID, "width": 1}, hoverinfo="skip", showlegend=False)
        )
        fig.add_trace(
            go.Scatter(
                x=tr.x_hat,
                y=-np.ones_like(x),
                mode="markers",
                marker={"size": 11, "color": DEQUANT, "symbol": "diamond"},
                name="x̂ (dequantized)",
                hovertemplate="x̂=%{x:.5g}<extra></extra>",
            )
        )
    fig.update_yaxes(
        tickvals=[1, 0, -1], ticktext=["x", "grid", "x̂"], range=[-1.6, 1.6], showgrid=False, zeroline=False
    )
    fig.update_xaxes(range=[span_lo - pad, span_hi + pad], title="value", zeroline=True)
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": -0.35})
    return fig


def error_bars(tr: Trace) -> go.Figure:
    """Squared error per element, split into rounding (teal) and clipping (red)."""
    sq = np.square(tr.error.astype(np.float64))
    fig = go.Figure(
        go.Bar(
            x=[f"{v:.4g}" for v in tr.x],
            y=sq,
            marker_color=np.where(tr.clipped, CLIP, ROUND),
            hovertemplate="x=%{x}<br>e²=%{y:.3g}<extra></extra>",
        )
    )
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="x", yaxis_title="e²")
    return fig


KL_STAGES: tuple[str, ...] = (
    "The |x| histogram",
    "P: keep i bins, fold the tail into the last",
    "Q: merge the i bins into L levels, spread evenly",
    "KL(P‖Q) of this candidate, and P − Q",
    "Every candidate: the smallest KL wins",
)
"""The stages of the KL lesson, in order (step k shows stage k)."""


def infinite_runs(x: np.ndarray, y: np.ndarray) -> list[tuple[float, float]]:
    """``[(x_start, x_end), ...]`` of the runs of consecutive points where ``y`` is infinite or NaN."""
    bad = ~np.isfinite(np.asarray(y, dtype=np.float64))
    if not bad.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    return [(float(x[a]), float(x[b - 1])) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def kl_figure(search: KLSearch, index: int, stage: int = len(KL_STAGES)) -> go.Figure:
    """The KL search at ``stage`` (1-based, :data:`KL_STAGES`) for candidate ``index``.

    Top: the histogram (stage 1), then ``P`` (2), ``P`` and ``Q`` (3+). Bottom: ``P - Q`` (stage 4;
    at 8 bits P and Q overlap), then KL per candidate with the infinite stretch shaded (5).
    """
    p, q, _ = search.distributions(index)
    i = int(search.candidates[index])
    t = float(search.thresholds[index])
    centers = (np.arange(i) + 0.5) * search.width
    bottom = {4: "P − Q for this candidate", 5: "KL(P‖Q) per candidate threshold"}.get(stage)
    rows = 2 if bottom else 1
    fig = make_subplots(
        rows=rows,
        cols=1,
        row_heights=[0.55, 0.45] if rows == 2 else [1.0],
        vertical_spacing=0.22,
        subplot_titles=(f"{KL_STAGES[stage - 1]} · candidate T = {t:.4g} ({i} bins)", *([bottom] if bottom else [])),
    )
    if stage == 1:
        all_c = (np.arange(search.counts.size) + 0.5) * search.width
        total = float(search.counts.sum()) or 1.0
        fig.add_trace(
            go.Scatter(
                x=all_c,
                y=search.counts / total,
                mode="lines",
                line={"shape": "hvh", "color": GRID},
                name="|x| histogram (all bins)",
            ),
            row=1,
            col=1,
        )
        fig.add_vline(x=t, line_dash="dash", line_color=DEQUANT, row=1, col=1)
    else:
        fig.add_trace(
            go.Scatter(x=centers, y=p, mode="lines", line={"shape": "hvh", "color": ORIGINAL}, name="P (tail folded)"),
            row=1,
            col=1,
        )
    if stage >= 3:
        fig.add_trace(
            go.Scatter(
                x=centers, y=q, mode="lines", line={"shape": "hvh", "color": DEQUANT, "dash": "dot"}, name="Q (merged)"
            ),
            row=1,
            col=1,
        )
    fig.update_yaxes(title="probability", type="log" if stage == 1 else "linear", row=1, col=1)
    if stage == 1:  # decades as powers of ten: the default ticks mixed 0.001 with SI "100µ" for a probability
        fig.update_yaxes(dtick=1, exponentformat="power", row=1, col=1)
    fig.update_xaxes(title="|x|" if rows == 1 else None, row=1, col=1)
    if stage == 4:
        fig.add_trace(
            go.Bar(x=centers, y=p - q, marker_color=CLIP, marker_line_width=0, name="P − Q"),
            row=2,
            col=1,
        )
        fig.update_layout(bargap=0)
        fig.update_yaxes(title="P − Q", row=2, col=1)
        fig.update_xaxes(title="|x|", row=2, col=1)
    if stage == 5:
        kl = np.where(np.isfinite(search.kl), search.kl, np.nan)
        fig.add_trace(
            go.Scatter(x=search.thresholds, y=kl, mode="lines", line={"color": ROUND}, name="KL (finite)"), row=2, col=1
        )
        for x0, x1 in infinite_runs(search.thresholds, search.kl):
            fig.add_vrect(
                x0=x0, x1=max(x1, x0 + search.width), fillcolor=GRID, opacity=0.25, line_width=0, row=2, col=1
            )
        fig.add_trace(
            go.Scatter(
                x=[search.thresholds[search.chosen]],
                y=[kl[search.chosen]],
                mode="markers",
                marker={"size": 12, "color": CLIP, "symbol": "star"},
                name="chosen (minimum)",
            ),
            row=2,
            col=1,
        )
        fig.add_vline(x=t, line_dash="dash", line_color=DEQUANT, row=2, col=1)
        fig.update_yaxes(type="log", dtick=1, exponentformat="power", row=2, col=1, title="KL (log)")
        fig.update_xaxes(title="threshold T (grey: KL = ∞)", row=2, col=1)
    fig.update_layout(
        height=380 if rows == 2 else 300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "v", "y": 1, "x": 1, "xanchor": "right", "bgcolor": "rgba(255,255,255,0.7)"},
    )
    fig.update_annotations(font_size=13)
    return fig


def cross_terms_figure(ct: CrossTerms) -> go.Figure:
    """The four terms of the integer dot product: run-time terms in orange, offline ones in blue, absent ones grey."""
    colors = [GRID if not t.present else (DEQUANT if t.when.startswith("run") else ORIGINAL) for t in ct.terms]
    fig = go.Figure(
        go.Bar(
            x=[t.name for t in ct.terms],
            y=[t.value for t in ct.terms],
            marker_color=colors,
            text=[f"{t.value:.4g}" if t.present else "absent (z = 0)" for t in ct.terms],
            textposition="outside",
            hovertemplate="%{x}<br>%{y:.6g}<extra></extra>",
        )
    )
    fig.add_hline(y=ct.y_dequant, line_dash="dash", line_color=CLIP, annotation_text=f"ŷ = {ct.y_dequant:.5g}")
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="contribution to ŷ")
    return fig


def admm_figure(replay: ADMMReplay, index: int) -> go.Figure:
    """MSE per iteration (left axis) and the step alpha it used (right axis); iteration ``index + 1`` marked.

    Iterations are numbered from 1 like the lesson's slider: iteration ``k`` uses ``alpha_{k-1}``.
    """
    k = np.arange(1, len(replay.alphas) + 1)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=k, y=replay.mse, mode="lines+markers", name="MSE", line={"color": CLIP}))
    fig.add_trace(
        go.Scatter(x=k, y=replay.alphas, mode="lines+markers", name="step α", line={"color": ORIGINAL, "dash": "dot"}),
        secondary_y=True,
    )
    fig.add_vline(x=index + 1, line_dash="dash", line_color=DEQUANT)
    fig.update_xaxes(
        title="iteration k (uses the step α<sub>k−1</sub>, as the slider)", dtick=1 if len(k) <= 20 else None
    )
    fig.update_yaxes(title="MSE ‖w − αq‖²/N", secondary_y=False)
    fig.update_yaxes(title="α", secondary_y=True)
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": -0.3})
    return fig
