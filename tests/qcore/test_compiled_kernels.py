"""``qcore.compiled_kernels`` loads every kernel module of ``qcore/kernels`` (make run / make test precompile them)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import qcore.kernels

PROBE = """
import json, sys
from qcore.compiled_kernels import load_all
before = sorted(m for m in sys.modules if m.startswith("qcore.kernels."))
seconds = load_all()
after = sorted(m for m in sys.modules if m.startswith("qcore.kernels."))
print(json.dumps({"families": sorted(seconds), "after": after}))
"""


def test_load_all_reaches_every_kernel_module() -> None:
    """In a fresh interpreter, ``load_all`` imports (and so compiles or loads) every module of ``qcore.kernels``."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=600)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    modules = sorted(f"qcore.kernels.{m.name}" for m in pkgutil.iter_modules(qcore.kernels.__path__))
    assert modules, "no kernel modules found"
    assert [m for m in modules if m not in probe["after"]] == []
    assert set(probe["families"]) == {"admm", "easyquant", "entropy", "mse", "gguf k-quants"}
