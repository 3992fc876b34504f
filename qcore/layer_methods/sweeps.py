"""Record tables of the layer methods for the What-if page and the Learn lessons (one dict per point).

- :func:`method_records`: round to nearest and each chosen method at the same sides;
- :func:`alpha_records`: SmoothQuant's alpha sweep;
- :func:`bits_records`: weight-only methods (GPTQ, AWQ) against round to nearest at several bit widths.

Every record carries ``error`` ('' or the reason a point could not be computed), like :mod:`qcore.sweeps`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..layer import OutputError
from ..scheme import QuantOptionError
from . import METHODS, Side, alpha_sweep, prepare_layer, run_method
from .rtn import rtn

Progress = Callable[[float, str], None]
Record = dict[str, Any]


def _errors(e: OutputError) -> dict[str, float | None]:
    return {"sqnr_db": e.sqnr_db, "mse": e.mse, "cosine": e.cosine, "row_cosine": e.row_cosine}


def _summary(details: dict[str, Any]) -> str:
    """The method's chosen values in one short line (lists counted, not listed)."""
    parts = []
    for key, value in details.items():
        if isinstance(value, list):
            if key == "outlier_columns":
                parts.append(f"outlier columns {value[:8]}{' …' if len(value) > 8 else ''}")
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts)


def method_records(
    w: np.ndarray,
    x: np.ndarray,
    methods: Sequence[str],
    w_side: Side | None,
    x_side: Side | None,
    options: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """Round to nearest, then each method, on the same sides: output errors and what each method chose."""
    w, x = prepare_layer(w, x)
    if w_side is None and x_side is None:
        raise QuantOptionError("quantize at least one side (W or X)")
    y = x.astype(np.float64) @ w.astype(np.float64).T
    base = rtn(w, x, w_side, x_side)
    rtn_error = OutputError.of(y, base.x_eff.astype(np.float64) @ base.w_eff.astype(np.float64).T)
    records = [{"method": "rtn", "label": METHODS["rtn"].label, **_errors(rtn_error), "details": "", "error": ""}]
    chosen = [m for m in methods if m != "rtn"]
    for i, name in enumerate(chosen):
        if progress is not None:
            progress(i / max(len(chosen), 1), f"{METHODS[name].label if name in METHODS else name}…")
        try:
            run = run_method(w, x, name, w_side, x_side, (options or {}).get(name), rtn_error)
            rec = {**_errors(run.error), "details": _summary(run.output.details), "error": ""}
        except QuantOptionError as exc:
            rec = {"sqnr_db": None, "mse": None, "cosine": None, "row_cosine": None, "details": "", "error": str(exc)}
        label = METHODS[name].label if name in METHODS else name
        records.append({"method": name, "label": label, **rec})
    for r in records:
        ok = r["sqnr_db"] is not None and rtn_error.sqnr_db is not None
        r["gain_db"] = r["sqnr_db"] - rtn_error.sqnr_db if ok else None
    return records


def alpha_records(
    w: np.ndarray, x: np.ndarray, w_side: Side | None, x_side: Side | None, progress: Progress | None = None
) -> list[Record]:
    """SmoothQuant's output error at ``alpha = 0, 0.05, ..., 1`` and round to nearest (``alpha = None``)."""
    w, x = prepare_layer(w, x)
    if progress is not None:
        progress(0.0, "alpha sweep…")
    base = run_method(w, x, "rtn", w_side, x_side).error
    return [{"alpha": None, "method": "rtn", **_errors(base), "error": ""}] + [
        {"alpha": a, "method": "smoothquant", **_errors(e), "error": ""} for a, e in alpha_sweep(w, x, w_side, x_side)
    ]


def bits_records(
    w: np.ndarray,
    x: np.ndarray,
    w_side: Side,
    methods: Sequence[str] = ("gptq", "awq"),
    bits: Sequence[int] = (2, 3, 4),
    options: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> list[Record]:
    """Weight-only quantization at each bit width: round to nearest and each method (X stays float)."""
    w, x = prepare_layer(w, x)
    records: list[Record] = []
    total = len(bits) * max(len(methods), 1)
    for i, b in enumerate(bits):
        side = Side(w_side.scheme.with_(bits=int(b)), w_side.method, w_side.convention, w_side.options)
        rtn_error = None
        for j, name in enumerate(methods):
            if progress is not None:
                progress((i * len(methods) + j) / total, f"{name} at {b} bits…")
            try:
                run = run_method(w, x, name, side, None, (options or {}).get(name), rtn_error)
            except QuantOptionError as exc:
                records.append({"bits": int(b), "method": name, "sqnr_db": None, "mse": None, "error": str(exc)})
                continue
            if rtn_error is None:
                rtn_error = run.rtn
                records.append({"bits": int(b), "method": "rtn", **_errors(run.rtn), "error": ""})
            records.append({"bits": int(b), "method": name, **_errors(run.error), "error": ""})
    return records
