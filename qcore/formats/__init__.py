"""Number formats behind one registry (:data:`FORMATS`): INT (default), scaled floats, NF4, MX, NVFP4, GGUF.

Each format is one object (:class:`NumberFormat`): its element cast or levels, its block structure, its
scale encoding, its exact storage cost (:meth:`NumberFormat.bits_per_weight`) and
:meth:`NumberFormat.encode`, which every view, metric and file reads through an :class:`Encoding`.
"""

from . import gguf_blocks, gguf_kquants, integer, log2, mx, nf4, nvfp4, scaled_float  # noqa: F401  (they register)
from .base import FORMATS, Encoding, NumberFormat, TableEncoding, get_format, register

__all__ = ["FAMILIES", "FORMATS", "Encoding", "NumberFormat", "TableEncoding", "get_format", "register"]

FAMILIES: tuple[str, ...] = ("int", "log2", "float", "nf4", "mx", "nvfp4", "gguf")
"""Display order of the format families."""

_ordered = sorted(FORMATS.values(), key=lambda f: FAMILIES.index(f.family) if f.family in FAMILIES else len(FAMILIES))
FORMATS.clear()
FORMATS.update((f.name, f) for f in _ordered)
