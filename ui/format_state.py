"""The number format chosen in the sidebar, and what it fixes in the scheme.

Keys are also URL query parameters (``format=nf4``, ``block=128``, ``scale_rounding=ceil``).
The INT widgets keep their values while another format is chosen; :func:`format_scheme`
overrides what the format fixes (element width, symmetry, its block structure), so a page
never special-cases a format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qcore import QuantScheme
from qcore.formats import FORMATS, NumberFormat, get_format

FORMAT, BLOCK, SCALE_ROUNDING = "format", "block", "scale_rounding"
DEFAULT_FORMAT = "int"


def chosen_format(ss: Mapping[str, Any]) -> NumberFormat:
    """The registered format named by the sidebar (``QuantOptionError`` for an unknown name)."""
    return get_format(str(ss.get(FORMAT, DEFAULT_FORMAT)))


def block_size(fmt: NumberFormat, ss: Mapping[str, Any]) -> int | None:
    """The chosen block length of a block format (its default when the choice is not one of its sizes)."""
    if not fmt.block_sizes:
        return None
    wanted = ss.get(BLOCK)
    try:
        wanted = int(wanted) if wanted is not None else None
    except (TypeError, ValueError):
        wanted = None
    return wanted if wanted in fmt.block_sizes else fmt.block


def format_scheme(scheme: QuantScheme, fmt: NumberFormat, ndim: int, block: int | None = None) -> QuantScheme:
    """``scheme`` (the INT widgets' values) with what ``fmt`` fixes.

    INT and log2 keep every field. Another format fixes its element width, signed codes without narrow or
    reduced range, round half to even, a symmetric range unless it has a zero point or minimum (Q4_1, Q5_1,
    K-quants); a block format also its blocks of ``block`` (default: the format's) along the last axis.
    """
    if fmt.bits is None:  # INT, log2: the sidebar's width and grid (log2 refuses what it cannot hold)
        return scheme.with_(format=fmt.name)
    changes: dict[str, Any] = {
        "format": fmt.name,
        "bits": fmt.bits,
        "symmetric": scheme.symmetric or not fmt.affine,
        "signed": True,
        "narrow_range": False,
        "reduce_range": False,
        "quant_min": None,
        "quant_max": None,
        "rounding": "half_even",
    }
    if fmt.block_sizes:
        changes.update(granularity="group", axis=max(ndim - 1, 0), group_size=block or fmt.block)
    return scheme.with_(**changes)


def format_method(fmt: NumberFormat, method: str) -> str:
    """The calibrator a format uses: the chosen one when the format takes a calibrated range, else MinMax."""
    return method if fmt.calibrated else "minmax"


def format_convention(fmt: NumberFormat, convention: str) -> str:
    """Toolchain conventions apply to INT only."""
    return convention if fmt.name == "int" else "default"


def format_options(fmt: NumberFormat, ss: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The format's own options (e.g. MX ``scale_rounding``) as sorted ``(name, value)`` pairs."""
    out = []
    if SCALE_ROUNDING in fmt.option_names and ss.get(SCALE_ROUNDING) is not None:
        out.append((SCALE_ROUNDING, ss[SCALE_ROUNDING]))
    return tuple(sorted(out))


def format_labels() -> dict[str, str]:
    """Format name -> label, in the registry's display order (INT first)."""
    return {name: fmt.label for name, fmt in FORMATS.items()}
