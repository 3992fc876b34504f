"""Model scan page helpers: uploads, cached scans, tables, figures and Explore links.

Typed paths are only read inside the configured roots (:mod:`ui.checkpoint_paths`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from qcore.calibrators import CALIBRATORS
from qcore.formats import FORMATS
from qcore.samples import list_samples
from qcore.scan import ScanConfig, ScanReport, TensorFilter, open_checkpoint
from qcore.scan import scan_steps as qcore_scan_steps
from qcore.scan.checkpoint import FILE_FORMATS

from . import format_state, state
from .checkpoint_paths import PathRefused, identity, resolve_path, roots

PRESETS: dict[str, str] = {
    "INT8 per-channel minmax": "bits=8,granularity=channel,method=minmax",
    "INT4 g128 mse": "bits=4,granularity=group,group_size=128,method=mse",
    "INT4 g128 minmax": "bits=4,granularity=group,group_size=128,method=minmax",
    "INT4 per-channel mse": "bits=4,granularity=channel,method=mse",
    "INT8 per-tensor minmax": "bits=8,granularity=tensor,method=minmax",
    "INT8 per-channel percentile": "bits=8,granularity=channel,method=percentile",
    "FP8 E4M3 per-channel": "bits=8,format=fp8_e4m3,granularity=channel",
    "NF4 (blocks of 64)": "format=nf4",
    "GGUF Q4_0": "format=q4_0",
    "GGUF Q8_0": "format=q8_0",
}
MAX_CONFIGS = 4
UPLOAD_TYPES: tuple[str, ...] = tuple(s.lstrip(".") for s in FILE_FORMATS)


UPLOAD_DIR_BYTES = 2 << 30
"""Disk kept for uploaded checkpoints, all sessions together: the least recently used files are removed first."""


def _make_room(folder: Path, incoming: int) -> None:
    """Remove the least recently used uploads until ``incoming`` more bytes fit in :data:`UPLOAD_DIR_BYTES`."""
    files = []
    for f in folder.iterdir():
        try:
            st_ = f.stat()
        except OSError:  # removed by another session meanwhile
            continue
        files.append((st_.st_mtime, st_.st_size, f))
    total = sum(size for _, size, _ in files)
    for _, size, f in sorted(files):
        if total + incoming <= UPLOAD_DIR_BYTES:
            break
        f.unlink(missing_ok=True)
        total -= size


def upload_path(data: bytes, name: str) -> Path:
    """Write an uploaded checkpoint to a private temp file named by its digest (same upload, same file).

    The folder holds at most :data:`UPLOAD_DIR_BYTES`: older uploads are removed to make room (a reused one is
    marked recent).
    """
    suffix = Path(name).suffix.lower()
    if suffix not in FILE_FORMATS:
        raise PathRefused(f"{name}: accepted uploads are {', '.join(FILE_FORMATS)}")
    if len(data) > UPLOAD_DIR_BYTES:
        raise PathRefused(f"{name}: {len(data):,} bytes is more than the {UPLOAD_DIR_BYTES:,} bytes kept for uploads")
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    folder = upload_folder()
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{digest}{suffix}"
    if path.exists():
        path.touch()
    else:
        _make_room(folder, len(data))
        path.write_bytes(data)
    return path


@st.cache_resource
def _store() -> dict[tuple, ScanReport]:
    """Finished scans shared by every session, keyed by file identity, configurations and filter."""
    return {}


def cache_key(path: Path, configs: list[ScanConfig], select: TensorFilter) -> tuple:
    return (identity(path), tuple(c.spec for c in configs), select)


def cached_report(path: Path, configs: list[ScanConfig], select: TensorFilter) -> ScanReport | None:
    """The finished scan of these files, configurations and filter, if one is cached."""
    return _store().get(cache_key(path, configs, select))


def scan_steps(path: Path, configs: list[ScanConfig], select: TensorFilter) -> Iterator[ScanReport]:
    """:func:`qcore.scan.scan_steps` on ``path``: the report after each tensor, stored in the cache once complete.

    A run stopped before the end (stop button) leaves the caller the partial report it last got; only a complete
    one is cached.
    """
    report = None
    for report in qcore_scan_steps(open_checkpoint(path), configs, select):
        yield report
    if report is not None and not report.cancelled:
        _store()[cache_key(path, configs, select)] = report


def explore_link(
    row: dict[str, Any], config: ScanConfig, samples: set[str], checkpoint: Path | None = None
) -> str | None:
    """URL of Explore on this tensor with this configuration, or None when no link can be made.

    A bundled sample opens as the sample; any other tensor by the path of its ``checkpoint`` (Explore's "path"
    source, under the same roots and memory budget). An upload (``checkpoint`` None) cannot be opened by link.
    """
    if row["tensor"] in samples:
        where = {state.SOURCE: "sample", state.SAMPLE: row["tensor"]}
    elif checkpoint is not None:
        where = {state.SOURCE: "path", state.CKPT: str(checkpoint), state.CKPT_TENSOR: row["tensor"]}
    else:
        return None
    s = config.scheme
    params = {
        **where,
        state.ROLE: "weight",
        state.BITS: s.bits,
        state.SCHEME: "symmetric" if s.symmetric else "asymmetric",
        state.SIGNED: str(s.signed).lower(),
        state.NARROW: str(s.narrow_range).lower(),
        state.ROUNDING: s.rounding,
        state.GRAN: s.granularity,
        state.AXIS: s.axis % max(len(row["shape"]), 1),
        state.GROUP: s.group_size,
        state.METHOD: config.method,
        state.CONV: config.convention,
    }
    method_options = CALIBRATORS[config.method].options()
    for k, v in config.options:  # the method's options under its own keys; the format's (scale_rounding) as they are
        params[state.option_key(config.method, k) if k in method_options else k] = v
    name = config.format if config.format != "int" else s.format
    if name != "int":  # the sidebar's number format (and a block size the format lets one choose)
        params[format_state.FORMAT] = name
        if len(FORMATS[name].block_sizes) > 1 and s.group_size in FORMATS[name].block_sizes:
            params[format_state.BLOCK] = s.group_size
    return "explore?" + urlencode(params)


def sample_names() -> set[str]:
    return {s.name for s in list_samples()}


def upload_folder() -> Path:
    """Where uploaded checkpoints are kept (a private temp folder)."""
    return Path(tempfile.gettempdir()) / "qx_scan_uploads"


def linkable(path: Path) -> Path | None:
    """``path`` when Explore can open its tensors by link (a checkpoint inside the roots), None for an upload."""
    if path.is_relative_to(upload_folder()):
        return None
    try:
        return resolve_path(str(path), roots())
    except PathRefused:
        return None


def table(report: ScanReport, checkpoint: Path | None = None) -> pd.DataFrame:
    """One row per tensor and configuration (ok rows), with an Explore link where one can be made (``checkpoint``:
    the scanned path when Explore may open it, see :func:`linkable`)."""
    by_label = {c.label: c for c in report.configs}
    samples = sample_names()
    rows = []
    for r in report.ok_rows:
        rows.append(
            {
                "tensor": r["tensor"],
                "layer": r["layer"],
                "kind": r["kind"],
                "config": r["config"],
                "shape": "×".join(map(str, r["shape"])),
                "stored": r["dtype"],
                "SQNR (dB)": r["sqnr_db"],
                "rel. MSE": r["rel_mse"],
                "clipped %": r["clipped_pct"],
                "max|x|/std": r["max_abs_over_std"],
                "kurtosis": r["kurtosis"],
                "outlier ch.": r["outlier_channels"],
                "bits/weight": r["bits_per_weight"],
                "bytes": r["bytes"],
                "explore": explore_link(r, by_label[r["config"]], samples, checkpoint),
            }
        )
    df = pd.DataFrame(rows)
    if not df.empty:
        df["layer"] = df["layer"].astype("Int64")  # blank (not "None") outside the blocks, still sortable
    return df


NO_LAYER = "no layer"
"""Heatmap column of the tensors outside the numbered blocks (embeddings, final norm, LM head, ...)."""


def heatmap_data(df: pd.DataFrame, config: str) -> pd.DataFrame:
    """Mean SQNR per tensor kind (rows) and layer (columns, in order; :data:`NO_LAYER` first), for one config."""
    sub = df[df["config"] == config].copy()
    sub["layer"] = sub["layer"].map(lambda v: NO_LAYER if v is None or pd.isna(v) else str(int(v)))
    grid = sub.pivot_table(index="kind", columns="layer", values="SQNR (dB)", aggfunc="mean")
    layers = sorted((c for c in grid.columns if c != NO_LAYER), key=int)
    return grid[([NO_LAYER] if NO_LAYER in grid.columns else []) + layers]


def heatmap(grid: pd.DataFrame, config: str) -> go.Figure:
    z = grid.to_numpy(dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isfinite(z), z, None),
            x=[str(c) for c in grid.columns],
            y=list(grid.index),
            colorscale="RdYlGn",
            colorbar={"title": "dB"},
            customdata=[[("not in a layer" if c == NO_LAYER else f"layer {c}") for c in grid.columns]]
            * len(grid.index),
            hovertemplate="%{customdata}, %{y}: %{z:.2f} dB<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": f"SQNR (dB) by layer × kind<br><sup>{config}</sup>"},
        height=160 + 26 * len(grid.index),
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        xaxis={"title": "layer", "type": "category"},
    )
    return fig


def worst_bars(df: pd.DataFrame, config: str, n: int) -> go.Figure:
    sub = df[df["config"] == config].nsmallest(n, "SQNR (dB)")[::-1]
    fig = go.Figure(go.Bar(x=sub["SQNR (dB)"], y=sub["tensor"], orientation="h", marker_color="#E45756"))
    fig.update_layout(
        title=f"{len(sub)} worst tensors · {config}",
        height=120 + 22 * len(sub),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"title": "SQNR (dB)"},
    )
    return fig


def size_bars(sizes: list[dict[str, Any]], stored: int) -> go.Figure:
    labels = ["as stored", *(s["config"] for s in sizes)]
    mb = [stored / 1e6, *(s["total_bytes"] / 1e6 for s in sizes)]
    fig = go.Figure(go.Bar(x=labels, y=mb, marker_color="#4C78A8", text=[f"{v:.2f} MB" for v in mb]))
    fig.update_layout(
        title="Model size per configuration",
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        yaxis={"title": "MB"},
    )
    return fig
