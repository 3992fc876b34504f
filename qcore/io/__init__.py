"""Safe loading of real tensors from files and uploads into float32 arrays.

Formats: ``.npy``/``.npz`` (no pickles; npz members size-checked), ``.csv`` (numbers,
one optional header row), ``.safetensors`` (validated header, memory-mapped),
``.onnx`` (initializers and Constant values), ``.pt``/``.pth`` (torch weights-only,
optional). Sources are paths, bytes (with ``filename=``) or uploaded-file objects.

Every failure, including a corrupt or hostile file, raises :class:`TensorLoadError`
(a ``ValueError``) with a one-line message: the loaders' boundary catches anything else.
Sizes are checked against the memory budget (:func:`qcore.budget.check_tensor`) from the
listed shape *before* any array is read, inflated, densified or converted: a tensor's
float32 size counts, never the file's (compressed) size.
Arrays come back as float32; the dtype rules are in :mod:`qcore.io.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from .base import Source, TensorInfo, TensorLoadError, TensorTooLargeError, check_size, make_source, to_float32
from .csv_files import csv_infos, csv_read
from .numpy_files import MAX_MEMBER_BYTES, npy_infos, npy_read, npz_infos, npz_read
from .onnx_files import onnx_infos, onnx_read
from .safetensors_files import safetensors_infos, safetensors_read
from .torch_files import torch_infos, torch_read

Infos = Callable[[Source], tuple[list[TensorInfo], dict[str, str]]]
Reader = Callable[[Source, list[str]], dict[str, np.ndarray]]

FORMATS: dict[str, tuple[str, Infos, Reader]] = {
    ".npy": ("NumPy .npy", npy_infos, npy_read),
    ".npz": ("NumPy .npz", npz_infos, npz_read),
    ".csv": ("CSV", csv_infos, csv_read),
    ".safetensors": ("safetensors", safetensors_infos, safetensors_read),
    ".onnx": ("ONNX", onnx_infos, onnx_read),
    ".pt": ("PyTorch", torch_infos, torch_read),
    ".pth": ("PyTorch", torch_infos, torch_read),
}
SUFFIXES: tuple[str, ...] = tuple(FORMATS)


@dataclass(frozen=True, eq=False)
class Tensor:
    """One loaded array: float32 values plus the dtype it was stored in."""

    name: str
    values: np.ndarray
    dtype: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)


@dataclass(frozen=True, eq=False)
class LoadedFile:
    """Every numeric array of a file.

    Attributes
    ----------
    tensors : dict of str to float32 ndarray
        In file order.
    infos : list of TensorInfo
        Every array in the file, including refused ones, with its stored dtype.
    skipped : dict of str to str
        Arrays that were not loaded and why (bool masks, pickled objects, ...).
    format : str
        Human-readable format name.
    metadata : dict of str to str
        Format metadata (safetensors ``__metadata__``, ONNX producer, ...).
    """

    tensors: dict[str, np.ndarray]
    infos: list[TensorInfo]
    skipped: dict[str, str] = field(default_factory=dict)
    format: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


def _format(src: Source) -> tuple[str, Infos, Reader]:
    try:
        return FORMATS[src.suffix]
    except KeyError:
        raise TensorLoadError(
            f"unsupported file type {src.suffix or '(no suffix)'!r} for {src.filename}; accepted: {', '.join(SUFFIXES)}"
        ) from None


def _guarded(src: Source, label: str, call: Callable[[], Any]) -> Any:
    """Run a reader; anything but :class:`TensorLoadError` becomes one (corrupt or hostile input)."""
    try:
        return call()
    except TensorLoadError:
        raise
    except (Exception, RecursionError, MemoryError) as exc:
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise TensorLoadError(
            f"cannot read {src.filename} as {label} (invalid, truncated or unsupported file): {detail}"
        ) from exc


def _listing(src: Source) -> tuple[str, Reader, list[TensorInfo], dict[str, str]]:
    label, infos, read = _format(src)
    listed, metadata = _guarded(src, label, lambda: infos(src))
    return label, read, listed, metadata


def list_tensors(source: Any, *, filename: str | None = None) -> list[TensorInfo]:
    """Names, shapes and stored dtypes of every array, without reading the data.

    (CSV and PyTorch files have no separate header: they are parsed/mapped.)
    """
    return _listing(make_source(source, filename))[2]


def _reader(read: Reader, src: Source, max_bytes: int) -> Reader:
    return partial(read, max_bytes=max_bytes) if read is npz_read else read


def load_tensor(
    source: Any,
    name: str | None = None,
    *,
    filename: str | None = None,
    max_bytes: int = MAX_MEMBER_BYTES,
    allow_external_data: bool = False,
) -> Tensor:
    """Load one array as float32: ``name``, or the first numeric array in file order when None.

    Parameters
    ----------
    source : path, bytes or uploaded file
        The file; bytes need ``filename`` (for the format).
    name : str, optional
        Array name as listed by :func:`list_tensors`.
    filename : str, optional
        Name (suffix) of in-memory data.
    max_bytes : int
        Largest decompressed ``.npz`` member accepted.
    allow_external_data : bool
        Let an ONNX model given by a trusted local path read initializers from side
        files in its directory. Never for uploads (not even saved to a temp file).

    Raises
    ------
    TensorLoadError
        Unreadable/corrupt file, no arrays, unknown name (a few available names are
        listed), or a refused dtype.
    """
    src = make_source(source, filename, allow_external_data)
    label, read, infos, _ = _listing(src)
    if not infos:
        raise TensorLoadError(f"{src.filename} holds no arrays")
    if name is None:
        info = next((i for i in infos if i.refusal is None), infos[0])
    else:
        info = next((i for i in infos if i.name == name), None)
        if info is None:
            shown = ", ".join(repr(i.name) for i in infos[:5])
            if len(infos) > 5:
                shown += f", ... ({len(infos)} in all)"
            raise TensorLoadError(f"no array named {name!r} in {src.filename}; available: {shown}")
    if info.refusal:
        raise TensorLoadError(info.refusal)
    check_size(info.size, f"array {info.name!r} of {src.filename}")
    reader = _reader(read, src, max_bytes)
    array = _guarded(src, label, lambda: reader(src, [info.name])[info.name])
    return Tensor(info.name, _guarded(src, label, lambda: to_float32(array, info.name)), info.dtype)


def load_tensors(
    source: Any,
    *,
    filename: str | None = None,
    max_bytes: int = MAX_MEMBER_BYTES,
    allow_external_data: bool = False,
) -> LoadedFile:
    """Load every numeric array of a file as float32 (refused dtypes are reported in ``skipped``).

    Options as for :func:`load_tensor`.

    Raises
    ------
    TensorLoadError
        Unreadable/corrupt file, or a file with no arrays at all.
    """
    src = make_source(source, filename, allow_external_data)
    label, read, infos, metadata = _listing(src)
    if not infos:
        raise TensorLoadError(f"{src.filename} holds no arrays")
    skipped = {i.name: i.refusal for i in infos if i.refusal}
    wanted = [i.name for i in infos if not i.refusal]
    check_size(sum(i.size for i in infos if not i.refusal), f"the {len(wanted)} arrays of {src.filename} together")
    reader = _reader(read, src, max_bytes)
    raw = _guarded(src, label, lambda: reader(src, wanted)) if wanted else {}
    tensors = {n: _guarded(src, label, lambda n=n: to_float32(raw[n], n)) for n in wanted}
    return LoadedFile(tensors, infos, skipped, label, metadata)


__all__ = [
    "FORMATS",
    "SUFFIXES",
    "LoadedFile",
    "Tensor",
    "TensorInfo",
    "TensorLoadError",
    "TensorTooLargeError",
    "list_tensors",
    "load_tensor",
    "load_tensors",
]
