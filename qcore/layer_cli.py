"""``python -m qcore layer W_PATH X_PATH --method M``: a layer method against round to nearest on ``Y = X W^T``.

Registered in :mod:`qcore.cli`. Unset scheme options take the method's defaults
(:data:`qcore.layer_methods.METHODS`); the numbers are those of :func:`qcore.layer_methods.run_method`,
the same call the What-if page makes.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import strict_json
from .calibrators import CALIBRATORS
from .formats import FORMATS, get_format
from .io import load_tensor
from .layer import OutputError
from .layer_methods import METHODS, QUANTIZE, Side, alpha_sweep, get_method, run_method, sides_for
from .params import CONVENTIONS
from .scheme import QuantOptionError, QuantScheme

ERROR_KEYS = ("mse", "sqnr_db", "cosine", "row_cosine", "max_abs_error")


def add_layer_parser(sub: argparse._SubParsersAction) -> None:
    """The ``layer`` subcommand and its options."""
    methods = ", ".join(f"{m.name} ({m.label})" for m in METHODS.values())
    p = sub.add_parser(
        "layer",
        help="a layer method (rtn, llm_int8, smoothquant, awq, gptq, hadamard) against round to nearest on Y",
        description=f"Quantize one layer Y = X W^T with a method, compare with round to nearest. Methods: {methods}.",
    )
    p.add_argument("w_path", metavar="W_PATH", help="weights (out, K): .npy .npz .csv .safetensors .onnx .pt")
    p.add_argument("x_path", metavar="X_PATH", help="activations (n, K), one sample per row")
    p.add_argument("--w-tensor", metavar="NAME", help="array of a multi-array W file (default: the first)")
    p.add_argument("--x-tensor", metavar="NAME", help="array of a multi-array X file (default: the first)")
    p.add_argument("--method", default="rtn", choices=tuple(METHODS), help="layer method (default rtn)")
    p.add_argument("--quantize", choices=QUANTIZE, help="sides to quantize (default: weights for awq/gptq, else both)")
    for side, what in (("w", "weights"), ("x", "activations")):
        p.add_argument(f"--{side}-bits", type=int, help=f"{what}: integer width 2..16 (default: the method's)")
        p.add_argument(f"--{side}-scheme", choices=("symmetric", "asymmetric"), help=f"{what} (default symmetric)")
        p.add_argument(
            f"--{side}-granularity",
            choices=("tensor", "channel", "group"),
            help=f"{what}: one range, one per row (axis 0), or groups along K (default: the method's)",
        )
        p.add_argument(f"--{side}-axis", type=int, help=f"{what}: channel/group axis (default: 0 channel, 1 group)")
        p.add_argument(f"--{side}-group-size", type=int, help=f"{what}: elements per group (default 128)")
        p.add_argument(f"--{side}-format", choices=tuple(FORMATS), metavar="NAME",
                       help=f"{what}: number format (default int; `python -m qcore formats` lists them)")  # fmt: skip
        p.add_argument(f"--{side}-calibrator", default="minmax", choices=sorted(CALIBRATORS), help=f"{what} (minmax)")
        p.add_argument(f"--{side}-convention", default="default", choices=tuple(CONVENTIONS), help=f"{what} preset")
    p.add_argument("--threshold", type=float, help="llm_int8: |x| >= threshold marks an outlier column (6.0)")
    p.add_argument("--outlier-weights", choices=("fp16", "int8"), help="llm_int8: weights of the 16-bit part (fp16)")
    p.add_argument("--alpha", type=float, help="smoothquant: migration strength in [0, 1] (0.5)")
    p.add_argument("--alpha-sweep", action="store_true", help="smoothquant: also report alpha = 0, 0.05, ..., 1")
    p.add_argument("--clip", action="store_true", help="awq: also run the clip search")
    p.add_argument("--damp", type=float, help="gptq: damping as a fraction of mean(diag H) (0.01)")
    p.add_argument("--act-order", action="store_true", help="gptq: columns in order of decreasing H_ii")
    p.add_argument("--block-size", type=int, help="gptq: columns per lazy-update block (128)")
    p.add_argument("--static-groups", action="store_true", help="gptq: fit every group once on the original W")
    p.add_argument("--seed", type=int, help="hadamard: seed of the random signs (0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


#: CLI option -> method option, per method.
METHOD_FLAGS = {
    "llm_int8": ("threshold", "outlier_weights"),
    "smoothquant": ("alpha",),
    "awq": ("clip",),
    "gptq": ("damp", "act_order", "block_size", "static_groups"),
    "hadamard": ("seed",),
}
FLAG_DEFAULTS = {"clip": False, "act_order": False, "static_groups": False}


def _side(args: argparse.Namespace, side: str, default: QuantScheme) -> Side:
    """The side's scheme: the method's default with the options given on the command line.

    With ``--{w,x}-format``, bits default to the format's element width and, for a block format, the ranges to
    the format's own blocks along K.
    """
    get = lambda name: getattr(args, f"{side}_{name}")  # noqa: E731
    fmt = get_format(get("format") or default.format)
    granularity = get("granularity") or ("tensor" if get("format") and fmt.block_sizes else default.granularity)
    axis = get("axis")
    if axis is None:
        axis = default.axis if granularity == default.granularity else (1 if granularity == "group" else 0)
    changes: dict[str, Any] = {"granularity": granularity, "axis": axis, "format": fmt.name}
    if get("bits") is not None or fmt.bits is not None:
        changes["bits"] = get("bits") if get("bits") is not None else fmt.bits
    if get("scheme") is not None:
        changes["symmetric"] = get("scheme") == "symmetric"
    if get("group_size") is not None:
        changes["group_size"] = get("group_size")
    return Side(default.with_(**changes), get("calibrator"), get("convention"))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    given = {}
    for flag in sorted({f for flags in METHOD_FLAGS.values() for f in flags}):
        value = getattr(args, flag)
        if value is not None and value != FLAG_DEFAULTS.get(flag, None):
            given[flag] = value
    own = set(METHOD_FLAGS.get(args.method, ()))
    stray = sorted(set(given) - own)
    if stray:
        names = ", ".join("--" + s.replace("_", "-") for s in stray)
        raise QuantOptionError(f"{names} does not apply to --method {args.method}")
    return given


def _errors(e: OutputError) -> dict[str, float | None]:
    return {key: getattr(e, key) for key in ERROR_KEYS}


def _scheme_dict(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    s = get_format(side.scheme.format, **side.options).scheme_for(side.scheme)  # a block format's own blocks
    return {
        "format": s.format,
        "bits": s.bits,
        "scheme": "symmetric" if s.symmetric else "asymmetric",
        "granularity": s.granularity,
        "axis": None if s.granularity == "tensor" else s.axis,
        "group_size": s.group_size if s.granularity == "group" else None,
        "calibrator": side.method,
        "convention": side.convention,
    }


def layer_result(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON object of ``layer``: sides, method options and details, RTN and method output errors."""
    method = get_method(args.method)
    w_t = load_tensor(args.w_path, args.w_tensor, allow_external_data=True)
    x_t = load_tensor(args.x_path, args.x_tensor, allow_external_data=True)
    w_side, x_side = sides_for(
        args.quantize or method.quantize, _side(args, "w", method.w_scheme), _side(args, "x", method.x_scheme)
    )
    run = run_method(w_t.values, x_t.values, method.name, w_side, x_side, _options(args))
    result: dict[str, Any] = {
        "w_tensor": w_t.name,
        "x_tensor": x_t.name,
        "w_shape": list(w_t.values.shape),
        "x_shape": list(x_t.values.shape),
        "method": method.name,
        "quantize": args.quantize or method.quantize,
        "w": _scheme_dict(w_side),
        "x": _scheme_dict(x_side),
        "options": run.options,
        "rtn": _errors(run.rtn),
        "error": _errors(run.error),
        "details": run.output.details,
    }
    if args.alpha_sweep:
        if method.name != "smoothquant":
            raise QuantOptionError("--alpha-sweep applies to --method smoothquant")
        result["alpha_sweep"] = [
            {"alpha": a, **_errors(e)} for a, e in alpha_sweep(w_t.values, x_t.values, w_side, x_side)
        ]
    return result


def _db(v: float | None) -> str:
    return "inf (exact)" if v is None else f"{v:.3f} dB"


def format_layer(r: dict[str, Any]) -> str:
    """A readable summary of :func:`layer_result`."""

    def side(name: str, s: dict[str, Any] | None) -> str:
        if s is None:
            return f"{name}  float (not quantized)"
        where = s["granularity"] + (f" axis {s['axis']}" if s["axis"] is not None else "")
        where += f" group {s['group_size']}" if s["group_size"] else ""
        fmt = "" if s["format"] == "int" else f"{s['format']} "
        return f"{name}  {fmt}{s['bits']}-bit {s['scheme']}, {where}, {s['calibrator']}, {s['convention']}"

    lines = [
        f"layer     Y = X W^T, W {r['w_tensor']} {tuple(r['w_shape'])}, X {r['x_tensor']} {tuple(r['x_shape'])}",
        f"method    {r['method']} ({METHODS[r['method']].label}), quantize {r['quantize']}",
        side("W       ", r["w"]),
        side("X       ", r["x"]),
        "",
        f"{'':<10}{'SQNR':>14}{'MSE':>14}{'cosine':>12}",
        f"{'rtn':<10}{_db(r['rtn']['sqnr_db']):>14}{r['rtn']['mse']:>14.6g}{r['rtn']['cosine']:>12.6f}",
        f"{r['method']:<10}{_db(r['error']['sqnr_db']):>14}{r['error']['mse']:>14.6g}{r['error']['cosine']:>12.6f}",
        "",
    ]
    for key, value in r["details"].items():
        if isinstance(value, list):
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value[:12])
            value = f"[{shown}{', ...' if len(value) > 12 else ''}] ({len(value)})"
        elif isinstance(value, float):
            value = f"{value:.6g}"
        lines.append(f"{key:<28}{value}")
    for row in r.get("alpha_sweep", []):
        lines.append(f"alpha {row['alpha']:.2f}  SQNR {_db(row['sqnr_db'])}")
    return "\n".join(lines)


def run_layer(args: argparse.Namespace) -> int:
    """``layer``: print the comparison (table or one JSON object)."""
    result = layer_result(args)
    print(strict_json.dumps(result) if args.json else format_layer(result))
    return 0
