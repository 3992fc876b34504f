"""``python -m qcore formats``: every number format with its block size and bits per weight.

Also the ``--format`` options of ``calibrate`` / ``quantize`` and how they fill in the scheme: ``--bits``
defaults to the format's element width, and a block format's blocks run along the last axis.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import strict_json
from .formats import FORMATS, NumberFormat, get_format
from .formats.mx import SCALE_ROUNDINGS
from .scheme import QuantScheme

DEFAULT_INT_BITS = 8
DEFAULT_GROUP_SIZE = 128


def add_format_options(p: argparse.ArgumentParser) -> None:
    """``--format`` and the format options of ``calibrate`` / ``quantize``."""
    p.add_argument("--format", default="int", choices=tuple(FORMATS), metavar="NAME",
                   help="number format (default int; `python -m qcore formats` lists them)")  # fmt: skip
    p.add_argument("--scale-rounding", choices=SCALE_ROUNDINGS, default=None,
                   help="MX formats: E8M0 scale exponent rounding (floor is the OCP spec)")  # fmt: skip


def scheme_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """``bits``, ``axis`` and ``group_size`` with the format's defaults where the command line left them out."""
    fmt = get_format(args.format)
    return {
        "bits": args.bits if args.bits is not None else (fmt.bits or DEFAULT_INT_BITS),
        "axis": args.axis if args.axis is not None else (-1 if fmt.block_sizes else 0),
        "group_size": args.group_size if args.group_size is not None else (fmt.block or DEFAULT_GROUP_SIZE),
        "format": fmt.name,
    }


def format_record(fmt: NumberFormat) -> dict[str, Any]:
    """One format as a JSON object: name, element bits, block size, nominal bits per weight, rules."""
    scheme = QuantScheme(bits=fmt.bits or DEFAULT_INT_BITS, format=fmt.name)
    return {
        "name": fmt.name,
        "label": fmt.label,
        "family": fmt.family,
        "element_bits": fmt.bits,
        "block_size": fmt.block,
        "block_sizes": list(fmt.block_sizes),
        "bits_per_weight": fmt.bits_per_weight(scheme),
        "per_tensor_bits": fmt.tensor_bits,
        "calibrated_range": fmt.calibrated,
        "zero_point": fmt.affine,
        "options": list(fmt.option_names),
        "summary": fmt.summary,
        "source": fmt.source,
    }


def _line(r: dict[str, Any]) -> str:
    bits = "2..16" if r["element_bits"] is None else str(r["element_bits"])
    block = "-" if r["block_size"] is None else str(r["block_size"])
    bpw = f"{r['bits_per_weight']:.4g}"
    if r["block_size"] is None:
        bpw += " + scale per tensor/channel/group"
    elif r["per_tensor_bits"]:
        bpw += f" + {r['per_tensor_bits']:g} bits per tensor"
    return f"{r['name']:<12} {bits:>6} {block:>6}  {bpw:<40} {r['label']}"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``formats`` on the subcommand parser."""
    p = sub.add_parser("formats", help="list number formats: block size and bits per weight")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """``formats``: one line (or JSON record) per registered format."""
    records = [format_record(f) for f in FORMATS.values()]
    if args.json:
        print(strict_json.dumps({"formats": records}))
    else:
        head = f"{'name':<12} {'bits':>6} {'block':>6}  {'bits per weight':<40} label"
        print("\n".join([head, *(_line(r) for r in records)]))
    return 0
