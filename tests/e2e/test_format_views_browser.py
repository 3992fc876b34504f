"""Number formats in a real browser: the sidebar selector from a link, Explore's storage cards, Compare → formats."""

from __future__ import annotations

import pytest
from browser_helpers import assert_no_exception, shot, wait_for_run

pytestmark = pytest.mark.e2e


def test_nf4_link_opens_explore_with_its_storage(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_url}/?format=nf4")
    wait_for_run(page)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("16 normal-quantile codes")  # the chosen format's summary
    expect(sidebar).to_contain_text("Integer grid (not used by NF4)")
    card = page.get_by_test_id("stMetric").filter(has_text="Bits per weight")
    expect(card).to_contain_text("4.5")
    assert_no_exception(page)
    shot(page, "explore_nf4")


def test_compare_formats_table_in_the_browser(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1800})
    page.goto(f"{app_url}/compare?cmp_mode=formats")
    wait_for_run(page)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1)
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)
    assert_no_exception(page)
    shot(page, "compare_formats")
