"""``.pt``/``.pth`` checkpoints, only through ``torch.load(weights_only=True, map_location="cpu")``.

torch is optional. Loading is refused when torch is older than 2.10 (weights-only
unpickler CVE-2025-32434, CVE-2026-24747) or when ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
is set (the known switch back to unsafe loading). Nested dicts/lists of tensors
(state dicts, ``{"model": state_dict, ...}``) are flattened to dotted names;
non-tensor leaves (epochs, strings) are ignored.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from typing import Any

import ml_dtypes
import numpy as np

from .base import Source, TensorInfo, TensorLoadError

MIN_TORCH = (2, 10)
UNSAFE_SWITCH = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


def _torch() -> Any:
    if os.environ.get(UNSAFE_SWITCH, "").strip().lower() not in ("", "0", "false", "no", "n"):
        raise TensorLoadError(
            f"refusing to read a PyTorch checkpoint while {UNSAFE_SWITCH} is set (it re-enables unsafe "
            "pickle loading); unset it or convert the checkpoint to .safetensors"
        )
    try:
        import torch
    except ImportError:
        raise TensorLoadError(
            "reading .pt/.pth needs PyTorch, which is not installed; install torch>=2.10 or convert the "
            "checkpoint to .safetensors"
        ) from None
    version = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    if version < MIN_TORCH:
        raise TensorLoadError(
            f"torch {torch.__version__} has known flaws in its weights-only loader; .pt/.pth needs torch>=2.10"
        )
    return torch


def _flatten(obj: Any, prefix: str, out: dict[str, Any], torch: Any) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix or "tensor"] = obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, torch)
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _flatten(value, f"{prefix}.{i}" if prefix else str(i), out, torch)


def _load(src: Source) -> dict[str, Any]:
    """``{dotted name: tensor}`` of the checkpoint (memory-mapped when it is a zip-format file on disk)."""
    torch = _torch()
    try:
        if src.path is not None:
            obj = torch.load(src.path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(src.path))
        else:
            with src.open() as f:
                obj = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), "")
        raise TensorLoadError(
            f"{src.filename} holds Python objects that torch's safe weights-only loader refuses"
            f"{f' ({detail})' if detail else ''}; only tensors and plain containers are accepted "
            "(save a state_dict, or convert to .safetensors)"
        ) from None
    out: dict[str, Any] = {}
    _flatten(obj, "", out, torch)
    return out


def _dtype_name(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


def torch_infos(src: Source) -> tuple[list[TensorInfo], dict[str, str]]:
    """Every tensor of the checkpoint, in the order torch restores them."""
    return [TensorInfo(name, tuple(t.shape), _dtype_name(t)) for name, t in _load(src).items()], {}


def _to_numpy(t: Any, torch: Any) -> np.ndarray:
    """Exact numpy view of a CPU tensor; bfloat16/float8 through their bit patterns and ml_dtypes."""
    t = t.detach()
    if t.is_quantized:
        t = t.dequantize()
    if t.layout != torch.strided:
        t = t.to_dense()
    bits = {
        torch.bfloat16: (torch.int16, ml_dtypes.bfloat16),
        torch.float8_e4m3fn: (torch.uint8, ml_dtypes.float8_e4m3fn),
        torch.float8_e5m2: (torch.uint8, ml_dtypes.float8_e5m2),
    }
    if t.dtype in bits:
        as_int, np_dtype = bits[t.dtype]
        return t.contiguous().view(as_int).numpy().view(np_dtype)
    return t.numpy()


def torch_read(src: Source, names: list[str]) -> dict[str, np.ndarray]:
    """The requested tensors as numpy arrays in their stored dtype."""
    torch = _torch()
    tensors = _load(src)
    return {name: _to_numpy(tensors[name], torch) for name in names}
