"""The number-format interface, its registry and the encoded result every view reads.

A :class:`NumberFormat` is one object per format (like a calibrator): its element cast or levels, its block
structure, its scale encoding and its exact storage cost. :meth:`NumberFormat.encode` turns a tensor's rows
(one row per scale: a tensor, a channel, a group or a block) into an :class:`Encoding`: the dequantized values,
the level each element took, the per-row scales, and the arrays of the format's own storage layout.

Storage cost of a tensor of ``n`` elements in ``r`` rows (scales) is exact:

.. math:: \\text{bits} = n\\,b_{elem} + r\\,b_{row} + b_{tensor}, \\qquad
          \\text{bits per weight} = \\text{bits} / n

with ``b_row`` the bits of one row's scale (and zero point or minimum) and ``b_tensor`` those of a per-tensor
scale (NVFP4) or of the double-quantization statistics (NF4).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..budget import check_work
from ..calibrators import Calibration
from ..constraints import Constraint, validate
from ..elementwise_metrics import LevelGrid, ScaledLevels
from ..granularity import Rows
from ..metrics import ErrorReport, measure
from ..params import QParams
from ..scheme import QuantOptionError, QuantScheme
from ..sorted_rows import SortedRows


class Encoding(ABC):
    """A tensor's rows encoded by a format: what every view, metric and file reads.

    Attributes
    ----------
    rows : Rows
        The original values, one row per scale.
    scale : ndarray of float64, shape (n_rows,)
        Row scale (INT step, float scale ``amax / fmax``, block scale ``d`` / ``2^e`` / absmax).
    zero_point : ndarray of int64, shape (n_rows,)
        Integer zero point (0 where the format has none).
    clip_min, clip_max : ndarray of float64, shape (n_rows,)
        Outside this range an error counts as clipping (the row's lowest and highest level).
    levels_total : int
        Distinct codes of one row (the size of the level index range).
    uniform : bool
        Integer codes with an affine ``(q - z) s`` (usable in an integer matmul).
    """

    rows: Rows
    scale: np.ndarray
    zero_point: np.ndarray
    clip_min: np.ndarray
    clip_max: np.ndarray
    levels_total: int
    uniform: bool = False

    @property
    def qmin(self) -> int:
        """Smallest code (the level index 0 unless the format has signed integer codes)."""
        return 0

    @property
    def qmax(self) -> int:
        """Largest code."""
        return self.levels_total - 1

    @abstractmethod
    def dequantized_rows(self) -> np.ndarray:
        """float32 round trip shaped like ``rows.values``."""

    @abstractmethod
    def level_rows(self) -> np.ndarray:
        """Level index ``0 .. levels_total - 1`` of every element, shaped like ``rows.values``."""

    @abstractmethod
    def row_levels(self, row: int) -> np.ndarray:
        """Sorted representable values of row ``row`` (float64)."""

    @abstractmethod
    def level_grid(self, idx: np.ndarray) -> np.ndarray:
        """What every level index decodes to in rows ``idx``: ``(len(idx), n_sub, levels_total)`` float64.

        ``n_sub`` grids per row (1 but for GGUF's K-quants, one per sub-block); sub-block ``j`` holds the
        row's columns ``[j L / n_sub, (j + 1) L / n_sub)``.
        """

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """The format's own storage (codes, scales), as written next to ``dequantized`` in an ``.npz``."""

    def codes(self) -> np.ndarray:
        """Level index of every element in the tensor's shape."""
        return self.rows.restore(self.level_rows())

    def dequantized(self) -> np.ndarray:
        """float32 round trip in the tensor's shape (NaN where the input was not finite)."""
        x_hat = self.dequantized_rows()
        if self.rows.finite_mask is not None:
            x_hat = np.where(self.rows.finite_mask, x_hat, np.float32(np.nan))
        return self.rows.restore(x_hat)

    def round_trip(self, values: np.ndarray, row: int) -> np.ndarray:
        """Values mapped with row ``row``'s scale: nearest level of :meth:`row_levels` (float32)."""
        levels = self.row_levels(row)
        mids = (levels[1:] + levels[:-1]) / 2.0
        out = levels[np.searchsorted(mids, np.asarray(values, dtype=np.float64))]
        fmax = np.finfo(np.float32).max  # a float64 level at the float32 range's end may round just past it
        return np.clip(out, -fmax, fmax).astype(np.float32)

    def level_spacing(self) -> LevelGrid | ScaledLevels:
        """What the rounding reference reads the level spacing from: :meth:`level_grid` unless a subclass knows
        a cheaper form."""
        return self.level_grid

    def report(self, sorted_rows: SortedRows | None = None) -> ErrorReport:
        """Error metrics of the round trip (:func:`qcore.metrics.measure`; reference from the local spacing)."""
        return measure(
            self.rows,
            self.dequantized_rows(),
            self.level_rows(),
            self.clip_min,
            self.clip_max,
            self.levels_total,
            self.level_spacing(),
        )


WORK_BYTES_PER_ELEMENT = 24
"""Memory an encoding holds per element at its peak: the zero-filled and the scaled float32 copies, the round trip
(float32), the elements and level indices (1-2 bytes), the packed storage: checked against the work budget."""


@dataclass(eq=False)
class TableEncoding(Encoding):
    """An encoding computed at once: round trip, level indices and storage arrays held as arrays.

    ``level_table`` gives rows' representable values from their scale(s): ``level_table(idx)`` returns an
    array of shape ``(len(idx), sub_blocks * levels_total)`` float64, the grid of sub-block ``j`` in columns
    ``[j levels_total, (j + 1) levels_total)`` in level-index order (``sub_blocks = 1`` but for GGUF's K-quants,
    one grid per sub-block of a super-block). When every grid is one unit grid times a row scale (plus a per-row
    offset; or a uniform unit grid times a scale per sub-block), ``unit_levels`` and ``level_scale`` say so and the
    error report reads the spacing from them
    (:class:`qcore.elementwise_metrics.ScaledLevels`) instead of building tables.
    """

    rows: Rows
    x_hat: np.ndarray
    level_index: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    clip_min: np.ndarray
    clip_max: np.ndarray
    levels_total: int
    storage: dict[str, np.ndarray]
    level_table: Any  # callable: ndarray of row indices -> (k, sub_blocks * levels_total) float64 values
    sub_blocks: int = 1
    unit_levels: np.ndarray | None = None
    level_scale: np.ndarray | None = None

    def dequantized_rows(self) -> np.ndarray:
        return self.x_hat

    def level_grid(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.level_table(idx), dtype=np.float64).reshape(len(idx), self.sub_blocks, -1)

    def level_spacing(self) -> LevelGrid | ScaledLevels:
        if self.unit_levels is None:
            return self.level_grid
        return ScaledLevels(np.asarray(self.unit_levels, dtype=np.float64), np.asarray(self.level_scale, np.float64))

    def level_rows(self) -> np.ndarray:
        return self.level_index

    def row_levels(self, row: int) -> np.ndarray:
        return np.unique(self.level_table(np.array([row]))[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self.storage)


def level_stats(level_table, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(min, max, |level 1 - level 0|)`` of every row's levels (of its first sub-block for the step), by chunks of
    4096 rows (tables stay small); ``level_table`` as :class:`TableEncoding`'s."""
    lo, hi, step = np.empty(n_rows), np.empty(n_rows), np.empty(n_rows)
    for r0 in range(0, n_rows, 1 << 12):
        idx = np.arange(r0, min(n_rows, r0 + (1 << 12)))
        table = level_table(idx)
        lo[idx], hi[idx], step[idx] = table.min(axis=1), table.max(axis=1), np.abs(table[:, 1] - table[:, 0])
    return lo, hi, step


@dataclass(frozen=True)
class NumberFormat(ABC):
    """One number format. Subclasses are frozen dataclasses; fields named in ``option_names`` are user options.

    Attributes
    ----------
    name, label, summary : str
        Registry key, display name and one sentence for the app.
    bits : int or None
        Element width (``None``: any ``scheme.bits``, as INT and log2).
    block : int or None
        Fixed block length along the last axis (``None``: tensor / channel / group rows as the scheme says).
    block_sizes : tuple of int
        Block lengths the format accepts (the first is its default).
    calibrated : bool
        Whether the range (amax) comes from a calibrator; otherwise the format's own rule sets the scales
        and only ``method='minmax'`` is accepted.
    affine : bool
        Whether an asymmetric scheme is accepted (a zero point or block minimum).
    row_bits, tensor_bits : float
        Storage of one row's scale (+ zero point / minimum) and of the per-tensor extras.
    source : str
        Where the rule comes from.
    """

    name: str
    label: str
    summary: str
    bits: int | None
    block_sizes: tuple[int, ...] = ()
    calibrated: bool = False
    affine: bool = False
    row_bits: float = 32.0
    tensor_bits: float = 0.0
    source: str = ""
    family: str = ""

    option_names: ClassVar[tuple[str, ...]] = ()
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    def __post_init__(self) -> None:
        validate(self)  # option bounds declared beside the options (qcore.constraints)

    @property
    def block(self) -> int | None:
        """Default block length along the last axis, or None for a tensor / channel / group format."""
        return self.block_sizes[0] if self.block_sizes else None

    def with_options(self, **options: Any) -> NumberFormat:
        """A copy with the options it takes replaced (others ignored, as :func:`qcore.make_calibrator` does)."""
        accepted = {k: v for k, v in options.items() if k in self.option_names and v is not None}
        if not accepted:
            return self
        try:
            return dataclasses.replace(self, **accepted)
        except TypeError as exc:
            raise QuantOptionError(f"bad options for {self.name}: {exc}") from None

    # ----- options and layout -------------------------------------------------------------------------------
    def scheme_for(self, scheme: QuantScheme) -> QuantScheme:
        """Check ``scheme`` against the format and fill in its layout (blocks along the last axis).

        Raises
        ------
        QuantOptionError
            Another element width, unsigned / narrow / reduced / custom integer grids, an asymmetric scheme for
            a format without a zero point, channel granularity or a group size for a block format.
        """
        if self.bits is not None and scheme.bits != self.bits:
            raise QuantOptionError(f"{self.name} has {self.bits}-bit elements; --bits {scheme.bits} does not apply")
        for flag, what in (
            (not scheme.signed, "unsigned codes"),
            (scheme.narrow_range, "a narrow range"),
            (scheme.reduce_range, "a reduced range"),
            (scheme.quant_min is not None, "a custom integer range"),
        ):
            if flag:
                raise QuantOptionError(f"{self.name} does not take {what}: that is an option of the int format")
        if not scheme.symmetric and not self.affine:
            raise QuantOptionError(f"{self.name} is symmetric (no zero point); use --scheme symmetric")
        if not self.block_sizes:
            return scheme
        if scheme.granularity == "channel":
            raise QuantOptionError(
                f"{self.name} has blocks of {self.block} along the last axis, not per-channel scales; "
                "use --granularity tensor (the format's blocks) or group"
            )
        if scheme.granularity == "tensor":
            return scheme.with_(granularity="group", group_size=self.block, axis=-1)
        if scheme.group_size not in self.block_sizes:
            sizes = ", ".join(str(b) for b in self.block_sizes)
            raise QuantOptionError(f"{self.name} has blocks of {sizes}; group size {scheme.group_size} is not one")
        return scheme

    def check_rows(self, rows: Rows) -> None:
        """Refuse rows that are not the format's blocks (e.g. rows built for another scheme) or that its storage
        cannot hold (GGUF: a row that is not whole blocks)."""
        if self.block_sizes and (rows.granularity != "group" or rows.group_size not in self.block_sizes):
            raise QuantOptionError(
                f"{self.name} encodes blocks of {self.block}; these rows are laid out per {rows.granularity}"
            )
        n = rows.values.size
        check_work(WORK_BYTES_PER_ELEMENT * n, n, f"the {self.name} encoding of {n:,} values")

    # ----- storage ------------------------------------------------------------------------------------------
    def storage_bits(self, n_elements: int, n_rows: int) -> int:
        """Exact bits of a tensor of ``n_elements`` in ``n_rows`` rows: ``n b + r b_row + b_tensor``."""
        element_bits = self.bits if self.bits is not None else 0
        return round(n_elements * element_bits + n_rows * self.row_bits + self.tensor_bits)

    def bits_per_weight(self, scheme: QuantScheme, shape: tuple[int, ...] | None = None) -> float:
        """Bits per element including scales and zero points.

        With ``shape`` the exact cost of that tensor (partial last blocks padded); without it the nominal cost
        of whole groups / blocks, ``b + b_row / G`` (per-tensor and per-channel scales counted as 0).
        """
        scheme = self.scheme_for(scheme)
        bits = scheme.bits if self.bits is None else self.bits
        if shape is None:
            per_row = self.row_bits + self.tensor_bits_per_row(scheme)
            return bits + (per_row / scheme.group_size if scheme.granularity == "group" else 0.0)
        n = int(np.prod(shape, dtype=np.int64))
        return self.storage_bits_for(scheme, shape) / n

    def tensor_bits_per_row(self, scheme: QuantScheme) -> float:
        """Per-row share of storage that is not per row (NF4 double quantization's second-level scales)."""
        return 0.0

    def storage_bits_for(self, scheme: QuantScheme, shape: tuple[int, ...]) -> int:
        """Exact bits of a tensor of ``shape`` under ``scheme`` (its rows counted as :mod:`qcore.granularity`)."""
        return self.storage_bits(int(np.prod(shape, dtype=np.int64)), count_rows(scheme, shape))

    # ----- calibration and encoding -------------------------------------------------------------------------
    def check_method(self, method: str, convention: str) -> None:
        """Refuse a calibrator or convention the format does not take."""
        if not self.calibrated and method != "minmax":
            raise QuantOptionError(
                f"{self.name} sets its own block scales; --method {method} applies to formats with a calibrated "
                "range (int, fp8/fp6/fp4, log2)"
            )
        if convention != "default":
            raise QuantOptionError(f"conventions ({convention}) apply to the int format only")

    @abstractmethod
    def encode(self, rows: Rows, calibration: Calibration, params: QParams) -> Encoding:
        """Encode ``rows`` (laid out by :meth:`scheme_for`) given the calibration of their ranges."""


FORMATS: dict[str, NumberFormat] = {}


def register(fmt: NumberFormat) -> NumberFormat:
    """Add ``fmt`` to :data:`FORMATS` under ``fmt.name``."""
    if fmt.name in FORMATS:
        raise ValueError(f"format {fmt.name!r} registered twice")
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str, **options: Any) -> NumberFormat:
    """The registered format ``name`` with ``options`` applied (the ones it does not take are ignored).

    Raises
    ------
    QuantOptionError
        Unknown format or an invalid option value.
    """
    try:
        fmt = FORMATS[name]
    except KeyError:
        raise QuantOptionError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None
    return fmt.with_options(**options)


def count_rows(scheme: QuantScheme, shape: tuple[int, ...]) -> int:
    """Rows (scales) of a tensor of ``shape``: 1, ``shape[axis]``, or whole-or-partial groups along ``axis``."""
    if scheme.granularity == "tensor" or not shape:
        return 1
    length = shape[scheme.axis % len(shape)]
    if scheme.granularity == "channel":
        return length
    n = int(np.prod(shape, dtype=np.int64))
    return (n // max(length, 1)) * -(-length // scheme.group_size)


def zero_filled(rows: Rows) -> np.ndarray:
    """``rows.values`` with missing entries as 0 (block rules need every slot; 0 never raises a block's max)."""
    return np.asarray(rows.zero_filled, dtype=np.float32)
