"""``.csv``: one numeric table, comma-separated, with at most one header row.

The table is one tensor named after the file: shape ``(rows, columns)``, or 1-D
when it has a single row or a single column. ``nan``/``inf`` cells are numbers
(left out of calibration and counted as non-finite).
"""

from __future__ import annotations

import io

import numpy as np

from .base import Source, TensorInfo, TensorLoadError


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _table(src: Source) -> np.ndarray:
    with src.open() as f:
        text = f.read().decode("utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise TensorLoadError(f"{src.filename} holds no numbers")
    header = 0 if all(_is_number(field) for field in lines[0].split(",")) else 1
    if header and len(lines) == 1:
        raise TensorLoadError(f"{src.filename} has a header row but no numbers")
    try:
        table = np.loadtxt(io.StringIO("\n".join(lines[header:])), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise TensorLoadError(
            f"{src.filename} is not a numeric CSV ({exc}); accepted: numbers separated by commas, "
            "one optional header row"
        ) from None
    return table.ravel() if 1 in table.shape else table


def csv_infos(src: Source) -> tuple[list[TensorInfo], dict[str, str]]:
    """The one table (parsed, since a CSV has no header of shapes)."""
    table = _table(src)
    return [TensorInfo(src.stem, tuple(table.shape), "float64")], {}


def csv_read(src: Source, names: list[str]) -> dict[str, np.ndarray]:
    """Parse the table as float64."""
    return {names[0]: _table(src)}
