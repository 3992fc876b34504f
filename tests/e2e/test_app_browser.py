"""End to end in a real browser: every page renders, a setting changes a number, a bad upload shows an error."""

from __future__ import annotations

import re

import pytest
from browser_helpers import assert_no_exception, shot, wait_for_run

pytestmark = pytest.mark.e2e

# name -> URL path (the model page on the digits MLP: MiniLM's first run is the slow part of a busy machine)
PAGES = {
    "explore": "",
    "compare": "compare",
    "whatif": "whatif",
    "learn": "learn",
    "model": "model_whatif?mw_model=digits",
}


def metric_value(page, label: str) -> str:
    card = page.get_by_test_id("stMetric").filter(has_text=label)
    return card.get_by_test_id("stMetricValue").inner_text()


def test_a_link_reopens_page_and_settings_on_a_fresh_server(page, app_url: str) -> None:
    """First request of the server: Streamlit's legacy pages/ mode must not lose the sidebar or the page."""
    from playwright.sync_api import expect

    page.goto(f"{app_url}/compare?bits=4&scheme=asymmetric")
    wait_for_run(page)
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Compare calibration methods")).to_be_visible()
    bits = page.get_by_test_id("stSidebar").get_by_test_id("stSlider").filter(has_text="Bits")
    expect(bits.get_by_role("slider")).to_have_value("4")
    page.reload()
    wait_for_run(page)
    expect(page.get_by_role("heading", name="Compare calibration methods")).to_be_visible()
    assert "bits=4" in page.url and "/compare" in page.url


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_without_exception(page, app_url: str, name: str) -> None:
    page.set_default_timeout(180_000)  # What-if runs its sweeps on open: slow on a busy 2-core machine
    page.set_viewport_size({"width": 1440, "height": 1800})
    page.goto(f"{app_url}/{PAGES[name]}")
    wait_for_run(page)
    assert_no_exception(page)
    shot(page, name)


def test_per_channel_weights_view(page, app_url: str) -> None:
    """A weight matrix per output channel: the per-channel range and error charts appear."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 2300})
    query = "sample=minilm/layer3/ffn_up.weight&role=weight&scheme=symmetric&gran=channel&axis=0&method=minmax&bits=4"
    page.goto(f"{app_url}/?{query}")
    wait_for_run(page)
    assert_no_exception(page)
    expect(page.get_by_role("heading", name="Per channel")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(6)  # with the codes-used chart
    shot(page, "explore_per_channel")


def test_changing_bits_changes_the_metrics(page, app_url: str) -> None:
    page.goto(app_url)
    wait_for_run(page)
    before = metric_value(page, "Levels used")
    assert before.endswith("/ 256")
    thumb = page.get_by_test_id("stSidebar").get_by_test_id("stSlider").filter(has_text="Bits").get_by_role("slider")
    thumb.focus()
    for _ in range(4):
        thumb.press("ArrowLeft")
    wait_for_run(page)
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stMetric").filter(has_text="Levels used").get_by_test_id("stMetricValue")).to_have_text(
        re.compile(r"/ 16$")
    )
    assert "bits=4" in page.url


def test_bad_upload_shows_a_clear_error_and_keeps_the_tensor(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(app_url)
    wait_for_run(page)
    mse_before = metric_value(page, "MSE")
    page.get_by_test_id("stSidebar").get_by_text("upload", exact=True).click()
    wait_for_run(page)
    with page.expect_file_chooser() as fc:
        page.get_by_test_id("stFileUploaderDropzone").click()
    fc.value.set_files(
        files=[{"name": "broken.npy", "mimeType": "application/octet-stream", "buffer": b"this is not a numpy file"}]
    )
    wait_for_run(page)
    alert = page.get_by_test_id("stSidebar").get_by_test_id("stAlert").filter(has_text="broken.npy")
    expect(alert).to_contain_text("Accepted")
    assert_no_exception(page)
    assert metric_value(page, "MSE") == mse_before
