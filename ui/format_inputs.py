"""Sidebar widgets of the number format: the selector (first axis, INT default) and the format's own options.

The choices offered are the core's declarations: the registry (:data:`qcore.formats.FORMATS`), each
format's ``block_sizes`` and MX's ``SCALE_ROUNDINGS``; a widget never repeats a limit.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import streamlit as st

from qcore import QuantScheme
from qcore.formats import NumberFormat
from qcore.formats.mx import SCALE_ROUNDINGS

from .format_state import BLOCK, FORMAT, SCALE_ROUNDING, block_size, chosen_format, format_labels
from .url import set_choice, url_choice

Q = "query-params"
DQ_KEY = "_qx_nf4_dq"
LEGACY_KEY = "fmt"
"""The URL parameter of the format in links made before it was ``format``."""
NF4_PAIR = ("nf4", "nf4_dq")
ROUNDING_HELP = {
    "floor": "floor (the OCP spec): X = 2^(floor(log2 amax) − emax); the largest values of a block may clip",
    "ceil": "ceil (torchao): never clips, one step coarser",
    "even": "even (torchao): amax rounded to the element's mantissa first, then floor",
}


def _toggle_double_quant() -> None:
    """``on_change`` of the NF4 double-quantization toggle: switch between the two registered NF4 formats."""
    set_choice(FORMAT, NF4_PAIR[1] if st.session_state[DQ_KEY] else NF4_PAIR[0])


def format_selector() -> NumberFormat:
    """The "Number format" selector and the chosen format's options; returns the chosen format."""
    legacy = st.query_params.get(LEGACY_KEY)
    if FORMAT not in st.session_state and FORMAT not in st.query_params and legacy in format_labels():
        st.session_state[FORMAT] = legacy  # an older link's fmt=NAME
    url_choice(
        st.selectbox,
        "Number format",
        format_labels(),
        FORMAT,
        help="How each value is stored. INT: the integer grid below. Floats (FP8/FP6/FP4) take a calibrated "
        "range; NF4, MX, NVFP4 and the GGUF types set their own block scales.",
    )
    fmt = chosen_format(st.session_state)
    st.caption(f"{fmt.summary} {_storage_note(fmt)}")
    if fmt.name in NF4_PAIR:
        st.session_state[DQ_KEY] = fmt.name == NF4_PAIR[1]
        st.toggle(
            "Double quantization",
            key=DQ_KEY,
            on_change=_toggle_double_quant,
            help="QLoRA's double quantization: the block absmax values are themselves quantized to 8 bits "
            "(blocks of 256): 4.127 instead of 4.5 bits per weight at block 64.",
        )
    if len(fmt.block_sizes) > 1:
        st.selectbox(
            "Block size",
            fmt.block_sizes,
            index=fmt.block_sizes.index(block_size(fmt, st.session_state)),
            key=BLOCK,
            bind=Q,
            help=f"Values per block along the last axis; {fmt.label} accepts these sizes (default {fmt.block}).",
        )
    if SCALE_ROUNDING in fmt.option_names:
        st.radio(
            "Scale rounding",
            SCALE_ROUNDINGS,
            key=SCALE_ROUNDING,
            horizontal=True,
            bind=Q,
            help="How the block's power-of-two E8M0 scale is chosen. " + "; ".join(ROUNDING_HELP.values()) + ".",
        )
    if fmt.block_sizes:
        block = block_size(fmt, st.session_state)
        st.caption(
            f"Blocks of {block} consecutive values along the last axis, each with its own scale: the format's "
            "own block structure (per-tensor or per-channel ranges do not apply)."
        )
    return fmt


def _storage_note(fmt: NumberFormat) -> str:
    """Element width and nominal bits per weight, in words."""
    if fmt.name == "int":
        return "Bits, symmetry and granularity below."
    if not fmt.block_sizes:
        return f"{fmt.bits}-bit elements plus one float32 scale per range."
    return f"{fmt.bits}-bit elements, nominally {fmt.bits_per_weight(_nominal(fmt)):.4g} bits per weight with scales."


def _nominal(fmt: NumberFormat) -> QuantScheme:
    """The format's default layout (its default block), for its nominal bits per weight."""
    return QuantScheme(bits=fmt.bits or 8, format=fmt.name)


def settings_box(applies: bool, what: str, fmt: NumberFormat) -> AbstractContextManager:
    """Where a group of settings is drawn: in place when the format uses it, else folded away and marked unused.

    Folded widgets keep their values (and URL state) for when INT is chosen again.
    """
    if applies:
        return st.container()
    return st.expander(f"{what} (not used by {fmt.label.split(' (')[0]})", expanded=False)


def uses(fmt: NumberFormat) -> dict[str, bool]:
    """Which sidebar groups apply to ``fmt``: the integer grid, granularity, method, convention and rounding."""
    return {
        "grid": fmt.bits is None,  # INT and log2 take the width (and grid options) from the sidebar
        "granularity": not fmt.block_sizes,
        "method": fmt.calibrated,
        "convention": fmt.name == "int",
    }
