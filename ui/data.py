"""Tensor sources: bundled samples, synthetic tensors and uploads, cached by content digest.

Streamlit hashes large arrays from a random sample, so two arrays that differ in a
few elements could share a cache entry. Every cache here is keyed by a full
BLAKE2 digest of the bytes (the array itself is passed as an underscore argument,
which Streamlit does not hash).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
UPLOAD_TYPES: tuple[str, ...] = ("npy", "npz", "csv", "safetensors", "onnx", "pt", "pth")


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
    origin : {'sample', 'synthetic', 'upload'}
        The data source.
    label : str
        One line for the user (file and tensor).
    cli_path : str or None
        Path the CLI can read to reproduce the view (None for uploads and synthetic data).
    """

    array: np.ndarray
    name: str
    digest: str
    origin: str
    label: str
    cli_path: str | None = None


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


@st.cache_resource(max_entries=4, show_spinner="Reading the uploaded file…")
def _upload_names(key: str, _data: bytes, filename: str) -> tuple[str, ...]:
    """Names of the tensors in an uploaded file (``key`` = digest of the bytes)."""
    from qcore.io import list_tensors

    with _as_file(_data, filename) as path:
        return tuple(list_tensors(path))


@st.cache_resource(max_entries=4, show_spinner="Loading the tensor…")
def _upload_tensor(key: str, _data: bytes, filename: str, name: str) -> Tensor:
    """One tensor of an uploaded file, cached by (file digest, tensor name)."""
    from qcore.io import load_tensor

    with _as_file(_data, filename) as path:
        array = freeze(load_tensor(path, name))
    return Tensor(array, name, digest(array), "upload", f"{filename} : {name}")


class _as_file:
    """Context manager: the uploaded bytes as a temporary file with the original suffix."""

    def __init__(self, data: bytes, filename: str) -> None:
        self.data, self.suffix = data, Path(filename).suffix.lower()

    def __enter__(self) -> str:
        fd, self.path = tempfile.mkstemp(suffix=self.suffix)
        with os.fdopen(fd, "wb") as f:
            f.write(self.data)
        return self.path

    def __exit__(self, *exc: object) -> None:
        os.unlink(self.path)


def upload_tensor_names(data: bytes, filename: str) -> tuple[str, ...]:
    """Tensor names of an upload (raises the loader's error for bad files)."""
    return _upload_names(bytes_digest(data), data, filename)


def upload_tensor(data: bytes, filename: str, name: str) -> Tensor:
    """Load one tensor of an upload (raises the loader's error for bad files)."""
    return _upload_tensor(bytes_digest(data), data, filename, name)


@st.cache_resource(max_entries=8, show_spinner="Loading the sample…")
def sample_tensor(name: str) -> Tensor:
    """A bundled sample by name (cached: loaded once per server)."""
    array = freeze(_load_sample(name))
    return Tensor(array, name, digest(array), "sample", f"sample: {name}", None)


def _load_sample(name: str) -> np.ndarray:
    # Temporary until qcore.samples lands: a fixed synthetic weight matrix.
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 256)).astype(np.float32) * rng.uniform(0.02, 0.2, (64, 1)).astype(np.float32)
    w[3, 7] = 1.5
    return w


def sample_names() -> tuple[str, ...]:
    """Names of the bundled samples, the default first."""
    return ("demo",)


SYNTHETIC_DISTRIBUTIONS: tuple[str, ...] = ("normal", "laplace", "uniform")


@st.cache_resource(max_entries=8, show_spinner="Generating…")
def synthetic_tensor(dist: str, size: int, seed: int, outliers: float) -> Tensor:
    """A synthetic ``(64, size // 64)`` tensor (cached by its knobs)."""
    rng = np.random.default_rng(seed)
    shape = (64, max(1, size // 64))
    if dist == "laplace":
        x = rng.laplace(size=shape)
    elif dist == "uniform":
        x = rng.uniform(-1, 1, size=shape)
    else:
        x = rng.standard_normal(shape)
    n_out = round(outliers / 100 * x.size)
    if n_out:
        idx = rng.choice(x.size, n_out, replace=False)
        x.flat[idx] *= 10
    array = freeze(x.astype(np.float32))
    name = f"{dist}-{size}-seed{seed}"
    return Tensor(array, name, digest(array), "synthetic", f"synthetic: {name}", None)
