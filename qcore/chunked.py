"""Calibrate per-channel and per-group rows a chunk at a time: progress between chunks, and a way to stop.

A per-channel or per-group calibrator chooses every row's range from that row alone, so the
rows ``[0, n)`` can be calibrated as consecutive chunks ``[a, b)`` and the results stacked:

.. math:: \\mathrm{calibrate}(x)_{[a, b)} = \\mathrm{calibrate}(x_{[a, b)})

provided the calibrator makes the same size-dependent choices (histogram or raw values, sorted
rows or not, ...) on every chunk as on the whole tensor. :data:`ROW_LOCAL` names the calibrators
for which this holds and lists those choices per method; a call whose chunks would choose otherwise
runs in one piece, as does a per-tensor call, a method not listed, and a tensor with a row range
beyond :data:`FLOAT32_SAFE_RANGE` (the histogram and ACIQ switch every row to float64 arithmetic then).
The stacked result equals the unchunked call's ranges, scales and per-row details, and its curves up
to the last bits of the objective values (a histogram-times-matrix product, or entropy's choice of a
lookup table, sums in an order that depends on how many rows one call holds: about 1e-15 relative). ADMM's
curve keeps at most 64 iterates per row, spaced by the longest history of a block, so the kept iterates may
differ; the chosen one does not.

Between chunks :func:`calibrate` calls ``progress(rows_done, rows_total)``; the callback may raise
:class:`Cancelled` (or anything else) to stop: nothing is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from math import lcm

import numpy as np

from .calibrators import Calibration, CalibrationData, Calibrator, Curve
from .calibrators.entropy import sparse_warning
from .granularity import Rows
from .scheme import QuantScheme
from .weighted_samples import BLOCK_ELEMENTS, default_bins, use_histogram

Progress = Callable[[int, int], None]
"""``progress(rows_done, rows_total)``, called before the first chunk and after every chunk."""

CHUNK_ELEMENTS = 1 << 20
"""Elements per chunk (4 MB of float32): about 0.4 s of the slowest per-group search (16 chunks on 4096 x 4096)."""

FLOAT32_SAFE_RANGE = (2.0**-50, 2.0**60)
"""Row magnitudes (positive max, negative min) outside this range make the core use float64 for all rows."""


class Cancelled(Exception):
    """Raised by a progress callback to stop a calibration; the caller gets no result."""


def _histogram_path(c: Calibrator, rows: Rows, scheme: QuantScheme) -> tuple:
    """ADMM and EasyQuant: histogram samples above ``max_raw`` elements, else the raw values.

    (Their compiled paths depend on the row length only, the same in every chunk.)
    """
    return (use_histogram(rows, c.bins or default_bins(scheme), c.max_raw),)  # type: ignore[attr-defined]


ROW_LOCAL: dict[str, Callable[[Calibrator, Rows, QuantScheme], tuple]] = {
    "minmax": lambda c, rows, scheme: (),
    "aciq": lambda c, rows, scheme: (),
    "entropy": lambda c, rows, scheme: (),
    "mse": lambda c, rows, scheme: (c.resolved_source(rows, scheme),),  # type: ignore[attr-defined]
    "admm": _histogram_path,
    "easyquant": _histogram_path,
}
"""Row-independent calibrators, each with its size-dependent choices (which must not differ between chunks).

Not listed: ``percentile`` (a dense histogram or not, by ``rows x bins``: the share curve would come and go),
``ema`` (rows are batches of the tensor's own shape; it refuses groups). Both take one pass, well under a second.
"""

WHOLE_DETAILS: dict[str, Callable[[Calibrator, Rows], dict]] = {
    "entropy": lambda c, rows: sparse_warning(rows, c.bins),  # type: ignore[attr-defined]
}
"""Details a method derives from all rows at once (entropy's warning: the median row count), recomputed on the whole."""

CURVE_PAD: dict[str, str] = {"admm": "edge"}
"""How a method pads its shorter curves to a common width (``np.pad`` mode; default NaN, as the others do)."""


def row_slice(rows: Rows, part: slice) -> Rows:
    """The rows ``part`` of ``rows`` as :func:`qcore.to_rows` would regroup those channels or lines alone.

    A group chunk starts and ends at a line boundary; it is laid out as ``(lines, length)`` along axis 1.
    """
    values = rows.values[part]
    missing = int(np.count_nonzero(np.isnan(values))) if rows.has_missing else 0
    n = values.shape[0]
    if rows.granularity == "channel":
        shape = tuple(n if i == rows.axis else d for i, d in enumerate(rows.shape))
        return Rows(values, shape, "channel", rows.axis, None, missing, 0)
    length = rows.shape[rows.axis]  # type: ignore[index]
    per_line = _groups_per_line(rows)
    lines = n // per_line
    padded = (per_line * values.shape[1] - length) * lines
    return Rows(values, (lines, length), "group", 1, rows.group_size, missing - padded, padded)


def _groups_per_line(rows: Rows) -> int:
    return -(-rows.shape[rows.axis] // rows.values.shape[1])  # type: ignore[index]


def plan(calibrator: Calibrator, rows: Rows, scheme: QuantScheme, chunk_elements: int = CHUNK_ELEMENTS) -> list[slice]:
    """The row chunks :func:`calibrate` uses: ``[slice(0, n)]`` when the call must run in one piece.

    Chunks hold about ``chunk_elements`` values, whole lines for groups, and a whole number of the core's
    own sample blocks (:data:`qcore.weighted_samples.BLOCK_ELEMENTS`) when that fits.
    """
    n, width = rows.values.shape
    whole = [slice(0, n)]
    choices = ROW_LOCAL.get(calibrator.name)
    if choices is None or rows.granularity == "tensor" or n < 2 or not _float32_safe(rows):
        return whole
    unit = _groups_per_line(rows) if rows.granularity == "group" else 1
    aligned = lcm(unit, max(1, BLOCK_ELEMENTS // max(width, 1)))
    unit = aligned if aligned * width <= chunk_elements else unit
    step = max(unit, chunk_elements // max(width, 1) // unit * unit)
    if step >= n:
        return whole
    chunks = [slice(a, min(a + step, n)) for a in range(0, n, step)]
    expected = choices(calibrator, rows, scheme)
    # every full chunk is alike in size; the last may be shorter
    if any(choices(calibrator, row_slice(rows, c), scheme) != expected for c in (chunks[0], chunks[-1])):
        return whole
    return chunks


def _float32_safe(rows: Rows) -> bool:
    """Whether every row's magnitudes lie in :data:`FLOAT32_SAFE_RANGE` (zeros aside)."""
    tiny, huge = FLOAT32_SAFE_RANGE
    magnitudes = np.concatenate([rows.max[rows.max > 0], -rows.min[rows.min < 0]])
    return magnitudes.size == 0 or bool(magnitudes.min() >= tiny and magnitudes.max() <= huge)


def calibrate(
    calibrator: Calibrator,
    data: CalibrationData,
    scheme: QuantScheme,
    progress: Progress | None = None,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Calibration:
    """``calibrator.calibrate(data, scheme)``, a chunk of rows at a time (:func:`plan`), with ``progress`` between.

    What the chunks build (histograms, sorted rows) is kept in ``data``, stacked, as the whole call would keep it.

    Raises
    ------
    Cancelled
        When ``progress`` raises it (no result; ``data`` keeps nothing of the chunks).
    """
    rows = data.rows
    chunks = plan(calibrator, rows, scheme, chunk_elements)
    total = rows.n_rows
    if progress is not None:
        progress(0, total)
    if len(chunks) == 1:
        result = calibrator.calibrate(data, scheme)
        if progress is not None:
            progress(total, total)
        return result
    results, parts = [], []
    for chunk in chunks:
        part = data.select(chunk, row_slice(rows, chunk))
        results.append(calibrator.calibrate(part, scheme))
        parts.append(part)
        if progress is not None:
            progress(chunk.stop, total)
    data.adopt(parts)
    whole = WHOLE_DETAILS.get(calibrator.name)
    overrides = {} if whole is None else whole(calibrator, rows)
    return stack(results, CURVE_PAD.get(calibrator.name, "constant"), overrides)


def stack(parts: list[Calibration], pad: str = "constant", overrides: dict | None = None) -> Calibration:
    """One calibration of consecutive row chunks: per-row arrays stacked, curves padded to one width.

    Details that are not per row (the path a method took) must agree between chunks; ``overrides`` replaces
    those the method derives from all rows together (each key either set there or dropped when absent).
    """
    overrides = overrides or {}
    first = parts[0]
    sizes = [p.lo.shape[0] for p in parts]

    def rows_of(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    details = {
        key: _stack_detail(key, [p.details.get(key, _MISSING) for p in parts], sizes, pad)
        for key in first.details
        if key not in overrides and key not in WHOLE_KEYS
    }
    details.update(overrides)
    curve = None if first.curve is None else _stack_curves([p.curve for p in parts], pad)  # type: ignore[misc]
    return Calibration(
        first.method,
        rows_of("lo"),  # type: ignore[arg-type]
        rows_of("hi"),  # type: ignore[arg-type]
        curve,
        rows_of("scale"),
        rows_of("grid"),
        rows_of("splits"),
        details,
    )


_MISSING = object()
WHOLE_KEYS = frozenset({"warning"})
"""Detail keys that :data:`WHOLE_DETAILS` recomputes (a chunk's own value is dropped)."""


def _stack_detail(key: str, values: list, sizes: list[int], pad: str) -> object:
    head = values[0]
    if isinstance(head, Curve):
        return _stack_curves(values, pad)
    per_row = all(
        isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n for v, n in zip(values, sizes, strict=True)
    )
    if per_row:
        return np.concatenate(values)
    if any(not _same(head, v) for v in values[1:]):
        raise ValueError(f"the chunks of one calibration disagree on details[{key!r}]: {head!r} vs {values[1]!r}")
    return head


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b, equal_nan=True))  # type: ignore[arg-type]
    return a == b


def _stack_curves(curves: list[Curve], pad: str) -> Curve:
    width = max(c.x.shape[1] for c in curves)

    def padded(a: np.ndarray) -> np.ndarray:
        extra = ((0, 0), (0, width - a.shape[1]))
        if not extra[1][1]:
            return a
        return np.pad(a, extra, mode="edge") if pad == "edge" else np.pad(a, extra, constant_values=np.nan)

    first = curves[0]
    x = np.concatenate([padded(c.x) for c in curves])
    y = np.concatenate([padded(c.y) for c in curves])
    chosen = np.concatenate([c.chosen for c in curves])
    return Curve(first.objective, first.parameter, x, y, chosen, first.goal)
