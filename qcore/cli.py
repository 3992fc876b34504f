"""``python -m qcore``: calibrate or quantize one tensor of a file (contract: ``shared/cli-contract.md``).

Subcommands: ``calibrate PATH``, ``quantize PATH --out OUT.npz``, ``list PATH``,
``layer W_PATH X_PATH --method M`` (:mod:`qcore.layer_cli`).
All numbers come from :func:`qcore.analyze`; this module only parses options,
loads the tensor (:mod:`qcore.io`) and prints. Any bad input -- unreadable file,
impossible options, usage errors, even an unexpected exception -- ends with exit
status 2 and one line on stderr starting with ``error:``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from . import cli_formats, constraints, model_cli, strict_json
from .analysis import Analysis, analyze
from .calibrators import CALIBRATORS
from .calibrators.percentile import Percentile
from .io import TensorInfo, TensorLoadError, list_tensors, load_tensor
from .layer_cli import add_layer_parser, run_layer
from .params import CONVENTIONS
from .scan import cli as scan_cli
from .scheme import QuantOptionError, QuantScheme

EXIT_BAD_INPUT = 2
TABLE_ROWS = 10


class UsageError(Exception):
    """A command line argparse cannot parse."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage, so every error is one ``error:`` line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _add_quant_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", metavar="PATH", help=".npy .npz .csv .safetensors .onnx .pt .pth")
    p.add_argument("--tensor", metavar="NAME", help="array of a multi-array file (default: the first)")
    p.add_argument("--method", default="minmax", choices=sorted(CALIBRATORS), help="calibration method")
    p.add_argument("--bits", type=int, default=None, help="integer width, 2..16 (default 8; a format's own width)")
    p.add_argument("--scheme", choices=("symmetric", "asymmetric"), default="symmetric")
    p.add_argument("--unsigned", action="store_true", help="unsigned codes [0, 2^b-1]")
    p.add_argument("--narrow-range", action="store_true", help="signed codes [-(2^(b-1)-1), 2^(b-1)-1]")
    p.add_argument("--granularity", choices=("tensor", "channel", "group"), default="tensor")
    p.add_argument("--axis", type=int, default=None, help="channel / grouping axis (default 0; blocks: last)")
    p.add_argument("--group-size", type=int, default=None, help="elements per group (default 128; a format's block)")
    p.add_argument("--percentile", type=float, default=99.99, help="for percentile: P in (0, 100] (default 99.99)")
    p.add_argument("--bins", type=int, default=2048, help="histogram bins (default 2048)")
    p.add_argument("--convention", choices=tuple(CONVENTIONS), default="default", help="toolchain preset")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    cli_formats.add_format_options(p)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m qcore``."""
    parser = _Parser(prog="python -m qcore", description="Calibrate and quantize a tensor.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cal = sub.add_parser("calibrate", help="choose clip range, scale and zero point; report the error")
    _add_quant_options(cal)
    qua = sub.add_parser("quantize", help="as calibrate, and write codes and the round trip to an .npz")
    _add_quant_options(qua)
    qua.add_argument("--out", required=True, metavar="OUT.npz", help="output file")
    lst = sub.add_parser("list", help="names, shapes and dtypes of the arrays in a file")
    lst.add_argument("path", metavar="PATH")
    lst.add_argument("--json", action="store_true", help="print a JSON list")
    add_layer_parser(sub)
    model_cli.add_parser(sub)
    scan_cli.add_parser(sub)
    cli_formats.add_parser(sub)
    return parser


def scheme_from_args(args: argparse.Namespace) -> QuantScheme:
    """The requested :class:`QuantScheme`; the CLI's own options are validated too.

    Raises
    ------
    QuantOptionError
        bits outside 2..16, percentile outside (0, 100], non-positive bins or group size, ...
    """
    for name in ("percentile", "bins"):  # given to every method: the method's own bounds, else percentile's
        owner = CALIBRATORS[args.method]
        owner = owner if name in constraints.constraints_of(owner) else Percentile
        constraints.check(owner, name, getattr(args, name))
    return QuantScheme(
        symmetric=args.scheme == "symmetric",
        signed=not args.unsigned,
        narrow_range=args.narrow_range,
        granularity=args.granularity,
        **cli_formats.scheme_defaults(args),
    )


def result_dict(name: str, analysis: Analysis, method: str) -> dict[str, Any]:
    """The contract's JSON object for one analysis (plus ``format`` and ``bits_per_weight`` for non-INT formats).

    For a format other than INT, ``qmin``/``qmax`` bound its level indices, ``scale`` is its row scale
    (float scale, block scale ``d`` / ``2^e`` / absmax) and ``zero_point`` is 0.
    """
    rows, params, report, enc = analysis.rows, analysis.params, analysis.report, analysis.encoding
    scheme = params.scheme
    metrics = report.as_dict()
    result = {
        "tensor": name,
        "shape": [int(d) for d in rows.shape],
        "method": method,
        "bits": scheme.bits,
        "scheme": "symmetric" if scheme.symmetric else "asymmetric",
        "signed": scheme.signed,
        "narrow_range": scheme.narrow_range,
        "granularity": rows.granularity,
        "axis": rows.axis,
        "group_size": rows.group_size,
        "qmin": int(enc.qmin),
        "qmax": int(enc.qmax),
        "clip_min": [float(v) for v in enc.clip_min],
        "clip_max": [float(v) for v in enc.clip_max],
        "scale": [float(v) for v in enc.scale],
        "zero_point": [int(v) for v in enc.zero_point],
        "nonfinite_count": int(rows.nonfinite_count),
        "metrics": {
            key: None if metrics[key] is None else float(metrics[key])
            for key in ("mse", "clip_mse", "round_mse", "sqnr_db", "cosine", "clipped_fraction", "max_abs_error")
        },
    }
    if analysis.format.name != "int":  # the contract's fields stay exactly as they were for INT
        result.update(format=analysis.format.name, bits_per_weight=analysis.bits_per_weight())
    return result


def format_table(result: dict[str, Any]) -> str:
    """A readable summary of :func:`result_dict` (first rows of the per-range parameters)."""
    r, m = result, result["metrics"]
    sign = "signed" if r["signed"] else "unsigned"
    where = r["granularity"] + (f", axis {r['axis']}" if r["axis"] is not None else "")
    where += f", group size {r['group_size']}" if r["group_size"] is not None else ""
    lines = [
        f"tensor      {r['tensor']}  shape {tuple(r['shape'])}",
        f"method      {r['method']}, {r['bits']}-bit {r['scheme']} {sign}"
        + (" narrow range" if r["narrow_range"] else "")
        + f", codes [{r['qmin']}, {r['qmax']}]",
        f"ranges      {len(r['scale'])} ({where})",
        *([f"format      {r['format']}, {r['bits_per_weight']:.4g} bits per weight"] if "format" in r else []),
        f"non-finite  {r['nonfinite_count']} (left out of calibration)",
        "",
        f"{'range':>7} {'clip_min':>14} {'clip_max':>14} {'scale':>14} {'zero_point':>10}",
    ]
    n = len(r["scale"])
    columns = zip(r["clip_min"], r["clip_max"], r["scale"], r["zero_point"], strict=True)
    for i, (lo, hi, s, z) in zip(range(TABLE_ROWS), columns, strict=False):
        lines.append(f"{i:>7} {lo:>14.6g} {hi:>14.6g} {s:>14.6g} {z:>10}")
    if n > TABLE_ROWS:
        lines.append(f"{'...':>7} ({n - TABLE_ROWS} more; use --json for all)")
    sqnr = "inf (exact)" if m["sqnr_db"] is None else f"{m['sqnr_db']:.3f} dB"
    lines += [
        "",
        f"mse         {m['mse']:.6g}  (clip {m['clip_mse']:.6g} + rounding {m['round_mse']:.6g})",
        f"sqnr        {sqnr}",
        f"cosine      {m['cosine']:.6f}",
        f"clipped     {100 * m['clipped_fraction']:.4f} %",
        f"max |error| {m['max_abs_error']:.6g}",
    ]
    return "\n".join(lines)


def _analyze(args: argparse.Namespace) -> tuple[str, Analysis]:
    scheme = scheme_from_args(args)
    tensor = load_tensor(args.path, args.tensor, allow_external_data=True)  # a local path the user named
    options = {"percentile": args.percentile, "bins": args.bins, "scale_rounding": args.scale_rounding}
    return tensor.name, analyze(tensor.values, scheme, args.method, args.convention, **options)


def _print_result(args: argparse.Namespace, name: str, analysis: Analysis) -> None:
    result = result_dict(name, analysis, args.method)
    print(strict_json.dumps(result) if args.json else format_table(result))


def run_calibrate(args: argparse.Namespace) -> int:
    """``calibrate``: print the parameters and the error metrics."""
    name, analysis = _analyze(args)
    _print_result(args, name, analysis)
    return 0


def run_quantize(args: argparse.Namespace) -> int:
    """``quantize``: as ``calibrate``, and write ``dequantized`` and the format's own arrays to ``--out``.

    INT: ``q`` (the smallest integer dtype holding the codes), ``scale``, ``zero_point``; a non-uniform
    method's ``q`` are grid level indices, its levels stored as ``grid``. Other formats store their codes and
    scales under their own names (README), GGUF types their block bytes as ``blocks``.
    """
    name, analysis = _analyze(args)
    arrays = analysis.encoding.arrays()
    arrays["dequantized"] = np.asarray(analysis.dequantized(), dtype=np.float32)
    try:
        with open(args.out, "wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:
        raise QuantOptionError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    _print_result(args, name, analysis)
    return 0


def _info_line(info: TensorInfo) -> str:
    note = "" if info.refusal is None else "  (not loadable)"
    return f"{info.name}\t{list(info.shape)}\t{info.dtype}{note}"


def run_list(args: argparse.Namespace) -> int:
    """``list``: one line (or JSON record) per array: name, shape, stored dtype."""
    infos = list_tensors(args.path)
    if args.json:
        print(strict_json.dumps([{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in infos]))
    else:
        print("\n".join(_info_line(i) for i in infos) if infos else "(no arrays)")
    return 0


COMMANDS = {
    "calibrate": run_calibrate,
    "quantize": run_quantize,
    "list": run_list,
    "formats": cli_formats.run,
    "layer": run_layer,
    "model": model_cli.run,
    "scan": scan_cli.run,
}


def _fail(message: str) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0, or 2 with one ``error:`` line on stderr).

    Warnings (numpy overflow notes, library deprecations) are dropped: stderr holds the one
    ``error:`` line or nothing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, TensorLoadError, QuantOptionError) as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # the contract: no traceback, whatever went wrong
        return _fail(f"internal error ({type(exc).__name__}: {exc}); please report it")
