"""Checkpoints as lists of tensor references, read one tensor at a time.

A :class:`TensorRef` names a tensor by file path and name (plus its shape and stored
type): it is small and picklable, so a scan can send it to a Dask worker that reads
the tensor itself from shared storage. :func:`read_tensor` returns the tensor in its
stored dtype, memory-mapped where the format allows it (``.safetensors``, ``.gguf``
unquantized types, zip-format ``.pt``/``.bin``), so converting it to float32 chunk by
chunk keeps one tensor (at most) resident.

Accepted: a ``.safetensors`` file (header parsed and validated by
:mod:`qcore.io.safetensors_files`; BF16/F16/F8 viewed through ml_dtypes), a
``model.safetensors.index.json`` with its shards (shards must lie in the index's
folder), a model folder (its index, else every checkpoint file directly in it),
``.gguf`` (``gguf.GGUFReader``; quantized types dequantized by
``gguf.quants.dequantize``, the stored type kept in ``TensorRef.dtype``), ``.onnx``
initializers (the parsed model, about the file's size, stays in memory while it is
scanned: protobuf has no partial read; each initializer is decoded when it is read;
external data is refused as :mod:`qcore.io` does), ``.pt``/``.pth``/``.bin``
(``torch.load(weights_only=True, mmap=True)``) and ``.npz`` (``allow_pickle=False``).

A shard that cannot be read (missing, corrupt, outside the folder) becomes a
:class:`ReadError`; the other shards are still listed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..budget import check_tensor
from ..io import TensorLoadError
from ..io.base import Source
from ..io.numpy_files import npz_infos, npz_read
from ..io.onnx_files import _tensors as onnx_tensors
from ..io.onnx_files import onnx_infos, onnx_read
from ..io.safetensors_files import parse_header
from ..io.torch_files import _load as torch_load
from ..io.torch_files import _to_numpy as torch_to_numpy
from ..io.torch_files import _torch
from ..scheme import QuantOptionError

INDEX_SUFFIX = ".index.json"
MAX_INDEX_BYTES = 64 * 1024 * 1024
FILE_FORMATS: dict[str, str] = {
    ".safetensors": "safetensors",
    ".gguf": "gguf",
    ".onnx": "onnx",
    ".pt": "torch",
    ".pth": "torch",
    ".bin": "torch",
    ".npz": "npz",
}
GGUF_PLAIN = ("F32", "F16", "F64")


@dataclass(frozen=True)
class TensorRef:
    """Where one tensor lives and what it is, without its data.

    Attributes
    ----------
    file : str
        Absolute path of the file holding it.
    name : str
        Its name in that file.
    shape : tuple of int
        Numpy shape (GGUF's dimension order reversed).
    dtype : str
        Stored type: a numpy dtype name, or a GGUF type such as ``Q4_K``.
    nbytes : int
        Bytes it occupies in the file.
    """

    file: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def format(self) -> str:
        return FILE_FORMATS[Path(self.file).suffix.lower()]


@dataclass(frozen=True)
class ReadError:
    """A tensor or a shard that could not be read, and why."""

    where: str
    reason: str


@dataclass(frozen=True)
class Checkpoint:
    """Every tensor reference of a checkpoint, and the shards or tensors that could not be listed."""

    path: str
    tensors: tuple[TensorRef, ...]
    errors: tuple[ReadError, ...]


def _identity(path: str) -> tuple[str, int, int]:
    st = os.stat(path)
    return path, st.st_size, st.st_mtime_ns


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _source(path: str) -> Source:
    return Source(Path(path).name, path=Path(path))


@lru_cache(maxsize=8)
def _safetensors_header(path: str, size: int, mtime: int) -> tuple[dict[str, Any], int]:
    entries, _, start = parse_header(_source(path))
    return {e.info.name: e for e in entries}, start


@lru_cache(maxsize=2)
def _gguf_reader(path: str, size: int, mtime: int) -> Any:
    import gguf

    return gguf.GGUFReader(path)


@lru_cache(maxsize=1)
def _torch_tensors(path: str, size: int, mtime: int) -> dict[str, Any]:
    return torch_load(_source(path))


@lru_cache(maxsize=1)
def _onnx_model(path: str, size: int, mtime: int) -> dict[str, Any]:
    """The parsed model's ``{name: TensorProto}``: about the file's size in memory, each tensor decoded on read."""
    return onnx_tensors(_source(path))[0]


def _read_onnx(tensors: dict[str, Any], ref: TensorRef) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    t = tensors.get(ref.name)
    if t is None:
        raise TensorLoadError(f"{ref.name!r} is not in {Path(ref.file).name}")
    if t.data_location == onnx.TensorProto.EXTERNAL:  # the same refusal as qcore.io's for an untrusted side file
        return onnx_read(_source(ref.file), [ref.name])[ref.name]
    check_tensor(ref.size, f"ONNX initializer {ref.name!r}")
    return numpy_helper.to_array(t)


def list_file(path: str) -> list[TensorRef]:
    """References to every tensor of one checkpoint file (header/metadata only where the format allows).

    Raises
    ------
    TensorLoadError
        Missing, unsupported, corrupt or truncated file.
    """
    path = str(Path(path).resolve())
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_FORMATS:
        raise TensorLoadError(f"unsupported checkpoint file {Path(path).name}; accepted: {', '.join(FILE_FORMATS)}")
    if not os.path.isfile(path):
        raise TensorLoadError(f"file not found: {path}")
    kind = FILE_FORMATS[suffix]
    try:
        if kind == "safetensors":
            entries, _ = _safetensors_header(*_identity(path))
            return [TensorRef(path, e.info.name, e.info.shape, e.info.dtype, e.end - e.begin) for e in entries.values()]
        if kind == "gguf":
            reader = _gguf_reader(*_identity(path))
            return [
                TensorRef(path, t.name, tuple(int(d) for d in reversed(t.shape)), t.tensor_type.name, int(t.n_bytes))
                for t in reader.tensors
            ]
        if kind == "torch":
            tensors = _torch_tensors(*_identity(path))
            return [
                TensorRef(path, n, tuple(t.shape), str(t.dtype).removeprefix("torch."), t.numel() * t.element_size())
                for n, t in tensors.items()
            ]
        infos, _ = (onnx_infos if kind == "onnx" else npz_infos)(_source(path))
        return [TensorRef(path, i.name, i.shape, i.dtype, i.size * _itemsize(i.dtype)) for i in infos]
    except TensorLoadError:
        raise
    except (Exception, RecursionError, MemoryError) as exc:
        raise TensorLoadError(
            f"cannot read {Path(path).name} as {kind} (corrupt or truncated?): {_one_line(exc)}"
        ) from exc


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, dtype, np.uint8)).itemsize


def read_tensor(ref: TensorRef) -> np.ndarray:
    """The tensor's values: its stored dtype (a memory map where possible), or float32 for dequantized GGUF types.

    Raises
    ------
    TensorLoadError
        The file changed or broke since it was listed, or the stored type is not numeric.
    """
    try:
        return _read(ref)
    except (TensorLoadError, QuantOptionError):  # QuantOptionError: over the memory budget
        raise
    except (Exception, RecursionError, MemoryError) as exc:
        raise TensorLoadError(f"cannot read {ref.name!r} from {Path(ref.file).name}: {_one_line(exc)}") from exc


def _read(ref: TensorRef) -> np.ndarray:
    ident = _identity(ref.file)
    kind = ref.format
    if kind == "safetensors":
        entries, start = _safetensors_header(*ident)
        e = entries.get(ref.name)
        if e is None:
            raise TensorLoadError(f"{ref.name!r} is not in {Path(ref.file).name}")
        if e.dtype is None:
            raise TensorLoadError(e.info.refusal or f"unsupported dtype of {ref.name!r}")
        if e.info.size == 0:
            return np.empty(e.info.shape, dtype=e.dtype)
        return np.memmap(ref.file, dtype=e.dtype, mode="r", offset=start + e.begin, shape=e.info.shape)
    if kind == "gguf":
        return _read_gguf(_gguf_reader(*ident), ref)
    if kind == "torch":
        return torch_to_numpy(_torch_tensors(*ident)[ref.name], _torch())
    if kind == "onnx":
        return _read_onnx(_onnx_model(*ident), ref)
    return npz_read(_source(ref.file), [ref.name])[ref.name]


def _read_gguf(reader: Any, ref: TensorRef) -> np.ndarray:
    import gguf

    t = next((t for t in reader.tensors if t.name == ref.name), None)
    if t is None:
        raise TensorLoadError(f"{ref.name!r} is not in {Path(ref.file).name}")
    if t.tensor_type.name in GGUF_PLAIN:
        return np.asarray(t.data).reshape(ref.shape)
    check_tensor(ref.size, f"GGUF tensor {ref.name!r} ({ref.dtype}, dequantized to float32)")
    return gguf.quants.dequantize(t.data, t.tensor_type).reshape(ref.shape)


def _inside(folder: Path, name: str) -> Path:
    """``folder / name`` when it stays inside ``folder`` (no absolute path, no ``..``, no symlink out)."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise TensorLoadError(f"the index names shard {name!r} outside its folder; refused")
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise TensorLoadError(f"shard {name!r} resolves outside the index's folder (symlink?); refused")
    return target


def _weight_map(index: Path) -> dict[str, str]:
    if index.stat().st_size > MAX_INDEX_BYTES:
        raise TensorLoadError(f"{index.name} is larger than {MAX_INDEX_BYTES} bytes; refused")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TensorLoadError(f"{index.name} is not valid JSON: {_one_line(exc)}") from None
    wmap = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(wmap, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in wmap.items()):
        raise TensorLoadError(f"{index.name} has no weight_map of tensor names to shard files")
    return wmap


def _open_index(index: Path) -> Checkpoint:
    folder = index.parent
    wmap = _weight_map(index)
    refs: list[TensorRef] = []
    errors: list[ReadError] = []
    by_shard: dict[str, list[str]] = {}
    for name, shard in wmap.items():
        by_shard.setdefault(shard, []).append(name)
    for shard, names in by_shard.items():
        try:
            listed = {r.name: r for r in list_file(str(_inside(folder, shard)))}
        except TensorLoadError as exc:
            errors.append(ReadError(shard, f"{exc} ({len(names)} tensors in it not scanned)"))
            continue
        for name in names:
            if name in listed:
                refs.append(listed[name])
            else:
                errors.append(ReadError(name, f"the index puts it in {shard}, which does not hold it"))
    return Checkpoint(str(index), tuple(refs), tuple(errors))


def _open_files(path: str, files: list[Path]) -> Checkpoint:
    refs: list[TensorRef] = []
    errors: list[ReadError] = []
    for f in files:
        try:
            refs += list_file(str(f))
        except TensorLoadError as exc:
            if len(files) == 1:
                raise
            errors.append(ReadError(f.name, str(exc)))
    return Checkpoint(path, tuple(refs), tuple(errors))


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """List a checkpoint: a file, an ``*.index.json`` with shards, or a model folder.

    Raises
    ------
    TensorLoadError
        Nothing there, an unsupported file, or a single file that cannot be read.
    """
    p = Path(path)
    if not p.exists():
        raise TensorLoadError(f"not found: {p}")
    if p.is_dir():
        indexes = sorted(p.glob("*.safetensors" + INDEX_SUFFIX))
        if indexes:
            return _open_index(indexes[0])
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in FILE_FORMATS)
        safetensors = [f for f in files if f.suffix.lower() == ".safetensors"]
        files = safetensors or files  # a Hugging Face folder often ships the same weights as .bin too
        if not files:
            raise TensorLoadError(f"{p} holds no checkpoint file ({', '.join(FILE_FORMATS)} or an index)")
        return _open_files(str(p), files)
    if p.name.endswith(INDEX_SUFFIX):
        return _open_index(p)
    return _open_files(str(p), [p])
