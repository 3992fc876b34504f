"""Benchmark of the histogram calibrators (percentile, entropy, mse) and ema, callable standalone.

    .venv/bin/python bench/histogram_calibrators.py [--json] [--repeat N]

Measures wall and CPU time of:

- the KL search alone on one 2048-bin histogram (the vectorised modelopt search);
- entropy, mse and percentile end to end (histogram included) on 16,777,216 float32 values;
- entropy and mse per channel on a 4096 x 4096 float32 weight (histogram included);
- mse's exact search on raw values (1M elements, per tensor) against its histogram search;
- ema on a (4096, 4096) tensor seen as 4096 batches;
- entropy and mse (symmetric and asymmetric, int8 and int12) per channel (384 rows of 1536) and per group
  (4608 groups of 128) on the real sample ``minilm/layer3/ffn_down.weight``: rows far shorter than the bins.

``--only TEXT`` runs the cases whose name contains TEXT (e.g. ``--only ffn_down``).

CPU seconds on ``ffn_down.weight`` (shared 2-core machine, noisy), before (abd0631) -> after the sparse paths
(mse: sum over non-empty bins only; entropy: group term only for candidates of finite KL), same results:

    mse asym int12 per channel    11.3 -> 2.8      mse asym int8 per group     46.6 -> 6.5
    mse asym int12 per group     135.0 -> 7.6      entropy sym int8 per group   3.3 -> 2.2
    entropy asym int8 per group    7.2 -> 2.6      (symmetric mse and per-channel entropy: unchanged paths)

``run()`` returns the rows, for bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qcore import QuantScheme, to_rows
from qcore.calibrators import CalibrationData, make_calibrator
from qcore.calibrators.entropy import kl_curve, pick_largest_min, search_counts
from qcore.samples import load_sample

SAMPLE = "minilm/layer3/ffn_down.weight"


def _best(fn, repeat: int) -> tuple[float, float, Any]:
    """``(wall seconds, CPU seconds, result)`` of the fastest of ``repeat`` runs."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, out


def _calibrate(x: np.ndarray, scheme: QuantScheme, method: str, **options: Any):
    """Fresh CalibrationData each time, so the histogram is part of the timing."""
    return make_calibrator(method, **options).calibrate(CalibrationData(to_rows(x, scheme)), scheme)


def run(repeat: int = 1, only: str = "") -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []

    def add(name: str, elements: int, fn) -> None:
        if only not in name:
            return
        wall, cpu, _ = _best(fn, repeat)
        rows.append({"case": name, "elements": elements, "seconds": wall, "cpu_seconds": cpu})

    big = rng.standard_normal(1 << 24).astype(np.float32)
    tensor = QuantScheme()
    counts = search_counts(CalibrationData(to_rows(big, tensor)).abs_histogram(2048).counts)
    add("KL search only, one 2048-bin histogram", 2048, lambda: pick_largest_min(kl_curve(counts, 128)))
    for method, options in (("percentile", {}), ("entropy", {}), ("mse", {})):
        add(
            f"{method} per tensor, 16M float32 (with histogram)",
            big.size,
            lambda m=method, o=options: _calibrate(big, tensor, m, **o),
        )

    weight = (rng.standard_normal((4096, 4096)) * rng.uniform(0.01, 0.1, (4096, 1))).astype(np.float32)
    channel = QuantScheme(granularity="channel")
    for method in ("entropy", "mse", "percentile"):
        add(
            f"{method} per channel, 4096 x 4096 (with histogram)",
            weight.size,
            lambda m=method: _calibrate(weight, channel, m),
        )
    add(
        "mse per channel asymmetric, 4096 x 4096",
        weight.size,
        lambda: _calibrate(weight, QuantScheme(symmetric=False, granularity="channel"), "mse"),
    )
    add("ema per tensor, 4096 batches of 4096", weight.size, lambda: _calibrate(weight, tensor, "ema"))

    mid = rng.laplace(size=1 << 20).astype(np.float32)
    for source in ("values", "histogram"):
        add(f"mse source={source}, 1M per tensor", mid.size, lambda s=source: _calibrate(mid, tensor, "mse", source=s))
    sample, _ = load_sample(SAMPLE)
    for gran, layout in (("channel", "384 x 1536"), ("group", "4608 x 128")):
        for method, symmetric, bits in (
            ("entropy", True, 8),
            ("entropy", False, 8),
            ("mse", True, 8),
            ("mse", False, 8),
            ("mse", False, 12),
        ):
            scheme = QuantScheme(bits=bits, symmetric=symmetric, granularity=gran, group_size=128)
            kind = "sym" if symmetric else "asym"
            add(
                f"{method} {kind} int{bits} per {gran}, {SAMPLE} ({layout})",
                sample.size,
                lambda s=scheme, m=method: _calibrate(sample, s, m),
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    args = parser.parse_args()
    rows = run(args.repeat, args.only)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['case']:<80} {r['seconds']:8.3f} s wall {r['cpu_seconds']:8.3f} s CPU")


if __name__ == "__main__":
    main()
