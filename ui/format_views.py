"""What the app shows about a number format: storage, codes used, rounding against the local level spacing.

Everything is read from an :class:`qcore.Analysis` (its :class:`~qcore.formats.Encoding` and format), so
every format goes through the same code; results are cached per tensor and settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from qcore import Analysis


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


@dataclass(frozen=True)
class RoundingReference:
    """The rounding error expected from the level spacing: whole tensor and per row (MSE units)."""

    whole: float
    rows: np.ndarray
    local: bool
    """True: ``Delta^2/12`` of the cell around each value (non-uniform grids); False: the uniform ``s^2/12``."""


def rounding_reference(a: Analysis) -> RoundingReference:
    """The core's rounding-error reference (``s^2/12``, or each value's local level spacing) for the tensor and rows."""
    r = a.report
    return RoundingReference(float(r.round_mse_reference), r.rows.round_mse_reference, local=not a.encoding.uniform)


COUNT_CHUNK = 1 << 20
"""Level indices counted at once by :func:`code_counts` (their ``intp`` copy stays 8 MB)."""


@st.cache_data(max_entries=16, show_spinner="Counting how many values took each code…")
def code_counts(tensor_key: str, settings_key: str, _a: Analysis) -> tuple[np.ndarray, np.ndarray]:
    """``(code, count)`` of every level index of the format (INT: the integer codes ``q``), missing values left out.

    ``count[k] = #{x : level(x) = k}``, one ``bincount`` per :data:`COUNT_CHUNK` values (no ``intp`` copy of the
    whole tensor: on 33M Q4_K codes that copy alone took over a second).
    """
    enc, rows = _a.encoding, _a.rows
    levels = np.ravel(enc.level_rows())
    mask = None if rows.finite_mask is None else np.ravel(rows.finite_mask)
    counts = np.zeros(enc.levels_total, dtype=np.int64)
    for start in range(0, levels.size, COUNT_CHUNK):
        part = levels[start : start + COUNT_CHUNK]
        if mask is not None:
            part = part[mask[start : start + COUNT_CHUNK]]
        counts += np.bincount(part.astype(np.intp), minlength=enc.levels_total)
    return np.arange(counts.size) + enc.qmin, counts


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

CARD_VALUE_CHARS = 8
"""Longest value a card shows whole on a 1280 px wide window (``0.997453``); "GGUF Q4_K" was cut to "GGUF Q…"."""


def format_card(label: str) -> tuple[str, str | None]:
    """``(value, note)`` of the Format card: the format's name and, under it, its variant or family.

    ``"GGUF Q4_K"`` -> ``("Q4_K", "GGUF (llama.cpp)")``, ``"FP8 E4M3FN (max 448)"`` -> ``("FP8", "E4M3FN")``,
    ``"NF4 + double quantization"`` -> ``("NF4", "double quantization")``,
    ``"INT (integer grid)"`` -> ``("INT", None)``.
    """
    head, _, rest = label.split(" (")[0].partition(" ")
    if head == "GGUF":
        return rest, "GGUF (llama.cpp)"
    return head, rest.removeprefix("+ ") or None


def storage_cards(a: Analysis) -> None:
    """Four cards: format, bits per weight (scales included), bytes of the tensor, saving against float32."""
    s = storage(a)
    cards = {
        "Format": (*format_card(a.format.label), f"{a.format.label}: {a.format.summary}"),
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
