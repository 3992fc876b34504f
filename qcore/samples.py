"""The bundled real sample tensors of ``data/`` (listed in ``data/manifest.json``, made by ``tools/make_samples.py``).

Each sample is one array of a real model: a weight ``W`` (``(out, in)``, PyTorch layout) or an activation
``X`` (``(n, in)``). A pair ``(X, W)`` is one real layer, ``Y = X W^T``: ``X.shape[-1] == W.shape[1]``.
Arrays are read through :func:`qcore.io.load_tensor` (validated, float32).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .io import TensorLoadError, load_tensor

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
MANIFEST = "manifest.json"


class SampleError(TensorLoadError):
    """Unknown sample or pair name, or a missing/inconsistent ``data/`` folder."""


@dataclass(frozen=True)
class SampleInfo:
    """One manifest entry.

    Attributes
    ----------
    name : str
        Unique name, ``"<source>/<layer>/<tensor>"`` (e.g. ``"minilm/layer3/ffn_up.weight"``).
    label : str
        Human-readable title for lists.
    file, key : str
        File in ``data/`` and the array's key in it.
    source : str
        Key into :func:`sample_sources` (model, package, licence, how it was made).
    layer : str
        Where the tensor sits in the source model.
    role : str
        ``"weight"`` or ``"activation"``.
    shape : tuple of int
    dtype : str
        Stored dtype (``load_sample`` returns float32).
    channel_axis : int or None
        Axis for per-channel quantization: 0 (output channels) for weights, 1 (features) for activations.
    description : str
        One line on what the tensor shows (computed from the data when it was made).
    pair : str or None
        Name of the :class:`SamplePair` it belongs to.
    license : str
        Licence of the source.
    value_range : tuple of float
        ``(min, max)`` of the stored values (``min >= 0``: one-sided, unsigned grids fit).
    """

    name: str
    label: str
    file: str
    key: str
    source: str
    layer: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    channel_axis: int | None
    description: str
    pair: str | None
    license: str
    value_range: tuple[float, float]


@dataclass(frozen=True)
class SamplePair:
    """A real layer ``Y = X W^T``: ``activation`` X ``(n, in)`` times ``weight`` W ``(out, in)`` transposed."""

    name: str
    label: str
    weight: str
    activation: str
    op: str
    weight_channel_axis: int
    activation_channel_axis: int
    description: str


@dataclass(frozen=True)
class _Manifest:
    data_dir: Path
    default: str
    samples: dict[str, SampleInfo]
    pairs: dict[str, SamplePair]
    sources: dict[str, dict[str, Any]]


def _manifest(data_dir: Path) -> _Manifest:
    """The parsed manifest, re-read when the file changes (cache key: path, mtime, size)."""
    path = Path(data_dir) / MANIFEST
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SampleError(f"no sample manifest at {path} (regenerate with `make samples`)") from None
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _parse(path: Path, mtime_ns: int, size: int) -> _Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SampleError(f"cannot read the sample manifest {path}: {exc}") from None
    try:
        sources = raw["sources"]
        samples = {
            t["name"]: SampleInfo(
                name=t["name"],
                label=t["label"],
                file=t["file"],
                key=t["key"],
                source=t["source"],
                layer=t["layer"],
                role=t["role"],
                shape=tuple(int(d) for d in t["shape"]),
                dtype=t["dtype"],
                channel_axis=t["channel_axis"],
                description=t["description"],
                pair=t["pair"],
                license=sources[t["source"]]["license"],
                value_range=(float(t["range"][0]), float(t["range"][1])),
            )
            for t in raw["tensors"]
        }
        pairs = {p["name"]: SamplePair(**p) for p in raw["pairs"]}
        default = raw["default"]
    except (KeyError, TypeError) as exc:
        raise SampleError(f"the sample manifest {path} is malformed (missing or bad field {exc})") from None
    return _Manifest(path.parent, default, samples, pairs, sources)


def _unknown(kind: str, name: str, known: list[str]) -> SampleError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    return SampleError(f"unknown {kind} {name!r}; {hint}available: {', '.join(known)}")


def list_samples(role: str | None = None, data_dir: Path = DATA_DIR) -> list[SampleInfo]:
    """Every sample in manifest order, or only those with ``role`` (``"weight"``/``"activation"``)."""
    if role not in (None, "weight", "activation"):
        raise SampleError(f"role must be 'weight' or 'activation', got {role!r}")
    return [s for s in _manifest(data_dir).samples.values() if role is None or s.role == role]


def sample_info(name: str, data_dir: Path = DATA_DIR) -> SampleInfo:
    """The manifest entry of ``name`` (no data read). Raises :class:`SampleError` for an unknown name."""
    samples = _manifest(data_dir).samples
    if name not in samples:
        raise _unknown("sample", name, list(samples))
    return samples[name]


def load_sample(name: str, data_dir: Path = DATA_DIR) -> tuple[np.ndarray, SampleInfo]:
    """``(values, info)``: the sample as float32 (float16 storage widens exactly) and its manifest entry.

    Raises
    ------
    SampleError
        Unknown name, or a file that does not match its manifest entry.
    TensorLoadError
        Missing or corrupt file.
    """
    info = sample_info(name, data_dir)
    tensor = load_tensor(data_dir / info.file, info.key)
    if tensor.shape != info.shape or tensor.dtype != info.dtype:
        raise SampleError(
            f"{info.file}[{info.key!r}] is {tensor.dtype} {tensor.shape}, the manifest says {info.dtype} "
            f"{info.shape} (regenerate with `make samples`)"
        )
    return tensor.values, info


def sample_pairs(data_dir: Path = DATA_DIR) -> list[SamplePair]:
    """Every weight/activation pair (one real layer each), in manifest order."""
    return list(_manifest(data_dir).pairs.values())


def load_pair(name: str, data_dir: Path = DATA_DIR) -> tuple[np.ndarray, np.ndarray, SamplePair]:
    """``(X, W, pair)`` of a real layer ``Y = X W^T``, both float32. Raises :class:`SampleError` if unknown."""
    pairs = _manifest(data_dir).pairs
    if name not in pairs:
        raise _unknown("sample pair", name, list(pairs))
    pair = pairs[name]
    x, _ = load_sample(pair.activation, data_dir)
    w, _ = load_sample(pair.weight, data_dir)
    return x, w, pair


def default_sample(data_dir: Path = DATA_DIR) -> str:
    """Name of the sample the app opens on (the MiniLM FFN input, whose outlier dims show at once)."""
    return _manifest(data_dir).default


def sample_sources(data_dir: Path = DATA_DIR) -> dict[str, dict[str, Any]]:
    """Provenance of each source: model, package and version, licence, how the tensors were made."""
    return dict(_manifest(data_dir).sources)
