"""Benchmark of the GGUF K-quant and IQ4_NL quantizers (qcore.formats.kquants), callable standalone.

    .venv/bin/python bench/kquants.py [--json] [--repeat N] [--size N] [--types Q4_K,...]

Quantizes bench/run.py's tensor (default 4096 x 4096 float32, gaussian with outliers; blocks along the last axis)
to each type and reports the time as a ratio to one ``np.histogram(np.abs(x), 2048)`` pass measured in the same
run (target for Q4_K: within 10 passes), in wall time and in CPU time (the CPU ratio is the steadier one on a
shared machine). The quantizers reproduce llama.cpp's C arithmetic operation by operation,
so their cost is that of the C search loops (21 trial scales per 32 values for Q4_K) done as numpy passes.

``run()`` returns the rows, for bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qcore.formats.kquants import KQUANT_TYPES, quantize

BINS = 2048
SIDE = 4096
TARGET_PASSES = {"Q4_K": 10}


def _best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Smallest wall time and smallest CPU time (this process) of ``repeat`` calls, in seconds."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def _tensor(size: int) -> np.ndarray:
    """bench/run.py's tensor (gaussian, 16 outliers at 20..60 sigma), rows of 4096 (or the whole size)."""
    from run import make_tensor  # sibling in bench/

    x = make_tensor(size)
    return x.reshape(-1, SIDE) if size % SIDE == 0 else x.reshape(1, -1)


def run(size: int = SIDE * SIDE, repeat: int = 2, types: tuple[str, ...] = tuple(KQUANT_TYPES)) -> list[dict[str, Any]]:
    """One row per type: wall and CPU seconds, their ratios to one histogram pass, bits per weight."""
    x = _tensor(size)
    hist_wall, hist_cpu = _best_of(lambda: np.histogram(np.abs(x), BINS), max(repeat, 2))
    rows = [
        {
            "name": "np.histogram(|x|, 2048)",
            "seconds": hist_wall,
            "x_hist": 1.0,
            "cpu_seconds": hist_cpu,
            "x_hist_cpu": 1.0,
            "bpw": None,
            "note": "",
        }
    ]
    for qtype in types:
        quantize(x[:1], qtype)  # one-time costs (the kernels' numba load or first compile) not timed
        wall, cpu = _best_of(lambda q=qtype: quantize(x, q), repeat)
        target = TARGET_PASSES.get(qtype)
        note = ""
        if target is not None:
            note = f"{'PASS' if cpu / hist_cpu <= target else 'MISS'} (target <= {target} passes, CPU)"
        rows.append(
            {
                "name": f"quantize {qtype}",
                "seconds": wall,
                "x_hist": wall / hist_wall,
                "cpu_seconds": cpu,
                "x_hist_cpu": cpu / hist_cpu,
                "bpw": KQUANT_TYPES[qtype].bits_per_weight,
                "note": note,
            }
        )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'':<26} {'wall':>9} {'x hist':>7} {'CPU':>9} {'x hist':>7}")
    for r in rows:
        bpw = "" if r["bpw"] is None else f"{r['bpw']:.4g} bpw"
        print(
            f"{r['name']:<26} {r['seconds']:8.3f}s {r['x_hist']:7.2f} {r['cpu_seconds']:8.3f}s {r['x_hist_cpu']:7.2f}"
            f"  {bpw:<12} {r['note']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--repeat", type=int, default=2, help="best of N (default 2)")
    parser.add_argument("--size", type=int, default=SIDE * SIDE, help="values (default 4096^2)")
    parser.add_argument("--types", default=",".join(KQUANT_TYPES), help="comma-separated GGUF types")
    args = parser.parse_args(argv)
    rows = run(args.size, args.repeat, tuple(t.strip() for t in args.types.split(",") if t.strip()))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
