"""Cached calls into qcore, and the binning that turns tensors into chart-sized data.

Keys are strings (content digest + settings key); arrays travel as underscore
arguments, which Streamlit does not hash. The histograms of a tensor are built
once per tensor and granularity (:class:`qcore.CalibrationData` caches them), so a
settings change does not rebuild them. A large tensor's rows are also sorted once
per granularity (:class:`qcore.sorted_rows.SortedRows`): its exact error report then
costs ``O(rows x levels)`` per settings change instead of a pass over every element.
Every cache is bounded: the big objects (rows, sorted rows, analyses) by bytes in one
LRU (:mod:`ui.byte_cache`), chart data by entry count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from qcore import (
    CALIBRATORS,
    Analysis,
    CalibrationData,
    QuantOptionError,
    QuantScheme,
    Rows,
    analyze,
    to_rows,
)
from qcore.chunked import Progress
from qcore.formats import FORMATS
from qcore.sorted_rows import SortedRows, pays_off

from .byte_cache import cached
from .long_run import Kept, Tracker, stoppable
from .state import Settings

VIEW_BINS = 256
MIN_VIEW_BINS = 32
VIEW_SAMPLE = 1 << 18
DENSITY_BINS = (120, 80)
MAX_ROW_POINTS = 1024


def rows_key(scheme: QuantScheme) -> tuple[str, int, int]:
    """What the row layout depends on: granularity, axis, group size."""
    return scheme.granularity, scheme.axis, scheme.group_size


@cached("Collecting rows and histograms…")
def calibration_data(tensor_key: str, _x: np.ndarray, layout: tuple[str, int, int]) -> CalibrationData:
    """Rows of the tensor for a granularity, with their histograms cached inside (collect once)."""
    granularity, axis, group_size = layout
    return CalibrationData(to_rows(_x, QuantScheme(granularity=granularity, axis=axis, group_size=group_size)))


FAST_MIN_ELEMENTS = 1 << 20
"""Tensors at least this large take the sorted path when it pays off (below, a pass costs < ~10 ms)."""


@cached("Collecting rows and histograms…")
def sorted_rows(tensor_key: str, _data: CalibrationData, layout: tuple[str, int, int]) -> SortedRows:
    """The rows of ``_data`` sorted once (about 0.4 s for 16M elements), for the exact error report."""
    return SortedRows.from_rows(_data.rows)


def analysis_step(settings: Settings) -> str:
    """What :func:`analysis` is doing, in words: a calibrator's search, or a format's own block scales."""
    fmt = FORMATS.get(settings.scheme.format)
    if fmt is not None and not fmt.calibrated:
        return f"Encoding as {fmt.label.split(' (')[0]} (the format's own block scales)…"
    return f"Calibrating with {CALIBRATORS[settings.method].label}…"


@cached(lambda bound: analysis_step(bound.arguments["_settings"]), quiet_with="_progress")
def analysis(
    tensor_key: str, _x: np.ndarray, settings_key: str, _settings: Settings, _progress: Progress | None = None
) -> Analysis:
    """:func:`qcore.analyze` of one tensor under one configuration (same report, from sorted rows when faster).

    ``_progress``: passed to :func:`qcore.analyze` (rows calibrated a chunk at a time, the same result); a
    run it stops raises and is not cached.
    """
    layout = rows_key(_settings.scheme)
    data = calibration_data(tensor_key, _x, layout)
    scheme, method, convention = _settings.scheme, _settings.method, _settings.convention
    options = _settings.options + _settings.format_options
    if data.rows.values.size >= FAST_MIN_ELEMENTS and pays_off(data.rows, scheme):
        fast = sorted_rows(tensor_key, data, layout)
        return analyze(data, scheme, method, convention, sorted_rows=fast, progress=_progress, **dict(options))
    return analyze(data, scheme, method, convention, progress=_progress, **dict(options))


GROUP_CPU_SECONDS_PER_MILLION = {
    "admm": 0.16,
    "aciq": 0.03,
    "easyquant": 0.05,
    "entropy": 0.07,
    "mse": 0.035,
    "percentile": 0.03,
}
"""Per-group (128) calibration CPU seconds per million values, the slowest of symmetric/asymmetric x INT4/INT8
(``python bench/run.py --groups-only``, 2-core machine, 2026-12-04; EasyQuant 2026-12-05 with its compiled sums;
MSE 2026-12-05 03:00 UTC with its compiled searches, asymmetric INT4 0.59 s under load 4.7; entropy 2026-12-05
02:35-03:12 UTC with its compiled row loops, symmetric INT4 about 0.8 s under load 3-5; wall time grows when cores
are shared)."""

NOTICE_SECONDS = 3.0
"""Expected cost above which the page says what it is waiting for."""


def expected_seconds(settings: Settings, n_values: int) -> float | None:
    """Rough CPU seconds of a per-group calibration of ``n_values`` values (None: not per group or not measured)."""
    per_million = GROUP_CPU_SECONDS_PER_MILLION.get(settings.method)
    if settings.scheme.granularity != "group" or per_million is None:
        return None
    return per_million * n_values / 1e6


CHANNEL_CPU_SECONDS_PER_MILLION = {"admm": 0.06, "easyquant": 0.04, "entropy": 0.04, "mse": 0.04}
"""Per-channel calibration seconds per million values, the slowest scheme of README's per-channel table (4096 x 4096,
one call, 2026-12-05: ADMM asymmetric INT8 0.98 s with its compiled alternation on magnitudes; entropy asymmetric
INT8; MSE symmetric INT4 0.59-0.69 s CPU under load 3-3.6 with its pruned compiled search, was 0.07 with the dense
matrix product on both BLAS threads)."""


def progress_seconds(settings: Settings, n_values: int) -> float | None:
    """Rough CPU seconds of a per-channel or per-group calibration (None: per tensor or not measured)."""
    if settings.scheme.granularity == "channel":
        per_million = CHANNEL_CPU_SECONDS_PER_MILLION.get(settings.method)
        return None if per_million is None else per_million * n_values / 1e6
    return expected_seconds(settings, n_values)


def layout_words(settings: Settings, n_values: int) -> str:
    """``'per group of 128 (131,072 groups)'`` or ``'per channel'``."""
    scheme = settings.scheme
    if scheme.granularity == "group":
        groups = -(-n_values // max(scheme.group_size or 1, 1))
        return f"per group of {scheme.group_size} ({groups:,} groups)"
    return f"per {scheme.granularity}"


def describe(settings: Settings, n_values: int) -> str:
    """``'Entropy (KL) per group of 128 (131,072 groups), about 2 s of CPU'``: a request in words."""
    seconds = progress_seconds(settings, n_values)
    cost = "" if seconds is None else f", about {seconds:.0f} s of CPU"
    return f"{CALIBRATORS[settings.method].label} {layout_words(settings, n_values)}{cost}"


def run_stoppable(
    slot: str, tensor_key: str, x: np.ndarray, settings: Settings
) -> Kept[tuple[Settings, Analysis]] | None:
    """:func:`run` with rows done / total and a Stop button when long; after a stop, the page's last good result.

    The value is ``(settings, analysis)``: after a stop, the settings of the analysis shown (not the sidebar's).
    """
    unit = "group" if settings.scheme.granularity == "group" else "channel"

    def work(tracker: Tracker | None) -> tuple[Settings, Analysis]:
        progress = None if tracker is None else tracker.step(CALIBRATORS[settings.method].label)
        return settings, run(tensor_key, x, settings, progress)

    def recall() -> tuple[Settings, Analysis] | None:
        hit, a = analysis.peek(tensor_key, None, settings.key, None)  # type: ignore[attr-defined]
        return (settings, a) if hit else None

    what = describe(settings, x.size)
    return stoppable(slot, (tensor_key, settings.key), what, progress_seconds(settings, x.size), work, recall, unit)


Compared = tuple[dict[str, Analysis], dict[str, str]]
"""Analyses by method, and the methods that failed with their message."""


def run_methods(slot: str, tensor_key: str, x: np.ndarray, by_method: dict[str, Settings]) -> Kept[Compared] | None:
    """:func:`run` for every method in turn under one bar and one Stop button (see :func:`run_stoppable`)."""
    n = len(by_method)
    seconds = sum(progress_seconds(s, x.size) or 0.0 for s in by_method.values())
    unit = "group" if next(iter(by_method.values())).scheme.granularity == "group" else "channel"

    failed: dict[str, str] = {}  # what the finished run could not compute (nothing to recall for those)

    def work(tracker: Tracker | None) -> Compared:
        results: dict[str, Analysis] = {}
        bar = st.progress(0.0, text="Calibrating…") if tracker is None else None
        for i, (method, settings) in enumerate(by_method.items()):
            label = f"{CALIBRATORS[method].label} ({i + 1}/{n})"
            if bar is not None:
                bar.progress(i / n, text=f"Calibrating with {label}…")
            try:
                results[method] = run(tensor_key, x, settings, None if tracker is None else tracker.step(label, i, n))
            except QuantOptionError as exc:
                failed[method] = str(exc)
        if bar is not None:
            bar.empty()
        return results, failed

    def recall() -> Compared | None:
        wanted = {m: s for m, s in by_method.items() if m not in failed}
        hits = {m: analysis.peek(tensor_key, None, s.key, None) for m, s in wanted.items()}  # type: ignore[attr-defined]
        if not all(hit for hit, _ in hits.values()):
            return None
        return {m: a for m, (_, a) in hits.items()}, dict(failed)

    key = (tensor_key, tuple(s.key for s in by_method.values()))
    first = next(iter(by_method.values()))
    labels = ", ".join(CALIBRATORS[m].label for m in by_method)
    what = f"{labels} {layout_words(first, x.size)}, about {seconds:.0f} s of CPU"
    return stoppable(slot, key, what, seconds, work, recall, unit)


def run(tensor_key: str, x: np.ndarray, settings: Settings, progress: Progress | None = None) -> Analysis:
    """Cached analysis of ``x`` under ``settings``; a long per-group search first states its expected cost.

    ``progress(rows_done, rows_total)`` is called between chunks of rows while it calibrates (not on a cache hit);
    its caller states the cost (:class:`ui.long_run.Tracker`).
    """
    seconds = expected_seconds(settings, x.size)
    notice = st.empty()
    if progress is None and seconds is not None and seconds > NOTICE_SECONDS:
        groups = -(-x.size // max(settings.scheme.group_size or 1, 1))
        notice.info(
            f"{settings.method} searches {groups:,} groups of {settings.scheme.group_size}: expected about "
            f"{seconds:.0f} s of CPU (longer when other work shares the cores). A cached result returns at once."
        )
    result = analysis(tensor_key, x, settings.key, settings, progress)
    notice.empty()
    return result


@dataclass(frozen=True)
class RowView:
    """Chart data for one row (the whole tensor when per-tensor).

    ``edges``/``counts``: histogram of every original value; ``deq_counts``: histogram of
    the dequantized values on the same edges (from ``sampled`` of the ``total`` values,
    scaled by ``total / sampled``); ``grid``: the representable values inside the view;
    ``density``: (x edges, error edges, counts) of error vs value over the same sample.
    """

    edges: np.ndarray
    counts: np.ndarray
    deq_counts: np.ndarray
    grid: np.ndarray
    density: tuple[np.ndarray, np.ndarray, np.ndarray]
    sampled: int
    total: int


def row_round_trip(a: Analysis, values: np.ndarray, row: int) -> np.ndarray:
    """Dequantized ``values`` (a slice of row ``row``) with that row's parameters (the format's encoding)."""
    return a.encoding.round_trip(values.reshape(-1), row)


def row_grid(a: Analysis, row: int) -> np.ndarray:
    """Representable values of row ``row`` under the analysis' format (``(q - z) s`` for INT)."""
    return a.encoding.row_levels(row)


@st.cache_data(max_entries=64, show_spinner=False)
def row_histogram(
    tensor_key: str, layout: tuple, row: int, lo: float, hi: float, _values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram`` of one row's present values over ``[lo, hi]`` (cached: once per tensor, row and zoom).

    ``2 sqrt(n)`` bins, kept within ``[MIN_VIEW_BINS, VIEW_BINS]``, so a short channel is not mostly empty bins.
    A window wider than float32 can subtract (near +-3.4e38) is binned in float64.
    """
    bins = int(np.clip(2 * np.sqrt(_values.size), MIN_VIEW_BINS, VIEW_BINS))
    return np.histogram(range_safe(_values, lo, hi), bins=bins, range=(lo, hi))


FLOAT32_SAFE_SPAN = 1e38
"""Windows wider than this are binned in float64 (float32's ``v - lo`` would overflow to inf)."""


def range_safe(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``values`` as float64 when ``[lo, hi]`` is too wide for float32 arithmetic, else unchanged."""
    wide = not (abs(lo) < FLOAT32_SAFE_SPAN and abs(hi) < FLOAT32_SAFE_SPAN)
    return values.astype(np.float64) if wide else values


def present_values(rows: Rows, row: int) -> np.ndarray:
    """The present (non-missing) values of one row."""
    mask = rows.finite_mask
    return rows.values[row] if mask is None else rows.values[row][mask[row]]


@st.cache_data(max_entries=32, show_spinner=False)
def row_view(tensor_key: str, settings_key: str, row: int, window: tuple[float, float], _a: Analysis) -> RowView:
    """Chart data of row ``row`` of analysis ``_a`` restricted to ``window`` (the zoom)."""
    present = present_values(_a.rows, row)
    lo, hi = window
    if not hi > lo:
        hi = lo + 1.0
    layout = (_a.rows.granularity, _a.rows.axis, _a.rows.group_size)
    counts, edges = row_histogram(tensor_key, layout, row, lo, hi, present)
    # The dequantized copy and the error density come from at most VIEW_SAMPLE values (every k-th), so a
    # settings change costs the same on a 16M-element tensor as on a small one; the metrics use every value.
    step = max(1, -(-present.size // VIEW_SAMPLE))
    xs = present[::step]
    x_hat = range_safe(row_round_trip(_a, xs, row), lo, hi)
    xs = range_safe(xs, lo, hi)
    deq_counts = np.histogram(x_hat, bins=edges)[0] * (present.size / xs.size)
    grid = row_grid(_a, row)
    grid = grid[(grid >= lo) & (grid <= hi)]
    err = x_hat - xs
    span = float(np.max(np.abs(err))) if err.size else 0.0
    span = span if span > 0 else 1.0
    dens, xe, ye = histogram2d(xs, err, DENSITY_BINS, ((lo, hi), (-span, span)))
    return RowView(edges, counts, deq_counts, grid, (xe, ye, dens.T), xs.size, present.size)


def bin_numbers(v: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """``np.histogramdd``'s bin number of each value on ``linspace(lo, hi, bins + 1)`` (0 and ``bins + 1``: outside).

    ``i`` with ``edges[i - 1] <= v < edges[i]`` (the last edge closed), as its ``searchsorted``, but from
    ``floor((v - lo) bins / (hi - lo))`` corrected by one comparison each way: ~5x faster on 256K values.
    """
    edges = np.linspace(lo, hi, bins + 1)
    padded = np.concatenate([[-np.inf], edges, [np.inf]])  # padded[i] = edges[i - 1]
    with np.errstate(invalid="ignore", over="ignore"):
        guess = np.floor((v.astype(np.float64) - lo) * (bins / (hi - lo)))  # float32 - lo stays float32 (NEP 50)
    i = (np.clip(np.nan_to_num(guess, nan=bins + 1.0), -1.0, bins) + 1.0).astype(np.intp)
    i += v >= padded[i + 1]
    i -= v < padded[i]
    i[v == edges[-1]] -= 1
    return np.minimum(i, bins + 1)


def histogram2d(
    x: np.ndarray, y: np.ndarray, bins: tuple[int, int], ranges: tuple[tuple[float, float], tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.histogram2d(x, y, bins, range=ranges)`` with equal-width bins: the same counts and edges."""
    (nx, ny), ((x0, x1), (y0, y1)) = bins, ranges
    flat = bin_numbers(x, x0, x1, nx) * (ny + 2) + bin_numbers(y, y0, y1, ny)
    counts = np.bincount(flat, minlength=(nx + 2) * (ny + 2)).reshape(nx + 2, ny + 2)[1:-1, 1:-1]
    return counts.astype(np.float64), np.linspace(x0, x1, nx + 1), np.linspace(y0, y1, ny + 1)


@dataclass(frozen=True)
class RowSummary:
    """Per-row ranges and errors reduced to at most :data:`MAX_ROW_POINTS` points for plotting.

    With more rows than points, consecutive rows (in the chosen order) are pooled:
    min of minima, max of maxima, mean of errors.
    """

    index: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    clip_min: np.ndarray
    clip_max: np.ndarray
    clip_mse: np.ndarray
    round_mse: np.ndarray
    pooled: int


def row_summary(a: Analysis, order: str) -> RowSummary:
    """Per-row data in channel order (``order='index'``) or sorted by range width (``'range'``)."""
    rows, p, err = a.rows, a.params, a.report.rows
    idx = np.arange(rows.n_rows)
    if order == "range":
        idx = np.argsort(rows.max - rows.min, kind="stable")
    cols = [rows.min[idx], rows.max[idx], p.clip_min[idx], p.clip_max[idx], err.clip_mse[idx], err.round_mse[idx]]
    pool = -(-rows.n_rows // MAX_ROW_POINTS)
    if pool == 1:
        return RowSummary(idx, *cols, pooled=1)
    n = rows.n_rows // pool * pool
    k = slice(0, n)
    vmin = cols[0][k].reshape(-1, pool).min(axis=1)
    vmax = cols[1][k].reshape(-1, pool).max(axis=1)
    cmin = cols[2][k].reshape(-1, pool).min(axis=1)
    cmax = cols[3][k].reshape(-1, pool).max(axis=1)
    cm = cols[4][k].reshape(-1, pool).mean(axis=1)
    rm = cols[5][k].reshape(-1, pool).mean(axis=1)
    return RowSummary(np.arange(0, n, pool), vmin, vmax, cmin, cmax, cm, rm, pooled=pool)
