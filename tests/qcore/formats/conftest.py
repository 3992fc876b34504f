"""Fixtures of the format tests: bundled MiniLM tensors and the reference packages (skipped when missing)."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from qcore.io import load_tensor

DATA = Path(__file__).resolve().parents[3] / "data" / "minilm_l6.safetensors"
MINILM_WEIGHTS = (
    "minilm/layer3/attention.query.weight",
    "minilm/layer3/ffn_down.weight",
    "minilm/embeddings/word_embeddings.slice",
)


@pytest.fixture(scope="session")
def minilm() -> dict[str, np.ndarray]:
    """Bundled MiniLM weights (float32 copies), shapes (384, 384), (384, 1536), (512, 384)."""
    return {name: np.asarray(load_tensor(DATA, name).values, dtype=np.float32) for name in MINILM_WEIGHTS}


def _quiet_import(name: str) -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CUDA-extension warnings on a CPU-only machine
        return pytest.importorskip(name)


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    return _quiet_import("torch")


@pytest.fixture(scope="session")
def bnb_functional(torch: ModuleType) -> ModuleType:
    """bitsandbytes.functional (requirements-reference.txt)."""
    return _quiet_import("bitsandbytes.functional")


@pytest.fixture(scope="session")
def torchao_mx(torch: ModuleType) -> ModuleType:
    """torchao's MX reference (``prototype/mx_formats/mx_tensor.py``)."""
    return _quiet_import("torchao.prototype.mx_formats.mx_tensor")


@pytest.fixture(scope="session")
def torchao_nvfp4(torch: ModuleType) -> ModuleType:
    """torchao's NVFP4 reference (``prototype/mx_formats/nvfp4_tensor.py``)."""
    return _quiet_import("torchao.prototype.mx_formats.nvfp4_tensor")


@pytest.fixture(scope="session")
def modelopt_tensor_quant(torch: ModuleType) -> ModuleType:
    """NVIDIA modelopt's ``tensor_quant`` (``scaled_e4m3``)."""
    return _quiet_import("modelopt.torch.quantization.tensor_quant")
