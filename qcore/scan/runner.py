"""Scan a checkpoint: every selected tensor under every configuration, serially or on Dask.

Serial: one tensor at a time in this process. Dask distributed: one task per tensor, largest
first, submitted as its :class:`TensorRef` (path + name) and the configurations; each worker
reads its tensor from storage it shares with the client, so no array travels through
the client or the scheduler. Both paths run :func:`qcore.scan.measure.scan_tensor`, so
they give the same rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..scheme import QuantOptionError
from .checkpoint import Checkpoint, TensorRef
from .config import ScanConfig
from .measure import scan_tensor
from .plan import Candidate, Plan, make_plan

Progress = Callable[[int, int, str], bool | None]
"""``progress(done, total, tensor_name)``; returning False stops the scan (the rows so far are kept)."""

COLUMNS: tuple[str, ...] = (
    "tensor",
    "layer",
    "kind",
    "shape",
    "dtype",
    "elements",
    "stored_bytes",
    "config",
    "status",
    "error",
    "sqnr_db",
    "rel_mse",
    "mse",
    "clipped_pct",
    "max_abs_error",
    "max_abs_over_std",
    "kurtosis",
    "outlier_channels",
    "bits_per_weight",
    "bytes",
    "file",
)


@dataclass(frozen=True)
class TensorFilter:
    """Which tensors to scan: a regular expression searched in the name, at least 2-D, a minimum size."""

    pattern: str | None = None
    only_2d: bool = False
    min_size: int = 0

    def __post_init__(self) -> None:
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise QuantOptionError(f"invalid tensor filter {self.pattern!r}: {exc}") from None
        if self.min_size < 0:
            raise QuantOptionError(f"minimum size must be >= 0, got {self.min_size}")

    def __call__(self, ref: TensorRef) -> bool:
        if self.pattern and not re.search(self.pattern, ref.name):
            return False
        if self.only_2d and len(ref.shape) < 2:
            return False
        return ref.size >= self.min_size


@dataclass
class ScanReport:
    """Rows of a scan (one per tensor and configuration, error rows included) and what produced them.

    ``total`` tensors were selected, ``done`` of them scanned (fewer when the scan was stopped), ``last`` is the
    name of the latest one scanned.
    """

    path: str
    configs: list[ScanConfig]
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    done: int = 0
    last: str = ""

    @property
    def cancelled(self) -> bool:
        """True for a partial report: fewer tensors scanned than selected (the scan was stopped)."""
        return self.done < self.total

    @property
    def ok_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def error_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "error"]

    @property
    def skipped_rows(self) -> list[dict[str, Any]]:
        """Tensor x configuration pairs not applicable (e.g. per-channel on a 1-D tensor); the reason is ``error``."""
        return [r for r in self.rows if r["status"] == "skipped"]

    def skipped_reasons(self) -> dict[str, int]:
        """Number of skipped pairs per reason, most frequent first."""
        counts: dict[str, int] = {}
        for r in self.skipped_rows:
            counts[r["error"]] = counts.get(r["error"], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def model_size(self) -> list[dict[str, Any]]:
        """Per configuration: bytes of the tensors it quantizes, plus the others at their stored size."""
        out = []
        for config in self.configs:
            done = [r for r in self.ok_rows if r["config"] == config.label]
            names = {r["tensor"] for r in done}
            kept = {r["tensor"]: r["stored_bytes"] for r in self.rows if r["tensor"] not in names and r["tensor"]}
            elements = sum(r["elements"] for r in done)
            qbytes = sum(r["bytes"] for r in done)
            out.append(
                {
                    "config": config.label,
                    "quantized_tensors": len(done),
                    "quantized_bytes": qbytes,
                    "kept_bytes": sum(kept.values()),
                    "total_bytes": qbytes + sum(kept.values()),
                    "bits_per_weight": 8 * qbytes / elements if elements else None,
                }
            )
        return out

    def plan(self, target_bpw: float) -> tuple[Plan, dict[str, Any]]:
        """The mixed-precision plan for an average ``target_bpw`` over the tensors with a scanned configuration."""
        if not math.isfinite(target_bpw) or target_bpw <= 0:
            raise QuantOptionError(f"target bits per weight must be a positive number, got {target_bpw}")
        cands: dict[str, list[Candidate]] = {}
        elements: dict[str, int] = {}
        for r in self.ok_rows:
            cands.setdefault(r["tensor"], []).append(Candidate(r["config"], r["bytes"], r["rel_mse"] * r["elements"]))
            elements[r["tensor"]] = r["elements"]
        n = sum(elements.values())
        plan = make_plan(cands, int(target_bpw * n // 8), n)
        return plan, plan_dict(plan, target_bpw, cands, elements)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (no NaN/Infinity: non-finite numbers become null)."""
        return _finite(
            {
                "checkpoint": self.path,
                "configs": [{"label": c.label, "spec": c.spec} for c in self.configs],
                "tensors_selected": self.total,
                "tensors_scanned": self.done,
                "cancelled": self.cancelled,
                "error_rows": len(self.error_rows),
                "skipped_pairs": len(self.skipped_rows),
                "skipped_reasons": [{"reason": k, "pairs": n} for k, n in self.skipped_reasons().items()],
                "rows": self.rows,
                "model_size": self.model_size(),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, indent=1)

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in _finite(self.rows):
            writer.writerow({k: "x".join(map(str, v)) if k == "shape" and v else v for k, v in row.items()})
        return buf.getvalue()


def plan_dict(
    plan: Plan, target_bpw: float, cands: dict[str, list[Candidate]], elements: dict[str, int]
) -> dict[str, Any]:
    """JSON form of a plan, with each uniform configuration (where every tensor has it) beside it."""
    n = sum(elements.values())
    uniform = []
    for label in dict.fromkeys(c.config for cs in cands.values() for c in cs):
        picked = [next((c for c in cs if c.config == label), None) for cs in cands.values()]
        if all(picked):
            size = sum(c.nbytes for c in picked)
            err = sum(c.error for c in picked)
            uniform.append({"config": label, "bytes": size, "bits_per_weight": 8 * size / n, "rel_mse": err / n})
    return _finite(
        {
            "target_bits_per_weight": target_bpw,
            "budget_bytes": plan.budget,
            "total_bytes": plan.total_bytes,
            "bits_per_weight": 8 * plan.total_bytes / n,
            "rel_mse": plan.total_error / n,
            "rel_mse_lower_bound": plan.lower_bound / n,
            "optimal": plan.optimal,
            "uniform": uniform,
            "tensors": [
                {"tensor": t, "config": c.config, "bytes": c.nbytes, "rel_mse": c.error / elements[t]}
                for t, c in plan.choice.items()
            ],
        }
    )


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _shard_rows(checkpoint: Checkpoint) -> list[dict[str, Any]]:
    return [
        {"tensor": None, "file": e.where, "config": None, "status": "error", "error": e.reason}
        for e in checkpoint.errors
    ]


def scan(
    checkpoint: Checkpoint,
    configs: list[ScanConfig],
    select: TensorFilter | None = None,
    progress: Progress | None = None,
    client: Any = None,
) -> ScanReport:
    """Scan the selected tensors of ``checkpoint`` (serially, or on a ``distributed.Client``).

    Rows come in checkpoint order whatever the order tasks finish in; shard errors first. When ``progress``
    returns False the scan stops and the report is partial (``cancelled``, ``done`` of ``total`` tensors).
    """
    steps = scan_steps(checkpoint, configs, select, client)
    report = next(steps)
    for report in steps:
        if progress is not None and progress(report.done, report.total, report.last) is False:
            steps.close()  # cancels the Dask futures still pending
            break
    return report


def scan_steps(
    checkpoint: Checkpoint,
    configs: list[ScanConfig],
    select: TensorFilter | None = None,
    client: Any = None,
) -> Iterator[ScanReport]:
    """The scan as a generator: the same :class:`ScanReport`, updated, before the first tensor and after each one.

    A caller that keeps the yielded report keeps every tensor scanned so far if it stops iterating (a stop button,
    an interrupted page run): its rows are always complete for ``report.done`` tensors, in checkpoint order.
    """
    if not configs:
        raise QuantOptionError("give at least one configuration")
    refs = [r for r in checkpoint.tensors if (select or TensorFilter())(r)]
    shard_rows = _shard_rows(checkpoint)
    report = ScanReport(checkpoint.path, list(configs), list(shard_rows), len(refs))
    yield report
    results: dict[int, list[dict[str, Any]]] = {}
    pairs = _serial(refs, configs) if client is None else _dask(client, refs, configs)
    try:
        for i, rows in pairs:
            results[i] = rows
            report.rows = shard_rows + [r for j in sorted(results) for r in results[j]]
            report.done = len(results)
            report.last = refs[i].name
            yield report
    finally:
        pairs.close()


def _serial(refs: list[TensorRef], configs: list[ScanConfig]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for i, ref in enumerate(refs):
        yield i, scan_tensor(ref, configs)


def _dask(client: Any, refs: list[TensorRef], configs: list[ScanConfig]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(index, rows) per tensor as Dask tasks finish; the pending tasks are cancelled when iteration stops."""
    from distributed import as_completed

    # Largest tensors first (higher priority runs earlier): the last tasks are small, so workers finish together.
    futures = [client.submit(scan_tensor, ref, configs, pure=False, priority=ref.nbytes) for ref in refs]
    index = {f.key: i for i, f in enumerate(futures)}
    try:
        for future in as_completed(futures):
            try:
                rows = future.result()  # scan_tensor turns bad data into rows: anything raised is the cluster's
            except Exception as exc:
                raise QuantOptionError(
                    f"the Dask cluster could not run the scan ({type(exc).__name__}: "
                    f"{' '.join(str(exc).split())[:200]}); its scheduler and workers need qcore importable (start "
                    "them with PYTHONPATH=<the project folder>) and the checkpoint at the same path"
                ) from None
            yield index[future.key], rows
    finally:
        client.cancel([f for f in futures if not f.done()])
