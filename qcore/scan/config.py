"""Scan configurations from spec strings such as ``bits=4,granularity=group,group_size=128,method=mse``.

Keys: ``bits``, ``scheme`` (symmetric|asymmetric), ``signed`` / ``narrow_range`` (true|false),
``granularity`` (tensor|channel|group), ``axis`` (default 0 for channel, -1 for group: groups run
along a weight's input dimension, as GPTQ and llama.cpp do), ``group_size``, ``rounding``,
``method`` (a registered calibrator), ``convention``, ``format`` (a number format; ``int`` is the
integer grid; the names of :data:`qcore.formats.FORMATS`, e.g. ``nf4``, ``fp8_e4m3``, ``q4_0``: a block format
takes its own block size along the last axis) and the method's own options by name (``percentile``, ``bins``, ...).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..calibrators import CALIBRATORS
from ..formats import get_format
from ..params import CONVENTIONS
from ..scheme import QuantOptionError, QuantScheme

SCHEME_KEYS = ("bits", "signed", "narrow_range", "granularity", "axis", "group_size", "rounding")
OWN_KEYS = ("scheme", "method", "convention", "format")
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
        """Short name, e.g. ``INT4 g128 mse`` or ``INT8 per-channel minmax asym``."""
        s = self.scheme
        where = {"tensor": "per-tensor", "channel": "per-channel"}.get(s.granularity, f"g{s.group_size}")
        head = f"INT{s.bits}" if self.format == "int" else self.format.upper()
        extra = "" if s.symmetric else " asym"
        extra += "" if s.signed else " unsigned"
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


def _value(key: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = text.lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise QuantOptionError(f"config key {key!r} takes true or false, got {text!r}")
        return low in ("true", "1", "yes")
    try:
        if isinstance(default, int) or (default is None and key in ("bins", "max_iter", "max_raw", "steps")):
            return int(text)
        if isinstance(default, float) or default is None:
            return float(text)
    except ValueError:
        raise QuantOptionError(f"config key {key!r} takes a number, got {text!r}") from None
    return text


def parse_config(spec: str) -> ScanConfig:
    """Parse ``key=value,key=value`` (see the module docstring); unknown keys and values are errors.

    Raises
    ------
    QuantOptionError
        Unknown key or method, a value of the wrong type, an impossible scheme.
    """
    pairs: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, text = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not text.strip():
            raise QuantOptionError(f"config item {part!r} is not key=value")
        pairs[key] = text.strip()
    method = pairs.pop("method", "minmax")
    if method not in CALIBRATORS:
        raise QuantOptionError(f"unknown method {method!r} in config; known: {', '.join(sorted(CALIBRATORS))}")
    fields = {f.name: f.default for f in dataclasses.fields(CALIBRATORS[method])}
    scheme_name = pairs.pop("scheme", "symmetric")
    if scheme_name not in ("symmetric", "asymmetric"):
        raise QuantOptionError(f"scheme must be symmetric or asymmetric, got {scheme_name!r}")
    convention = pairs.pop("convention", "default")
    if convention not in CONVENTIONS:
        raise QuantOptionError(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    fmt_name = pairs.pop("format", "int").lower()
    fmt = get_format(fmt_name)  # unknown names: a clear error listing the formats
    defaults = QuantScheme()
    granularity = pairs.get("granularity", "tensor")
    kwargs: dict[str, Any] = {"symmetric": scheme_name == "symmetric", "axis": -1 if granularity == "group" else 0}
    options: dict[str, Any] = {}
    for key, text in pairs.items():
        if key in SCHEME_KEYS:
            kwargs[key] = _value(key, text, getattr(defaults, key))
        elif key in fields:
            options[key] = _value(key, text, fields[key])
        else:
            known = ", ".join((*SCHEME_KEYS, *OWN_KEYS, *fields))
            raise QuantOptionError(f"unknown config key {key!r} for method {method}; known: {known}")
    if "bits" not in kwargs and fmt.bits is not None:
        kwargs["bits"] = fmt.bits  # a format's own element width unless the spec gives bits
    scheme = fmt.scheme_for(QuantScheme(**kwargs, format=fmt_name))  # block formats: their blocks, last axis
    fmt.check_method(method, convention)
    return ScanConfig(scheme, method, tuple(sorted(options.items())), convention, fmt_name)
