"""Checkpoint paths a user may type (Model scan, Explore's "path" source): only inside the configured roots.

Explore loads one tensor of such a checkpoint by name (:func:`checkpoint_tensor`): the path is resolved under
the same roots, the tensor's float32 copy checked against the memory budget before it is read.

The roots are the project's ``data/`` folder, the directory the app was started from, and any folder listed in
the ``QX_SCAN_ROOTS`` environment variable (``os.pathsep``-separated). ``..``, absolute paths elsewhere and
symlinks that lead out of a root are refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from qcore import QuantScheme, to_rows
from qcore.io import TensorLoadError
from qcore.io.base import check_size, to_float32
from qcore.scan import open_checkpoint, read_tensor
from qcore.scan.checkpoint import FILE_FORMATS, INDEX_SUFFIX

from . import data
from .byte_cache import cached

ROOT = Path(__file__).resolve().parent.parent
START_DIR = Path.cwd().resolve()
ROOTS_ENV = "QX_SCAN_ROOTS"


class PathRefused(ValueError):
    """A path outside the allowed roots (or with ``..``)."""


def roots() -> list[Path]:
    """The folders a typed path may point into (resolved, existing, without duplicates)."""
    extra = [Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    out: list[Path] = []
    for r in (ROOT / "data", START_DIR, *extra):
        r = r.expanduser().resolve()
        if r.is_dir() and r not in out:
            out.append(r)
    return out


def resolve_path(text: str, allowed: list[Path]) -> Path:
    """The checkpoint a typed path names, when it lies inside one of ``allowed``.

    A relative path is tried against each root in turn; the resolved target (symlinks
    followed) must stay inside the root it was found under.

    Raises
    ------
    PathRefused
        ``..`` in the path, an absolute path outside the roots, a symlink leading out, or nothing there.
    """
    text = text.strip()
    if not text:
        raise PathRefused("type a path to a checkpoint file or folder")
    p = Path(text).expanduser()
    if ".." in p.parts:
        raise PathRefused(f"'..' is not allowed in a path ({text}); give a path inside {_names(allowed)}")
    candidates = [p] if p.is_absolute() else [r / p for r in allowed]
    for c in candidates:
        if not os.path.lexists(c):
            continue
        target = c.resolve()
        root = next((r for r in allowed if c.absolute().is_relative_to(r)), None)
        if root is None:
            raise PathRefused(f"{text} is outside the allowed folders {_names(allowed)} (set {ROOTS_ENV} to add one)")
        if not target.is_relative_to(root):
            raise PathRefused(f"{text} is a link that leads outside {root}; refused")
        return target
    raise PathRefused(f"nothing named {text} in {_names(allowed)}")


def _names(allowed: list[Path]) -> str:
    return ", ".join(str(r) for r in allowed)


def identity(path: Path) -> tuple:
    """File identity of a checkpoint without reading it: (path, size, mtime) of the file, of an index and the shards
    it names, or of every checkpoint file in a folder (cache key)."""
    if path.is_dir():
        files = [f for f in path.iterdir() if f.is_file() and is_checkpoint_path(f)]
    elif path.name.endswith(INDEX_SUFFIX):
        try:
            shards = set(json.loads(path.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            shards = set()
        files = [path, *(path.parent / str(s) for s in sorted(shards))]
    else:
        files = [path]
    out = []
    for f in sorted(files):
        try:
            st_ = os.stat(f)
            out.append((str(f), st_.st_size, st_.st_mtime_ns))
        except OSError:
            out.append((str(f), None, None))
    return tuple(out)


def is_checkpoint_path(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in FILE_FORMATS or path.name.endswith(INDEX_SUFFIX)


def checkpoint_tensor(text: str, name: str) -> data.Tensor:
    """Tensor ``name`` of the checkpoint at ``text`` (a typed path inside :func:`roots`), as Explore shows it.

    Raises
    ------
    PathRefused
        The path is outside the roots (or names nothing).
    TensorLoadError, QuantOptionError
        No such tensor (a few names are listed), an unreadable file, over the memory budget, no finite value.
    """
    path = resolve_path(text, roots())
    return _load(str(path), name, identity(path))


@cached("Loading the tensor…")
def _load(path: str, name: str, ident: tuple) -> data.Tensor:
    """One tensor of a checkpoint, cached by the files' identity (``ident``: path, size, mtime of each)."""
    checkpoint = open_checkpoint(path)
    ref = next((r for r in checkpoint.tensors if r.name == name), None)
    if ref is None:
        shown = ", ".join(repr(r.name) for r in checkpoint.tensors[:5])
        more = f", ... ({len(checkpoint.tensors)} in all)" if len(checkpoint.tensors) > 5 else ""
        raise TensorLoadError(f"no tensor named {name!r} in {Path(path).name}; it holds {shown}{more}")
    check_size(ref.size, f"tensor {name!r} of {Path(path).name}")  # before anything is read
    array = data.freeze(to_float32(read_tensor(ref), name))
    to_rows(array, QuantScheme())  # empty / all-NaN arrays raise QuantOptionError here
    label = f"{Path(ref.file).name} : {name}"
    return data.Tensor(array, name, data.digest(array), "path", label, ref.file, ref.dtype)
