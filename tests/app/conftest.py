"""Fixtures of the AppTest suite (helpers in app_helpers.py)."""

from __future__ import annotations

import pytest
from app_helpers import run_app
from streamlit.testing.v1 import AppTest

from qcore.calibrators import entropy
from qcore.calibrators.admm import load_kernels as load_admm_kernels
from qcore.calibrators.mse import load_kernels as load_mse_kernels
from qcore.formats.kquants import load_kernels


@pytest.fixture(scope="session", autouse=True)
def _kquant_kernels() -> None:
    """The K-quant kernels compiled (first run on a fresh checkout) before any AppTest run: a one-time cost that
    belongs to no page's timeout. The same for entropy's per-channel and per-group row loops."""
    load_kernels()
    entropy.load_kernels()


@pytest.fixture(scope="session", autouse=True)
def _admm_kernels() -> None:
    """ADMM's event-driven alternation compiled (first run on a fresh checkout, about 5 s) before any AppTest run."""
    load_admm_kernels()


@pytest.fixture(scope="session", autouse=True)
def _mse_kernels() -> None:
    """MSE's compiled searches (per channel asymmetric, per group) compiled before any AppTest run (~9 s once)."""
    load_mse_kernels()


@pytest.fixture(scope="module")
def default_app() -> AppTest:
    """The app as first opened: default sample, default settings, Explore."""
    return run_app()
