"""Encoding on a per-row non-uniform grid (sorted levels and splits, e.g. log2's powers of two)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..calibrators import Calibration
from ..granularity import Rows
from ..grid import grid_index, grid_round_trip
from ..metrics import ErrorReport, measure
from ..quantize import _code_dtype
from ..sorted_metrics import fast_grid_report
from ..sorted_rows import SortedRows
from .base import Encoding


class GridEncoding(Encoding):
    """Values mapped to level ``i`` when ``splits[i-1] <= x < splits[i]`` (:func:`qcore.grid.grid_index`).

    The calibration carries ``grid`` (sorted levels per row) and ``splits``; the sorted path
    (:func:`qcore.sorted_metrics.fast_grid_report`) measures it when sorted rows are given.
    """

    def __init__(self, rows: Rows, calibration: Calibration) -> None:
        self.rows, self.calibration = rows, calibration
        self.levels_total = calibration.grid.shape[1]
        top = np.abs(calibration.grid).max(axis=1)
        self.scale = top
        self.zero_point = np.zeros(rows.n_rows, dtype=np.int64)
        self.clip_min, self.clip_max = calibration.lo, calibration.hi

    def dequantized_rows(self) -> np.ndarray:
        return grid_round_trip(self.rows.values, self.calibration)[1]

    def level_rows(self) -> np.ndarray:
        return grid_index(self.rows.values, self.calibration.splits)

    def codes(self) -> np.ndarray:
        return self.rows.restore(self.level_rows()).astype(_code_dtype(0, self.levels_total - 1))

    def row_levels(self, row: int) -> np.ndarray:
        return self.calibration.grid[row]

    def level_grid(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.calibration.grid[idx], dtype=np.float64)[:, None, :]

    def round_trip(self, values: np.ndarray, row: int) -> np.ndarray:
        cal, pick = self.calibration, slice(row, row + 1)
        one = replace(cal, lo=cal.lo[pick], hi=cal.hi[pick], grid=cal.grid[pick], splits=cal.splits[pick])
        return grid_round_trip(np.asarray(values, dtype=np.float32).reshape(1, -1), one)[1].ravel()

    def report(self, sorted_rows: SortedRows | None = None) -> ErrorReport:
        report = None if sorted_rows is None else fast_grid_report(sorted_rows, self.calibration)
        if report is not None:
            return report
        idx, x_hat = grid_round_trip(self.rows.values, self.calibration)
        return measure(self.rows, x_hat, idx, self.clip_min, self.clip_max, self.levels_total, self.level_grid)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "q": self.codes(),
            "grid": np.asarray(self.calibration.grid, dtype=np.float64),
        }
