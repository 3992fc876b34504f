"""One tensor of a checkpoint under several configurations, in row chunks.

Channel and group ranges are independent of each other, so a configuration with
channel or group granularity is analysed on slices of the tensor (about
:data:`CHUNK_ELEMENTS` elements each, cut along an axis that never splits a range) and
the error sums are added: the same numbers as :func:`qcore.analyze` on the whole tensor,
with one chunk in float32 at a time. Per-tensor configurations (and the methods of
:data:`WHOLE_TENSOR_METHODS`) need the whole tensor in float32: such a tensor must fit the memory budget
(:func:`qcore.budget.check_tensor`), else it becomes an error row naming the limit.

Per tensor: ``max|x| / std`` and the excess kurtosis ``m4 / m2^2 - 3`` (central moments
from float64 power sums about a shift), and *outlier channels*: input channels (last
axis) whose ``max|x|`` exceeds :data:`OUTLIER_RATIO` times the median input channel's.
Per configuration: ``SQNR = 10 log10(sum x^2 / sum e^2)``, the MSE relative to the
tensor's power ``sum e^2 / sum x^2``, the clipped share, bits per weight and bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..analysis import analyze
from ..budget import check_tensor
from ..calibrators import make_calibrator
from ..io.base import to_float32
from ..scheme import QuantOptionError
from .checkpoint import TensorRef, read_tensor
from .config import ScanConfig
from .heap import reuse_freed_blocks
from .names import parse_name

CHUNK_ELEMENTS = 1 << 20
SEARCH_GROUPS = 1024
"""Groups per chunk for a searching method (not minmax): each group gets a histogram of up to 2048 bins."""
OUTLIER_RATIO = 6.0
MOMENT_BLOCK = 1 << 15
"""Elements per block of the moments' float64 pass (two 256 KiB buffers: they stay in cache)."""
WHOLE_TENSOR_METHODS = frozenset({"ema", "admm", "easyquant"})
"""Methods analysed on the whole tensor: ``ema`` batches along the tensor's own axis; ADMM and EasyQuant choose
their search path (sorted values, histogram samples) from the tensor's size."""


class TensorRejected(ValueError):
    """A tensor the scan reports as an error row (non-finite values, ...)."""


@dataclass
class _Moments:
    """Running float64 power sums of ``x - shift``, ``max|x|`` and the input-channel ``max|x|``.

    One fused pass per chunk over blocks of :data:`MOMENT_BLOCK` elements: each block is cast to float64
    minus the shift once, in cache, and gives ``sum d``, ``sum d^2``, ``sum d^3``, ``sum d^4``.
    """

    shift: float | None = None
    n: int = 0
    s1: float = 0.0
    s2: float = 0.0
    s3: float = 0.0
    s4: float = 0.0
    absmax: float = 0.0
    columns: np.ndarray | None = None
    buffers: tuple[np.ndarray, np.ndarray] = field(
        default_factory=lambda: (np.empty(MOMENT_BLOCK), np.empty(MOMENT_BLOCK))
    )

    def add(self, chunk: np.ndarray, where: tuple[slice, ...], shape: tuple[int, ...]) -> None:
        if self.shift is None:
            self.shift = float(chunk.mean(dtype=np.float64))
        flat = chunk.reshape(-1)
        sums = np.zeros(4)
        for start in range(0, flat.size, MOMENT_BLOCK):
            d, d2 = (b[: min(MOMENT_BLOCK, flat.size - start)] for b in self.buffers)
            np.subtract(flat[start : start + MOMENT_BLOCK], self.shift, out=d, dtype=np.float64)
            np.multiply(d, d, out=d2)
            # einsum: single-threaded (a threaded BLAS dot stalls on a busy machine)
            sums += (d.sum(), d2.sum(), np.einsum("i,i->", d2, d), np.einsum("i,i->", d2, d2))
        if not math.isfinite(sums[1]):  # NaN or Inf in the chunk (float32 values cannot overflow float64 squares)
            bad = chunk.size - int(np.count_nonzero(np.isfinite(chunk)))
            raise TensorRejected(f"{bad} NaN/Inf values (in the chunk {where}); a checkpoint tensor should have none")
        self.n += flat.size
        self.s1 += float(sums[0])
        self.s2 += float(sums[1])
        self.s3 += float(sums[2])
        self.s4 += float(sums[3])
        lines = chunk.reshape(-1, chunk.shape[-1]) if chunk.ndim else chunk.reshape(1, 1)
        col = np.maximum(lines.max(axis=0), -lines.min(axis=0))
        self.absmax = max(self.absmax, float(col.max()))
        if len(shape) >= 2:
            if self.columns is None:
                self.columns = np.zeros(shape[-1], dtype=np.float32)
            self.columns[where[-1]] = np.maximum(self.columns[where[-1]], col)

    def summary(self) -> dict[str, Any]:
        mu = self.s1 / self.n
        m2 = self.s2 / self.n - mu * mu
        m4 = self.s4 / self.n - 4 * mu * self.s3 / self.n + 6 * mu * mu * self.s2 / self.n - 3 * mu**4
        std = math.sqrt(max(m2, 0.0))
        outliers = None
        if self.columns is not None:
            median = float(np.median(self.columns))
            outliers = int(np.count_nonzero(self.columns > OUTLIER_RATIO * median)) if median > 0 else 0
        return {
            "std": std,
            "max_abs_over_std": self.absmax / std if std > 0 else None,
            "kurtosis": m4 / (m2 * m2) - 3.0 if m2 > 0 else None,
            "outlier_channels": outliers,
        }


@dataclass
class _Sums:
    """Error sums of one configuration over the chunks."""

    signal: float = 0.0
    error: float = 0.0
    clipped: float = 0.0
    count: int = 0
    max_abs_error: float = 0.0

    def add(self, x: np.ndarray, config: ScanConfig, options: dict[str, Any]) -> None:
        a = analyze(x, config.scheme, config.method, config.convention, **options)
        r = a.report
        self.signal += float(a.rows.square_sum.sum())
        self.error += r.mse * r.count
        self.clipped += r.clipped_fraction * r.count
        self.count += r.count
        self.max_abs_error = max(self.max_abs_error, r.max_abs_error)


def pinned_options(config: ScanConfig, shape: tuple[int, ...]) -> dict[str, Any]:
    """The config's options with a size-dependent choice fixed as the whole tensor would make it.

    MSE's ``source='auto'`` picks raw values or the histogram from the number of rows and
    elements; a chunk must take the whole tensor's path to give its numbers. The choice is
    asked of the calibrator itself, on the whole tensor's row layout.
    """
    options = dict(config.options)
    calibrator = make_calibrator(config.method, **options)
    if getattr(calibrator, "source", None) == "auto":
        n = math.prod(shape)
        s = config.scheme
        if s.granularity == "tensor" or len(shape) < 2:
            n_rows, length = 1, n
        elif s.granularity == "channel":
            n_rows = shape[s.axis % len(shape)]
            length = n // n_rows
        else:
            line = shape[s.axis % len(shape)]
            n_rows, length = (n // line) * -(-line // s.group_size), s.group_size
        layout = SimpleNamespace(n_rows=n_rows, size=n, values=SimpleNamespace(shape=(n_rows, length)))
        options["source"] = calibrator.resolved_source(layout, s)
    return options


def chunk_axis(config: ScanConfig, ndim: int) -> int | None:
    """An axis along which slices never split a range of ``config``; None when the whole tensor is needed."""
    s = config.scheme
    if s.granularity == "tensor" or ndim < 2 or config.method in WHOLE_TENSOR_METHODS:
        return None
    axis = s.axis % ndim
    if s.granularity == "channel":
        return axis
    return 0 if axis != 0 else 1


def chunk_limit(config: ScanConfig) -> int:
    """Elements per chunk: :data:`CHUNK_ELEMENTS`, or :data:`SEARCH_GROUPS` groups for a per-group search."""
    s = config.scheme
    if s.granularity == "group" and config.method != "minmax":
        return min(CHUNK_ELEMENTS, SEARCH_GROUPS * s.group_size)
    return CHUNK_ELEMENTS


def chunks(shape: tuple[int, ...], axis: int, limit: int | None = None) -> list[tuple[slice, ...]]:
    """Index tuples slicing ``axis`` into pieces of about ``limit`` (:data:`CHUNK_ELEMENTS`) elements."""
    per_index = max(1, math.prod(shape) // max(shape[axis], 1))
    step = max(1, (limit or CHUNK_ELEMENTS) // per_index)
    full = [slice(None)] * len(shape)
    out = []
    for start in range(0, shape[axis], step):
        idx = list(full)
        idx[axis] = slice(start, min(start + step, shape[axis]))
        out.append(tuple(idx))
    return out


def _applies(config: ScanConfig, shape: tuple[int, ...]) -> str | None:
    if config.scheme.granularity != "tensor" and len(shape) < 2:
        return f"{config.scheme.granularity} granularity needs a tensor of at least 2 dimensions"
    return None


def _base_row(ref: TensorRef) -> dict[str, Any]:
    parts = parse_name(ref.name)
    return {
        "tensor": ref.name,
        "file": ref.file,
        "layer": parts.layer,
        "kind": parts.kind,
        "shape": list(ref.shape),
        "dtype": ref.dtype,
        "elements": ref.size,
        "stored_bytes": ref.nbytes,
    }


def error_rows(ref: TensorRef, reason: str) -> list[dict[str, Any]]:
    """One error row for a tensor that could not be scanned."""
    return [{**_base_row(ref), "config": None, "status": "error", "error": reason}]


def _result(ref: TensorRef, config: ScanConfig, sums: _Sums, stats: dict[str, Any]) -> dict[str, Any]:
    rel = sums.error / sums.signal if sums.signal > 0 else None
    return {
        **_base_row(ref),
        "config": config.label,
        "status": "ok",
        "error": None,
        "sqnr_db": None if sums.error == 0 or sums.signal == 0 else 10.0 * math.log10(sums.signal / sums.error),
        "rel_mse": rel,
        "mse": sums.error / sums.count,
        "clipped_pct": 100.0 * sums.clipped / sums.count,
        "max_abs_error": sums.max_abs_error,
        "max_abs_over_std": stats["max_abs_over_std"],
        "kurtosis": stats["kurtosis"],
        "outlier_channels": stats["outlier_channels"],
        "bits_per_weight": config.bits_per_weight(ref.shape),
        "bytes": config.nbytes(ref.shape),
    }


def scan_tensor(ref: TensorRef, configs: list[ScanConfig]) -> list[dict[str, Any]]:
    """Rows for one tensor: one per configuration, or error rows; never raises for bad data."""
    reuse_freed_blocks()
    try:
        return _scan(ref, configs)
    except (ValueError, OSError, MemoryError) as exc:  # TensorLoadError, QuantOptionError, TensorRejected, ...
        return error_rows(ref, _message(exc))


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _scan(ref: TensorRef, configs: list[ScanConfig]) -> list[dict[str, Any]]:
    if ref.size == 0:
        raise TensorRejected("the tensor is empty")
    raw = read_tensor(ref)
    shape = tuple(raw.shape)
    skipped = {i: _applies(c, shape) for i, c in enumerate(configs)}
    failed: dict[int, str] = {}  # configurations that failed on this tensor (impossible options, over budget)
    options: dict[int, dict[str, Any]] = {}
    for i in (i for i in range(len(configs)) if skipped[i] is None):
        try:
            options[i] = pinned_options(configs[i], shape)
        except QuantOptionError as exc:
            failed[i] = _message(exc)
    by_axis: dict[int | None, list[int]] = {}
    for i in options:
        by_axis.setdefault(chunk_axis(configs[i], len(shape)), []).append(i)
    sums = {i: _Sums() for i in options}

    def add(i: int, x: np.ndarray) -> None:
        if i not in failed:
            try:
                sums[i].add(x, configs[i], options[i])
            except QuantOptionError as exc:
                failed[i] = _message(exc)

    moments = _Moments()
    first_axis = next((a for a in by_axis if a is not None), 0 if raw.ndim else None)
    passes = sorted({a for a in by_axis if a is not None} | ({first_axis} if first_axis is not None else set()))
    for axis in passes:
        limit = min((chunk_limit(configs[i]) for i in by_axis.get(axis, [])), default=CHUNK_ELEMENTS)
        for where in chunks(shape, axis, limit):
            x = to_float32(raw[where], ref.name)
            if axis == first_axis:
                moments.add(x, where, shape)
            for i in by_axis.get(axis, []):
                add(i, x)
            del x
    if None in by_axis or first_axis is None:
        try:
            check_tensor(ref.size, f"tensor {ref.name!r} (whole-tensor work: per-tensor, ema, admm or easyquant)")
        except QuantOptionError as exc:
            if first_axis is None:
                raise
            failed.update((i, _message(exc)) for i in by_axis[None])
        else:
            x = to_float32(np.asarray(raw), ref.name)
            if first_axis is None:
                moments.add(x, (slice(None),) * x.ndim, shape)
            for i in by_axis.get(None, []):
                add(i, x)
            del x
    stats = moments.summary()
    rows = []
    for i, config in enumerate(configs):
        if skipped[i] is not None:
            rows.append({**_base_row(ref), "config": config.label, "status": "skipped", "error": skipped[i]})
        elif i in failed:
            rows.append({**_base_row(ref), "config": config.label, "status": "error", "error": failed[i]})
        else:
            rows.append(_result(ref, config, sums[i], stats))
    return rows
