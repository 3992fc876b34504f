"""Scan configurations from spec strings such as ``bits=4,granularity=group,group_size=128,method=mse``.

One configuration is one quantizer in the grammar of :mod:`qcore.spec` (the model what-if's too): ``bits``,
``scheme`` (symmetric|asymmetric), ``signed`` / ``narrow_range`` (true|false), ``granularity`` (tensor|channel|group),
``axis`` (default 0 for channel, -1 for group: groups run along a weight's input dimension, as GPTQ and llama.cpp
do), ``group_size``, ``rounding``, ``method`` (a registered calibrator), ``convention``, ``format`` (a number format;
``int`` is the integer grid; the names of :data:`qcore.formats.FORMATS`, e.g. ``nf4``, ``fp8_e4m3``, ``q4_0``: a
block format takes its own block size along the last axis), the method's options by name (``percentile``,
``bins``, ...) and the format's (``scale_rounding``, ``double_quant``, ``block_size``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..formats import get_format
from ..scheme import QuantScheme
from ..spec import build, split_items

DEFAULT_SPECS: tuple[str, ...] = (
    "bits=8,granularity=channel,method=minmax",
    "bits=4,granularity=group,group_size=128,method=minmax",
)
"""What a scan measures when no configuration is given (fast on any model; a per-group MSE search costs ~100x more)."""


@dataclass(frozen=True)
class ScanConfig:
    """One quantization configuration of a scan.

    Attributes
    ----------
    scheme : QuantScheme
    method : str
        Calibrator name.
    options : tuple of (name, value)
        Calibrator options.
    convention : str
    format : str
        Number format name (``int``: the integer grid of ``scheme``).
    """

    scheme: QuantScheme
    method: str = "minmax"
    options: tuple[tuple[str, Any], ...] = ()
    convention: str = "default"
    format: str = "int"

    @property
    def label(self) -> str:
        """Short name, e.g. ``INT4 g128 mse`` or ``INT8 per-channel minmax asym`` (options given appended: two
        configurations of a scan never share a label)."""
        s = self.scheme
        where = {"tensor": "per-tensor", "channel": "per-channel"}.get(s.granularity, f"g{s.group_size}")
        head = f"INT{s.bits}" if self.format == "int" else self.format.upper()
        extra = "" if s.symmetric else " asym"
        extra += "" if s.signed else " unsigned"
        extra += " narrow" if s.narrow_range else ""
        extra += " reduced" if s.reduce_range else ""
        extra += f" [{s.quant_min},{s.quant_max}]" if s.quant_min is not None else ""
        extra += "".join(f" {k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.options)
        return f"{head} {where} {self.method}{extra}"

    @property
    def spec(self) -> str:
        """The canonical spec string (parses back to an equal config)."""
        s = self.scheme
        parts = {
            "bits": s.bits,
            "scheme": "symmetric" if s.symmetric else "asymmetric",
            "signed": s.signed,
            "narrow_range": s.narrow_range,
            "reduce_range": s.reduce_range,
            **({"quant_min": s.quant_min, "quant_max": s.quant_max} if s.quant_min is not None else {}),
            "granularity": s.granularity,
            "axis": s.axis,
            "group_size": s.group_size,
            "rounding": s.rounding,
            "method": self.method,
            "convention": self.convention,
            "format": self.format,
            **dict(self.options),
        }
        return ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in parts.items())

    def bits_per_weight(self, shape: tuple[int, ...]) -> float:
        """Stored bits per element of a tensor of ``shape``, as :mod:`qcore.formats` counts them.

        INT: ``b + n_ranges * (32 + b_zero) / N`` (a float32 scale per range and, when
        asymmetric, a ``b``-bit zero point); other formats: their own block and scale cost.
        """
        scheme = self.scheme if len(shape) >= 2 else self.scheme.with_(granularity="tensor")
        return get_format(self.format).bits_per_weight(scheme, tuple(shape))

    def nbytes(self, shape: tuple[int, ...]) -> int:
        """Stored bytes, ``ceil(N * bits_per_weight / 8)``."""
        return int(-(-round(self.bits_per_weight(shape) * _prod(shape)) // 8))


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def parse_config(spec: str) -> ScanConfig:
    """Parse one quantizer's ``key=value,key=value`` (the grammar of :mod:`qcore.spec`).

    Raises
    ------
    QuantOptionError
        Unknown key or method, a value of the wrong kind or outside its declared bounds, an impossible scheme.
    """
    q = build(split_items(spec))
    return ScanConfig(q.scheme, q.method, q.options, q.convention, q.format)
