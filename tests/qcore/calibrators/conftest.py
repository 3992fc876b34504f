"""Fixtures shared by the calibrator tests: NVIDIA modelopt's real histogram calibrator, when installed."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="session")
def modelopt_histogram() -> ModuleType:
    """``modelopt.torch.quantization.calib.histogram`` (requirements-reference.txt); skips when not importable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about missing CUDA extensions on a CPU-only machine
        return pytest.importorskip("modelopt.torch.quantization.calib.histogram")


@pytest.fixture(scope="session")
def modelopt_collect(modelopt_histogram: ModuleType) -> Callable[..., object]:
    """``collect(x, bits, unsigned)``: a real ``HistogramCalibrator`` (2048 bins, torch.histc) fed ``x``."""
    import torch

    def collect(x: np.ndarray, bits: int = 8, unsigned: bool = False) -> object:
        calibrator = modelopt_histogram.HistogramCalibrator(num_bits=bits, unsigned=unsigned)
        calibrator.collect(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return calibrator

    return collect
