"""Model scan in a real browser: scan the bundled checkpoint, see the table, charts and plan."""

from __future__ import annotations

import pytest
from browser_helpers import assert_no_exception, shot, wait_for_run

pytestmark = pytest.mark.e2e


def test_scan_the_bundled_checkpoint(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_default_timeout(180_000)
    page.set_viewport_size({"width": 1440, "height": 2600})
    page.goto(f"{app_url}/model_scan")
    wait_for_run(page)
    assert_no_exception(page)
    page.reload()  # the first run of a fresh server is Streamlit's legacy pages/ mode (see ui/router.py)
    wait_for_run(page)
    main = page.get_by_test_id("stMainBlockContainer")
    scan, stop = (main.get_by_role("button", name=n, exact=True).bounding_box() for n in ("Scan", "Stop"))
    assert abs(stop["y"] - scan["y"]) < 2 and 0 < stop["x"] - (scan["x"] + scan["width"]) < 40  # side by side
    page.get_by_role("button", name="Scan").click()
    wait_for_run(page)
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Mixed-precision plan")).to_be_visible(timeout=180_000)
    wait_for_run(page)
    scanned = page.get_by_test_id("stMetric").filter(has_text="Tensors scanned")
    expect(scanned.get_by_test_id("stMetricValue")).to_have_text("8")
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(3)
    shot(page, "model_scan")
