"""``python -m qcore model minilm|digits [--config SPEC] [--sensitivity] [--json]``: the model what-if.

Runs a bundled model with its linear layers fake-quantized as ``SPEC`` says (:mod:`qcore.models.config`) and prints
the model metrics next to the float model's, every layer's output error and, with ``--sensitivity``, the
one-at-a-time / all-but-one sweep and what leaving the top layers in float gains. Registered in :mod:`qcore.cli`,
which turns every error into exit 2 and one ``error:`` line.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from . import strict_json
from .models import MODELS, ModelConfigError, ModelRun, Sensitivity, parse_config, session


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``model`` subcommand."""
    p = sub.add_parser("model", help="run a bundled model quantized and measure what it loses")
    p.add_argument("model", choices=tuple(MODELS), help="minilm (all-MiniLM-L6-v2) or digits (the MLP)")
    p.add_argument(
        "--config",
        default="",
        metavar="SPEC",
        help="e.g. 'bits=8,granularity=channel,method=minmax,target=both; *.output.dense: float' (README)",
    )
    p.add_argument("--sensitivity", action="store_true", help="also one layer at a time and all but one")
    p.add_argument("--keep", type=int, default=3, help="with --sensitivity: layers kept, 1..k (default 3)")
    p.add_argument(
        "--keep-as",
        default="float",
        metavar="SETTINGS",
        help="with --sensitivity: how the top layers are kept: float (default) or e.g. 'bits=8'",
    )
    p.add_argument("--layers", action="store_true", help="only list the linear layers (names for overrides) and shapes")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _metrics(values: dict[str, float]) -> dict[str, float | None]:
    return {k: _finite(v) for k, v in values.items()}


def result_dict(run: ModelRun, description: str, sens: Sensitivity | None) -> dict[str, Any]:
    """The JSON object of ``model`` (no NaN or Infinity: they become null)."""
    out: dict[str, Any] = {
        "model": run.model,
        "description": description,
        "config": run.spec,
        "metrics": _metrics(run.metrics),
        "float_metrics": _metrics(run.float_metrics),
        "loss": _finite(run.loss),
        "layers": [
            {
                "layer": e.layer,
                "weight": e.weight,
                "input": e.input,
                "mse": _finite(e.mse),
                "sqnr_db": _finite(e.sqnr_db),
            }
            for e in run.layers
        ],
    }
    if sens is not None:
        out["sensitivity"] = {
            "loss_name": sens.loss_name,
            "all_loss": _finite(sens.all_loss),
            "all_metrics": _metrics(sens.all_metrics),
            "layers": [
                {"layer": n, "only": _finite(a), "all_but": _finite(b)}
                for n, a, b in zip(sens.layers, sens.only, sens.all_but, strict=True)
            ],
            "ranking": list(sens.ranking),
            "keep_as": sens.keep_as,
            "keep": [
                {"kept": list(s.kept), "loss": _finite(s.loss), "metrics": _metrics(s.metrics)} for s in sens.keep
            ],
        }
    return out


def format_table(result: dict[str, Any], loss_name: str) -> str:
    """A readable summary of :func:`result_dict`."""
    lines = [result["description"], f"config      {result['config'] or '(defaults: INT8 symmetric per-tensor MinMax)'}"]
    lines += ["", f"{'metric':<20} {'quantized':>12} {'float':>12}"]
    for key, value in result["metrics"].items():
        ref = result["float_metrics"].get(key)
        lines.append(f"{key:<20} {_num(value):>12} {_num(ref):>12}")
    lines.append(f"loss ({loss_name}): {_num(result['loss'])}")
    lines += ["", f"{'layer':<44} {'quantized':<12} {'output MSE':>12} {'SQNR dB':>9}"]
    for e in result["layers"]:
        what = "+".join(k for k in ("weight", "input") if e[k]) or "float"
        sqnr = "exact" if e["sqnr_db"] is None else f"{e['sqnr_db']:.2f}"
        lines.append(f"{e['layer']:<44} {what:<12} {_num(e['mse']):>12} {sqnr:>9}")
    sens = result.get("sensitivity")
    if sens is not None:
        lines += ["", f"sensitivity ({sens['loss_name']}); all quantized: {_num(sens['all_loss'])}"]
        lines.append(f"{'rank':>4} {'layer':<44} {'only it':>12} {'all but it':>12}")
        by_name = {row["layer"]: row for row in sens["layers"]}
        for i, name in enumerate(sens["ranking"], 1):
            row = by_name[name]
            lines.append(f"{i:>4} {name:<44} {_num(row['only']):>12} {_num(row['all_but']):>12}")
        for step in sens["keep"]:
            lines.append(f"top {len(step['kept'])} as {sens['keep_as']}: loss {_num(step['loss'])}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _list_layers(args: argparse.Namespace) -> int:
    model = MODELS[args.model]()
    rows = [{"layer": n, "shape": list(model.weight(n)[0].shape)} for n in model.layers]
    if args.json:
        print(strict_json.dumps({"model": model.name, "layers": rows}))
    else:
        print("\n".join(f"{r['layer']}\t{r['shape'][1]} -> {r['shape'][0]}" for r in rows))
    return 0


def run(args: argparse.Namespace) -> int:
    """``model``: print the metrics (and the sensitivity sweep)."""
    if args.layers:
        return _list_layers(args)
    config = parse_config(args.config)
    if args.keep < 1:
        raise ModelConfigError(f"--keep must be a positive integer, got {args.keep}")
    s = session(args.model)
    result = s.run(config)
    sens = s.sensitivity(config, keep=args.keep, keep_as=args.keep_as) if args.sensitivity else None
    out = result_dict(result, s.model.description, sens)
    print(strict_json.dumps(out) if args.json else format_table(out, s.model.loss_name))
    return 0
