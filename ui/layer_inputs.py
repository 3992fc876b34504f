"""Inputs of the layer what-if: a bundled weight/activation pair of one real layer, or two uploads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from qcore.samples import SampleError, load_pair, sample_pairs

from . import data

Q = "query-params"


@dataclass(frozen=True, eq=False)
class Layer:
    """Weights ``W`` (out, K), activations ``X`` (n, K), a label and a cache key."""

    w: np.ndarray
    x: np.ndarray
    label: str
    key: str


@st.cache_resource(max_entries=4, show_spinner="Loading the layer…")
def bundled_layer(name: str) -> Layer:
    """A bundled pair (cached per server, read-only)."""
    x, w, pair = load_pair(name)
    return Layer(data.freeze(w), data.freeze(x), pair.description, f"pair:{name}")


def _upload(label: str, key: str) -> data.Tensor | None:
    up = st.file_uploader(label, type=list(data.UPLOAD_TYPES), key=key)
    if up is None:
        return None
    raw = up.getvalue()
    try:
        names = data.upload_tensor_names(raw, up.name)
        name = st.selectbox(f"Tensor in {up.name}", names, key=f"{key}_name") if len(names) > 1 else names[0]
        return data.upload_tensor(raw, up.name, name)
    except (ValueError, OSError) as exc:
        st.error(f"Could not use **{up.name}**: {exc}")
        return None


def layer_input() -> Layer | None:
    """Draw the source widgets; return the layer, or None (with a message) until both tensors are there."""
    source = st.radio(
        "Layer",
        ("bundled", "upload"),
        key="wi_lsrc",
        horizontal=True,
        bind=Q,
        format_func={"bundled": "bundled real layer", "upload": "two uploads"}.get,
    )
    if source == "bundled":
        pairs = {p.name: p for p in sample_pairs()}
        name = st.selectbox(
            "Pair",
            list(pairs),
            key="wi_pair",
            bind=Q,
            help="Weights and the activations that really flowed into them (same layer), from the bundled models.",
        )
        try:
            return bundled_layer(name)
        except SampleError as exc:
            st.error(str(exc))
            return None
    c1, c2 = st.columns(2)
    with c1:
        w = _upload("Weights W (out, K)", "wi_up_w")
    with c2:
        x = _upload("Activations X (n, K)", "wi_up_x")
    if w is None or x is None:
        st.info("Upload both W (out, K) and X (n, K) with the same K.")
        return None
    return Layer(w.array, x.array, f"{w.label} × {x.label}", f"up:{w.digest}:{x.digest}")
