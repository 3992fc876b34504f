"""Plotly figure builders. They receive pre-binned data only (never a raw tensor).

Thresholds are drawn as vertical lines (``layout.shapes`` of type ``line`` at
``x0 = x1 = threshold``) and clipped regions as shaded rectangles, so tests can
read them from the figure spec.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from qcore import Curve

from .text import pretty_math

ORIGINAL, DEQUANT, CLIP, ROUND, REFERENCE = "#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B"
PALETTE = ("#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC")
MAX_GRID_LINES = 80
MARKED_CANDIDATES = 128
CURVE_TITLE_CHARS = 30
"""Axis-title line length of an objective curve (Compare draws three in a row, about 250 px each at 1280 px)."""
"""A curve of at most this many drawn candidates marks each one: a summarised or pruned curve (every 16th KL
candidate, the few MSE candidates a pruned search evaluated) shows where its points are, not only a line."""


def _layout(fig: go.Figure, title: str, height: int = 360, top: int = 40) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": top, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.28, "x": 0},
    )
    return fig


def wrap(text: str, width: int = 36) -> str:
    """A long axis title on several lines (``<br>``), so it stays inside a chart a third of a page wide."""
    return "<br>".join(textwrap.wrap(text, width)) or text


def count_axis(fig: go.Figure, counts: np.ndarray, log_y: bool, **kw) -> None:
    """A count y axis; logarithmic with plain ticks 1, 2, 5, 10, 20, 50, ... up to the largest count."""
    if not log_y:
        fig.update_yaxes(type="linear", **kw)
        return
    top = float(max(np.max(counts, initial=1.0), 1.0))
    decades = int(np.ceil(np.log10(top))) + 1
    ticks = [m * 10**d for d in range(decades) for m in (1, 2, 5) if m * 10**d <= top * 2]
    if len(ticks) > 10:  # many decades: 1, 10, 100, ... only
        ticks = [10**d for d in range(decades)]
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{t:,}" for t in ticks], **kw)


def _bars(edges: np.ndarray, counts: np.ndarray, name: str, color: str, opacity: float = 1.0) -> go.Bar:
    centers = (edges[:-1] + edges[1:]) / 2
    return go.Bar(
        x=centers.astype(np.float32),
        y=counts,
        width=np.diff(edges).astype(np.float32),
        name=name,
        marker_color=color,
        marker_line_width=0,
        opacity=opacity,
    )


def _clip_marks(fig: go.Figure, lo: float, hi: float, x0: float, x1: float, **cell: int) -> None:
    """Dashed lines at ``lo`` and ``hi`` when inside ``[x0, x1]``; the clipped regions in view shaded."""
    slack = 1e-6 * (x1 - x0)  # float32 bin edges may fall a rounding error inside a threshold at the border
    for value in (lo, hi):
        if x0 - slack <= value <= x1 + slack:
            fig.add_vline(x=value, line_color=CLIP, line_width=2, line_dash="dash", **cell)
    if x0 < lo:
        fig.add_vrect(x0=x0, x1=min(lo, x1), fillcolor=CLIP, opacity=0.12, line_width=0, **cell)
    if x1 > hi:
        fig.add_vrect(x0=max(hi, x0), x1=x1, fillcolor=CLIP, opacity=0.12, line_width=0, **cell)


def histogram(
    edges: np.ndarray,
    counts: np.ndarray,
    deq_counts: np.ndarray | None,
    lo: float,
    hi: float,
    grid: np.ndarray,
    log_y: bool,
    title: str,
    grid_name: str = "integer grid (q - z)·s",
) -> go.Figure:
    """Histogram of the original values, the dequantized values over it, clip thresholds and (when few) the grid.

    The x axis spans the histogram's edges (the zoom window); thresholds outside it are not drawn.
    """
    fig = go.Figure(_bars(edges, counts, "original", ORIGINAL, 0.8))
    if deq_counts is not None:
        centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
        fig.add_trace(
            go.Scatter(
                x=centers,
                y=deq_counts,
                mode="lines",
                line_shape="hvh",
                name="dequantized",
                line={"color": DEQUANT, "width": 1.5},
            )
        )
    fig.update_layout(bargap=0)
    x0, x1 = float(edges[0]), float(edges[-1])
    fig.update_xaxes(range=[x0, x1], title="value x")
    count_axis(fig, counts, log_y, title="count")
    _clip_marks(fig, lo, hi, x0, x1)
    if 0 < grid.size <= MAX_GRID_LINES:
        top = float(max(counts.max(initial=1), 1))
        xs = np.repeat(grid.astype(np.float32), 3)
        xs[2::3] = np.nan
        ys = np.empty(3 * grid.size)
        ys[0::3], ys[1::3], ys[2::3] = 0.0, top, np.nan
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                name=grid_name,
                line={"color": "rgba(0,0,0,0.35)", "width": 1},
                hoverinfo="skip",
            )
        )
    return _layout(fig, title)


def breakdown(
    names: Sequence[str],
    clip: Sequence[float],
    rnd: Sequence[float],
    reference: Sequence[float],
    title: str = "MSE = clipping error + rounding error",
    reference_name: str = "s²/12 reference (rounding)",
) -> go.Figure:
    """Stacked clip/round MSE bars per configuration, with the ``s²/12`` rounding reference as a marker."""
    fig = go.Figure()
    fig.add_trace(go.Bar(x=list(names), y=list(clip), name="clipping error", marker_color=CLIP))
    fig.add_trace(go.Bar(x=list(names), y=list(rnd), name="rounding error", marker_color=ROUND))
    fig.add_trace(
        go.Scatter(
            x=list(names),
            y=list(reference),
            mode="markers",
            name=reference_name,
            marker={"symbol": "line-ew-open", "size": 40, "color": REFERENCE, "line": {"width": 3}},
        )
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="mean squared error")
    return _layout(fig, title)


def density(xe: np.ndarray, ye: np.ndarray, counts: np.ndarray, title: str) -> go.Figure:
    """Heatmap of error vs value from a 2-D histogram (log colour scale, empty cells blank)."""
    with np.errstate(divide="ignore"):
        z = np.where(counts > 0, np.log10(np.maximum(counts, 1)), np.nan)
    fig = go.Figure(
        go.Heatmap(
            x=((xe[:-1] + xe[1:]) / 2).astype(np.float32),
            y=((ye[:-1] + ye[1:]) / 2).astype(np.float32),
            z=z.astype(np.float32),
            colorscale="Viridis",
            colorbar={"title": "log10 count"},
            hovertemplate="value %{x:.4g}<br>error %{y:.3g}<br>log10 count %{z:.2f}<extra></extra>",
        )
    )
    fig.update_xaxes(title="original value x")
    fig.update_yaxes(title="error x̂ − x")
    return _layout(fig, title)


def channel_ranges(
    index: np.ndarray, vmin: np.ndarray, vmax: np.ndarray, cmin: np.ndarray, cmax: np.ndarray, xlabel: str, title: str
) -> go.Figure:
    """Observed min/max per row as a band, with the calibrated clip range per row as lines."""
    x = index.astype(np.int64)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=vmax, mode="lines", name="max", line={"color": ORIGINAL, "width": 1}))
    fig.add_trace(
        go.Scatter(x=x, y=vmin, mode="lines", name="min", fill="tonexty", line={"color": ORIGINAL, "width": 1})
    )
    fig.add_trace(go.Scatter(x=x, y=cmax, mode="lines", name="clip max", line={"color": CLIP, "dash": "dot"}))
    fig.add_trace(go.Scatter(x=x, y=cmin, mode="lines", name="clip min", line={"color": CLIP, "dash": "dot"}))
    fig.update_xaxes(title=xlabel)
    fig.update_yaxes(title="value")
    return _layout(fig, title)


def channel_errors(index: np.ndarray, clip: np.ndarray, rnd: np.ndarray, xlabel: str, title: str) -> go.Figure:
    """Stacked clip/round MSE per row."""
    x = index.astype(np.int64)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=clip, name="clipping error", marker_color=CLIP, marker_line_width=0))
    fig.add_trace(go.Bar(x=x, y=rnd, name="rounding error", marker_color=ROUND, marker_line_width=0))
    fig.update_layout(barmode="stack", bargap=0)
    fig.update_xaxes(title=xlabel)
    fig.update_yaxes(title="MSE")
    return _layout(fig, title)


def small_multiples(
    edges: np.ndarray, counts: np.ndarray, ranges: Mapping[str, tuple[float, float]], log_y: bool, cols: int = 3
) -> go.Figure:
    """The same histogram once per method, each with its own thresholds."""
    names = list(ranges)
    n_rows = -(-len(names) // cols)
    fig = make_subplots(
        rows=n_rows, cols=cols, subplot_titles=names, shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.05
    )
    span = (float(edges[0]), float(edges[-1]))
    for i, name in enumerate(names):
        r, c = divmod(i, cols)
        bar = _bars(edges, counts, "original", ORIGINAL)
        bar.showlegend = i == 0
        fig.add_trace(bar, row=r + 1, col=c + 1)
        lo, hi = ranges[name]
        _clip_marks(fig, lo, hi, min(span[0], lo), max(span[1], hi), row=r + 1, col=c + 1)
    count_axis(fig, counts, log_y)
    fig.update_layout(bargap=0, showlegend=False)
    return _layout(fig, "Each method's clip range on the same histogram", height=260 * n_rows + 70, top=80)


def overlay(edges: np.ndarray, counts: np.ndarray, ranges: Mapping[str, tuple[float, float]], log_y: bool) -> go.Figure:
    """One histogram with every method's thresholds, one colour per method."""
    fig = go.Figure(_bars(edges, counts, "original", "#BBBBBB"))
    fig.update_layout(bargap=0)
    count_axis(fig, counts, log_y, title="count")
    fig.update_xaxes(title="value")
    top = float(max(counts.max(initial=1), 1))
    for i, (name, (lo, hi)) in enumerate(ranges.items()):
        color = PALETTE[i % len(PALETTE)]
        for value in (lo, hi):
            fig.add_vline(x=value, line_color=color, line_width=2, line_dash="dash")
        # an invisible trace gives each method a legend entry
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[top, top],
                mode="markers",
                name=name,
                marker={"color": color, "symbol": "triangle-down", "size": 10},
            )
        )
    return _layout(fig, "All thresholds on one histogram")


def curve(c: Curve, row: int, title: str, lower: Curve | None = None) -> go.Figure:
    """A method's objective over its candidates for one row, the chosen candidate marked.

    Infinite (or NaN) objective values are left out of the line, which joins the finite ones, and
    marked by grey ticks along the top of the plot, so the curve never breaks into fragments. Entries
    without a candidate (NaN ``x``: searches that keep only the candidates they evaluated) are not drawn.
    Up to :data:`MARKED_CANDIDATES` drawn candidates, each is a marker on the line.

    ``lower``: the lower side's curve of a two-sided search (asymmetric entropy: thresholds ``T`` of ``-x``),
    drawn at ``-T`` (where its threshold clips, ``lo = -T``) beside ``c``, the upper side's; the two sides'
    lines are named apart, their ∞ ticks and chosen marks share one legend entry each.
    """
    fig = go.Figure()
    if lower is None:
        _curve_side(fig, c, row, 1.0, "", ORIGINAL)
    else:
        _curve_side(fig, c, row, 1.0, " · upper side", ORIGINAL)
        _curve_side(fig, lower, row, -1.0, " · lower side", PALETTE[5])
    x_title = wrap(pretty_math(c.parameter) + (" (lower side at −T)" if lower is not None else ""), CURVE_TITLE_CHARS)
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=wrap(pretty_math(c.objective), CURVE_TITLE_CHARS))
    levels = np.unique(np.concatenate([np.asarray(t.y, dtype=np.float64) for t in fig.data if t.yaxis in (None, "y")]))
    levels = levels[np.isfinite(levels)]
    if levels.size == 1 and levels[0] != 0:  # one objective value: plotly's default range, -1 .. 1, reads as 0
        fig.update_yaxes(range=sorted((0.0, 2.0 * float(levels[0]))))
    extra = x_title.count("<br>") + (1 if lower is not None else 0)  # a second legend row for two sides
    _layout(fig, pretty_math(title), height=330 + 24 * extra)
    # the legend at the bottom of the figure: plotly's automargin lifts the plot and its axis title above it
    # (a paper-relative y under the plot overlapped a two-line x title in a third of a 1280 px page)
    fig.update_layout(legend={"yref": "container", "y": 0, "yanchor": "bottom"})
    return fig


def _curve_side(fig: go.Figure, c: Curve, row: int, sign: float, side: str, color: str) -> None:
    """The traces of one curve (:func:`curve`): finite line, ∞ ticks, chosen mark; ``x`` times ``sign``."""
    drawn = ~np.isnan(c.x[row])
    x, y = sign * c.x[row][drawn].astype(np.float64), c.y[row][drawn].astype(np.float64)
    chosen = int(c.chosen[row])
    k = int(np.count_nonzero(drawn[:chosen])) if drawn[chosen] else None
    finite = np.isfinite(y)
    marked = x.size <= MARKED_CANDIDATES
    objective = pretty_math(c.objective)
    names = {t.name for t in fig.data}
    fig.add_trace(
        go.Scatter(
            x=x[finite],
            y=y[finite],
            mode="lines+markers" if marked else "lines",
            name=objective + side,
            legendrank=1 if sign > 0 else 2,  # the lines first in the legend, then ∞ ticks and chosen marks
            line={"color": color, "width": 1.5 if marked else 2},
            marker={"size": 5},
        )
    )
    if not finite.all():
        name = f"{objective} = ∞"
        fig.add_trace(
            go.Scatter(
                x=x[~finite],
                y=np.ones(int((~finite).sum())),
                yaxis="y2",
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=name not in names,
                marker={"symbol": "line-ns-open", "size": 8, "color": "rgba(0,0,0,0.35)"},
                hovertemplate="%{x:.4g}: ∞<extra></extra>",
            )
        )
        fig.update_layout(yaxis2={"overlaying": "y", "range": [0, 1.05], "visible": False})
    if k is not None:
        name = f"chosen ({c.goal})"
        fig.add_trace(
            go.Scatter(
                x=[float(x[k])],
                y=[float(y[k])],
                mode="markers",
                name=name,
                legendgroup=name,
                showlegend=name not in names,
                marker={"color": CLIP, "size": 11, "symbol": "x"},
            )
        )
