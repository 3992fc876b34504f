"""Plotly figures of the number-format views. They take pre-binned counts or small record tables only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import DEQUANT, MAX_GRID_LINES, ORIGINAL, PALETTE, _layout, count_axis
from .sweep_charts import AXIS_TITLES, METRIC_LABELS

GRID = "rgba(0,0,0,0.35)"
FRONT = "#E45756"


def codes_figure(codes: np.ndarray, counts: np.ndarray, title: str, log_y: bool = True) -> go.Figure:
    """How often each code (level index) occurs; unused codes show as gaps."""
    used = counts > 0
    fig = go.Figure(
        go.Bar(
            x=codes.astype(np.int64),
            y=counts,
            marker_color=np.where(used, ORIGINAL, "#BBBBBB").tolist(),
            marker_line_width=0,
            name="values per code",
            hovertemplate="code %{x}: %{y:,} values<extra></extra>",
        )
    )
    fig.update_layout(bargap=0.1 if codes.size <= 64 else 0)
    fig.update_xaxes(title="code (level index, lowest level first)")
    count_axis(fig, counts, log_y, title="values")
    return _layout(fig, title, height=300)


def _grid_trace(grid: np.ndarray, top: float, name: str, show: bool) -> go.Scatter:
    xs = np.repeat(grid.astype(np.float32), 3)
    xs[2::3] = np.nan
    ys = np.empty(3 * grid.size)
    ys[0::3], ys[1::3], ys[2::3] = 0.0, top, np.nan
    return go.Scatter(
        x=xs, y=ys, mode="lines", name=name, line={"color": GRID, "width": 1}, hoverinfo="skip", showlegend=show
    )


def format_multiples(
    edges: np.ndarray,
    counts: np.ndarray,
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
    log_y: bool,
    cols: int = 3,
) -> go.Figure:
    """The same histogram once per format: the dequantized values (orange) and the format's levels (grey).

    ``panels``: title -> (dequantized counts on ``edges``, levels in view); levels are drawn only when at most
    :data:`~ui.figures.MAX_GRID_LINES` fall in view (zoom in to see them).
    """
    names = list(panels)
    n_rows = -(-len(names) // cols)
    fig = make_subplots(
        rows=n_rows, cols=cols, subplot_titles=names, shared_xaxes=True, vertical_spacing=0.14, horizontal_spacing=0.05
    )
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.float32)
    widths = np.diff(edges).astype(np.float32)
    top = float(max(counts.max(initial=1), 1))
    for i, name in enumerate(names):
        r, c = divmod(i, cols)
        deq, grid = panels[name]
        cell = {"row": r + 1, "col": c + 1}
        fig.add_trace(
            go.Bar(
                x=centers, y=counts, width=widths, name="original", marker_color=ORIGINAL, marker_line_width=0,
                opacity=0.7, showlegend=i == 0,
            ),
            **cell,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=centers, y=deq, mode="lines", line_shape="hvh", name="dequantized",
                line={"color": DEQUANT, "width": 1.5}, showlegend=i == 0,
            ),
            **cell,
        )  # fmt: skip
        if 0 < grid.size <= MAX_GRID_LINES:
            fig.add_trace(_grid_trace(grid, top, "levels", i == 0), **cell)
    count_axis(fig, counts, log_y)
    fig.update_layout(bargap=0, legend={"orientation": "h", "y": -0.05, "x": 0})
    fig.update_xaxes(range=[float(edges[0]), float(edges[-1])])
    return _layout(fig, "Each format on the same histogram", height=250 * n_rows + 90, top=80)


PLOT_PX = (700.0, 340.0)
"""Plot area assumed when placing labels (a little smaller than the chart's at 1280 px, so labels err on room)."""
LABEL_PX = (6.0, 13.0)
"""Width per character and height of a 10 px label."""
MARKER_PX = 6.0
"""Half the extent kept clear around a marker (size 9)."""
PAD = 0.08
"""Fraction of each axis' span added on both sides of the points."""
POSITIONS = (
    "top center",
    "bottom center",
    "top right",
    "top left",
    "bottom right",
    "bottom left",
    "middle right",
    "middle left",
)


def _label_box(x: float, y: float, position: str, text: str) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) in pixels, y up, of ``text`` drawn at ``position`` beside a marker at (x, y)."""
    w, h = LABEL_PX[0] * len(text), LABEL_PX[1]
    vertical, horizontal = position.split()
    y0 = {"top": y + MARKER_PX, "bottom": y - MARKER_PX - h, "middle": y - h / 2}[vertical]
    x0 = {"center": x - w / 2, "right": x + MARKER_PX, "left": x - MARKER_PX - w}[horizontal]
    if vertical != "middle" and horizontal != "center":  # a corner position starts at the marker's centre
        x0 = x if horizontal == "right" else x - w
    return x0, x0 + w, y0, y0 + h


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[2], b[2]))


def label_positions(px: np.ndarray, py: np.ndarray, texts: Sequence[str], size: tuple[float, float]) -> list[str]:
    """A ``textposition`` per point so that labels cover no marker, no other label and stay inside the plot.

    ``px``, ``py``: the points in pixels of a ``size`` plot area (y up); an empty text needs no place. Each
    label takes the first of :data:`POSITIONS` that overlaps nothing, else the one that overlaps least
    (overlap area with markers, labels placed before, and the outside of the plot). Points are placed from
    left to right, so a tie goes to the cheaper format.
    """
    markers = [(x - MARKER_PX, x + MARKER_PX, y - MARKER_PX, y + MARKER_PX) for x, y in zip(px, py, strict=True)]
    inside = (0.0, size[0], 0.0, size[1])
    placed: list[tuple[float, float, float, float]] = []
    out = ["top center"] * len(texts)
    for i in np.argsort(px, kind="stable"):
        if not texts[i]:
            continue

        def cost(position: str, i: int = int(i)) -> float:
            box = _label_box(px[i], py[i], position, texts[i])
            area = (box[1] - box[0]) * (box[3] - box[2])
            hit = sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            return hit + sum(_overlap(box, b) for b in placed) + area - _overlap(box, inside)

        out[i] = min(POSITIONS, key=lambda p: (cost(p) > 0, cost(p)))  # first free one, else least covered
        placed.append(_label_box(px[i], py[i], out[i], texts[i]))
    return out


def pareto_figure(df: pd.DataFrame, metric: str) -> go.Figure:
    """Error against bits per weight, one marker per format configuration, the Pareto front as a staircase.

    Between two front points the best reachable error is the cheaper point's (horizontal, then a step). Only
    front points are labelled, each on the side of its marker where it covers no other marker or label
    (:func:`label_positions`); every point names itself on hover.
    """
    ok = df[df["error"] == ""] if "error" in df else df
    log_y = metric == "mse"
    x = ok["bits_per_weight"].to_numpy(np.float64)
    y = ok[metric].to_numpy(np.float64)
    y = np.log10(np.maximum(y, np.finfo(np.float64).tiny)) if log_y else y
    x_range, y_range = _padded(x), _padded(y)
    px = (x - x_range[0]) / (x_range[1] - x_range[0]) * PLOT_PX[0]
    py = (y - y_range[0]) / (y_range[1] - y_range[0]) * PLOT_PX[1]
    px, py = (np.nan_to_num(v, nan=-1e6, posinf=-1e6, neginf=-1e6) for v in (px, py))  # not drawn: out of the way
    texts = ok["label"].where(ok["pareto"], "").tolist()
    where = pd.Series(label_positions(px, py, texts, PLOT_PX), index=ok.index)
    fig = go.Figure()
    families = list(dict.fromkeys(ok["family"]))
    for i, family in enumerate(families):
        part = ok[ok["family"] == family]
        fig.add_trace(
            go.Scatter(
                x=part["bits_per_weight"],
                y=part[metric],
                mode="markers+text",
                text=part["label"].where(part["pareto"], ""),
                customdata=part["label"],
                textposition=where[part.index].tolist(),
                textfont={"size": 10},
                name=family,
                marker={"size": 9, "color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{customdata}<br>%{x:.4g} bits per weight<br>%{y:.4g}<extra></extra>",
            )
        )
    front = ok[ok["pareto"]].sort_values("bits_per_weight")
    fig.add_trace(
        go.Scatter(
            x=front["bits_per_weight"],
            y=front[metric],
            mode="lines",
            name="Pareto front",
            line={"color": FRONT, "width": 2, "dash": "dot", "shape": "hv"},
            hoverinfo="skip",
        )
    )
    fig.update_xaxes(title="bits per weight (scales and zero points included)", range=x_range)
    fig.update_yaxes(title=AXIS_TITLES[metric], type="log" if log_y else "linear", range=y_range)
    return _layout(fig, f"{METRIC_LABELS[metric]} vs bits per weight · every format", height=520)


def _padded(v: np.ndarray) -> list[float]:
    """[min, max] of the finite values widened by :data:`PAD` of the span each side (1 when all are equal)."""
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    pad = PAD * (hi - lo) if hi > lo else 1.0
    return [lo - pad, hi + pad]


def family_bits_figure(df: pd.DataFrame, metric: str) -> go.Figure:
    """The metric against the element width, one line per width family (FP4 → FP6 → FP8, MXFP4 → …, INT)."""
    ok = df[df["error"] == ""] if "error" in df else df
    fig = go.Figure()
    for i, (line, part) in enumerate(ok.groupby("width_family", sort=False)):
        part = part.sort_values("element_bits")
        fig.add_trace(
            go.Scatter(
                x=part["element_bits"],
                y=part[metric],
                mode="lines+markers",
                name=str(line),
                text=part["label"],
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{text}<br>%{x} bits<br>%{y:.4g}<extra></extra>",
            )
        )
    fig.update_xaxes(title="element bits", dtick=1)
    fig.update_yaxes(title=AXIS_TITLES[metric], type="log" if metric == "mse" else "linear")
    return _layout(fig, f"{METRIC_LABELS[metric]} vs element bits · each width family", height=420)


def level_strips(levels: Mapping[str, np.ndarray], title: str, log_x: bool = False) -> go.Figure:
    """One row of ticks per format: where its levels lie (positive half), on a linear or log axis."""
    fig = go.Figure()
    names: Sequence[str] = list(levels)
    for i, name in enumerate(names):
        v = levels[name]
        v = v[v > 0] if log_x else v
        fig.add_trace(
            go.Scatter(
                x=v,
                y=np.full(v.size, i),
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 16, "color": PALETTE[i % len(PALETTE)]},
                name=f"{name}: {v.size} levels",
                hovertemplate="%{x:.4g}<extra></extra>",
            )
        )
    fig.update_yaxes(tickvals=list(range(len(names))), ticktext=list(names), range=[-0.7, len(names) - 0.3])
    fig.update_xaxes(title="value (each format scaled to the same maximum)", type="log" if log_x else "linear")
    return _layout(fig, title, height=120 + 70 * len(names))


def relative_step_figure(steps: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> go.Figure:
    """Gap to the level below divided by the level, against the level (log-log): a float keeps it flat."""
    fig = go.Figure()
    for i, (name, (x, rel)) in enumerate(steps.items()):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=rel,
                mode="lines",
                line_shape="hv",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)], "width": 2},
            )
        )
    fig.update_xaxes(title="value (same maximum for every format)", type="log")
    fig.update_yaxes(title="gap to the level below / level", type="log")
    return _layout(fig, title, height=360)


def block_error_figure(x: np.ndarray, errors: Mapping[str, np.ndarray], block: int, title: str) -> go.Figure:
    """One line of a tensor (bars) and each format's RMS error per block of ``block`` values (steps)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.06)
    idx = np.arange(x.size)
    fig.add_trace(go.Bar(x=idx, y=x, name="values x", marker_color=ORIGINAL, marker_line_width=0), row=1, col=1)
    for i, (name, err) in enumerate(errors.items()):
        edges = np.minimum(np.arange(err.size + 1) * block, x.size) - 0.5
        fig.add_trace(
            go.Scatter(
                x=edges,
                y=np.append(err, err[-1]),
                mode="lines",
                line_shape="hv",
                name=name,
                line={"color": PALETTE[(i + 1) % len(PALETTE)], "width": 2},
            ),
            row=2,
            col=1,
        )
    for edge in range(block, x.size, block):
        fig.add_vline(x=edge - 0.5, line_color="rgba(0,0,0,0.15)", line_width=1)
    fig.update_yaxes(title="x", row=1, col=1)
    fig.update_yaxes(title="RMS error per block", type="log", row=2, col=1)
    fig.update_xaxes(title=f"position along the line (grey: blocks of {block})", row=2, col=1)
    return _layout(fig, title, height=460)
