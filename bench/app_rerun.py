"""Explore-page rerun after a settings change: a 16M-element tensor vs a 16K-element one.

The app computes the histograms of a tensor once (per granularity) and caches them by
content digest, so a settings change only re-calibrates and re-measures; a large tensor's
rows are also sorted once, so the exact error report costs ``O(rows x levels)`` instead of
a pass over every element (:mod:`qcore.sorted_rows`, :mod:`qcore.sorted_metrics`). Target:
``rerun(16M) <= 1.5 x rerun(16K)``.

Each size runs the Explore page headless (``AppTest``) on a synthetic Gaussian tensor,
then changes the bit width several times (each value new, so nothing is served from the
analysis cache) and times each rerun. Run: ``.venv/bin/python bench/app_rerun.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"16K": (64, 256), "16M": (4096, 4096)}
BITS = (7, 6, 5, 4, 3)
ROUNDS = 3


def open_explore(rows: int, cols: int):
    """An Explore page on a ``rows x cols`` Gaussian tensor, and the seconds of its first load."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(
        {"source": "synthetic", "dist": "gaussian", "rows": str(rows), "cols": str(cols), "gran": "tensor",
         "method": "minmax", "role": "weight", "scheme": "symmetric"}
    )  # fmt: skip
    load = _timed_run(at)
    at.run()  # page widgets get their final ids on the second run (see tests/app/app_helpers.py)
    return at, load


def rerun_times(apps: dict) -> dict[str, list[float]]:
    """Seconds of each Explore rerun after a bits change, sizes interleaved over :data:`ROUNDS` rounds.

    Each round first forgets the analyses and row views (not the rows, histograms and sorted rows), so
    every rerun computes a new analysis; interleaving spreads the load of a shared machine over both sizes.
    """
    from ui import compute

    times: dict[str, list[float]] = {label: [] for label in apps}
    for _ in range(ROUNDS):
        for label, at in apps.items():
            compute.analysis.clear()
            compute.row_view.clear()
            for bits in BITS:
                at.slider(key="bits").set_value(bits)
                times[label].append(_timed_run(at))
    return times


def toggle_times(rows: int, cols: int) -> list[float]:
    """Seconds of each Explore rerun after flipping the log-count toggle (a view change, no new analysis)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(
        {"source": "synthetic", "dist": "gaussian", "rows": str(rows), "cols": str(cols), "gran": "tensor",
         "method": "minmax", "role": "weight", "scheme": "symmetric"}
    )  # fmt: skip
    at.run()
    at.run()
    times = []
    for _ in BITS:
        at.toggle(key="logy").set_value(not at.toggle(key="logy").value)
        times.append(_timed_run(at))
    return times


def _timed_run(at) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    return elapsed


def analyze_times(rows: int, cols: int) -> tuple[list[float], list[float], float]:
    """Seconds of ``qcore.analyze`` and of the sorted-rows analyze (histograms collected) per new bit width.

    Also returns the one-time cost of sorting the rows.
    """
    from qcore import CalibrationData, QuantScheme, analyze, to_rows
    from qcore.sorted_rows import SortedRows
    from qcore.synthetic import generate

    x = generate("gaussian", (rows, cols), 0)
    scheme = QuantScheme()
    data = CalibrationData(to_rows(x, scheme))
    analyze(data, scheme, "minmax")
    start = time.perf_counter()
    ordered = SortedRows.from_rows(data.rows)
    sort = time.perf_counter() - start
    elementwise, fast = [], []
    for bits in BITS:
        start = time.perf_counter()
        analyze(data, scheme.with_(bits=bits), "minmax")
        elementwise.append(time.perf_counter() - start)
        start = time.perf_counter()
        analyze(data, scheme.with_(bits=bits), "minmax", sorted_rows=ordered)
        fast.append(time.perf_counter() - start)
    return elementwise, fast, sort


def main() -> list[tuple[str, str, str]]:
    """Print and return ``(measurement, value, note)`` rows."""
    sys.path.insert(0, str(ROOT))
    opened = {label: open_explore(*shape) for label, shape in SIZES.items()}
    load = {label: seconds for label, (_, seconds) in opened.items()}
    rerun = {label: statistics.median(t) for label, t in rerun_times({k: at for k, (at, _) in opened.items()}).items()}
    core = {label: analyze_times(*shape) for label, shape in SIZES.items()}
    view = {label: statistics.median(toggle_times(*shape)) for label, shape in SIZES.items()}
    out = [
        ("Explore rerun after a bits change, 16K elements", f"{rerun['16K']:.3f} s", "median of 15, AppTest"),
        ("Explore rerun after a bits change, 16M elements", f"{rerun['16M']:.3f} s", "median of 15, AppTest"),
        ("Explore rerun ratio 16M / 16K", f"{rerun['16M'] / rerun['16K']:.2f}", "target <= 1.5"),
        ("Explore first load, 16K elements", f"{load['16K']:.3f} s", "first in the process: with imports"),
        ("Explore first load, 16M elements", f"{load['16M']:.3f} s", "generate, rows, histograms, sort, analyze"),
        ("one-time row sort (SortedRows.from_rows), 16M", f"{core['16M'][2]:.3f} s", "per tensor and granularity"),
        ("qcore.analyze (element-wise report), 16K", f"{statistics.median(core['16K'][0]):.4f} s", "O(n)"),
        ("qcore.analyze (element-wise report), 16M", f"{statistics.median(core['16M'][0]):.4f} s", "O(n)"),
        ("analyze, sorted rows (same report), 16M", f"{statistics.median(core['16M'][1]):.4f} s", "O(levels log n)"),
        ("Explore rerun after a view change (log y), 16K", f"{view['16K']:.3f} s", "histograms cached"),
        ("Explore rerun after a view change (log y), 16M", f"{view['16M']:.3f} s", "histograms cached"),
        ("view-change ratio 16M / 16K", f"{view['16M'] / view['16K']:.2f}", "target <= 1.5"),
    ]
    for row in out:
        print(" | ".join(row))
    return out


if __name__ == "__main__":
    main()
