"""Tensor sources: bundled samples, synthetic tensors and uploads, cached by content digest.

Streamlit hashes large arrays from a random sample, so two arrays that differ in a
few elements could share a cache entry. Every cache here is keyed by a full
BLAKE2 digest of the bytes (the array itself is passed as an underscore argument,
which is not hashed).

Samples and synthetic tensors live in the app's byte-bounded cache (:mod:`ui.byte_cache`);
an upload's listing and tensor live in its session's state only, so they are released
with the session.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from qcore import QuantScheme, to_rows
from qcore.io import SUFFIXES, TensorInfo, list_tensors, load_tensor
from qcore.samples import default_sample, list_samples, load_sample
from qcore.synthetic import generate

from .byte_cache import cached

UPLOAD_TYPES: tuple[str, ...] = tuple(s.lstrip(".") for s in SUFFIXES)


@dataclass(frozen=True, eq=False)
class Tensor:
    """A loaded, read-only tensor and where it came from.

    Attributes
    ----------
    array : ndarray
        Read-only values.
    name : str
        Tensor name inside its file (or a generated name).
    digest : str
        Full content digest (cache key).
    origin : {'sample', 'synthetic', 'upload', 'path'}
        The data source.
    label : str
        One line for the user (file and tensor).
    stored_dtype : str
        The dtype in the file (values are computed in float32).
    cli_path : str
        Path to give the CLI to reproduce the view (the bundled file, the upload's file name, or
        ``TENSOR.npy`` for synthetic data, which the app offers as a download).
    """

    array: np.ndarray
    name: str
    digest: str
    origin: str
    label: str
    cli_path: str
    stored_dtype: str = "float32"


def digest(a: np.ndarray) -> str:
    """BLAKE2b-128 of dtype, shape and every byte of ``a``."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}|{a.shape}".encode())
    h.update(np.ascontiguousarray(a).view(np.uint8).ravel())
    return h.hexdigest()


def freeze(a: np.ndarray) -> np.ndarray:
    """A read-only view (cached arrays are shared by every session)."""
    a = np.asarray(a)
    a = a.view()
    a.flags.writeable = False
    return a


def bytes_digest(data: bytes) -> str:
    """BLAKE2b-128 of raw bytes."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


UPLOAD_STATE_KEY = "_qx_upload_cache"


def _session_cached(key: tuple, spinner: str, make: Callable[[], Any]) -> Any:
    """``make()`` kept in this session's state under ``key`` (one upload result per kind; released with the session)."""
    slot = st.session_state.setdefault(UPLOAD_STATE_KEY, {})
    kind = key[0]
    if kind in slot and slot[kind][0] == key:
        return slot[kind][1]
    slot.pop(kind, None)  # release the previous upload's object before making the new one
    with st.spinner(spinner):
        value = make()
    slot[kind] = (key, value)
    return value


def _load_upload(data: bytes, filename: str, name: str) -> Tensor:
    loaded = load_tensor(data, name, filename=filename)
    to_rows(loaded.values, QuantScheme())  # empty / all-NaN arrays raise QuantOptionError here
    array = freeze(loaded.values)
    return Tensor(array, name, digest(array), "upload", f"{filename} : {name}", filename, loaded.dtype)


def upload_infos(data: bytes, filename: str) -> tuple[TensorInfo, ...]:
    """Arrays of an upload (raises :class:`TensorLoadError` for a bad file), kept in the session."""
    key = ("infos", bytes_digest(data), filename)
    return _session_cached(key, "Reading the uploaded file…", lambda: tuple(list_tensors(data, filename=filename)))


def upload_tensor(data: bytes, filename: str, name: str) -> Tensor:
    """One tensor of an upload, kept in the session (raises ``TensorLoadError``/``QuantOptionError``)."""
    key = ("tensor", bytes_digest(data), filename, name)
    return _session_cached(key, "Loading the tensor…", lambda: _load_upload(data, filename, name))


@cached("Loading the sample…")
def sample_tensor(name: str) -> Tensor:
    """A bundled sample by name (loaded once per server)."""
    values, info = load_sample(name)
    array = freeze(values)
    return Tensor(array, info.key, digest(array), "sample", info.label, f"data/{info.file}", info.dtype)


def sample_names() -> tuple[str, ...]:
    """Names of the bundled samples, the default first."""
    default = default_sample()
    return (default, *(s.name for s in list_samples() if s.name != default))


@cached("Generating…")
def synthetic_tensor(generator: str, shape: tuple[int, int], seed: int, knobs: tuple[tuple[str, float], ...]) -> Tensor:
    """A seeded synthetic tensor (:func:`qcore.synthetic.generate`), cached by its knobs."""
    array = freeze(generate(generator, shape, seed, **dict(knobs)))
    knob_text = ", ".join(f"{k}={v:g}" for k, v in knobs)
    name = f"{generator}({knob_text}) {shape[0]}x{shape[1]} seed {seed}"
    return Tensor(array, name, digest(array), "synthetic", f"synthetic: {name}", "TENSOR.npy")
