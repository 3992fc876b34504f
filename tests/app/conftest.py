"""Fixtures of the AppTest suite (helpers in app_helpers.py)."""

from __future__ import annotations

import pytest
from app_helpers import run_app
from streamlit.testing.v1 import AppTest

from qcore.compiled_kernels import load_all


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    """Every numba kernel compiled (first run on a fresh checkout, about 20 s) or loaded before any AppTest run: a
    one-time cost that belongs to no page's timeout."""
    load_all()


@pytest.fixture(scope="module")
def default_app() -> AppTest:
    """The app as first opened: default sample, default settings, Explore."""
    return run_app()
