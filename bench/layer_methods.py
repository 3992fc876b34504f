"""Benchmark of the layer methods (qcore.layer_methods), callable standalone.

    .venv/bin/python bench/layer_methods.py [--json] [--repeat N] [--skip-large]

Measures wall and CPU time of:

- GPTQ INT4 g128 on the MiniLM FFN up-projection (W 1536x384, X 575x384; target < 1 s);
- GPTQ INT4 g128 on a 4096x4096 layer with 2048 samples (seeded Gaussian; target < 30 s), split into the
  Hessian ``2 X^T X / n``, its inverse factor and the column loop;
- each other method with its defaults on the MiniLM FFN up-projection, and the SmoothQuant alpha sweep.

``run()`` returns the rows, for bench/run.py. The machine is shared: CPU seconds show the share that was ours.
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

from qcore.layer_methods import METHODS, Side, alpha_sweep, run_method, sides_for
from qcore.layer_methods.gptq import gptq_weights, hessian, inverse_factor
from qcore.samples import load_pair
from qcore.scheme import QuantScheme

PAIR = "minilm/layer3/ffn_up"
W4_G128 = Side(QuantScheme(bits=4, granularity="group", axis=1, group_size=128))
LARGE = (4096, 4096, 2048)  # out, K, n


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of the fastest of ``repeat`` calls."""
    best, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu


def _row(name: str, timing: tuple[float, float], target: float | None = None) -> dict[str, Any]:
    return {"step": name, "seconds": timing[0], "cpu_seconds": timing[1], "target_seconds": target}


def run(repeat: int = 3, large: bool = True) -> list[dict[str, Any]]:
    """Time each step (best of ``repeat``; the large layer once)."""
    x, w, _ = load_pair(PAIR)
    w, x = np.asarray(w, np.float32), np.asarray(x, np.float32)
    rows = [
        _row(f"GPTQ int4 g128, {PAIR} W{w.shape} X{x.shape}", _best(lambda: gptq_weights(w, x, W4_G128), repeat), 1.0)
    ]
    for name, method in METHODS.items():
        if name == "gptq":
            continue
        sides = sides_for(method.quantize, Side(method.w_scheme), Side(method.x_scheme))
        rows.append(
            _row(f"{name} (defaults) + rtn, {PAIR}", _best(lambda n=name, s=sides: run_method(w, x, n, *s), repeat))
        )
    sq = METHODS["smoothquant"]
    rows.append(
        _row(
            f"SmoothQuant alpha sweep (21 alphas), {PAIR}",
            _best(lambda: alpha_sweep(w, x, Side(sq.w_scheme), Side(sq.x_scheme)), 1),
        )
    )
    if large:
        out, k, n = LARGE
        rng = np.random.default_rng(0)
        wl = (rng.standard_normal((out, k), dtype=np.float32) * 0.02).astype(np.float32)
        xl = rng.standard_normal((n, k), dtype=np.float32)
        xl[:, rng.choice(k, 8, replace=False)] *= 20  # a few outlier channels
        h = hessian(xl)
        rows.append(_row(f"  H = 2 X^T X / n, X {n}x{k}", _best(lambda: hessian(xl), 1)))
        rows.append(_row(f"  inverse Cholesky factor, {k}x{k}", _best(lambda: inverse_factor(h, 0.01), 1)))
        rows.append(
            _row(f"GPTQ int4 g128, W {out}x{k}, X {n}x{k} (all)", _best(lambda: gptq_weights(wl, xl, W4_G128), 1), 30.0)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for the small layer (default 3)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 4096x4096 layer")
    args = parser.parse_args()
    rows = run(args.repeat, not args.skip_large)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        target = "" if r["target_seconds"] is None else f"  (target < {r['target_seconds']:g} s)"
        print(f"{r['step']:<66} {r['seconds']:8.2f} s wall {r['cpu_seconds']:8.2f} s CPU{target}")


if __name__ == "__main__":
    main()
