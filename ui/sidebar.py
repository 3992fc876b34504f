"""The shared sidebar: data source and quantization settings, drawn once in ``app.py``.

Widgets live in the entry script so they keep their values on every page, and each
is bound to a URL query parameter of the same name (uploads excepted).
:func:`render` returns the :class:`Context`; ``ui.router`` hands it to the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from qcore import CALIBRATORS, CONVENTIONS, QuantOptionError, QuantScheme
from qcore.constraints import bounds
from qcore.samples import sample_info
from qcore.synthetic import GENERATORS

from . import checkpoint_paths, data, format_inputs, state
from .state import Settings
from .text import ADMM_ASYMMETRIC

LAST_GOOD_KEY = "_qx_last_good"
UPLOAD_KEY = "upload"
UPLOAD_TENSOR_KEY = "upload_tensor"
Q = "query-params"


@dataclass(frozen=True, eq=False)
class Context:
    """What every page works on: the current tensor and settings (``settings`` None when impossible)."""

    tensor: data.Tensor
    settings: Settings | None
    settings_error: str | None
    inputs: DeltaGenerator | None = None
    """Where a presenter page (Learn) draws its own inputs: the top of the sidebar; None elsewhere."""


@st.cache_data(max_entries=16, show_spinner=False)
def tensor_stats(key: str, _x: np.ndarray) -> dict[str, Any]:
    """Shape, dtype and summary statistics of a tensor (cached by digest)."""
    x = np.asarray(_x, dtype=np.float32)
    finite = np.isfinite(x)
    n_bad = int(x.size - np.count_nonzero(finite))
    v = x[finite] if n_bad else x.ravel()
    return {
        "shape": list(_x.shape),
        "elements": int(_x.size),
        "min": float(v.min()) if v.size else float("nan"),
        "max": float(v.max()) if v.size else float("nan"),
        "mean": float(v.mean(dtype=np.float64)) if v.size else float("nan"),
        "std": float(v.std(dtype=np.float64)) if v.size else float("nan"),
        "non-finite": n_bad,
    }


def _data_source() -> data.Tensor:
    """Draw the data-source widgets and return the tensor to work on."""
    st.radio(
        "Data",
        state.SOURCES,
        key=state.SOURCE,
        horizontal=True,
        bind=Q,
        help="A bundled real tensor, a generated one, your own file, or a tensor of a checkpoint on the server "
        "(a path inside the allowed folders, as in Model scan). Uploads cannot be shared by link.",
    )
    source = st.session_state[state.SOURCE]
    tensor: data.Tensor | None = None
    try:
        if source == "sample":
            tensor = _sample()
        elif source == "synthetic":
            tensor = _synthetic()
        elif source == "path":
            tensor = _checkpoint_path()
        else:
            tensor = _upload()
    except ValueError as exc:  # TensorLoadError, QuantOptionError
        st.error(f"Could not make this tensor: {exc}")
    if tensor is None:
        tensor = st.session_state.get(LAST_GOOD_KEY) or data.sample_tensor(state.DEFAULTS[state.SAMPLE])
        st.caption(f"Showing the last good tensor: {tensor.label}")
    st.session_state[LAST_GOOD_KEY] = tensor
    return tensor


def _sample() -> data.Tensor:
    names = data.sample_names()
    st.selectbox(
        "Sample",
        names,
        key=state.SAMPLE,
        bind=Q,
        on_change=state.apply_sample_preset,
        help="Real tensors of real models; choosing one sets its role and channel axis.",
    )
    info = sample_info(st.session_state[state.SAMPLE])
    st.caption(f"{info.description} ({info.license})")
    return data.sample_tensor(info.name)


def _synthetic() -> data.Tensor:
    st.selectbox("Distribution", list(GENERATORS), key=state.SYN_DIST, bind=Q)
    gen = GENERATORS[st.session_state[state.SYN_DIST]]
    st.caption(f"**{gen.label}**: {gen.description}")
    c1, c2 = st.columns(2)
    c1.select_slider("Rows", [2**k for k in range(0, 17)], value=64, key=state.SYN_ROWS, bind=Q)
    c2.select_slider("Columns", [2**k for k in range(4, 15)], value=256, key=state.SYN_COLS, bind=Q)
    st.number_input("Seed", 0, 2**31 - 1, 0, key=state.SYN_SEED, bind=Q)
    knobs = []
    for knob, default in gen.knobs.items():
        key = f"syn_{gen.name}_{knob}"
        value = st.number_input(
            knob.replace("_", " "),
            value=default,
            key=key,
            bind=Q,
            **({"step": 1} if isinstance(default, int) else {"format": "%g"}),
        )
        knobs.append((knob, value))
    ss = st.session_state
    return data.synthetic_tensor(
        gen.name, (int(ss[state.SYN_ROWS]), int(ss[state.SYN_COLS])), int(ss[state.SYN_SEED]), tuple(knobs)
    )


def _checkpoint_path() -> data.Tensor | None:
    """A tensor of a checkpoint on the server, by path (inside the allowed roots) and name: Model scan's links."""
    st.text_input(
        "Checkpoint path",
        key=state.CKPT,
        bind=Q,
        help="A file, index or model folder inside: " + ", ".join(str(r) for r in checkpoint_paths.roots()),
    )
    st.text_input("Tensor name", key=state.CKPT_TENSOR, bind=Q)
    text, name = st.session_state[state.CKPT].strip(), st.session_state[state.CKPT_TENSOR].strip()
    if text and not name:  # say which names there are: nothing else on the page lists them
        names = checkpoint_paths.tensor_names(text)
        more = f", … ({len(names)} in all; Model scan lists every one)" if len(names) > 8 else ""
        st.caption(f"Give a tensor name. This checkpoint holds {', '.join(names[:8])}{more}.")
        return None
    if not text or not name:
        st.caption("Give a checkpoint path and a tensor name (a Model scan row's link fills both).")
        return None
    return checkpoint_paths.checkpoint_tensor(text, name)


def _upload() -> data.Tensor | None:
    """File uploader plus tensor picker; a bad file shows an error and returns None."""
    up = st.file_uploader(
        "Tensor file",
        type=list(data.UPLOAD_TYPES),
        key=UPLOAD_KEY,
        help="NumPy .npy/.npz, .csv, .safetensors, ONNX initializers, PyTorch .pt "
        "(weights only, when torch is installed). Pickled objects are refused.",
    )
    if up is None:
        st.caption("Upload a file to work on your own tensor.")
        return None
    raw = up.getvalue()
    try:
        infos = data.upload_infos(raw, up.name)
        usable = [i.name for i in infos if i.refusal is None]
        _skipped_summary([i.refusal for i in infos if i.refusal])
        if not usable:
            raise ValueError(f"{up.name} holds no numeric array")
        if len(usable) > 1:
            st.selectbox("Tensor in file", usable, key=UPLOAD_TENSOR_KEY)
            name = st.session_state[UPLOAD_TENSOR_KEY]
        else:
            name = usable[0]
        return data.upload_tensor(raw, up.name, name)
    except ValueError as exc:
        st.error(
            f"Could not use **{up.name}**: {exc}\n\nAccepted: {', '.join('.' + t for t in data.UPLOAD_TYPES)} "
            "files holding a non-empty real-valued array with at least one finite value."
        )
        return None


SKIPPED_SHOWN = 3


def _skipped_summary(refusals: list[str]) -> None:
    """One caption for the arrays that cannot be used: the first few reasons and how many more."""
    if refusals:
        shown = "  \n".join(f"Skipped: {r}" for r in refusals[:SKIPPED_SHOWN])
        more = len(refusals) - SKIPPED_SHOWN
        st.caption(shown + (f"  \n… and {more:,} more arrays skipped" if more > 0 else ""))


def _sample_channel_axis() -> int | None:
    """The bundled sample's channel axis when the data source is a sample (None otherwise)."""
    if st.session_state.get(state.SOURCE) != "sample":
        return None
    return sample_info(st.session_state[state.SAMPLE]).channel_axis


def _tensor_info(tensor: data.Tensor) -> None:
    """Shape, stored dtype and summary statistics under the data source."""
    s = tensor_stats(tensor.digest, tensor.array)
    shape = "×".join(map(str, s["shape"])) or "scalar"
    st.caption(
        f"**{tensor.label}** · shape {shape} ({s['elements']:,} values) · stored as {tensor.stored_dtype}, "
        "computed in float32  \n"
        f"min {s['min']:.4g} · max {s['max']:.4g} · mean {s['mean']:.4g} · std {s['std']:.4g}"
        + (f" · {s['non-finite']:,} NaN/Inf (left out)" if s["non-finite"] else "")
    )


def method_option_widgets(method: str, prefix: str = "opt", label_prefix: str = "") -> None:
    """One widget per option field of the calibrator's dataclass, keyed ``{prefix}_{method}_{field}``."""
    cls = CALIBRATORS[method]
    for f in state.method_fields(method):
        key = state.option_key(method, f.name, prefix)
        label = label_prefix + f.name.replace("_", " ")
        default = f.default
        low, high = state.widget_bounds(cls, f.name)
        if isinstance(default, bool):
            st.toggle(label, value=default, key=key, bind=Q)
        elif isinstance(default, int) or (default is None and "int" in str(f.type)):
            st.number_input(
                label,
                min_value=None if low is None else int(low),
                max_value=None if high is None else int(high),
                value=default,
                step=1,
                key=key,
                bind=Q,
                placeholder="none (use the raw values)" if default is None else None,
            )
        elif isinstance(default, float):
            st.number_input(label, min_value=low, max_value=high, value=default, format="%g", key=key, bind=Q)
        elif isinstance(default, str):
            st.text_input(
                label,
                value=default,
                key=key,
                bind=Q,
                help="The method lists the accepted values if this one is not one of them.",
            )


def _quant_settings() -> None:
    fmt = format_inputs.format_selector()
    st.radio(
        "Role",
        state.ROLES,
        index=state.ROLES.index(state.DEFAULTS[state.ROLE]),
        key=state.ROLE,
        horizontal=True,
        bind=Q,
        on_change=state.apply_role_preset,
        help="Sets typical defaults. Weights: symmetric, per-channel, MinMax. "
        "Activations: asymmetric, per-tensor, entropy (KL). You can change each afterwards.",
    )
    uses = format_inputs.uses(fmt)
    with format_inputs.settings_box(uses["grid"], "Integer grid", fmt):
        _integer_grid()
    with format_inputs.settings_box(uses["granularity"], "Granularity", fmt):
        _granularity()
    with format_inputs.settings_box(uses["method"], "Method", fmt):
        _method()
    with format_inputs.settings_box(uses["convention"], "Convention and rounding", fmt):
        _convention()


def _integer_grid() -> None:
    bits_low, bits_high = bounds(QuantScheme, "bits")
    st.slider(
        "Bits",
        int(bits_low),
        int(bits_high),
        state.DEFAULTS[state.BITS],
        key=state.BITS,
        bind=Q,
        help="Integer width b: 2^b codes (log2: 2^b power-of-two levels).",
    )
    st.radio(
        "Scheme",
        state.SCHEMES,
        index=state.SCHEMES.index(state.DEFAULTS[state.SCHEME]),
        key=state.SCHEME,
        horizontal=True,
        bind=Q,
        help="Symmetric: range [-T, T], zero point 0. Asymmetric: range [min, max], with a zero point.",
    )
    st.toggle("Signed codes", value=True, key=state.SIGNED, bind=Q, help="int (e.g. -128..127) or uint (0..255).")
    st.toggle(
        "Narrow range",
        value=False,
        key=state.NARROW,
        bind=Q,
        help="Drop the most negative code: int8 becomes -127..127.",
    )


def _granularity() -> None:
    st.selectbox(
        "Granularity",
        state.GRANULARITIES,
        index=state.GRANULARITIES.index(state.DEFAULTS[state.GRAN]),
        key=state.GRAN,
        bind=Q,
        on_change=state.reset_axis,
        help="One range for the whole tensor, one per channel, or one per group of consecutive values. "
        "Choosing one sets the axis the role's layout implies (you can change it).",
    )
    gran = st.session_state[state.GRAN]
    c1, c2 = st.columns(2)
    c1.number_input(
        "Axis",
        0,
        state.MAX_AXIS,
        state.DEFAULTS[state.AXIS],
        key=state.AXIS,
        bind=Q,
        disabled=gran == "tensor",
        help="The channel axis (per channel) or the axis groups run along (per group). "
        "For a PyTorch Linear/Conv weight the output channels are axis 0.",
    )
    c2.number_input(
        "Group size",
        1,
        state.MAX_GROUP,
        state.DEFAULTS[state.GROUP],
        key=state.GROUP,
        bind=Q,
        disabled=gran != "group",
        help="Values per group (per-group granularity).",
    )
    if gran != "tensor":
        ndim = int(st.session_state.get(state.NDIM_KEY, 2))
        axis = int(st.session_state[state.AXIS])
        role = st.session_state[state.ROLE]
        what = "one range per index of" if gran == "channel" else "groups of consecutive values along"
        st.caption(f"Per {gran}: {what} axis {axis}, {state.axis_meaning(role, ndim, axis)}.")


def _method() -> None:
    methods = list(CALIBRATORS)
    st.selectbox(
        "Method",
        methods,
        index=methods.index(state.DEFAULTS[state.METHOD]),
        key=state.METHOD,
        bind=Q,
        help="How the clip range is chosen.",
    )
    method = st.session_state[state.METHOD]
    st.caption(f"**{CALIBRATORS[method].label}**: {CALIBRATORS[method].summary}")
    if method == "admm" and st.session_state.get(state.SCHEME) == "asymmetric":
        st.caption(ADMM_ASYMMETRIC)
    gran = st.session_state.get(state.GRAN, state.DEFAULTS[state.GRAN])
    if gran != "tensor" and CALIBRATORS[method].short_rows:
        st.caption(CALIBRATORS[method].short_rows)
    with st.expander("Method options", expanded=False):
        method_option_widgets(method)


def _convention() -> None:
    conventions = list(CONVENTIONS)
    st.selectbox(
        "Convention",
        conventions,
        index=conventions.index(state.DEFAULTS[state.CONV]),
        key=state.CONV,
        bind=Q,
        help="How a toolchain turns the clip range into scale and zero point.",
    )
    conv = CONVENTIONS[st.session_state[state.CONV]]
    st.caption(f"**{conv.label}**: {conv.description}")
    st.selectbox(
        "Rounding",
        ("half_even", "half_away"),
        key=state.ROUNDING,
        bind=Q,
    )


URL_NOTES_KEY = "_qx_url_notes"


def _url_notes() -> None:
    """Say which link values were out of bounds (checked before the widgets replace them by their defaults)."""
    notes = state.url_out_of_bounds(st.query_params.to_dict())
    if notes:
        st.session_state[URL_NOTES_KEY] = notes
    if st.session_state.get(URL_NOTES_KEY):
        st.warning(
            "The link asked for values outside the allowed bounds; the defaults are used instead: "
            + "; ".join(st.session_state[URL_NOTES_KEY][:5])
            + ".",
            icon=":material/link_off:",
        )


def render(for_lessons: bool = False) -> Context:
    """Draw the sidebar and return the :class:`Context` for the pages.

    ``for_lessons``: the page brings its own inputs (Learn): they go at the top of the sidebar
    (``Context.inputs``); the settings stay drawn (so they keep their values) but folded away,
    with a note that the page does not use them.
    """
    inputs = None
    with st.sidebar:
        _url_notes()
        if for_lessons:
            inputs = st.container()
            box = st.expander("Data and quantization settings (not used on this page)", expanded=False)
        else:
            box = st.container()
        with box:
            st.subheader("Data")
            tensor = _data_source()
            _tensor_info(tensor)
            state.follow_tensor(tensor.digest, tensor.array.ndim, _sample_channel_axis())
            st.subheader("Quantization")
            _quant_settings()
    try:
        settings, error = state.read_settings(), None
    except QuantOptionError as exc:
        settings, error = None, str(exc)
    return Context(tensor, settings, error, inputs)
