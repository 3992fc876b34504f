"""Settings read from the sidebar widgets, their defaults, and the role presets.

Every sidebar widget has a fixed ``key`` that is also its URL query parameter
(``bind="query-params"``), so a link reopens the same sample, settings and page.
The widget defaults are constants: the URL only carries what differs from them.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import Any

import streamlit as st

from qcore import CALIBRATORS, QuantScheme
from qcore.constraints import Interval, bounds, constraints_of
from qcore.samples import default_sample, sample_info

from . import format_state

# Widget keys = URL query parameter names.
SOURCE, SAMPLE, TENSOR = "source", "sample", "tensor"
SYN_DIST, SYN_ROWS, SYN_COLS, SYN_SEED = "dist", "rows", "cols", "seed"
ROLE, BITS, SCHEME, SIGNED, NARROW = "role", "bits", "scheme", "signed", "narrow"
GRAN, AXIS, GROUP, METHOD, CONV, ROUNDING = "gran", "axis", "group", "method", "conv", "rounding"

CKPT, CKPT_TENSOR = "ckpt", "ckpt_tensor"
SOURCES: tuple[str, ...] = ("sample", "synthetic", "upload", "path")
ROLES: tuple[str, ...] = ("weight", "activation")
SCHEMES: tuple[str, ...] = ("symmetric", "asymmetric")
GRANULARITIES: tuple[str, ...] = ("tensor", "channel", "group")

# What choosing a role sets (the user can change each afterwards).
ROLE_PRESETS: dict[str, dict[str, Any]] = {
    "weight": {SCHEME: "symmetric", SIGNED: True, GRAN: "channel", METHOD: "minmax"},
    "activation": {SCHEME: "asymmetric", SIGNED: True, GRAN: "tensor", METHOD: "entropy"},
}

_DEFAULT_SAMPLE = sample_info(default_sample())

# Constant widget defaults: the default sample's role preset and channel axis (the URL carries what differs).
DEFAULTS: dict[str, Any] = {
    SOURCE: "sample",
    SAMPLE: _DEFAULT_SAMPLE.name,
    ROLE: _DEFAULT_SAMPLE.role,
    BITS: 8,
    NARROW: False,
    AXIS: _DEFAULT_SAMPLE.channel_axis or 0,
    GROUP: 128,
    CONV: "default",
    ROUNDING: "half_even",
    **ROLE_PRESETS[_DEFAULT_SAMPLE.role],
}


NDIM_KEY = "_qx_ndim"
"""The current tensor's number of axes (set by the sidebar each run; the axis callbacks read it)."""
TENSOR_KEY = "_qx_tensor_digest"


def apply_role_preset() -> None:
    """``on_change`` of the role widget: copy the role's preset into the settings widgets, and its axis."""
    for key, value in ROLE_PRESETS[st.session_state[ROLE]].items():
        st.session_state[key] = value
    reset_axis()


def reset_axis() -> None:
    """Set the axis to the role's layout default for the current granularity (``on_change`` of granularity)."""
    ndim = int(st.session_state.get(NDIM_KEY, 2))
    st.session_state[AXIS] = default_axis(
        st.session_state.get(ROLE, DEFAULTS[ROLE]), st.session_state.get(GRAN, DEFAULTS[GRAN]), ndim
    )


def follow_tensor(digest: str, ndim: int, channel_axis: int | None = None) -> None:
    """Called with each run's tensor before the axis widget: a new tensor gets the axis its layout implies.

    The first tensor of a session keeps the axis from the URL (a shared link); an axis beyond the
    tensor's axes is always reset. ``channel_axis``: a bundled sample's known channel axis.
    """
    ss = st.session_state
    previous = ss.get(TENSOR_KEY)
    ss[TENSOR_KEY], ss[NDIM_KEY] = digest, ndim
    axis = int(ss.get(AXIS, DEFAULTS[AXIS]))
    if (previous is None or previous == digest) and 0 <= axis < max(ndim, 1):
        return
    role, gran = ss.get(ROLE, DEFAULTS[ROLE]), ss.get(GRAN, DEFAULTS[GRAN])
    use_sample = channel_axis is not None and gran == "channel" and channel_axis < ndim
    ss[AXIS] = channel_axis if use_sample else default_axis(role, gran, ndim)


def apply_sample_preset() -> None:
    """``on_change`` of the sample picker: the sample's role preset and channel axis."""
    info = sample_info(st.session_state[SAMPLE])
    st.session_state[ROLE] = info.role
    apply_role_preset()
    if info.channel_axis is None:
        st.session_state[GRAN] = "tensor"
    else:
        st.session_state[AXIS] = info.channel_axis


def default_axis(role: str, granularity: str, ndim: int) -> int:
    """The axis a framework layout implies for this role and granularity.

    Weights ``(out, in, ...)`` (PyTorch Linear/Conv): channels are the output channels, axis 0; groups
    run along the input, the last axis. Activations ``(tokens, features)``: channels and groups are the
    feature axis, the last one (axis 1 of a 4-D ``(N, C, H, W)`` activation).
    """
    if ndim <= 1:
        return 0
    if granularity == "group":
        return ndim - 1
    if role == "weight":
        return 0
    return 1 if ndim == 4 else ndim - 1


def axis_meaning(role: str, ndim: int, axis: int) -> str:
    """What ``axis`` of a ``role`` tensor holds, in words (``"output channels (rows of W)"``)."""
    if ndim <= 1:
        return "the only axis"
    last = axis == ndim - 1
    if role == "weight":
        return "output channels (rows of W)" if axis == 0 else ("inputs (columns of W)" if last else f"axis {axis}")
    return "features" if last or (ndim == 4 and axis == 1) else ("tokens / batch" if axis == 0 else f"axis {axis}")


def channel_axis(scheme: QuantScheme, ndim: int) -> int:
    """The channel axis in use: the sidebar's when per-channel, else the role's default."""
    if scheme.granularity == "channel":
        return scheme.axis
    return default_axis(st.session_state.get(ROLE, DEFAULTS[ROLE]), "channel", ndim)


def option_key(method: str, name: str, prefix: str = "opt") -> str:
    """Widget key (and URL parameter) of one calibrator option, e.g. ``opt_percentile_percentile``."""
    return f"{prefix}_{method}_{name}"


def method_fields(method: str) -> tuple[dataclasses.Field, ...]:
    """The calibrator's options: the fields of its frozen dataclass."""
    return dataclasses.fields(CALIBRATORS[method])


@dataclass(frozen=True)
class Settings:
    """One quantization configuration as chosen in the sidebar.

    Attributes
    ----------
    scheme : QuantScheme
        Bits, symmetry, granularity, rounding.
    method : str
        Calibrator name.
    options : tuple of (name, value)
        The calibrator's options.
    convention : str
        Key of :data:`qcore.CONVENTIONS`.
    format_options : tuple of (name, value)
        The number format's own options (``scale_rounding`` of MX); the format is ``scheme.format``.
    """

    scheme: QuantScheme
    method: str
    options: tuple[tuple[str, Any], ...]
    convention: str
    format_options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """A stable string identifying the configuration (cache key)."""
        return repr((self.scheme, self.method, self.options, self.convention, self.format_options))

    def with_method(self, method: str, options: dict[str, Any]) -> Settings:
        """The same scheme and convention with another method."""
        return dataclasses.replace(self, method=method, options=tuple(sorted(options.items())))


def widget_bounds(cls: type, name: str) -> tuple[float | None, float | None]:
    """``(min, max)`` of the widget of option ``name`` of ``cls``: its declared bounds (:mod:`qcore.constraints`)."""
    return bounds(cls, name)


MAX_AXIS = int(bounds(QuantScheme, "axis")[1] or 7)
MAX_GROUP = int(bounds(QuantScheme, "group_size")[1] or 1 << 20)


def bounded_widgets() -> dict[str, Interval]:
    """URL key -> the interval its widget accepts (the core's declaration; the axis widget starts at 0)."""
    scheme = constraints_of(QuantScheme)
    out: dict[str, Interval] = {
        BITS: scheme["bits"],
        AXIS: Interval(0, MAX_AXIS, integer=True),
        GROUP: scheme["group_size"],
    }
    for method, cls in CALIBRATORS.items():
        for name, constraint in constraints_of(cls).items():
            if isinstance(constraint, Interval):
                out[option_key(method, name)] = constraint
    return out


def url_out_of_bounds(query: dict[str, str]) -> list[str]:
    """One sentence per URL value outside its widget's bounds (Streamlit replaces such a value by the default)."""
    notes = []
    for key, interval in bounded_widgets().items():
        raw = query.get(key)
        if raw is None or raw == "":
            continue
        try:
            value: Any = float(raw)
            if interval.integer and value.is_integer():
                value = int(value)
        except (TypeError, ValueError, OverflowError):
            value = raw
        if not interval.accepts(value):
            notes.append(f"{key}={str(raw)[:40]} is not {interval.describe()}")
    return notes


def read_options(method: str, prefix: str = "opt") -> dict[str, Any]:
    """The option values of ``method`` from session state (the field defaults where no widget was drawn)."""
    out: dict[str, Any] = {}
    for f in method_fields(method):
        out[f.name] = st.session_state.get(option_key(method, f.name, prefix), f.default)
    return out


def read_scheme() -> QuantScheme:
    """Build the :class:`QuantScheme` of the sidebar (raises ``QuantOptionError`` for impossible options)."""
    ss = st.session_state
    fmt = format_state.chosen_format(ss)
    int_scheme = QuantScheme(
        bits=int(ss.get(BITS, DEFAULTS[BITS])),
        symmetric=ss.get(SCHEME, DEFAULTS[SCHEME]) == "symmetric",
        signed=bool(ss.get(SIGNED, DEFAULTS[SIGNED])),
        narrow_range=bool(ss.get(NARROW, DEFAULTS[NARROW])),
        granularity=ss.get(GRAN, DEFAULTS[GRAN]),
        axis=int(ss.get(AXIS, DEFAULTS[AXIS])),
        group_size=int(ss.get(GROUP, DEFAULTS[GROUP])),
        rounding=ss.get(ROUNDING, DEFAULTS[ROUNDING]),
        format=fmt.name,
    )
    return format_state.format_scheme(int_scheme, fmt, int(ss.get(NDIM_KEY, 2)), format_state.block_size(fmt, ss))


def read_settings() -> Settings:
    """The full configuration of the sidebar."""
    fmt = format_state.chosen_format(st.session_state)
    method = format_state.format_method(fmt, st.session_state.get(METHOD, DEFAULTS[METHOD]))
    return Settings(
        read_scheme(),
        method,
        tuple(sorted(read_options(method).items())),
        format_state.format_convention(fmt, st.session_state.get(CONV, DEFAULTS[CONV])),
        format_state.format_options(fmt, st.session_state),
    )


# Options the CLI sets, with its defaults (shared/cli-contract.md); others cannot be given on its command line.
CLI_OPTIONS: dict[str, Any] = {"percentile": 99.99, "bins": 2048}


def cli_command(settings: Settings, path: str, tensor: str | None) -> tuple[str, list[str]]:
    """The ``python -m qcore calibrate`` command reproducing ``settings``, and what it cannot reproduce."""
    s = settings.scheme
    args = ["python", "-m", "qcore", "calibrate", str(path)]
    if tensor:
        args += ["--tensor", str(tensor)]
    args += ["--method", settings.method, "--bits", str(s.bits)]
    if s.format != "int":
        args += ["--format", s.format]
    args += ["--scheme", "symmetric" if s.symmetric else "asymmetric"]
    if not s.signed:
        args.append("--unsigned")
    if s.narrow_range:
        args.append("--narrow-range")
    args += ["--granularity", s.granularity]
    if s.granularity != "tensor":
        args += ["--axis", str(s.axis)]
    if s.granularity == "group":
        args += ["--group-size", str(s.group_size)]
    if settings.convention != "default":
        args += ["--convention", settings.convention]
    for name, value in settings.format_options:
        args += [f"--{name.replace('_', '-')}", str(value)]
    caveats = []
    defaults = {f.name: f.default for f in method_fields(settings.method)}
    for name, value in settings.options:
        if name in CLI_OPTIONS and value is not None:
            if value != CLI_OPTIONS[name]:
                args += [f"--{name}", f"{value:g}" if isinstance(value, float) else str(value)]
        elif name in CLI_OPTIONS:
            caveats.append(f"{name}: the CLI always uses --{name} (default {CLI_OPTIONS[name]}), the app uses none")
        elif value != defaults[name]:
            caveats.append(f"{name}={value!r} has no CLI flag (the CLI uses {defaults[name]!r})")
    if s.rounding != "half_even":
        caveats.append("rounding half away from zero has no CLI flag (the CLI rounds half to even)")
    args.append("--json")
    return shlex.join(args), caveats
