"""Peak memory of the entropy and MSE calibrators on the 4096 x 4096 float32 bench tensor (64 MB).

Run ``python bench/calibrator_memory.py [--methods entropy mse] [--analyze]``. Each case runs in a fresh
process; the figure is the peak RSS (``resource.getrusage``) minus the RSS just before the call, in copies
of the tensor's float32 size (issue 10's budget: about 4). ``--analyze`` measures :func:`qcore.analyze`
(calibration, encoding and error report) instead of the calibration alone.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASE = """
import resource, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
import numpy as np, psutil
from run import make_tensor
from qcore import CalibrationData, QuantOptionError, QuantScheme, analyze, to_rows
from qcore.calibrators import make_calibrator
x = make_tensor(4096 * 4096).reshape(4096, 4096)
scheme = QuantScheme(bits={bits}, symmetric={symmetric}, **{layout})
rows = to_rows(x, scheme)
rows.absmax, rows.count  # cached row statistics belong to the rows, not to the search
before = psutil.Process().memory_info().rss
try:
    if {analyze}:
        analyze(rows, scheme, {method!r})
    else:
        make_calibrator({method!r}).calibrate(CalibrationData(rows), scheme)
except QuantOptionError:  # e.g. ema per group
    print("nan")
    raise SystemExit(0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(max(peak - before, 0) / x.nbytes)
"""

LAYOUTS = {
    "tensor": {},
    "channel": {"granularity": "channel", "axis": 1},
    "group 128": {"granularity": "group", "axis": 1, "group_size": 128},
}


def measure(method: str, layout: str, bits: int, symmetric: bool, analyze: bool) -> float:
    """Peak extra RSS of one case, in copies of the tensor."""
    code = CASE.format(
        root=str(ROOT),
        bench=str(ROOT / "bench"),
        bits=bits,
        symmetric=symmetric,
        layout=LAYOUTS[layout],
        analyze=analyze,
        method=method,
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="*", default=["entropy", "mse"])
    parser.add_argument("--analyze", action="store_true", help="measure analyze() instead of calibrate()")
    args = parser.parse_args(argv)
    print(f"{'method':<10} {'layout':<10} {'scheme':<10} {'peak extra RSS (tensor copies)':>32}")
    for method, layout, (symmetric, bits) in itertools.product(
        args.methods, LAYOUTS, itertools.product((True, False), (4, 8))
    ):
        copies = measure(method, layout, bits, symmetric, args.analyze)
        scheme = f"{'sym' if symmetric else 'asym'} int{bits}"
        print(f"{method:<10} {layout:<10} {scheme:<10} {copies:>32.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
