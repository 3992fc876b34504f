"""One grammar for a quantizer's settings, shared by the model scan, the model what-if and the app.

A quantizer is written ``KEY=VALUE,KEY=VALUE,...`` (spaces around items ignored, ``-`` in a key read as ``_``).
Keys (:func:`known_keys`):

- ``scheme``: ``symmetric`` (default) | ``asymmetric``; ``method``: a registered calibrator (``minmax``);
  ``convention``: a scale convention (``default``); ``format``: a number format of :mod:`qcore.formats` (``int``);
- the :class:`~qcore.scheme.QuantScheme` fields: ``bits``, ``signed``, ``narrow_range``, ``reduce_range``,
  ``granularity``, ``axis``, ``group_size``, ``rounding``, ``quant_min``, ``quant_max``;
- the method's options by name (``percentile``, ``bins``, ``source``, ...);
- the format's options by name (MX ``scale_rounding``, log2 ``full_scale``), ``double_quant`` (NF4: true picks
  the double-quantized variant ``nf4_dq``) and ``block_size`` (a block format's block length: its
  ``group_size``). log2's own ``rounding`` option is not a key: ``rounding`` is the scheme's.

Each value is typed like the field it sets (true/false, integer, number, text) and checked against the bounds
declared beside that field (:mod:`qcore.constraints`); an unknown key, a value of the wrong kind or out of bounds, and
an impossible combination raise :class:`~qcore.errors.QuantOptionError` naming the key, what it takes and the value.
The model what-if spec (:mod:`qcore.models.config`) builds on this grammar (per-role prefixes and per-layer
overrides); a model scan configuration (:mod:`qcore.scan.config`) is exactly one quantizer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from . import constraints
from .calibrators import CALIBRATORS
from .errors import QuantOptionError
from .formats import FORMATS, get_format
from .formats.base import NumberFormat
from .params import CONVENTIONS
from .scheme import QuantScheme

SCHEME_KEYS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(QuantScheme) if f.name not in ("symmetric", "format")
)
"""QuantScheme fields set by their own name (``symmetric`` is written ``scheme=...``, ``format`` is an own key)."""
OWN_KEYS: tuple[str, ...] = ("scheme", "method", "convention", "format")
FORMAT_KEYS: tuple[str, ...] = ("double_quant", "block_size")
"""Format keys beside each format's ``option_names``: a registered variant's field, a block format's block length."""


@dataclass(frozen=True)
class QuantSettings:
    """One quantizer, as :func:`qcore.analyze` takes it.

    Attributes
    ----------
    scheme : QuantScheme
        Laid out for its format (a block format's blocks along the last axis).
    method, convention : str
    options : tuple of (name, value)
        The calibrator's and the format's options that were given (sorted by name).
    format : str
        Number format name (``int``: the integer grid of ``scheme``).
    """

    scheme: QuantScheme
    method: str = "minmax"
    convention: str = "default"
    options: tuple[tuple[str, Any], ...] = ()
    format: str = "int"


def split_items(text: str) -> list[tuple[str, str]]:
    """``KEY=VALUE,...`` as (key, value) pairs, in order (a later key overrides an earlier one where they meet).

    Raises
    ------
    QuantOptionError
        An item that is not ``KEY=VALUE``.
    """
    out = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not sep or not key or not value:
            raise QuantOptionError(f"expected KEY=VALUE, got {item!r}")
        out.append((key, value))
    return out


def _kind(field: dataclasses.Field) -> type:
    """bool, int, float or str: the kind of value a dataclass field holds (from its default, else its annotation)."""
    if field.default is not dataclasses.MISSING and field.default is not None:
        return type(field.default) if isinstance(field.default, (bool, int, float)) else str
    annotation = str(field.type)
    for kind in (bool, int, float):
        if kind.__name__ in annotation:
            return kind
    return str


def typed(key: str, text: str, kind: type) -> Any:
    """``text`` as a value of ``kind`` (``true``/``false``/``1``/``0``/``yes``/``no`` for booleans).

    Raises
    ------
    QuantOptionError
        Text that is not such a value.
    """
    if kind is bool:
        low = text.lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise QuantOptionError(f"{key} takes true or false, got {text!r}")
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise QuantOptionError(f"{key} takes {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    return text


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def _choice(key: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise QuantOptionError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def known_keys(method: str, fmt: NumberFormat) -> tuple[str, ...]:
    """Every key a quantizer with ``method`` and format ``fmt`` takes."""
    fkeys = tuple(k for k in fmt.option_names if k not in SCHEME_KEYS) + FORMAT_KEYS
    return (*OWN_KEYS, *SCHEME_KEYS, *CALIBRATORS[method].options(), *fkeys)


def _method_option(key: str, text: str, method: str) -> Any:
    """A calibrator option typed and checked by the calibrator that declares it."""
    cls = CALIBRATORS[method]
    value = typed(key, text, _kind(_field(cls, key)))
    try:
        constraints.check(cls, key, value)
    except QuantOptionError as exc:  # "percentile of method percentile", not "of percentile"
        raise QuantOptionError(str(exc).replace(f"{key} of ", f"{key} of method ", 1)) from None
    return value


def _format(name: str, pairs: dict[str, str]) -> tuple[NumberFormat, dict[str, Any], int | None]:
    """The format with its options and variants applied, the options given, and a ``block_size`` if any."""
    fmt = get_format(name)  # unknown names: a clear error listing the formats
    options: dict[str, Any] = {}
    for key in [k for k in fmt.option_names if k in pairs and k not in SCHEME_KEYS]:
        options[key] = typed(key, pairs.pop(key), _kind(_field(type(fmt), key)))
        try:
            constraints.check(type(fmt), key, options[key])
        except QuantOptionError as exc:  # name the format (mxfp4), not its class (MXFormat)
            raise QuantOptionError(str(exc).replace(f" of {type(fmt).__name__} ", f" of {fmt.name} ", 1)) from None
    if "double_quant" in pairs:
        text = pairs.pop("double_quant")
        if "double_quant" not in {f.name for f in dataclasses.fields(fmt)}:
            raise QuantOptionError(f"double_quant applies to the NF4 formats, not {fmt.name}")
        wanted = typed("double_quant", text, bool)
        fmt = next(f for f in FORMATS.values() if f.family == fmt.family and getattr(f, "double_quant", None) == wanted)
    block = None
    if "block_size" in pairs:
        block = typed("block_size", pairs.pop("block_size"), int)
        if not fmt.block_sizes:
            raise QuantOptionError(
                f"block_size applies to block formats; {fmt.name} has none (use granularity=group,group_size=N)"
            )
        if block not in fmt.block_sizes:
            raise QuantOptionError(
                f"block_size of {fmt.name} must be one of {', '.join(map(str, fmt.block_sizes))}, got {block}"
            )
    return fmt.with_options(**options), options, block


def build(
    items: list[tuple[str, str]],
    axis_for: Callable[[str], int] | None = None,
    shared: Collection[str] = (),
) -> QuantSettings:
    """The quantizer ``items`` describe (module docstring).

    Parameters
    ----------
    items : list of (key, value text)
        From :func:`split_items` (later items win).
    axis_for : callable, optional
        The default ``axis`` of a granularity (default: 0 for channel, -1 for group: along the last axis).
    shared : collection of str
        Keys given to several quantizers at once (a model's weights and inputs): such a key that is an option of
        another method than this quantizer's is dropped (after checking its value against the calibrator that
        declares it) instead of refused.

    Raises
    ------
    QuantOptionError
        Unknown key, a value of the wrong kind or outside its declared bounds, an impossible combination.
    """
    pairs = dict(items)
    method = _choice("method", pairs.pop("method", "minmax"), list(CALIBRATORS))
    scheme_name = _choice("scheme", pairs.pop("scheme", "symmetric"), ("symmetric", "asymmetric"))
    convention = _choice("convention", pairs.pop("convention", "default"), list(CONVENTIONS))
    fmt, fmt_options, block = _format(pairs.pop("format", "int").lower(), pairs)
    kwargs: dict[str, Any] = {"symmetric": scheme_name == "symmetric", "format": fmt.name}
    options: dict[str, Any] = dict(fmt_options)
    takes = CALIBRATORS[method].options()
    for key, text in pairs.items():
        if key in SCHEME_KEYS:
            kwargs[key] = typed(key, text, _kind(_field(QuantScheme, key)))
            constraints.check(QuantScheme, key, kwargs[key])
        elif key in takes:
            options[key] = _method_option(key, text, method)
        elif owners := [m for m, cls in CALIBRATORS.items() if key in cls.options()]:
            _method_option(key, text, owners[0])  # a bad value is an error wherever it would go
            if key not in shared:
                raise QuantOptionError(f"{key} is an option of {', '.join(owners)}, not of method {method}")
        else:
            raise QuantOptionError(
                f"unknown key {key!r} (method {method}, format {fmt.name}); keys are "
                + ", ".join(known_keys(method, fmt))
            )
    if block is not None:
        kwargs.setdefault("granularity", "group")
        kwargs["group_size"] = block
    granularity = kwargs.get("granularity", "tensor")
    if "axis" not in kwargs:
        kwargs["axis"] = axis_for(granularity) if axis_for else (-1 if granularity == "group" else 0)
    if "bits" not in kwargs and fmt.bits is not None:
        kwargs["bits"] = fmt.bits  # a format's own element width unless the spec gives bits
    try:
        scheme = fmt.scheme_for(QuantScheme(**kwargs))  # block formats: their blocks, last axis
    except TypeError as exc:
        raise QuantOptionError(str(exc)) from None
    fmt.check_method(method, convention)
    return QuantSettings(scheme, method, convention, tuple(sorted(options.items())), fmt.name)
