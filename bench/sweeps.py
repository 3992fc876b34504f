"""Benchmark of the What-if sweeps (qcore.sweeps), callable standalone.

    .venv/bin/python bench/sweeps.py [--json] [--repeat N]

Measures wall time of:

- the full bits sweep (2..16, five methods) on a 1M-element tensor, per tensor and
  per channel, with each method's share (one shared CalibrationData per sweep);
- the granularity sweep (tensor, channel, groups 32..256 at 2/3/4/8 bits, MinMax);
- the layer sweep on the largest bundled pair (MiniLM FFN down-projection).

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

from qcore import QuantScheme
from qcore.samples import load_pair
from qcore.sweeps import bits_sweep, granularity_sweep, layer_sweep

METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy", "mse", "aciq")
SHAPE: tuple[int, int] = (1024, 1024)
LAYER_PAIR = "minilm/layer3/ffn_down"


def tensor() -> np.ndarray:
    """1M float32 values: Laplace with 0.01 % outliers x10 (seeded)."""
    rng = np.random.default_rng(0)
    x = rng.laplace(size=SHAPE).astype(np.float32)
    idx = rng.choice(x.size, x.size // 10_000, replace=False)
    x.flat[idx] *= 10
    return x


def _best(fn, repeat: int) -> tuple[float, float, Any]:
    """``(wall seconds, CPU seconds, result)`` of the fastest of ``repeat`` runs (CPU time shows the share of a
    loaded machine that was really ours)."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, out


def run(repeat: int = 1) -> list[dict[str, Any]]:
    """Time each sweep; the best of ``repeat`` runs."""
    x = tensor()
    rows: list[dict[str, Any]] = []
    for gran in ("tensor", "channel"):
        scheme = QuantScheme(granularity=gran)
        rows.append(
            _row(
                f"bits 2..16 x {len(METHODS)} methods, {gran}",
                x.size,
                *_best(lambda s=scheme: bits_sweep(x, s, METHODS), repeat),
            )
        )
        for method in METHODS:
            rows.append(
                _row(
                    f"  bits 2..16, {method} only, {gran}",
                    x.size,
                    *_best(lambda s=scheme, m=method: bits_sweep(x, s, [m]), repeat),
                )
            )
    rows.append(
        _row(
            "granularity (6 layouts x 4 bits), minmax",
            x.size,
            *_best(lambda: granularity_sweep(x, QuantScheme(), "minmax"), repeat),
        )
    )
    xl, wl, _ = load_pair(LAYER_PAIR)
    ws, xs = QuantScheme(granularity="channel"), QuantScheme(symmetric=False)
    rows.append(
        _row(
            f"layer {LAYER_PAIR} W{wl.shape} X{xl.shape}, minmax+entropy",
            wl.size + xl.size,
            *_best(lambda: layer_sweep(wl, xl, ws, xs, ["minmax", "entropy"]), repeat),
        )
    )
    return rows


def _row(name: str, elements: int, wall: float, cpu: float, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sweep": name,
        "elements": elements,
        "points": len(records),
        "seconds": wall,
        "cpu_seconds": cpu,
        "failed": sum(bool(r["error"]) for r in records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (default 1)")
    args = parser.parse_args()
    rows = run(args.repeat)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['sweep']:<62} {r['points']:>4} points {r['seconds']:8.2f} s wall {r['cpu_seconds']:8.2f} s CPU")


if __name__ == "__main__":
    main()
