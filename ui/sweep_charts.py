"""Figures, tables and the progress hook of the What-if page.

Every figure is built from the small sweep records of :mod:`qcore.sweeps`
(one point per configuration), never from raw tensor values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .figures import PALETTE

METRIC_LABELS: dict[str, str] = {
    "sqnr_db": "SQNR (dB)",
    "mse": "MSE",
    "cosine": "cosine",
    "clipped_fraction": "clipped fraction",
    "max_abs_error": "max |error|",
}
"""Short names of the error measures (the selector's labels, also its URL values)."""

AXIS_TITLES: dict[str, str] = {
    "sqnr_db": "SQNR (dB, higher is better)",
    "mse": "MSE (lower is better)",
    "cosine": "cosine similarity (higher is better)",
    "clipped_fraction": "fraction of values clipped",
    "max_abs_error": "max |error| (lower is better)",
}

COLUMN_ORDER: tuple[str, ...] = (
    "method",
    "case",
    "weights",
    "activations",
    "run_time_terms",
    "offline_terms",
    "macs_per_output",
    "extra_vs_symmetric",
    "granularity",
    "convention",
    "label",
    "symmetric",
    "bits",
    "ranges",
    "bits_per_weight",
    "overhead_bits",
    "qmin",
    "qmax",
    "rounding",
    "arithmetic",
    "threshold",
    "scale",
    "zero_point",
    "represent_min",
    "represent_max",
    "sqnr_db",
    "mse",
    "clip_mse",
    "round_mse",
    "cosine",
    "row_cosine",
    "clipped_fraction",
    "max_abs_error",
    "levels_used",
    "levels_total",
    "error",
)


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Sweep records as a DataFrame with a stable column order (infinite SQNR shown as NaN)."""
    df = pd.DataFrame.from_records(records)
    df = df[[c for c in COLUMN_ORDER if c in df.columns]]
    if "sqnr_db" in df:
        df["sqnr_db"] = df["sqnr_db"].replace([np.inf, -np.inf], np.nan)
    return df


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV."""
    return df.to_csv(index=False).encode("utf-8")


def progress_hook(bar: Any) -> Callable[[float, str], None]:
    """Adapt a ``st.progress`` element to :data:`qcore.sweeps.Progress`."""

    def update(fraction: float, label: str) -> None:
        # the share of the whole sweep first: the label's own count is the current point's ("131,072 / 131,072 rows")
        bar.progress(min(max(fraction, 0.0), 1.0), text=f"{fraction:.0%} of the sweep · {label}")

    return update


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["error"] == ""] if "error" in df else df


def _layout(fig: go.Figure, x_title: str, y_title: str, metric: str) -> go.Figure:
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend_title_text="",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        height=420,
        hovermode="closest",
    )
    if metric == "mse":
        fig.update_yaxes(type="log")
    return fig


def _colors(names: pd.Series) -> dict[str, str]:
    """One palette colour per distinct name, in order of appearance."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(dict.fromkeys(names))}


def bits_figure(df: pd.DataFrame, metric: str = "sqnr_db") -> go.Figure:
    """One line per method (asymmetric dashed when both schemes are drawn): ``metric`` against bit width."""
    fig = go.Figure()
    ok = _ok(df)
    both = ok["symmetric"].nunique() > 1 if len(ok) else False
    colors = _colors(ok["method"]) if len(ok) else {}
    for (method, sym), part in ok.groupby(["method", "symmetric"], sort=False):
        name = f"{method} ({'sym' if sym else 'asym'})" if both else str(method)
        fig.add_trace(
            go.Scatter(
                x=part["bits"],
                y=part[metric],
                mode="lines+markers",
                name=name,
                line={"dash": "dash" if both and not sym else "solid", "color": colors[method]},
            )
        )
    fig.update_xaxes(dtick=1)
    return _layout(fig, "bits", AXIS_TITLES[metric], metric)


def granularity_figure(df: pd.DataFrame, metric: str = "sqnr_db") -> go.Figure:
    """Error against storage: ``metric`` vs bits per weight (scales and zero points included), per granularity."""
    fig = go.Figure()
    ok = _ok(df)
    colors = _colors(ok["granularity"]) if len(ok) else {}
    for gran, part in ok.groupby("granularity", sort=False):
        fig.add_trace(
            go.Scatter(
                x=part["bits_per_weight"],
                y=part[metric],
                mode="lines+markers+text",
                text=[f"{b}b" for b in part["bits"]],
                textposition="top center",
                name=str(gran),
                line={"color": colors[gran]},
                customdata=np.stack([part["bits"], part["ranges"], part["overhead_bits"]], axis=1),
                hovertemplate="%{fullData.name}: %{customdata[0]} bits, %{customdata[1]} ranges<br>"
                "%{x:.4f} bits/weight (+%{customdata[2]:.4f} overhead)<br>%{y:.4g}<extra></extra>",
            )
        )
    return _layout(fig, "bits per weight (codes + scales + zero points)", AXIS_TITLES[metric], metric)


def symmetry_figure(df: pd.DataFrame, metric: str = "sqnr_db") -> go.Figure:
    """Grouped bars: ``metric`` per method, symmetric next to asymmetric."""
    fig = go.Figure()
    ok = _ok(df)
    for sym, part in ok.groupby("symmetric", sort=False):
        fig.add_trace(
            go.Bar(
                x=part["method"],
                y=part[metric],
                name="symmetric (z = 0)" if sym else "asymmetric (zero point)",
                text=[f"{v:.3g}" for v in part[metric]],
                textposition="outside",
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, "method", AXIS_TITLES[metric], metric)


def layer_figure(df: pd.DataFrame, metric: str = "sqnr_db") -> go.Figure:
    """Grouped bars: output error of ``Y = X W^T`` per method for W only, X only and both quantized."""
    fig = go.Figure()
    ok = _ok(df)
    names = {"weights": "W only", "activations": "X only", "both": "W and X"}
    y_metric = metric if metric in ok.columns else "sqnr_db"
    for case, part in ok.groupby("case", sort=False):
        fig.add_trace(
            go.Bar(
                x=part["method"],
                y=part[y_metric],
                name=names.get(str(case), str(case)),
                text=[f"{v:.3g}" for v in part[y_metric]],
                textposition="outside",
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, "method", "output " + AXIS_TITLES[y_metric], y_metric)


def convention_figure(df: pd.DataFrame) -> go.Figure:
    """Per preset: the representable range ``[(q_min - z) s, (q_max - z) s]`` as a bar, SQNR as its label."""
    ok = _ok(df)
    fig = go.Figure(
        go.Bar(
            y=ok["label"],
            x=ok["represent_max"] - ok["represent_min"],
            base=ok["represent_min"],
            orientation="h",
            text=[
                f"s={s:.4g}  z={z:.3g}  [{int(lo)}, {int(hi)}]  SQNR {q:.2f} dB"
                for s, z, lo, hi, q in zip(
                    ok["scale"], ok["zero_point"], ok["qmin"], ok["qmax"], ok["sqnr_db"], strict=True
                )
            ],
            textposition="inside",
            insidetextanchor="middle",
            marker_color="#4c78a8",
            hovertemplate="%{y}<br>from %{base:.5g} to %{x:.5g} wide<extra></extra>",
        )
    )
    fig.add_vline(x=0, line_dash="dot", line_color="gray")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=80 + 50 * max(len(ok), 1), margin={"l": 10, "r": 10, "t": 30, "b": 10})
    fig.update_xaxes(title="representable real range")
    return fig


CONVENTION_COLUMNS: dict[str, str] = {
    "qmin": "q_min",
    "qmax": "q_max",
    "rounding": "rounding",
    "arithmetic": "arithmetic",
    "scale": "scale s",
    "zero_point": "zero point z",
    "mse": "MSE",
    "sqnr_db": "SQNR (dB)",
}


def convention_differences(df: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """One sentence naming what differs between the presets, and their table with the differing columns first.

    A column "differs" when its values are not all equal (numbers: relative spread above 1e-6).
    """
    ok = _ok(df)
    if ok.empty:
        return "No preset could be computed.", ok
    differ, same = [], []
    for col in CONVENTION_COLUMNS:
        if col not in ok:
            continue
        v = ok[col]
        if pd.api.types.is_numeric_dtype(v):
            a = v.to_numpy(dtype=float)
            spread = np.nanmax(a) - np.nanmin(a) if np.isfinite(a).any() else 0.0
            varies = spread > 1e-6 * max(float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 0.0, 1e-30)
        else:
            varies = v.nunique() > 1
        (differ if varies else same).append(col)
    table = ok[["label", *differ, *same]].rename(columns={"label": "preset", **CONVENTION_COLUMNS})
    if not differ:
        return "These presets give the same grid, scale, zero point and error on this tensor.", table
    text = (
        "**What differs between these presets here:** "
        + ", ".join(CONVENTION_COLUMNS[c] for c in differ)
        + (f". The same everywhere: {', '.join(CONVENTION_COLUMNS[c] for c in same)}." if same else ".")
    )
    if "sqnr_db" in differ:
        q = ok["sqnr_db"].to_numpy(dtype=float)
        best, worst = int(np.nanargmax(q)), int(np.nanargmin(q))
        text += (
            f" SQNR spans {q[worst]:.2f} dB ({ok['label'].iloc[worst]}) to {q[best]:.2f} dB ({ok['label'].iloc[best]})."
        )
    return text, table
