"""Fixtures of the AppTest suite (helpers in app_helpers.py)."""

from __future__ import annotations

import pytest
from app_helpers import run_app
from streamlit.testing.v1 import AppTest


@pytest.fixture(scope="module")
def default_app() -> AppTest:
    """The app as first opened: default sample, default settings, Explore."""
    return run_app()
