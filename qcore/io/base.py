"""Shared pieces of the tensor loaders: the error type, the source and the dtype rules.

Every reader returns arrays in their stored dtype; :func:`to_float32` turns an
accepted one into float32 (the dtype every qcore computation uses):

- float16, bfloat16, float8 and float32: exact;
- float64: rounded to the nearest float32 (a finite value beyond float32's range,
  ``|x| > 3.4e38``, is an error rather than a silent ``inf``);
- integers (int4..int64, uint8..uint64): ``float32(x)``, exact up to ``2^24``;
- bool, complex, object (pickled), strings, structured and date types are refused.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..budget import BudgetError, check_tensor

FLOAT_DTYPES = frozenset(
    {
        "float16",
        "float32",
        "float64",
        "longdouble",
        "float128",
        "bfloat16",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e4m3b11fnuz",
        "float8_e5m2",
        "float8_e5m2fnuz",
        "float8_e3m4",
        "float8_e4m3",
    }
)
INT_DTYPES = frozenset(
    {"int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
)
ACCEPTED = "float16/bfloat16/float32/float64/float8 or integer"


class TensorLoadError(ValueError):
    """A file (or upload) that cannot be read as numeric tensors; the message says why and what is accepted."""


class TensorTooLargeError(TensorLoadError, BudgetError):
    """An array whose float32 copy would not fit the memory budget (both a load error and a budget error)."""


def check_size(n_elements: int, what: str) -> None:
    """:func:`qcore.budget.check_tensor`, raising :class:`TensorTooLargeError`."""
    try:
        check_tensor(n_elements, what)
    except BudgetError as exc:
        raise TensorTooLargeError(str(exc)) from None


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape and stored dtype of one array in a file (read without loading the data)."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        """Number of elements, ``prod(shape)``."""
        return math.prod(int(d) for d in self.shape)  # Python ints: a hostile shape cannot wrap around

    @property
    def refusal(self) -> str | None:
        """Why this array cannot be loaded as numbers, or None when it can."""
        if self.dtype in FLOAT_DTYPES or self.dtype in INT_DTYPES:
            return None
        if self.dtype == "object":
            return (
                f"array {self.name!r} is a pickled object array; pickles are refused because loading them "
                "can run code (save a numeric array instead)"
            )
        return f"array {self.name!r} has dtype {self.dtype}, which is not a real number type (accepted: {ACCEPTED})"


@dataclass(frozen=True)
class Source:
    """A file to read: a path on disk, or in-memory bytes with the file name they came from.

    Attributes
    ----------
    filename : str
        Name used for the format (its suffix) and in messages.
    path : Path or None
        Set for files on disk (readers may memory-map them).
    data : bytes or None
        Set for in-memory uploads.
    allow_external : bool
        Whether the file may pull data from side files next to it (ONNX external
        data); only ever True for a path the caller trusts.
    """

    filename: str
    path: Path | None = None
    data: bytes | None = None
    allow_external: bool = False

    @property
    def suffix(self) -> str:
        return Path(self.filename).suffix.lower()

    @property
    def stem(self) -> str:
        return Path(self.filename).stem

    def open(self) -> IO[bytes]:
        """A binary file object over the content."""
        if self.path is not None:
            return open(self.path, "rb")
        return io.BytesIO(self.data or b"")

    def size(self) -> int:
        """Size in bytes."""
        if self.path is not None:
            return os.path.getsize(self.path)
        return len(self.data or b"")


def make_source(source: Any, filename: str | None = None, allow_external: bool = False) -> Source:
    """Build a :class:`Source` from a path, bytes, or a file-like upload (``getvalue()``/``read()`` and ``name``).

    ``allow_external`` is honoured for paths only: bytes have no directory to read side files from.

    Raises
    ------
    TensorLoadError
        A missing file, a directory, or bytes without a file name.
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise TensorLoadError(f"file not found: {path}")
        if not path.is_file():
            raise TensorLoadError(f"not a regular file: {path}")
        return Source(filename or path.name, path=path, allow_external=allow_external)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "getvalue"):
        data = bytes(source.getvalue())
    elif hasattr(source, "read"):
        data = bytes(source.read())
    else:
        raise TensorLoadError(f"expected a path, bytes or an uploaded file, got {type(source).__name__}")
    name = filename or getattr(source, "name", None)
    if not name:
        raise TensorLoadError("in-memory data needs a file name (e.g. filename='w.safetensors') to tell its format")
    return Source(str(name), data=data)


def to_float32(array: np.ndarray, name: str) -> np.ndarray:
    """Convert an accepted array to a C-ordered float32 ndarray (see the module docstring for the rules).

    float32 input comes back without a copy (a read-only view of a memory-mapped
    file or of the uploaded bytes).

    Raises
    ------
    TensorLoadError
        Refused dtype, or float64 values beyond float32's range.
    """
    array = np.asarray(array)
    reason = TensorInfo(name, tuple(array.shape), array.dtype.name).refusal
    if reason:
        raise TensorLoadError(reason)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(array, dtype=np.float32, copy=None, order="C")
    if array.dtype.itemsize > 4 and array.dtype.name in FLOAT_DTYPES:
        overflow = np.isinf(out) & np.isfinite(array)
        if overflow.any():
            raise TensorLoadError(
                f"array {name!r} has {int(overflow.sum())} finite float64 values beyond the float32 range "
                "(|x| > 3.4e38); qcore computes in float32"
            )
    return out
