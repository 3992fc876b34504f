"""``.npy`` and ``.npz``: ``allow_pickle=False`` always; npz members are size-checked before they are inflated."""

from __future__ import annotations

import zipfile
from typing import IO

import numpy as np

from .base import Source, TensorInfo, TensorLoadError

MAX_HEADER = 10_000  # numpy's own default cap on an .npy header
MAX_MEMBER_BYTES = 2 * 1024**3  # cap on one decompressed .npz member


def _header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from an .npy header; the file is left just after it."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER)
    else:
        raise TensorLoadError(f"unsupported .npy format version {version}")
    return tuple(int(d) for d in shape), dtype


def _dtype_name(dtype: np.dtype) -> str:
    return "object" if dtype.hasobject else dtype.name


def npy_infos(src: Source) -> tuple[list[TensorInfo], dict[str, str]]:
    """The single array of an .npy file, named after the file."""
    with src.open() as f:
        shape, dtype = _header(f)
    return [TensorInfo(src.stem, shape, _dtype_name(dtype))], {}


def npy_read(src: Source, names: list[str]) -> dict[str, np.ndarray]:
    """Read the array (memory-mapped for files on disk)."""
    if src.path is not None:
        array = np.load(src.path, mmap_mode="r", allow_pickle=False, max_header_size=MAX_HEADER)
    else:
        with src.open() as f:
            array = np.load(f, allow_pickle=False, max_header_size=MAX_HEADER)
    return {names[0]: array}


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    return {info.filename[: -len(".npy")]: info for info in zf.infolist() if info.filename.endswith(".npy")}


def npz_infos(src: Source) -> tuple[list[TensorInfo], dict[str, str]]:
    """Every ``*.npy`` member, in the archive's order (only member headers are inflated)."""
    infos = []
    with src.open() as f, zipfile.ZipFile(f) as zf:
        for name, member in _members(zf).items():
            with zf.open(member) as mf:
                shape, dtype = _header(mf)
            infos.append(TensorInfo(name, shape, _dtype_name(dtype)))
    return infos, {}


def npz_read(src: Source, names: list[str], max_bytes: int = MAX_MEMBER_BYTES) -> dict[str, np.ndarray]:
    """Read members after checking their declared sizes (a zip bomb declares a huge inflated size).

    A member is refused when its declared size exceeds ``max_bytes`` or is smaller
    than its header says the array needs; :mod:`zipfile` never inflates more than
    the declared size.
    """
    out = {}
    with src.open() as f, zipfile.ZipFile(f) as zf:
        members = _members(zf)
        for name in names:
            member = members[name]
            if member.file_size > max_bytes:
                raise TensorLoadError(
                    f"member {member.filename!r} declares {member.file_size} bytes once decompressed, more than "
                    f"the {max_bytes}-byte limit (a zip bomb or a very large array)"
                )
            with zf.open(member) as mf:
                shape, dtype = _header(mf)
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if nbytes > member.file_size:
                    raise TensorLoadError(
                        f"member {member.filename!r} is truncated: its header needs {nbytes} bytes, "
                        f"the member holds {member.file_size}"
                    )
            with zf.open(member) as mf:
                out[name] = np.lib.format.read_array(mf, allow_pickle=False, max_header_size=MAX_HEADER)
    return out
