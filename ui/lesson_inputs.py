"""Inputs shared by the lessons: the step slider, vectors as text, real-layer values, the KL data source.

Every widget has a fixed key bound to the URL, so a link reopens the same lesson
at the same step with the same inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from qcore.samples import load_pair

from . import data
from .url import url_choice

Q = "query-params"
STEP = "step"
KL_CANDIDATE = "cand"
REAL_COUNT = 12
KL_SIZES: tuple[int, ...] = (10_000, 100_000, 1_000_000)
KL_DISTRIBUTIONS: dict[str, str] = {
    "laplace": "Laplace (heavy tails)",
    "normal": "Normal",
    "relu": "ReLU of a normal (activations)",
}
REAL_VALUES = f"{REAL_COUNT} consecutive values around the largest |x| of the bundled sample '{{name}}'"
REAL_PAIR = "digits_mlp/fc2"
"""The layer whose weight row and input row the cross-term lesson uses (ReLU input: all x >= 0)."""


def format_vector(v: np.ndarray) -> str:
    """``"0.1, 0.2, -1"``: short decimal text a learner can edit."""
    return ", ".join(f"{float(a):.4g}" for a in np.asarray(v).ravel())


def _move(delta: int, n_steps: int) -> None:
    """``on_click`` of Previous/Next: one step back or forward, within ``1 … n_steps``."""
    st.session_state[STEP] = min(max(int(st.session_state.get(STEP, 1)) + delta, 1), n_steps)


def step_nav(n_steps: int, label: str = "Step") -> int:
    """Previous / Next buttons around the step slider (1-based, in the URL as ``step``); returns the step.

    A step beyond ``n_steps`` (a link made for a longer lesson) starts the lesson at step 1.
    """
    current = st.session_state.get(STEP)
    if current is not None and not 1 <= current <= n_steps:
        st.session_state[STEP] = 1
    if n_steps <= 1:
        st.caption(f"{label} 1 of 1.")
        return 1
    k = int(st.session_state.get(STEP, 1))
    back, slider, forward = st.columns([1, 5, 1], vertical_alignment="center")
    back.button("◀ Previous", key="step_prev", on_click=_move, args=(-1, n_steps), disabled=k <= 1, width="stretch")
    forward.button("Next ▶", key="step_next", on_click=_move, args=(1, n_steps), disabled=k >= n_steps, width="stretch")
    return int(
        slider.slider(
            f"{label} (1 … {n_steps})",
            1,
            n_steps,
            1,
            key=STEP,
            bind=Q,
            label_visibility="collapsed",
            help="Step through the lesson with the buttons, or drag (arrow keys move one step); kept in the URL.",
        )
    )


def reset_step() -> None:
    """``on_change`` of the lesson picker: the next lesson starts at step 1 (and its own default candidate)."""
    st.session_state[STEP] = 1
    st.session_state.pop(KL_CANDIDATE, None)


def kl_candidate(search_size: int, chosen: int) -> int:
    """The KL lesson's candidate slider (1-based, ``cand`` in the URL), separate from the stages; default the chosen."""
    current = st.session_state.get(KL_CANDIDATE)
    if current is not None and not 1 <= current <= search_size:
        st.session_state[KL_CANDIDATE] = chosen + 1
    return int(
        st.slider(
            f"Candidate threshold (1 … {search_size:,}; the calibrator picks {chosen + 1:,})",
            1,
            search_size,
            chosen + 1,
            key=KL_CANDIDATE,
            bind=Q,
            help="Scan the candidates to see why the neighbours of the chosen one lose.",
        )
    )


def real_values(name: str | None = None) -> np.ndarray:
    """:data:`REAL_COUNT` consecutive values of a bundled sample, around its largest magnitude (an outlier)."""
    tensor = data.sample_tensor(name or data.sample_names()[0])
    x = np.asarray(tensor.array, dtype=np.float32).ravel()
    finite = np.where(np.isfinite(x), x, 0.0)
    centre = int(np.argmax(np.abs(finite)))
    start = min(max(centre - REAL_COUNT // 2, 0), max(x.size - REAL_COUNT, 0))
    return finite[start : start + REAL_COUNT]


def _fill(keys: Sequence[str]) -> None:
    text = format_vector(real_values())
    for key in keys:
        st.session_state[key] = text


def real_layer_button(keys: str | Sequence[str], prefix: str) -> None:
    """ "Now try it on a real layer": put real values from a bundled sample into the vector input(s) ``keys``."""
    targets = (keys,) if isinstance(keys, str) else tuple(keys)
    st.button(
        "Now try it on a real layer",
        key=f"{prefix}_real",
        on_click=_fill,
        args=(targets,),
        help=REAL_VALUES.format(name=data.sample_names()[0]),
    )


def real_pair_rows(pair: str = REAL_PAIR) -> tuple[np.ndarray, np.ndarray]:
    """Weight row 0 and input row 0 of a bundled layer: their dot product is the real output ``Y[0, 0]``."""
    x, w, _ = load_pair(pair)
    return w[0], x[0]


def _fill_pair(w_key: str, x_key: str) -> None:
    w, x = real_pair_rows()
    st.session_state[w_key] = format_vector(w)
    st.session_state[x_key] = format_vector(x)


def real_pair_button(w_key: str, x_key: str, prefix: str) -> None:
    """ "Now try it on a real layer": one weight row and one input row of :data:`REAL_PAIR` into the inputs."""
    st.button(
        "Now try it on a real layer",
        key=f"{prefix}_real",
        on_click=_fill_pair,
        args=(w_key, x_key),
        help=f"Row 0 of W and row 0 of X from the bundled layer '{REAL_PAIR}' (K values each).",
    )


@st.cache_data(max_entries=8, show_spinner=False)
def _synthetic(dist: str, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dist == "laplace":
        x = rng.laplace(size=size)
    elif dist == "relu":
        x = np.maximum(rng.standard_normal(size), 0.0)
    else:
        x = rng.standard_normal(size)
    return x.astype(np.float32)


def kl_input() -> tuple[np.ndarray, int]:
    """Data and bits of the KL lesson (drawn in the current container): a generated distribution or a sample."""
    source = url_choice(st.radio, "Data", {"synthetic": "generated", "sample": "Now try it on a real layer"}, "kl_src")
    bits = st.slider("Bits", 2, 8, 8, key="kl_bits", bind=Q, help="Q merges the kept bins into 2^(b−1) levels.")
    if source == "sample":
        tensor = data.sample_tensor(data.sample_names()[0])
        st.caption(f"{tensor.label}: |x| of all {tensor.array.size:,} values")
        return np.asarray(tensor.array), bits
    dist = url_choice(st.selectbox, "Distribution", KL_DISTRIBUTIONS, "kl_dist")
    size = st.selectbox("Values", KL_SIZES, index=1, key="kl_n", bind=Q, format_func=lambda n: f"{n:,}")
    return _synthetic(dist, int(size), 0), bits
