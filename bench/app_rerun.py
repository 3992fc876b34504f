"""Explore-page rerun after a settings change: a 16M-element tensor vs a 16K-element one.

The app computes the histograms of a tensor once (per granularity) and caches them by
content digest, so a settings change only re-calibrates and re-measures. Target:
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


def rerun_times(rows: int, cols: int, granularity: str = "tensor", method: str = "minmax") -> list[float]:
    """Seconds of each Explore rerun after a bits change, for a ``rows x cols`` Gaussian tensor."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(
        {"source": "synthetic", "dist": "gaussian", "rows": str(rows), "cols": str(cols), "gran": granularity,
         "method": method, "role": "weight", "scheme": "symmetric"}
    )  # fmt: skip
    at.run()
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    at.run()  # page widgets get their final ids on the second run (see tests/app/app_helpers.py)
    times = []
    for bits in BITS:
        at.slider(key="bits").set_value(bits)
        times.append(_timed_run(at))
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


def analyze_times(rows: int, cols: int) -> list[float]:
    """Seconds of ``qcore.analyze`` alone (histograms already collected) for each new bit width."""
    from qcore import CalibrationData, QuantScheme, analyze, to_rows
    from qcore.synthetic import generate

    x = generate("gaussian", (rows, cols), 0)
    scheme = QuantScheme()
    data = CalibrationData(to_rows(x, scheme))
    analyze(data, scheme, "minmax")
    times = []
    for bits in BITS:
        start = time.perf_counter()
        analyze(data, scheme.with_(bits=bits), "minmax")
        times.append(time.perf_counter() - start)
    return times


def main() -> list[tuple[str, str, str]]:
    """Print and return ``(measurement, value, note)`` rows."""
    sys.path.insert(0, str(ROOT))
    rerun = {label: statistics.median(rerun_times(*shape)) for label, shape in SIZES.items()}
    core = {label: statistics.median(analyze_times(*shape)) for label, shape in SIZES.items()}
    view = {label: statistics.median(toggle_times(*shape)) for label, shape in SIZES.items()}
    out = [
        ("Explore rerun after a bits change, 16K elements", f"{rerun['16K']:.3f} s", "median of 5, AppTest"),
        ("Explore rerun after a bits change, 16M elements", f"{rerun['16M']:.3f} s", "median of 5, AppTest"),
        ("Explore rerun ratio 16M / 16K", f"{rerun['16M'] / rerun['16K']:.2f}", "target <= 1.5"),
        ("of which qcore.analyze (exact metrics), 16K", f"{core['16K']:.3f} s", "O(n) per settings change"),
        ("of which qcore.analyze (exact metrics), 16M", f"{core['16M']:.3f} s", "O(n) per settings change"),
        ("Explore rerun after a view change (log y), 16K", f"{view['16K']:.3f} s", "histograms cached"),
        ("Explore rerun after a view change (log y), 16M", f"{view['16M']:.3f} s", "histograms cached"),
        ("view-change ratio 16M / 16K", f"{view['16M'] / view['16K']:.2f}", "target <= 1.5"),
    ]
    for row in out:
        print(" | ".join(row))
    return out


if __name__ == "__main__":
    main()
