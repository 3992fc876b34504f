"""Crafted hostile files of issue 9, built small in the test (the bombs), and a CLI run with its peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# VmHWM (this process image's peak RSS, KiB): ru_maxrss would carry the forking pytest's peak across exec.
_MEASURE = (
    "import sys\n"
    "from qcore.cli import main\n"
    "rc = main(sys.argv[2:])\n"
    "peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
    "open(sys.argv[1], 'w').write(peak)\n"
    "sys.exit(rc)\n"
)


def run_cli_measured(tmp: Path, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    """``python -m qcore argv`` in a fresh process: exit code, stdout, stderr and its peak RSS in MiB."""
    peak_file = tmp / "peak.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(peak_file), *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )
    peak = int(peak_file.read_text()) / 1024 if peak_file.exists() else float("nan")
    return proc.returncode, proc.stdout, proc.stderr, peak


def npz_deflated_zeros(path: Path, n: int, dtype: str = "|i1") -> None:
    """An .npz whose one member is ``n`` zeros of ``dtype``, deflated while streaming (never ``n`` bytes in memory)."""
    header = {"descr": dtype, "fortran_order": False, "shape": (n,)}
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("w.npy", "w", force_zip64=True) as f,
    ):
        np.lib.format.write_array_header_1_0(f, header)
        chunk = bytes(1 << 20)
        itemsize = np.dtype(dtype).itemsize
        left = n * itemsize
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)


def safetensors_file(path: Path, entries: dict[str, dict], data: bytes = b"", header_length: int | None = None) -> None:
    """A safetensors file with ``entries`` as its JSON header (``header_length`` may lie about its size)."""
    header = json.dumps(entries, separators=(",", ":")).encode()
    n = len(header) if header_length is None else header_length
    path.write_bytes(n.to_bytes(8, "little") + header + data)
