"""Chunked calibration (:mod:`qcore.chunked`, the app's progress and Stop) against one call: CPU cost and equality.

On a 4096 x 4096 Gaussian tensor, for a few of the slow per-group and per-channel searches, the CPU seconds of
``calibrator.calibrate(data, scheme)`` and of ``qcore.chunked.calibrate`` with a progress callback, each on fresh
:class:`qcore.CalibrationData` (no shared histograms), best of two, and whether the ranges are equal.
Run: ``.venv/bin/python bench/chunked.py``. Noisy on a shared machine: compare the two columns of one run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qcore import CalibrationData, QuantScheme, make_calibrator, to_rows
from qcore.chunked import calibrate, plan

CASES = (
    ("entropy", 4, True, "group"),
    ("admm", 8, True, "group"),
    ("mse", 4, False, "group"),
    ("easyquant", 8, True, "group"),
    ("entropy", 8, True, "channel"),
)


def main() -> None:
    x = np.random.default_rng(0).normal(size=(4096, 4096)).astype(np.float32)
    print("method     layout   bits  chunks  one call CPU s  chunked CPU s  ratio  same ranges")
    for method, bits, symmetric, granularity in CASES:
        axis = 1 if granularity == "group" else 0
        scheme = QuantScheme(bits=bits, symmetric=symmetric, granularity=granularity, axis=axis, group_size=128)
        rows, calibrator = to_rows(x, scheme), make_calibrator(method)
        seconds: dict[str, list[float]] = {"one": [], "chunked": []}
        ranges = {}
        for mode in ("one", "chunked") * 2:
            data = CalibrationData(rows)
            start = time.process_time()
            if mode == "one":
                result = calibrator.calibrate(data, scheme)
            else:
                result = calibrate(calibrator, data, scheme, lambda done, total: None)
            seconds[mode].append(time.process_time() - start)
            ranges[mode] = (result.lo, result.hi)
        same = all(np.array_equal(a, b) for a, b in zip(ranges["one"], ranges["chunked"], strict=True))
        one, chunked = min(seconds["one"]), min(seconds["chunked"])
        layout = f"{granularity}{' 128' if granularity == 'group' else ''}"
        print(
            f"{method:<10} {layout:<9} {bits:>2}{'s' if symmetric else 'a'}  {len(plan(calibrator, rows, scheme)):>6}"
            f"  {one:>14.2f}  {chunked:>13.2f}  {chunked / one:>5.2f}  {same}",
            flush=True,
        )


if __name__ == "__main__":
    main()
