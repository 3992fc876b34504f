"""A model quantization configuration: what every linear layer's weight and input go through.

Written as one spec string (the CLI's ``--config`` and the app's URL state)::

    SPEC     := SETTINGS (";" OVERRIDE)*
    OVERRIDE := PATTERN ":" ("float" | SETTINGS)
    SETTINGS := KEY "=" VALUE ("," KEY "=" VALUE)*

e.g. ``bits=4,granularity=channel,input.bits=8,input.method=entropy; *.intermediate.dense: bits=8; fc3: float``.
A key applies to the weight and the input; ``weight.KEY`` / ``input.KEY`` to one of them. An override starts from
the base settings and changes the keys it names, for every layer whose name matches ``PATTERN`` (shell-style:
``*``, ``?``; later overrides win); ``float`` leaves the layer unquantized. Keys (:data:`KEYS`):

- ``target``: ``both`` (default), ``weight``, ``input``, ``none``;
- ``bits`` (8), ``scheme`` (``symmetric``/``asymmetric``), ``signed`` (true), ``narrow_range`` (false), ``rounding``
  (``half_even``/``half_away``), ``method`` (a registered calibrator, ``minmax``), ``convention`` (``default``),
  ``percentile`` (99.99), ``bins`` (2048), ``group_size`` (128), any further :class:`~qcore.scheme.QuantScheme`
  field passed through unchanged, e.g. ``format`` (a number format of :mod:`qcore.formats`; block formats need
  ``dynamic=true`` on inputs);
- ``granularity``: weights ``tensor`` / ``channel`` (per output channel) / ``group`` (along the input features);
  inputs ``tensor`` / ``channel`` (per input feature) / ``token`` (per row, dynamic) / ``group`` (dynamic);
- ``dynamic`` (inputs, false): calibrate every input on itself at run time instead of once on the calibration split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .. import constraints
from ..calibrators import CALIBRATORS, make_calibrator
from ..calibrators.percentile import Percentile
from ..formats import get_format
from ..params import CONVENTIONS
from ..scheme import QuantOptionError, QuantScheme

ROLES: tuple[str, ...] = ("weight", "input")
TARGETS: tuple[str, ...] = ("both", "weight", "input", "none")
GRANULARITIES: dict[str, tuple[str, ...]] = {
    "weight": ("tensor", "channel", "group"),
    "input": ("tensor", "channel", "token", "group"),
}
DEFAULTS: dict[str, Any] = {
    "bits": 8,
    "scheme": "symmetric",
    "signed": True,
    "narrow_range": False,
    "rounding": "half_even",
    "granularity": "tensor",
    "group_size": 128,
    "method": "minmax",
    "convention": "default",
    "percentile": 99.99,
    "bins": 2048,
    "dynamic": False,
}
#: Keys of a spec and what their values may be (beside :data:`DEFAULTS`: ``target``, and QuantScheme fields).
KEYS: dict[str, str] = {
    "target": "|".join(TARGETS),
    "bits": "integer 2..16",
    "scheme": "symmetric|asymmetric",
    "signed": "true|false",
    "narrow_range": "true|false",
    "rounding": "half_even|half_away",
    "granularity": "tensor|channel|group (weights), tensor|channel|token|group (inputs)",
    "group_size": "positive integer",
    "method": "|".join(CALIBRATORS),
    "convention": "|".join(CONVENTIONS),
    "percentile": "number in (0, 100]",
    "bins": "positive integer",
    "dynamic": "true|false (inputs)",
}
_SCHEME_FIELDS = {f.name for f in dataclasses.fields(QuantScheme)}
_SCHEME_DEFAULTS = {f.name: f.default for f in dataclasses.fields(QuantScheme)}
#: QuantScheme fields the spec sets through its own keys (the rest pass through as they are).
_OWN_FIELDS = {"bits", "symmetric", "signed", "narrow_range", "rounding", "granularity", "axis", "group_size"}


class ModelConfigError(QuantOptionError):
    """A configuration that cannot be parsed or does not fit the model."""


@dataclass(frozen=True)
class TensorQuant:
    """How one tensor (a weight or an input) is fake-quantized.

    Attributes
    ----------
    scheme : QuantScheme
        With the axis set for the role (weights: channel axis 0, group axis 1; inputs: feature axis 1, token axis 0).
    method, convention : str
        Calibrator and scale convention (:func:`qcore.analyze`).
    options : tuple of (str, value)
        Calibrator options (``percentile``, ``bins``).
    dynamic : bool
        Inputs only: calibrate on the tensor itself at every call.
    """

    scheme: QuantScheme
    method: str = "minmax"
    convention: str = "default"
    options: tuple[tuple[str, Any], ...] = ()
    dynamic: bool = False


@dataclass(frozen=True)
class LayerQuant:
    """A linear layer's quantizers; ``None`` leaves that tensor in float."""

    weight: TensorQuant | None = None
    input: TensorQuant | None = None

    @property
    def is_float(self) -> bool:
        return self.weight is None and self.input is None


FLOAT = LayerQuant()


@dataclass(frozen=True)
class ModelQuantConfig:
    """Base quantizers for every linear layer plus per-layer overrides (pattern, quantizers), later ones winning."""

    base: LayerQuant
    overrides: tuple[tuple[str, LayerQuant], ...] = ()
    spec: str = ""

    def resolve(self, layers: tuple[str, ...]) -> dict[str, LayerQuant]:
        """The quantizers of every layer.

        Raises
        ------
        ModelConfigError
            An override pattern matches no layer.
        """
        out = dict.fromkeys(layers, self.base)
        for pattern, quant in self.overrides:
            matched = [name for name in layers if fnmatchcase(name, pattern)]
            if not matched:
                shown = ", ".join(layers[:8]) + (", ..." if len(layers) > 8 else "")
                raise ModelConfigError(f"no layer matches {pattern!r}; the layers are {shown}")
            out.update(dict.fromkeys(matched, quant))
        return out


def _bool(value: str, key: str) -> bool:
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise ModelConfigError(f"{key} must be true or false, got {value!r}")


def _int(value: str, key: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ModelConfigError(f"{key} must be an integer, got {value!r}") from None


def _number(value: str, key: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ModelConfigError(f"{key} must be a number, got {value!r}") from None


def _choice(value: str, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ModelConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _parse_value(key: str, value: str) -> Any:
    """A spec value converted for ``key`` (QuantScheme pass-through fields stay strings unless numeric)."""
    if key in ("bits", "group_size", "bins"):
        return _int(value, key)
    if key == "percentile":
        return _number(value, key)
    if key in ("signed", "narrow_range", "dynamic"):
        return _bool(value, key)
    if key == "scheme":
        return _choice(value, key, ("symmetric", "asymmetric"))
    if key == "rounding":
        return _choice(value, key, ("half_even", "half_away"))
    if key == "method":
        return _choice(value, key, tuple(CALIBRATORS))
    if key == "convention":
        return _choice(value, key, tuple(CONVENTIONS))
    if key == "granularity":
        return _choice(value, key, ("tensor", "channel", "token", "group"))
    if key in _SCHEME_FIELDS - _OWN_FIELDS:  # passed through: converted like the field's default
        default = _SCHEME_DEFAULTS[key]
        if isinstance(default, bool):
            return _bool(value, key)
        if isinstance(default, int) or default is None:
            return _int(value, key)
        return value
    known = ", ".join([*KEYS, *sorted(_SCHEME_FIELDS - _OWN_FIELDS)])
    raise ModelConfigError(f"unknown key {key!r}; keys are {known} (prefix weight. or input. for one tensor)")


def _apply_settings(text: str, state: dict[str, Any]) -> None:
    """Update ``state`` (``target`` and one settings dict per role) with ``KEY=VALUE,...``."""
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ModelConfigError(f"expected KEY=VALUE, got {item!r}")
        role, dot, bare = key.partition(".")
        if dot and role in ROLES:
            roles, key = (role,), bare
        else:
            roles = ROLES
        if key == "target":
            if dot and role in ROLES:
                raise ModelConfigError("target applies to the layer, not to weight. or input.")
            state["target"] = _choice(value, "target", TARGETS)
            continue
        parsed = _parse_value(key, value)
        for r in roles:
            state[r][key] = parsed


def _tensor_quant(settings: dict[str, Any], role: str) -> TensorQuant:
    """The :class:`TensorQuant` of one role's settings (validated by the core's own classes)."""
    gran = settings["granularity"]
    if gran not in GRANULARITIES[role]:
        raise ModelConfigError(f"{role} granularity must be one of {', '.join(GRANULARITIES[role])}, got {gran!r}")
    dynamic = bool(settings["dynamic"])
    if role == "weight" and dynamic:
        raise ModelConfigError("dynamic applies to inputs (weights are quantized once)")
    if role == "input" and gran == "token":
        gran, axis, dynamic = "channel", 0, True
    elif role == "input" and gran == "group" and not dynamic:
        raise ModelConfigError("input granularity group needs dynamic=true: its number of ranges depends on the tokens")
    else:
        axis = 0 if (role == "weight" and gran == "channel") else 1
    constraints.check(Percentile, "percentile", settings["percentile"])
    constraints.check(Percentile, "bins", settings["bins"])
    extra = {k: v for k, v in settings.items() if k in _SCHEME_FIELDS - _OWN_FIELDS}
    scheme = QuantScheme(
        bits=settings["bits"],
        symmetric=settings["scheme"] == "symmetric",
        signed=settings["signed"],
        narrow_range=settings["narrow_range"],
        rounding=settings["rounding"],
        granularity=gran,
        axis=axis,
        group_size=settings["group_size"],
        **extra,
    )
    options = (("percentile", settings["percentile"]), ("bins", settings["bins"]))
    make_calibrator(settings["method"], **dict(options))
    laid_out = get_format(scheme.format).scheme_for(scheme)
    if role == "input" and not dynamic and laid_out.granularity == "group":
        raise ModelConfigError(
            f"{scheme.format} lays inputs out in blocks of {laid_out.group_size}: their number depends on the tokens; "
            "use dynamic=true"
        )
    return TensorQuant(scheme, settings["method"], settings["convention"], options, dynamic)


def _layer_quant(state: dict[str, Any]) -> LayerQuant:
    target = state["target"]
    weight = _tensor_quant(state["weight"], "weight") if target in ("both", "weight") else None
    inp = _tensor_quant(state["input"], "input") if target in ("both", "input") else None
    return LayerQuant(weight, inp)


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    return {"target": state["target"], **{r: dict(state[r]) for r in ROLES}}


def parse_config(spec: str | None) -> ModelQuantConfig:
    """Parse a spec string (module docstring); empty or None: INT8 symmetric per-tensor MinMax on everything.

    Raises
    ------
    ModelConfigError
        Unknown key, bad value, malformed override, impossible scheme.
    """
    spec = (spec or "").strip()
    sections = [s.strip() for s in spec.split(";")]
    base_text, override_texts = sections[0], [s for s in sections[1:] if s]
    if ":" in base_text:
        base_text, override_texts = "", [s for s in sections if s]
    state = {"target": "both", **{r: dict(DEFAULTS) for r in ROLES}}
    try:
        _apply_settings(base_text, state)
        base = _layer_quant(state)
        overrides = []
        for text in override_texts:
            pattern, sep, body = text.partition(":")
            pattern, body = pattern.strip(), body.strip()
            if not sep or not pattern or not body:
                raise ModelConfigError(f"an override is PATTERN: float or PATTERN: KEY=VALUE,..., got {text!r}")
            if body == "float":
                overrides.append((pattern, FLOAT))
                continue
            layer_state = _copy(state)
            _apply_settings(body, layer_state)
            try:
                overrides.append((pattern, _layer_quant(layer_state)))
            except QuantOptionError as exc:
                raise ModelConfigError(f"override {pattern!r}: {exc}") from None
    except ModelConfigError:
        raise
    except (QuantOptionError, TypeError) as exc:
        raise ModelConfigError(str(exc)) from None
    return ModelQuantConfig(base, tuple(overrides), spec)


def keep_quant(config: ModelQuantConfig, settings: str) -> LayerQuant:
    """The quantizers an override body (``float`` or ``KEY=VALUE,...``) gives a layer of ``config``.

    Raises
    ------
    ModelConfigError
        As for an override.
    """
    if settings.strip() == "float":
        return FLOAT
    return parse_config(f"{config.spec}; *: {settings}").overrides[-1][1]
