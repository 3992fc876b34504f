"""Helpers shared by the browser tests: wait for a script run, check for exceptions, save a screenshot."""

from __future__ import annotations

import time
from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def wait_for_run(page) -> None:
    """Wait until the script has finished (Streamlit's own e2e helper does the same)."""
    time.sleep(0.3)
    page.wait_for_selector("[data-testid=stApp][data-test-script-state=notRunning]", state="attached")
    page.wait_for_function("document.querySelectorAll('[data-testid=stSkeleton]').length === 0")


def assert_no_exception(page) -> None:
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, errors.first.inner_text()


def shot(page, name: str) -> None:
    """Full-page screenshot to docs/screenshots/NAME.png once plotly has laid the charts out."""
    page.wait_for_timeout(800)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
