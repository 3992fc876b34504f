"""One code path for every granularity: a tensor seen as a 2-D array of rows.

Every range, histogram, calibrator and metric in qcore works on ``rows`` of shape
``(n_rows, row_len)``: one row per quantization range.

- per-tensor: ``x.reshape(1, -1)``
- per-channel: ``moveaxis(x, axis, 0).reshape(C, -1)`` (as PyTorch's per-channel observers)
- per-group: ``moveaxis(x, axis, -1).reshape(-1, G)``: groups of ``G`` consecutive
  elements along ``axis``; a short last group is padded with NaN. A group never spans
  two lines, so a ``G`` above the axis length ``L`` gives one group of ``L`` per line
  (rows of width ``min(G, L)``: padding never exceeds the data).

The tensor's float32 size is checked against the memory budget (:mod:`qcore.budget`)
before the rows are built.

Non-finite inputs (NaN, +-Inf) and padding are stored as NaN in ``rows``: they
take no part in calibration and every consumer ignores NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .budget import check_tensor
from .scheme import QuantOptionError, QuantScheme


@dataclass(frozen=True, eq=False)
class Rows:
    """A tensor regrouped into one row per quantization range.

    Attributes
    ----------
    values : ndarray of float32, shape (n_rows, row_len)
        Read-only; NaN marks a missing element (non-finite input or padding).
    shape : tuple of int
        Shape of the original tensor.
    granularity, axis, group_size
        How the rows were formed (``axis`` and ``group_size`` are None when unused).
    nonfinite_count : int
        Number of NaN/Inf elements of the original tensor.
    padded : int
        Padding elements added to the last group of every group row set.
    """

    values: np.ndarray
    shape: tuple[int, ...]
    granularity: str
    axis: int | None
    group_size: int | None
    nonfinite_count: int
    padded: int

    @property
    def n_rows(self) -> int:
        return self.values.shape[0]

    @property
    def has_missing(self) -> bool:
        """True when some entries of ``values`` are NaN."""
        return self.nonfinite_count > 0 or self.padded > 0

    @property
    def size(self) -> int:
        """Number of finite elements that take part in calibration."""
        return int(np.prod(self.shape, dtype=np.int64)) - self.nonfinite_count

    @cached_property
    def finite_mask(self) -> np.ndarray | None:
        """Boolean mask of present elements, or None when all are present."""
        if not self.has_missing:
            return None
        mask = ~np.isnan(self.values)
        mask.flags.writeable = False
        return mask

    @cached_property
    def count(self) -> np.ndarray:
        """Present elements per row, int64 of shape (n_rows,)."""
        mask = self.finite_mask
        if mask is None:
            return np.full(self.n_rows, self.values.shape[1], dtype=np.int64)
        return mask.sum(axis=1, dtype=np.int64)

    @cached_property
    def min(self) -> np.ndarray:
        """Row minimum (float64; 0 for an empty row)."""
        return self._extrema[0]

    @cached_property
    def max(self) -> np.ndarray:
        """Row maximum (float64; 0 for an empty row)."""
        return self._extrema[1]

    @cached_property
    def _extrema(self) -> tuple[np.ndarray, np.ndarray]:
        """Row minimum and maximum over present elements, float64 (0 for an empty row), from one read."""
        if self.values.shape[1] == 0:
            return np.zeros(self.n_rows), np.zeros(self.n_rows)
        if not self.has_missing:
            lo, hi = row_reduce(self.values, np.minimum, np.maximum)
            return lo.astype(np.float64), hi.astype(np.float64)
        lo, hi = (out.astype(np.float64) for out in row_reduce(self.values, np.fmin, np.fmax))
        lo[~np.isfinite(lo)], hi[~np.isfinite(hi)] = 0.0, 0.0  # an all-missing row
        return lo, hi

    @cached_property
    def zero_filled(self) -> np.ndarray:
        """``values`` with missing entries set to 0 (``values`` itself when nothing is missing); read-only."""
        if not self.has_missing:
            return self.values
        out = np.where(self.finite_mask, self.values, np.float32(0.0))
        out.flags.writeable = False
        return out

    @cached_property
    def square_sum(self) -> np.ndarray:
        """Row ``sum x^2`` over present elements (float64), cached for every error report of the rows."""
        return np.einsum("ij,ij->i", self.zero_filled, self.zero_filled, dtype=np.float64)

    @cached_property
    def absmax(self) -> np.ndarray:
        """Row ``max|x|`` (float64)."""
        return np.maximum(np.abs(self.min), np.abs(self.max))

    def restore(self, rows_like: np.ndarray) -> np.ndarray:
        """Map an array shaped like ``values`` back to the tensor's shape.

        Inverse of :func:`to_rows` (padding dropped).
        """
        if self.granularity == "tensor":
            return rows_like.reshape(self.shape)
        moved = _moved_shape(self.shape, self.axis, self.granularity)
        if self.granularity == "channel":
            return np.moveaxis(rows_like.reshape(moved), 0, self.axis)
        length = self.shape[self.axis]
        lines = rows_like.reshape(int(np.prod(moved[:-1], dtype=np.int64)), -1)[:, :length]
        return np.moveaxis(lines.reshape(moved), -1, self.axis)

    def expand(self, per_row: np.ndarray) -> np.ndarray:
        """Broadcast one value per row to the tensor's shape (e.g. a per-element scale)."""
        return self.restore(np.broadcast_to(np.asarray(per_row)[:, None], self.values.shape))


SHORT_ROW = 64
"""Widest row that :func:`row_reduce` reduces through a transposed copy."""

ROW_BLOCK = 1 << 16
"""Elements per transposed block of :func:`row_reduce` (stays in cache)."""


def row_reduce(a: np.ndarray, *ufuncs: np.ufunc) -> tuple[np.ndarray, ...]:
    """``ufunc.reduce(a, axis=1)`` for each of ``ufuncs`` (a 2-D array read once), in ``a``'s dtype.

    numpy's reduction over a short last axis pays a per-row overhead; rows of at most :data:`SHORT_ROW` values
    are instead copied block by block to a transposed ``(row_len, k)`` array and reduced along its first axis,
    one vectorised step per column. Meant for order-independent reductions (min, max, fmin, fmax, or).
    """
    n_rows, width = a.shape
    if width > SHORT_ROW or width == 0:
        return tuple(u.reduce(a, axis=1) for u in ufuncs)
    outs = tuple(np.empty(n_rows, dtype=a.dtype) for _ in ufuncs)
    step = max(1, ROW_BLOCK // width)
    for r in range(0, n_rows, step):
        block = np.ascontiguousarray(a[r : r + step].T)
        for u, out in zip(ufuncs, outs, strict=True):
            u.reduce(block, axis=0, out=out[r : r + step])
    return outs


def _moved_shape(shape: tuple[int, ...], axis: int | None, granularity: str) -> tuple[int, ...]:
    rest = [d for i, d in enumerate(shape) if i != axis]
    if granularity == "channel":
        return (shape[axis], *rest)
    return (*rest, shape[axis])


def normalize_axis(axis: int, ndim: int) -> int:
    """Return ``axis`` in ``[0, ndim)``; raise :class:`QuantOptionError` otherwise."""
    if not -ndim <= axis < ndim:
        raise QuantOptionError(f"axis {axis} is out of range for a {ndim}-D array")
    return axis % ndim


def to_rows(x: np.ndarray, scheme: QuantScheme) -> Rows:
    """Regroup ``x`` into one row per quantization range of ``scheme``.

    Parameters
    ----------
    x : ndarray
        Real-valued tensor; float16/bfloat16/float64 are computed in float32.
    scheme : QuantScheme
        Supplies granularity, axis and group size.

    Returns
    -------
    Rows
        ``values`` of shape ``(1, N)``, ``(C, N/C)`` or ``(N_groups, G)``.
    """
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" and x.dtype.name not in ("bfloat16",):
        raise QuantOptionError(f"expected a real numeric array, got dtype {x.dtype}")
    if x.size == 0:
        raise QuantOptionError("the array is empty")
    check_tensor(x.size, f"the array of shape {tuple(x.shape)}")
    values = np.asarray(x, dtype=np.float32)
    finite = np.isfinite(values)
    n_nonfinite = values.size - int(np.count_nonzero(finite))
    if n_nonfinite == values.size:
        raise QuantOptionError("the array has no finite values")
    if n_nonfinite:
        values = np.where(finite, values, np.float32(np.nan))

    granularity = scheme.granularity
    axis: int | None = None
    group_size: int | None = None
    padded = 0
    if granularity == "tensor":
        rows = values.reshape(1, -1)
    else:
        if x.ndim < 1 or (x.ndim < 2 and not (granularity == "group" and scheme.format != "int")):
            # a number format's blocks also run along a 1-D tensor (bitsandbytes, llama.cpp); INT groups do not
            raise QuantOptionError(f"{granularity} granularity needs an array of at least 2 dimensions, got {x.ndim}-D")
        axis = normalize_axis(scheme.axis, x.ndim)
        if granularity == "channel":
            rows = np.moveaxis(values, axis, 0).reshape(x.shape[axis], -1)
        else:
            group_size = scheme.group_size
            width = min(group_size, x.shape[axis])
            lines = np.moveaxis(values, axis, -1).reshape(-1, x.shape[axis])
            pad = -x.shape[axis] % width
            if pad:
                lines = np.pad(lines, ((0, 0), (0, pad)), constant_values=np.nan)
                padded = pad * lines.shape[0]
            rows = lines.reshape(-1, width)
    rows = np.ascontiguousarray(rows)
    rows.flags.writeable = False
    return Rows(rows, tuple(x.shape), granularity, axis, group_size, n_nonfinite, padded)
