"""What-if and Learn in a real browser: a sweep runs to completion, a lesson is stepped through, screenshots saved."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from browser_helpers import assert_no_exception, shot, wait_for_run

pytestmark = pytest.mark.e2e


def test_bits_sweep_runs_to_completion(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1600})
    query = urlencode([("wi_methods", m) for m in ("minmax", "percentile", "entropy", "aciq")])
    page.goto(f"{app_url}/whatif?{query}")
    wait_for_run(page)
    expect(page.get_by_test_id("stProgress").filter(has_text="Done")).to_contain_text("60 points")
    expect(page.get_by_test_id("stPlotlyChart")).to_have_count(1)
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() == 4
    expect(page.get_by_test_id("stDownloadButton")).to_be_visible()
    assert_no_exception(page)
    shot(page, "whatif_bits")


def test_layer_view_on_a_real_layer(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1800})
    page.goto(f"{app_url}/whatif?{urlencode({'wi_view': 'layer', 'wi_pair': 'minilm/layer3/ffn_up'})}")
    wait_for_run(page)
    expect(page.get_by_test_id("stProgress").filter(has_text="Done")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2)
    assert_no_exception(page)
    shot(page, "whatif_layer")


def test_step_through_the_int4_lesson(page, app_url: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1600})
    page.goto(f"{app_url}/learn?lesson=sym-asym")
    wait_for_run(page)
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("step 1: Observe the largest magnitude")
    thumb = main.get_by_test_id("stSlider").first.get_by_role("slider")
    titles = ["Compute the scale", "Quantize", "Dequantize"]
    for title in titles:
        thumb.focus()
        thumb.press("ArrowRight")
        wait_for_run(page)
        expect(main).to_contain_text(title)
    assert "step=4" in page.url
    thumb.focus()
    thumb.press("ArrowRight")
    wait_for_run(page)
    expect(main).to_contain_text("step 5: Dequantize")
    expect(main).to_contain_text(re.compile(r"symmetric \d"))
    assert_no_exception(page)
    shot(page, "learn_int4")


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("learn_round_clip", {"lesson": "round-clip", "ln_clip": "60", "step": "5"}),
        ("learn_kl", {"lesson": "kl", "kl_bits": "4", "step": "5"}),
        ("learn_admm", {"lesson": "admm"}),
        ("learn_cross_terms", {"lesson": "weights-acts", "step": "3"}),
    ],
)
def test_lessons_render(page, app_url: str, name: str, query: dict[str, str]) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1500})
    page.goto(f"{app_url}/learn?{urlencode(query)}")
    wait_for_run(page)
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible()
    assert_no_exception(page)
    shot(page, name)


@pytest.mark.parametrize("view", ["granularity", "conventions"])
def test_other_whatif_views_render(page, app_url: str, view: str) -> None:
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1500})
    page.goto(f"{app_url}/whatif?{urlencode({'wi_view': view})}")
    wait_for_run(page)
    expect(page.get_by_test_id("stProgress").filter(has_text="Done")).to_be_visible()
    assert_no_exception(page)
    shot(page, f"whatif_{view.lower()}")
