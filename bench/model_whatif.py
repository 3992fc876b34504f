"""Benchmark of the model what-if (qcore.models): one MiniLM run with every linear layer quantized, and the full
one-layer-at-a-time sensitivity sweep (target: under 30 s); the digits MLP alongside.

Run ``python bench/model_whatif.py [--json]`` (``make bench`` runs it after the core benchmark). Wall and CPU
seconds of one run each (the machine is shared: wall time grows with the load, CPU time much less), and the ratio
to one float forward pass over the same evaluation split measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qcore.models import ModelSession, parse_config
from qcore.models.runner import MODELS

SPEC = "bits=8,weight.granularity=channel,input.granularity=tensor"


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """``(result, wall seconds, CPU seconds)`` of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def run(spec: str = SPEC) -> list[dict]:
    """One record per measured step and model."""
    records = []
    config = parse_config(spec)
    for name in ("minilm", "digits"):
        s, wall, cpu = timed(lambda name=name: ModelSession(MODELS[name]()))
        records.append({"model": name, "step": "load weights + float pass", "seconds": wall, "cpu_seconds": cpu})
        _, base, base_cpu = timed(lambda s=s: s.forward({}, start=(0, s._states)))
        records.append({"model": name, "step": "one float forward pass", "seconds": base, "cpu_seconds": base_cpu})
        r, wall, cpu = timed(lambda s=s: s.run(config))
        records.append(
            {
                "model": name,
                "step": f"run, all {len(r.layers)} layers quantized, first time (fit + per-layer errors)",
                "seconds": wall,
                "cpu_seconds": cpu,
            }
        )
        r, wall, cpu = timed(lambda s=s: s.run(config, per_layer=False))
        records.append({"model": name, "step": "run again (quantizers fitted)", "seconds": wall, "cpu_seconds": cpu})
        sens, wall, cpu = timed(lambda s=s: s.sensitivity(config, keep=3))
        n = len(sens.layers)
        records.append(
            {
                "model": name,
                "step": f"sensitivity sweep ({n} one-at-a-time + {n} all-but-one + 3 keep runs)",
                "seconds": wall,
                "cpu_seconds": cpu,
            }
        )
        for rec in records[-5:]:
            rec["x_forward"] = rec["seconds"] / base if base > 0 else None
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON array instead of the table")
    parser.add_argument("--config", default=SPEC, help=f"configuration spec (default {SPEC!r})")
    args = parser.parse_args(argv)
    records = run(args.config)
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    print(f"config: {args.config}")
    for r in records:
        ratio = "-" if r["x_forward"] is None else f"{r['x_forward']:.1f}x"
        print(f"{r['model']:<7} {r['step']:<78} {r['seconds']:8.2f} s wall {r['cpu_seconds']:8.2f} s CPU {ratio:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
