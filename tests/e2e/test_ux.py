"""The teacher's and engineer's checks of issue 12, in a real browser at 1280x720 (projector size).

Zoom really zooms, the lesson step resets, Compare names its best method, a weight upload gets
the layout's axes, and no chart label, title or legend spills out of its chart.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from browser_helpers import assert_no_exception, shot, wait_for_run

from qcore import CALIBRATORS, CalibrationData, QuantScheme, analyze, to_rows
from qcore.samples import default_sample, load_sample

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1280, "height": 720}


def _plot(page, key: str):
    """The Plotly element of the chart drawn with ``key``."""
    return page.locator(f".st-key-{key} .js-plotly-plot").first


def test_zoom_16x_shows_the_grid_around_the_chosen_value(page, app_url: str) -> None:
    page.set_viewport_size(PROJECTOR)
    page.goto(f"{app_url}/?zoom=16&zc=1")
    wait_for_run(page)
    assert_no_exception(page)
    plot = _plot(page, "hist")
    plot.scroll_into_view_if_needed()
    x0, x1 = plot.evaluate("el => el._fullLayout.xaxis.range")
    x, _ = load_sample(default_sample())
    a = analyze(x, QuantScheme(symmetric=False), "entropy")
    step = float(a.params.scale[0])
    full = max(float(x.max()), float(a.params.clip_max[0])) - min(float(x.min()), float(a.params.clip_min[0]))
    assert x0 <= 1.0 <= x1
    assert x1 - x0 == pytest.approx(full / 16, rel=1e-3)
    assert (x1 - x0) / step < 40  # a few dozen grid steps, each one visible
    grid = plot.evaluate("el => el.data.filter(t => (t.name || '').startsWith('integer grid')).length")
    assert grid == 1
    shot(page, "explore_zoom")


def test_step_resets_when_the_lesson_changes(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size(PROJECTOR)
    page.goto(f"{app_url}/learn?lesson=sym-asym&step=5")
    wait_for_run(page)
    slider = page.get_by_test_id("stMain").get_by_test_id("stSlider").first.get_by_role("slider")
    expect(slider).to_have_value("5")
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Lesson").click()
    page.get_by_role("option", name="3 · How the KL search works").click()
    wait_for_run(page)
    assert "lesson=kl" in page.url
    slider = page.get_by_test_id("stMain").get_by_test_id("stSlider").first.get_by_role("slider")
    expect(slider).to_have_value("1")
    page.get_by_role("button", name="Next ▶").click()
    wait_for_run(page)
    expect(slider).to_have_value("2")
    assert_no_exception(page)


def test_compare_verdict_names_the_best_method(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size(PROJECTOR)
    page.goto(f"{app_url}/compare")
    wait_for_run(page)
    x, _ = load_sample(default_sample())
    scheme = QuantScheme(symmetric=False)
    data = CalibrationData(to_rows(x, scheme))
    sqnr = {m: analyze(data, scheme, m).report.sqnr_db for m in ("minmax", "percentile", "entropy", "mse", "admm")}
    best = max(sqnr, key=sqnr.get)
    expect(page.locator(".st-key-cmp_verdict")).to_contain_text(f"Best SQNR: {CALIBRATORS[best].label}")
    assert_no_exception(page)


def test_weight_upload_defaults_to_the_layout_axes(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(app_url)
    wait_for_run(page)
    side = page.get_by_test_id("stSidebar")
    side.get_by_text("upload", exact=True).click()
    wait_for_run(page)
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32), allow_pickle=False)
    with page.expect_file_chooser() as fc:
        page.get_by_test_id("stFileUploaderDropzone").click()
    fc.value.set_files(files=[{"name": "w.npy", "mimeType": "application/octet-stream", "buffer": buf.getvalue()}])
    wait_for_run(page)
    side.get_by_text("weight", exact=True).click()
    wait_for_run(page)
    axis = side.get_by_test_id("stNumberInput").filter(has_text="Axis").locator("input")
    expect(axis).to_have_value("0")
    expect(side).to_contain_text("axis 0, output channels (rows of W)")
    gran = side.get_by_test_id("stSelectbox").filter(has_text="Granularity")
    gran.scroll_into_view_if_needed()
    gran.get_by_role("combobox").click()
    page.get_by_role("option", name="group", exact=True).click()
    wait_for_run(page)
    expect(axis).to_have_value("1")
    expect(side).to_contain_text("axis 1, inputs (columns of W)")
    assert_no_exception(page)


LABELS = ".gtitle, .xtick text, .ytick text, .legendtext, .annotation-text, .g-xtitle text, .g-ytitle text"
SPILL = (
    """el => {
  const box = el.getBoundingClientRect();
  const out = [];
  for (const t of el.querySelectorAll('"""
    + LABELS
    + """')) {
    const r = t.getBoundingClientRect();
    if (r.width === 0) continue;
    if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
      out.push(t.textContent);
  }
  return out;
}"""
)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?gran=channel&axis=1",
        "/compare?cmp=aciq&cmp=admm&cmp=easyquant&cmp=ema&cmp=entropy&cmp=log2&cmp=minmax&cmp=mse&cmp=percentile",
        "/learn?lesson=kl&step=5",
    ],
)
def test_no_label_spills_out_of_its_chart_at_1280(page, app_url: str, path: str) -> None:
    page.set_viewport_size(PROJECTOR)
    page.goto(f"{app_url}{path}")
    wait_for_run(page)
    page.wait_for_timeout(800)
    assert_no_exception(page)
    plots = page.locator(".js-plotly-plot")
    assert plots.count() > 0
    spilled = {i: plots.nth(i).evaluate(SPILL) for i in range(plots.count())}
    assert not any(spilled.values()), spilled


CUT_TEXT = """() => [...document.querySelectorAll('[data-testid="stMetric"] *')]
  .filter(e => e.textContent.trim() && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.textContent)"""
"""Texts inside a metric card wider than their box (Streamlit cuts them with "…")."""


@pytest.mark.parametrize(
    "path",
    [
        "/?gran=channel&axis=1",  # "384 ranges: 0.00435 … 0.121" was cut
        "/?source=synthetic&cols=512&format=q4_k",  # "GGUF Q4_K" was cut to "GGUF Q…"
        "/?format=fp8_e4m3&gran=channel&axis=1",
        "/?format=nf4_dq",
    ],
)
def test_no_card_text_is_cut_at_1280(page, app_url: str, path: str) -> None:
    page.set_viewport_size(PROJECTOR)
    page.goto(f"{app_url}{path}")
    wait_for_run(page)
    assert_no_exception(page)
    assert page.get_by_test_id("stMetric").count() >= 12
    assert page.evaluate(CUT_TEXT) == []
