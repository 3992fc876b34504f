"""A long per-group search in a real browser: rows done / total while it runs, Stop keeps the previous result."""

from __future__ import annotations

import pytest
from browser_helpers import assert_no_exception, shot, wait_for_run

pytestmark = pytest.mark.e2e

# 8192 x 4096 (32M values, two LLM projections), 262,144 groups of 128: EasyQuant's search (100 candidates per group
# evaluated exactly, compiled) takes about 1.6 s of CPU there, in 32 chunks, plus the app's work around it
QUERY = "source=synthetic&rows=8192&cols=4096&gran=group&group=128&bits=4&method=minmax"


def _card(page, label: str) -> str:
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue").inner_text()


def test_a_long_group_search_shows_progress_and_stop_keeps_the_last_result(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 900})
    page.set_default_timeout(240_000)
    page.goto(f"{app_url}/?{QUERY}")
    wait_for_run(page)
    before = {label: _card(page, label) for label in ("MSE", "SQNR", "Scale")}

    method = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Method")
    method.scroll_into_view_if_needed()
    method.get_by_role("combobox").click()
    page.get_by_role("option", name="easyquant", exact=True).click()
    bar = page.get_by_test_id("stProgress").filter(has_text="/ 262,144 groups calibrated")
    expect(bar).to_be_visible()
    page.wait_for_timeout(800)  # a chunk or two in
    expect(page.get_by_test_id("stMetric").filter(has_text="MSE").first).to_be_visible()  # the last result stays
    shot(page, "explore_progress")

    page.get_by_test_id("stMainBlockContainer").get_by_role("button", name="Stop").click()
    wait_for_run(page)
    warning = page.get_by_test_id("stAlert").filter(has_text="Stopped: EasyQuant (cosine search) per group of 128")
    expect(warning).to_contain_text("previous result, MinMax per group of 128")
    assert {label: _card(page, label) for label in before} == before
    expect(page.get_by_test_id("stMainBlockContainer")).to_contain_text("· MinMax ·")  # the kept result's caption
    assert_no_exception(page)
    shot(page, "explore_stopped")
