"""Timings of the search/analytic calibrators (admm, aciq, easyquant, log2) on large tensors.

Not a test: prints wall-clock seconds of ``make_calibrator(m).calibrate`` (the histograms
a method builds are part of its time; ``rows`` are built once per tensor) and of the
whole ``analyze`` call (calibration + round trip + metrics) for

- a 16,777,216-element float32 N(0, 1) tensor, per tensor (ADMM and EasyQuant run on
  the histogram: more than ``max_raw`` = 2^20 elements);
- a 4096 x 4096 float32 N(0, 1) matrix, per channel (axis 0; rows of 4096 run raw).

Usage: ``.venv/bin/python bench/search_calibrators.py [method ...]``

ADMM per channel on 4096 x 4096 (max 571, median 250 iterations), calibrate: 13.1 s before (abd0631), 11.4 s after
the per-block float64 copy and the 3/4 repacking (bit-identical iterates; the per-step cost is still O(row length)).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qcore import QuantScheme, analyze, make_calibrator
from qcore.calibrators import CalibrationData
from qcore.granularity import to_rows

METHODS = ("admm", "aciq", "easyquant", "log2")


def main(methods: tuple[str, ...]) -> None:
    rng = np.random.default_rng(0)
    cases = (
        ("16,777,216 per tensor", rng.standard_normal(1 << 24, dtype=np.float32), QuantScheme()),
        (
            "4096x4096 per channel",
            rng.standard_normal((4096, 4096), dtype=np.float32),
            QuantScheme(granularity="channel"),
        ),
    )
    print(f"{'method':<10} {'case':<24} {'calibrate s':>12} {'analyze s':>10}  notes")
    for label, x, scheme in cases:
        rows = to_rows(x, scheme)
        for method in methods:
            start = time.perf_counter()
            cal = make_calibrator(method).calibrate(CalibrationData(rows), scheme)
            t_cal = time.perf_counter() - start
            start = time.perf_counter()
            analyze(rows, scheme, method)
            t_all = time.perf_counter() - start
            notes = ""
            if "iterations" in cal.details:
                it = cal.details["iterations"]
                notes = f"iterations max {int(it.max())}, median {int(np.median(it))}"
            if "histogram" in cal.details:
                notes += f"; histogram={cal.details['histogram']}"
            print(f"{method:<10} {label:<24} {t_cal:>12.2f} {t_all:>10.2f}  {notes}", flush=True)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or METHODS)
