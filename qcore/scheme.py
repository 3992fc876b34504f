"""Quantization schemes: integer grid, symmetry, granularity and rounding.

A :class:`QuantScheme` only describes *how* to quantize; it holds no data. The
integer grid for ``b`` bits is

- signed, full range:   ``[-2^(b-1), 2^(b-1) - 1]``   (int8: [-128, 127])
- signed, narrow range: ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` (int8: [-127, 127])
- unsigned:             ``[0, 2^b - 1]``               (uint8: [0, 255])

``reduce_range`` drops one bit of the grid (int8 -> [-64, 63], uint8 -> [0, 127]),
as PyTorch's fbgemm observers and ONNX Runtime's ``reduce_range`` do.

``quant_min``/``quant_max`` set a custom grid instead (PyTorch's observer arguments
of the same name; ONNX Runtime's reduced int8 table ``[-64, 64]``): it must lie in
the full grid of ``bits``/``signed`` and contain 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Literal

from .constraints import Constraint, Interval, Options, validate
from .errors import QuantOptionError

Granularity = Literal["tensor", "channel", "group"]
Rounding = Literal["half_even", "half_away"]

GRANULARITIES: tuple[str, ...] = ("tensor", "channel", "group")
ROUNDINGS: tuple[str, ...] = ("half_even", "half_away")
MIN_BITS, MAX_BITS = 2, 16
MAX_GROUP_SIZE = 1 << 24
"""Largest group size (a group never spans two lines: a larger one is the whole line, see ``to_rows``)."""
MAX_AXIS = 31


@dataclass(frozen=True)
class QuantScheme:
    """How a float tensor is mapped onto an integer grid.

    Parameters
    ----------
    bits : int
        Integer width, 2..16.
    symmetric : bool
        ``True``: clip range ``[-T, T]`` (or ``[0, T]`` unsigned), zero point 0.
        ``False``: affine, clip range ``[lo, hi]`` widened to contain 0.
    signed : bool
        Signed or unsigned integer codes.
    narrow_range : bool
        Drop the most negative signed code (int8 -> [-127, 127]).
    reduce_range : bool
        Use one bit less of the grid (legacy x86 overflow workaround).
    granularity : {'tensor', 'channel', 'group'}
        One range for the tensor, one per index of ``axis``, or one per
        ``group_size`` consecutive elements along ``axis``.
    axis : int
        Channel axis (channel granularity) or grouping axis (group granularity).
    group_size : int
        Elements per group.
    rounding : {'half_even', 'half_away'}
        Tie rule of ``round(x / s)``.
    quant_min, quant_max : int or None
        Custom integer grid (both or neither); when set it *is* the grid and
        ``narrow_range``/``reduce_range`` only record how it was derived.
    format : str
        Number format of the codes (:data:`qcore.formats.FORMATS`): ``'int'`` (the
        integer grid above, default), or a float, NF4, MX, NVFP4, GGUF or log2 format;
        ``bits`` is then the format's element width.
    """

    bits: int = 8
    symmetric: bool = True
    signed: bool = True
    narrow_range: bool = False
    reduce_range: bool = False
    granularity: Granularity = "tensor"
    axis: int = 0
    group_size: int = 128
    rounding: Rounding = "half_even"
    quant_min: int | None = None
    quant_max: int | None = None
    format: str = "int"

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "bits": Interval(MIN_BITS, MAX_BITS, integer=True),
        "symmetric": Options(True, False),
        "signed": Options(True, False),
        "narrow_range": Options(True, False),
        "reduce_range": Options(True, False),
        "granularity": Options(*GRANULARITIES),
        "axis": Interval(-MAX_AXIS - 1, MAX_AXIS, integer=True),
        "group_size": Interval(1, MAX_GROUP_SIZE, integer=True),
        "rounding": Options(*ROUNDINGS),
    }

    def __post_init__(self) -> None:
        if not isinstance(self.format, str) or not self.format:  # names are checked by qcore.formats.get_format
            raise QuantOptionError(f"format must be a format name, got {self.format!r}")
        validate(self)
        if self.narrow_range and not self.signed:
            raise QuantOptionError("narrow range applies to signed codes only")
        if self.reduce_range and self.bits < 3:
            raise QuantOptionError("reduce_range needs at least 3 bits")
        if (self.quant_min is None) != (self.quant_max is None):
            raise QuantOptionError("give both quant_min and quant_max, or neither")
        if self.quant_min is not None:
            self._check_custom_range()

    def _check_custom_range(self) -> None:
        lo, hi = self.quant_min, self.quant_max
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (lo, hi)):
            raise QuantOptionError(f"quant_min/quant_max must be integers, got {lo!r}, {hi!r}")
        full_lo, full_hi = (-(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1) if self.signed else (0, 2**self.bits - 1)
        if not full_lo <= lo <= 0 <= hi <= full_hi or lo == hi:
            raise QuantOptionError(
                f"custom range [{lo}, {hi}] must contain 0, have two codes and lie in [{full_lo}, {full_hi}]"
            )

    @property
    def qmin(self) -> int:
        """Smallest integer code."""
        if self.quant_min is not None:
            return self.quant_min
        if not self.signed:
            return 0
        bits = self.bits - 1 if self.reduce_range else self.bits
        low = -(2 ** (bits - 1))
        return low + 1 if self.narrow_range else low

    @property
    def qmax(self) -> int:
        """Largest integer code."""
        if self.quant_max is not None:
            return self.quant_max
        bits = self.bits - 1 if self.reduce_range else self.bits
        return 2**bits - 1 if not self.signed else 2 ** (bits - 1) - 1

    @property
    def levels(self) -> int:
        """Number of integer codes, ``qmax - qmin + 1``."""
        return self.qmax - self.qmin + 1

    @property
    def positive_levels(self) -> int:
        """Codes strictly above zero for a symmetric grid: ``2^(b-1) - 1`` signed, ``2^b - 1`` unsigned."""
        return self.qmax

    def with_(self, **changes: object) -> QuantScheme:
        """Return a copy with some fields replaced (validated again)."""
        return replace(self, **changes)
