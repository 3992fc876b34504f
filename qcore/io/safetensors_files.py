"""``.safetensors`` through a validated header parser (no data read before the header checks out).

Format: an 8-byte little-endian ``N``, ``N`` bytes of UTF-8 JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``,
then the byte buffer. Checks: ``N <= MAX_HEADER`` and within the file, a JSON
object, known fields, ``0 <= begin <= end <= len(buffer)``,
``end - begin == prod(shape) * itemsize``, and no two tensors overlap.
Arrays are memory-mapped (files) or viewed (bytes) in place, bfloat16/float8 via ml_dtypes.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .base import Source, TensorInfo, TensorLoadError

MAX_HEADER = 16 * 1024 * 1024
"""Largest header accepted (a real checkpoint's is at most a few MB; parsing costs ~15x the header in memory)."""

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "C64": np.dtype("<c8"),
}


@dataclass(frozen=True)
class Entry:
    info: TensorInfo
    dtype: np.dtype | None
    begin: int
    end: int


def _fail(src: Source, what: str) -> TensorLoadError:
    return TensorLoadError(f"{src.filename} is not a valid safetensors file: {what}")


def _entry(src: Source, name: str, spec: object, buffer_len: int) -> Entry:
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
        raise _fail(src, f"entry {name!r} must have exactly dtype, shape and data_offsets")
    code, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _fail(src, f"entry {name!r} has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise _fail(src, f"entry {name!r} has invalid data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= buffer_len:
        raise _fail(src, f"entry {name!r} has data_offsets {offsets} outside the {buffer_len}-byte data buffer")
    if not isinstance(code, str):
        raise _fail(src, f"entry {name!r} has an invalid dtype {code!r}")
    dtype = DTYPES.get(code)
    if dtype is not None and end - begin != math.prod(shape) * dtype.itemsize:
        raise _fail(
            src, f"entry {name!r}: {end - begin} bytes do not match shape {shape} of {code} ({dtype.itemsize} B each)"
        )
    dtype_name = dtype.name if dtype is not None else f"safetensors {code}"
    return Entry(TensorInfo(name, tuple(shape), dtype_name), dtype, begin, end)


def parse_header(src: Source) -> tuple[list[Entry], dict[str, str], int]:
    """Validated entries in data order, the ``__metadata__`` map, and where the data buffer starts."""
    total = src.size()
    with src.open() as f:
        head = f.read(8)
        if len(head) < 8:
            raise _fail(src, "shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER:
            raise _fail(src, f"header length {n} exceeds the {MAX_HEADER}-byte limit")
        if n > total - 8:
            raise _fail(src, f"header length {n} runs past the end of the {total}-byte file (truncated?)")
        raw = f.read(n)
    if not raw.startswith(b"{"):
        raise _fail(src, "the header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(src, f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _fail(src, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(src, "__metadata__ must map strings to strings")
    buffer_len = total - 8 - n
    entries = sorted(
        (_entry(src, name, spec, buffer_len) for name, spec in header.items()), key=lambda e: (e.begin, e.end)
    )
    for before, after in itertools.pairwise(entries):
        if after.begin < before.end:
            raise _fail(src, f"tensors {before.info.name!r} and {after.info.name!r} overlap")
    return entries, metadata, 8 + n


def safetensors_infos(src: Source) -> tuple[list[TensorInfo], dict[str, str]]:
    """Tensors in the order of their data, from the header only."""
    entries, metadata, _ = parse_header(src)
    return [e.info for e in entries], metadata


def safetensors_read(src: Source, names: list[str]) -> dict[str, np.ndarray]:
    """Map (files) or view (bytes) the requested tensors in place; unknown dtypes are left to the caller's refusal."""
    entries, _, start = parse_header(src)
    by_name = {e.info.name: e for e in entries}
    out = {}
    for name in names:
        e = by_name[name]
        if e.dtype is None:
            raise TensorLoadError(e.info.refusal or f"unsupported dtype in {name!r}")
        shape = e.info.shape
        if e.info.size == 0:
            out[name] = np.empty(shape, dtype=e.dtype)
        elif src.path is not None:
            out[name] = np.memmap(src.path, dtype=e.dtype, mode="r", offset=start + e.begin, shape=shape).reshape(shape)
        else:
            out[name] = np.frombuffer(src.data, dtype=e.dtype, count=e.info.size, offset=start + e.begin).reshape(shape)
    return out
