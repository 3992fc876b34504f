"""Model scan page helpers: allowed checkpoint paths, cached scans, tables, figures and Explore links.

Paths typed by a user are only read inside the configured roots: the project's ``data/``
folder, the directory the app was started from, and any folder listed in the
``QX_SCAN_ROOTS`` environment variable (``os.pathsep``-separated). ``..``, absolute paths
elsewhere and symlinks that lead out of a root are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
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
from qcore.scan.checkpoint import FILE_FORMATS, INDEX_SUFFIX

from . import format_state, state

ROOT = Path(__file__).resolve().parent.parent
START_DIR = Path.cwd().resolve()
ROOTS_ENV = "QX_SCAN_ROOTS"
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


class PathRefused(ValueError):
    """A path outside the allowed roots (or with ``..``)."""


def roots() -> list[Path]:
    """The folders a typed path may point into (resolved, existing, without duplicates)."""
    extra = [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for r in (ROOT / "data", START_DIR, *extra):
        r = r.expanduser().resolve()
        if r.is_dir() and r not in out:
            out.append(r)
    return out


def resolve_path(text: str, allowed: list[Path]) -> Path:
    """The checkpoint a typed path names, when it lies inside one of ``allowed``.

    A relative path is tried against each root in turn; the resolved target (symlinks
    followed) must stay inside the root it was found under.

    Raises
    ------
    PathRefused
        ``..`` in the path, an absolute path outside the roots, a symlink leading out, or nothing there.
    """
    text = text.strip()
    if not text:
        raise PathRefused("type a path to a checkpoint file or folder")
    p = Path(text).expanduser()
    if ".." in p.parts:
        raise PathRefused(f"'..' is not allowed in a path ({text}); give a path inside {_names(allowed)}")
    candidates = [p] if p.is_absolute() else [r / p for r in allowed]
    for c in candidates:
        if not os.path.lexists(c):
            continue
        target = c.resolve()
        root = next((r for r in allowed if c.absolute().is_relative_to(r)), None)
        if root is None:
            raise PathRefused(f"{text} is outside the allowed folders {_names(allowed)} (set {ROOTS_ENV} to add one)")
        if not target.is_relative_to(root):
            raise PathRefused(f"{text} is a link that leads outside {root}; refused")
        return target
    raise PathRefused(f"nothing named {text} in {_names(allowed)}")


def _names(allowed: list[Path]) -> str:
    return ", ".join(str(r) for r in allowed)


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
    folder = Path(tempfile.gettempdir()) / "qx_scan_uploads"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{digest}{suffix}"
    if path.exists():
        path.touch()
    else:
        _make_room(folder, len(data))
        path.write_bytes(data)
    return path


def identity(path: Path) -> tuple:
    """File identity of a checkpoint without reading it: (path, size, mtime) of the file, of an index and the shards
    it names, or of every checkpoint file in a folder (cache key)."""
    if path.is_dir():
        files = [f for f in path.iterdir() if f.is_file() and is_checkpoint_path(f)]
    elif path.name.endswith(INDEX_SUFFIX):
        try:
            shards = set(json.loads(path.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            shards = set()
        files = [path, *(path.parent / str(s) for s in sorted(shards))]
    else:
        files = [path]
    out = []
    for f in sorted(files):
        try:
            st_ = os.stat(f)
            out.append((str(f), st_.st_size, st_.st_mtime_ns))
        except OSError:
            out.append((str(f), None, None))
    return tuple(out)


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


def is_checkpoint_path(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in FILE_FORMATS or path.name.endswith(INDEX_SUFFIX)


def explore_link(row: dict[str, Any], config: ScanConfig, samples: set[str]) -> str | None:
    """URL of Explore on this tensor with this configuration (bundled sample tensors only)."""
    if row["tensor"] not in samples:
        return None
    s = config.scheme
    params = {
        state.SOURCE: "sample",
        state.SAMPLE: row["tensor"],
        state.ROLE: "weight",
        state.BITS: s.bits,
        state.SCHEME: "symmetric" if s.symmetric else "asymmetric",
        state.SIGNED: str(s.signed).lower(),
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


def table(report: ScanReport) -> pd.DataFrame:
    """One row per tensor and configuration (ok rows), with an Explore link where one exists."""
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
                "explore": explore_link(r, by_label[r["config"]], samples),
            }
        )
    df = pd.DataFrame(rows)
    if not df.empty:
        df["layer"] = df["layer"].astype("Int64")  # blank (not "None") outside the blocks, still sortable
    return df


def heatmap_data(df: pd.DataFrame, config: str) -> pd.DataFrame:
    """Mean SQNR per tensor kind (rows) and layer (columns; ``-`` outside the blocks), for one configuration."""
    sub = df[df["config"] == config].copy()
    sub["layer"] = sub["layer"].map(lambda v: "-" if v is None or pd.isna(v) else str(int(v)))
    grid = sub.pivot_table(index="kind", columns="layer", values="SQNR (dB)", aggfunc="mean")
    layers = sorted((c for c in grid.columns if c != "-"), key=int) + (["-"] if "-" in grid.columns else [])
    return grid[layers]


def heatmap(grid: pd.DataFrame, config: str) -> go.Figure:
    z = grid.to_numpy(dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isfinite(z), z, None),
            x=[str(c) for c in grid.columns],
            y=list(grid.index),
            colorscale="RdYlGn",
            colorbar={"title": "dB"},
            hovertemplate="layer %{x}, %{y}: %{z:.2f} dB<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"SQNR by layer and tensor kind · {config}",
        height=140 + 26 * len(grid.index),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
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
