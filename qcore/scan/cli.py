"""``python -m qcore scan PATH``: the command-line face of :mod:`qcore.scan` (registered in :mod:`qcore.cli`).

Exit status 0 when at least one tensor was measured (unreadable tensors and shards are
error rows of the report), 2 when none could be. A progress bar goes to stderr only
when stderr is a terminal or ``--progress`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..io import TensorLoadError
from ..scheme import QuantOptionError
from .checkpoint import open_checkpoint
from .cluster import connect, local_cluster
from .config import DEFAULT_SPECS, parse_config
from .runner import ScanReport, TensorFilter, scan


def add_parser(sub: Any) -> None:
    """Add the ``scan`` subcommand to ``python -m qcore``'s subparsers."""
    p = sub.add_parser("scan", help="every tensor of a checkpoint under one or more configurations")
    p.add_argument(
        "path", metavar="PATH", help=".safetensors, *.index.json or model folder, .onnx, .pt/.bin, .npz, .gguf"
    )
    p.add_argument(
        "--config",
        action="append",
        metavar="SPEC",
        help="e.g. bits=4,scheme=symmetric,granularity=group,group_size=128,method=mse (repeatable; "
        f"default: {' and '.join(DEFAULT_SPECS)})",
    )
    p.add_argument("--filter", metavar="REGEX", help="scan tensors whose name matches this regular expression")
    p.add_argument("--only-2d", action="store_true", help="scan tensors of 2 or more dimensions only")
    p.add_argument("--min-size", type=int, default=0, metavar="N", help="scan tensors of at least N elements")
    p.add_argument("--out", required=True, metavar="REPORT.json|REPORT.csv", help="report file")
    p.add_argument("--plan-bpw", type=float, metavar="BPW", help="add a mixed-precision plan for this average (JSON)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
    where.add_argument("--dask", metavar="ADDRESS", help="run on the Dask scheduler at ADDRESS (tcp://host:8786)")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")


class _Bar:
    """A one-line progress bar on stderr: done/total, elapsed, remaining, current tensor."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, done: int, total: int, name: str) -> None:
        elapsed = time.monotonic() - self.start
        left = elapsed / done * (total - done) if done else 0.0
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:.0f}s <{left:.0f}s {name[:40]}"
        sys.stderr.write(line.ljust(100))
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _client(args: argparse.Namespace) -> tuple[Any, Any]:
    if args.dask is not None:
        return connect(args.dask), None
    if args.workers is None:
        return None, None
    from distributed import Client

    cluster = local_cluster(args.workers)
    return Client(cluster), cluster


def _write(report: ScanReport, out: str, plan: dict[str, Any] | None) -> None:
    if out.lower().endswith(".json"):
        body = report.to_dict()
        if plan is not None:
            body["plan"] = plan
        text = json.dumps(body, allow_nan=False, indent=1)
    else:
        text = report.to_csv()
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise QuantOptionError(f"cannot write {out}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Scan, write the report, print a one-line summary; exit 2 when no tensor could be read."""
    if not args.out.lower().endswith((".json", ".csv")):
        raise QuantOptionError(f"--out must end in .json or .csv, got {args.out}")
    if args.plan_bpw is not None and not args.out.lower().endswith(".json"):
        raise QuantOptionError("--plan-bpw needs a .json report")
    configs = [parse_config(s) for s in (args.config or DEFAULT_SPECS)]
    select = TensorFilter(args.filter, args.only_2d, args.min_size)
    checkpoint = open_checkpoint(args.path)
    progress = _Bar() if args.progress or sys.stderr.isatty() else None
    client, cluster = _client(args)
    try:
        report = scan(checkpoint, configs, select, progress, client)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    if not report.ok_rows:
        reasons = "; ".join(f"{r['tensor'] or r['file']}: {r['error']}" for r in report.error_rows[:3])
        raise TensorLoadError(
            f"no tensor of {args.path} could be scanned ({report.total} selected){': ' if reasons else ''}{reasons}"
        )
    plan = report.plan(args.plan_bpw)[1] if args.plan_bpw is not None else None
    _write(report, args.out, plan)
    print(f"scanned {report.total} tensors x {len(configs)} configurations -> {args.out} ({_counts(report)})")
    return 0


def _counts(report: ScanReport) -> str:
    """``N error rows``, plus the tensor x configuration pairs skipped as not applicable and why."""
    text = f"{len(report.error_rows)} error rows"
    reasons = report.skipped_reasons()
    if reasons:
        why = "; ".join(f"{n} x {reason}" for reason, n in reasons.items())
        text += f", {len(report.skipped_rows)} tensor x configuration pairs skipped as not applicable: {why}"
    return text
