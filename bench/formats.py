"""Benchmark of every number format end to end (encode + error report) on bench/run.py's 16M tensor.

    .venv/bin/python bench/formats.py [--json] [--repeat N] [--size N] [--formats q4_0,mxfp4,...]

``analyze`` of the 4096 x 4096 tensor (blocks along the last axis; scaled floats and INT per tensor, minmax)
for each format, as a ratio to one ``np.histogram(np.abs(x), 2048)`` pass measured in the same run, in wall
and CPU time (the CPU ratio is the steadier one on a shared machine). Targets: fixed-rule formats (MX, NVFP4,
NF4, Q8_0, Q4_0) at most 5 passes; Q4_K within 10.

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

from qcore import QuantScheme, analyze
from qcore.formats import FORMATS

BINS = 2048
SIDE = 4096
TARGETS = {"mx": 5, "nvfp4": 5, "nf4": 5, "q8_0": 5, "q4_0": 5, "q4_k": 10}


def _best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Smallest wall time and smallest CPU time (this process) of ``repeat`` calls, in seconds."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def _target(name: str) -> int | None:
    fmt = FORMATS[name]
    return TARGETS.get(name, TARGETS.get(fmt.family) if fmt.family in ("mx", "nvfp4", "nf4") else None)


def run(size: int = SIDE * SIDE, repeat: int = 2, names: tuple[str, ...] = tuple(FORMATS)) -> list[dict[str, Any]]:
    """One row per format: wall and CPU seconds, their ratios to one histogram pass, bits per weight, SQNR."""
    from run import make_tensor, warm_memory  # sibling in bench/

    warm_memory()
    x = make_tensor(size)
    x = x.reshape(-1, SIDE) if size % SIDE == 0 else x.reshape(1, -1)
    hist_wall, hist_cpu = _best_of(lambda: np.histogram(np.abs(x), BINS), max(repeat, 2))
    rows = [{"name": "np.histogram(|x|, 2048)", "seconds": hist_wall, "x_hist": 1.0, "cpu_seconds": hist_cpu,
             "x_hist_cpu": 1.0, "bpw": None, "sqnr_db": None, "note": ""}]  # fmt: skip
    for name in names:
        scheme = QuantScheme(bits=FORMATS[name].bits or 8, format=name)
        out: dict[str, Any] = {}

        def once(s: QuantScheme = scheme, o: dict = out) -> None:
            o["a"] = analyze(x, s)

        analyze(x[:1], scheme)  # one-time costs (the K-quant kernels' numba load or first compile) not timed
        wall, cpu = _best_of(once, repeat)
        target = _target(name)
        note = "" if target is None else f"{'PASS' if cpu / hist_cpu <= target else 'MISS'} (<= {target} passes, CPU)"
        rows.append({"name": f"analyze {name}", "seconds": wall, "x_hist": wall / hist_wall, "cpu_seconds": cpu,
                     "x_hist_cpu": cpu / hist_cpu, "bpw": out["a"].bits_per_weight(),
                     "sqnr_db": out["a"].report.sqnr_db, "note": note})  # fmt: skip
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'':<26} {'wall':>9} {'x hist':>7} {'CPU':>9} {'x hist':>7}  {'bpw':<8} {'SQNR':>8}")
    for r in rows:
        bpw = "" if r["bpw"] is None else f"{r['bpw']:.4g}"
        sqnr = "" if r["sqnr_db"] is None else f"{r['sqnr_db']:.2f} dB"
        print(
            f"{r['name']:<26} {r['seconds']:8.3f}s {r['x_hist']:7.2f} {r['cpu_seconds']:8.3f}s {r['x_hist_cpu']:7.2f}"
            f"  {bpw:<8} {sqnr:>8}  {r['note']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--repeat", type=int, default=2, help="best of N (default 2)")
    parser.add_argument("--size", type=int, default=SIDE * SIDE, help="values (default 4096^2)")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated format names")
    args = parser.parse_args(argv)
    rows = run(args.size, args.repeat, tuple(n.strip() for n in args.formats.split(",") if n.strip()))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_rows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
