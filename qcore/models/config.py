"""A model quantization configuration: what every linear layer's weight and input go through.

Written as one spec string (the CLI's ``--config`` and the app's URL state)::

    SPEC     := SETTINGS (";" OVERRIDE)*
    OVERRIDE := PATTERN ":" ("float" | SETTINGS)
    SETTINGS := KEY "=" VALUE ("," KEY "=" VALUE)*

e.g. ``bits=4,granularity=channel,input.bits=8,input.method=entropy; *.intermediate.dense: bits=8; fc3: float``.
A key applies to the weight and the input; ``weight.KEY`` / ``input.KEY`` to one of them (a method's option given
to both goes to the quantizers whose method takes it). An override starts from the base settings and changes the
keys it names, for every layer whose name matches ``PATTERN`` (shell-style: ``*``, ``?``; later overrides win);
``float`` leaves the layer unquantized. Each quantizer's keys are those of :mod:`qcore.spec` (the one grammar the
model scan and the app use too: ``bits``, ``scheme``, ``signed``, ``narrow_range``, ``reduce_range``,
``granularity``, ``group_size``, ``rounding``, ``quant_min``/``quant_max``, ``method``, ``convention``, ``format``,
the method's options such as ``percentile`` and ``bins``, the format's such as ``scale_rounding``,
``double_quant``, ``block_size``), except ``axis`` (set by the role), plus:

- ``target``: ``both`` (default), ``weight``, ``input``, ``none``;
- ``granularity``: weights ``tensor`` / ``channel`` (per output channel) / ``group`` (along the input features);
  inputs ``tensor`` / ``channel`` (per input feature) / ``token`` (per row, dynamic) / ``group`` (dynamic);
  block formats need ``dynamic=true`` on inputs;
- ``dynamic`` (inputs, false): calibrate every input on itself at run time instead of once on the calibration split.

Defaults: INT8 symmetric per-tensor MinMax on every layer's weight and input.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ..scheme import QuantOptionError, QuantScheme
from ..spec import build, split_items, typed

ROLES: tuple[str, ...] = ("weight", "input")
TARGETS: tuple[str, ...] = ("both", "weight", "input", "none")
GRANULARITIES: dict[str, tuple[str, ...]] = {
    "weight": ("tensor", "channel", "group"),
    "input": ("tensor", "channel", "token", "group"),
}
LAYER_KEYS: tuple[str, ...] = ("target", "dynamic")
"""Keys of the model grammar beyond one quantizer's (:mod:`qcore.spec`)."""


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


def _choice(value: str, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ModelConfigError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _apply_settings(text: str, state: dict[str, Any]) -> None:
    """Update ``state`` (``target`` and one dict of key -> value text per role) with ``KEY=VALUE,...``.

    Values stay text until :func:`_tensor_quant`: a method option is typed by the role's method, known at the end.
    """
    for key, value in split_items(text):
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
        if key == "axis":
            raise ModelConfigError("axis is set by the role (weights: channel 0, group 1; inputs: 1)")
        for r in roles:
            state[r][key] = (value, len(roles) > 1)  # (text, given to both roles)


def _tensor_quant(settings: dict[str, Any], role: str) -> TensorQuant:
    """The :class:`TensorQuant` of one role's settings (typed and checked by :func:`qcore.spec.build`)."""
    items = {k: v for k, (v, _) in settings.items()}
    gran = items.get("granularity", "tensor")
    if gran not in GRANULARITIES[role]:
        raise ModelConfigError(f"{role} granularity must be one of {', '.join(GRANULARITIES[role])}, got {gran!r}")
    dynamic = typed("dynamic", items.pop("dynamic", "false"), bool)
    if role == "weight" and dynamic:
        raise ModelConfigError("dynamic applies to inputs (weights are quantized once)")
    if role == "input" and gran == "token":
        items["granularity"], dynamic = "channel", True
        axis_for = lambda g: 0  # noqa: E731  (one row per token)
    elif role == "input" and gran == "group" and not dynamic:
        raise ModelConfigError("input granularity group needs dynamic=true: its number of ranges depends on the tokens")
    else:
        axis_for = lambda g: 0 if (role == "weight" and g == "channel") else 1  # noqa: E731
    q = build(list(items.items()), axis_for, shared={k for k, (_, both) in settings.items() if both})
    if role == "input" and not dynamic and q.scheme.granularity == "group":
        raise ModelConfigError(
            f"{q.format} lays inputs out in blocks of {q.scheme.group_size}: their number depends on the tokens; "
            "use dynamic=true"
        )
    return TensorQuant(q.scheme, q.method, q.convention, q.options, dynamic)


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
    state: dict[str, Any] = {"target": "both", **{r: {} for r in ROLES}}
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
    try:
        return parse_config(f"{config.spec}; *: {settings}").overrides[-1][1]
    except ModelConfigError as exc:  # the override is this function's, not the user's: name the settings only
        raise ModelConfigError(str(exc).removeprefix("override '*': ")) from None
