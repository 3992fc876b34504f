"""What the app shows about a number format: storage, codes used, rounding against the local level spacing.

Everything is read from an :class:`qcore.Analysis` (its :class:`~qcore.formats.Encoding` and format), so
every format goes through the same code; results are cached per tensor and settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from qcore import Analysis
from qcore.quantize import quantize_rows

ROW_CHUNK = 4096
"""Rows whose level tables are built at once (a table is ``rows x levels`` float64)."""


@dataclass(frozen=True)
class Storage:
    """Exact storage of a tensor under a format: ``bits = n b + r b_row + b_tensor``."""

    bits_per_weight: float
    total_bits: int
    elements: int

    @property
    def bytes(self) -> float:
        """Bytes of the quantized tensor (codes, scales, zero points, per-tensor extras)."""
        return self.total_bits / 8

    @property
    def float32_ratio(self) -> float:
        """How many times smaller than float32 (32 bits per element)."""
        return 32.0 / self.bits_per_weight if self.bits_per_weight > 0 else float("inf")


def storage(a: Analysis) -> Storage:
    """Bits per weight including scales and zero points, and the bits of the whole tensor."""
    bpw = a.bits_per_weight()
    n = int(np.prod(a.rows.shape, dtype=np.int64))
    return Storage(bpw, round(bpw * n), n)


def bpw_text(bpw: float) -> str:
    """Bits per weight with up to 4 decimals, trailing zeros dropped (``4.25``, ``8.0001``)."""
    return f"{bpw:.4f}".rstrip("0").rstrip(".")


def fmt_bytes(n: float) -> str:
    """``1.23 MB`` style (powers of 1000), bytes below 10 kB."""
    for unit, size, smallest in (("GB", 1e9, 1e9), ("MB", 1e6, 1e6), ("kB", 1e3, 1e4)):
        if n >= smallest:
            return f"{n / size:.3g} {unit}"
    return f"{n:,.0f} B"


def level_tables(a: Analysis, idx: np.ndarray) -> np.ndarray | None:
    """Every level of rows ``idx`` in level-index order, ``(len(idx), levels_total)`` (None for INT).

    GGUF's K-quants list one grid per sub-block side by side: ``(len(idx), n_sub * levels_total)``.
    """
    enc = a.encoding
    table = getattr(enc, "level_table", None)
    if table is not None:
        return np.asarray(table(idx), dtype=np.float64)
    grid = getattr(getattr(enc, "calibration", None), "grid", None)
    if grid is not None:
        return np.asarray(grid[idx], dtype=np.float64)
    return None


def cell_mse(table: np.ndarray) -> np.ndarray:
    r"""Mean squared rounding error of a value spread evenly over each level's rounding cell.

    With ``l`` and ``r`` the gaps to the neighbouring levels (the cell spans ``l/2`` below and ``r/2`` above),

    .. math:: m = \frac{(l/2)^3 + (r/2)^3}{3 (l/2 + r/2)} = \frac{l^3 + r^3}{12 (l + r)}

    (``s^2/12`` on a uniform grid of step ``s``); an end level only has its inner half cell, as if ``l = r``.
    Shape and order as ``table`` (levels in level-index order, any order of values).
    """
    order = np.argsort(table, axis=1, kind="stable")
    s = np.take_along_axis(table, order, axis=1)
    gaps = np.diff(s, axis=1)
    left = np.concatenate([gaps[:, :1], gaps], axis=1)
    right = np.concatenate([gaps, gaps[:, -1:]], axis=1)
    total = left + right
    with np.errstate(invalid="ignore", divide="ignore"):
        m_sorted = np.where(total > 0, (left**3 + right**3) / (12.0 * total), 0.0)
    m = np.empty_like(m_sorted)
    np.put_along_axis(m, order, m_sorted, axis=1)
    return m


def _reference_rows(a: Analysis) -> np.ndarray | None:
    """Per row: ``sum over present values inside the clip range of cell_mse(level)`` (None for INT grids)."""
    rows, enc = a.rows, a.encoding
    if level_tables(a, np.arange(min(1, rows.n_rows))) is None:
        return None
    levels = enc.level_rows()
    sums = np.zeros(rows.n_rows)
    mask = rows.finite_mask
    n_levels, length = enc.levels_total, rows.values.shape[1]
    for r0 in range(0, rows.n_rows, ROW_CHUNK):
        idx = np.arange(r0, min(rows.n_rows, r0 + ROW_CHUNK))
        table = level_tables(a, idx)
        n_sub = max(table.shape[1] // n_levels, 1)  # K-quants: one grid per sub-block, side by side
        m = cell_mse(table.reshape(-1, table.shape[1] // n_sub)).reshape(len(idx), -1)
        sub = np.arange(length) // -(-length // n_sub)
        x = rows.values[idx]
        k = np.clip(sub[None, :] * n_levels + levels[idx].astype(np.intp), 0, m.shape[1] - 1)
        inside = (x >= enc.clip_min[idx, None]) & (x <= enc.clip_max[idx, None])
        if mask is not None:
            inside &= mask[idx]
        sums[idx] = np.where(inside, np.take_along_axis(m, k, axis=1), 0.0).sum(axis=1)
    return sums


@dataclass(frozen=True)
class RoundingReference:
    """The rounding error expected from the level spacing: whole tensor and per row (MSE units)."""

    whole: float
    rows: np.ndarray
    local: bool
    """True: from each level's own cell (non-uniform grids); False: the uniform ``s^2/12`` of the core."""


@st.cache_data(max_entries=16, show_spinner=False)
def rounding_reference(tensor_key: str, settings_key: str, _a: Analysis) -> RoundingReference:
    """The rounding-error reference of :func:`cell_mse` (``s^2/12`` for INT) for the whole tensor and each row."""
    a, r = _a, _a.report
    sums = _reference_rows(a)
    counts = a.rows.count
    if sums is None:
        step = np.asarray(a.params.scale, dtype=np.float64)
        return RoundingReference(float(r.round_mse_reference), step * step / 12.0, local=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_row = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return RoundingReference(float(sums.sum() / max(r.count, 1)), per_row, local=True)


@st.cache_data(max_entries=16, show_spinner=False)
def code_counts(tensor_key: str, settings_key: str, _a: Analysis) -> tuple[np.ndarray, np.ndarray]:
    """``(code, count)`` of every level index of the format (INT: the integer codes ``q``), missing values left out."""
    enc, rows = _a.encoding, _a.rows
    if enc.uniform:  # IntEncoding.level_rows subtracts q_min in the codes' own dtype (int8 127 + 128 wraps)
        q = quantize_rows(rows.values, _a.params, rows.has_missing)
        levels = np.subtract(q, enc.qmin, dtype=np.intp)
    else:
        levels = enc.level_rows()
    present = levels if rows.finite_mask is None else levels[rows.finite_mask]
    counts = np.bincount(np.asarray(present, dtype=np.intp).ravel(), minlength=enc.levels_total)
    return np.arange(counts.size) + enc.qmin, counts


def not_finite(a: Analysis) -> str | None:
    """Why a format's numbers cannot be shown (a round trip that overflows float32), or None when they can.

    E.g. FP8 with a range near float32's maximum: ``e / m`` exceeds it (the core's scaled-float decode).
    """
    r = a.report
    if np.isfinite(r.mse) and np.isfinite(r.cosine):
        return None
    return (
        f"{a.format.label} cannot represent this tensor: its round trip overflows float32 (values near "
        f"±{np.finfo(np.float32).max:.3g}), so its error is not finite."
    )


def grid_name(a: Analysis) -> str:
    """Legend name of the level grid drawn on the histogram."""
    return "integer grid (q - z)·s" if a.encoding.uniform else f"{a.format.label} levels"


def scheme_caption(a: Analysis, method_label: str, n_rows: int, unit: str, axis_text: str) -> str:
    """The line under the cards for a format other than INT: element, scales, method, ranges."""
    fmt = a.format
    scales = (
        f"{n_rows:,} blocks of {a.rows.group_size}{axis_text}"
        if fmt.block_sizes
        else f"{n_rows:,} {unit} range(s){axis_text} from {method_label}"
    )
    return f"Cards: the whole tensor. {fmt.label}: {a.encoding.levels_total} levels per scale · {scales}."


STORAGE_CARDS: tuple[str, ...] = ("Format", "Bits per weight", "Tensor size", "vs float32")
"""Labels of the storage cards under Explore's error cards."""


def storage_cards(a: Analysis) -> None:
    """Four cards: format, bits per weight (scales included), bytes of the tensor, saving against float32."""
    s = storage(a)
    cards = {
        "Format": (a.format.label.split(" (")[0], None, a.format.summary),
        "Bits per weight": (
            bpw_text(s.bits_per_weight),
            f"{a.params.scheme.bits if a.format.bits is None else a.format.bits}-bit elements + scales",
            "Exact storage per element: element bits plus every scale, zero point, block minimum and per-tensor "
            "scale, divided by the number of elements (a partial last block counted whole).",
        ),
        "Tensor size": (fmt_bytes(s.bytes), f"float32: {fmt_bytes(4 * s.elements)}", "Bytes of this tensor."),
        "vs float32": (f"{s.float32_ratio:.2f}×", "smaller than float32", "32 bits divided by the bits per weight."),
    }
    for col, (label, (value, note, help_text)) in zip(st.columns(4), cards.items(), strict=True):
        col.metric(label, value, note, help=help_text, border=True, delta_color="off", delta_arrow="off")
