"""Compile every numba kernel of :mod:`qcore.kernels` once, or load it from numba's cache.

A fresh checkout compiles each kernel family on its first call (seconds to tens of seconds on the 2-core machine,
K-quants the longest); afterwards numba loads the machine code from ``qcore/kernels/__pycache__`` in well under a
second per process. ``make run`` and ``make test`` run ``python -m qcore.compiled_kernels`` after installing, so
that no user's first search (and no test's timeout) pays the compile. Each family's loader calls the public entry
points on a tiny input, exactly as the first real calibration or quantization would.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .calibrators import admm, easyquant, entropy, mse
from .formats import kquants

LOADERS: dict[str, Callable[[], None]] = {
    "admm": admm.load_kernels,
    "easyquant": easyquant.load_kernels,
    "entropy": entropy.load_kernels,
    "mse": mse.load_kernels,
    "gguf k-quants": kquants.load_kernels,
}
"""Kernel family -> a call that compiles or loads all of its kernels."""


def load_all() -> dict[str, float]:
    """Compile or load every kernel family; the wall seconds each took."""
    seconds = {}
    for name, load in LOADERS.items():
        start = time.perf_counter()
        load()
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> int:
    for name, took in load_all().items():
        print(f"numba kernels {name:<14} {took:6.2f} s (compiled, or loaded from the cache)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
