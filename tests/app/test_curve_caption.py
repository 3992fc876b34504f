"""The caption under a method's objective curve: what the search covered, what is drawn, and why they differ;
the lower side's curve of asymmetric entropy drawn beside the upper one (Explore and Compare)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from app_helpers import array, charts, expected, run_app

from qcore import QuantScheme, analyze, to_rows
from qcore.calibrators import CalibrationData, make_calibrator
from ui.curve_caption import curve_caption, drawn_candidates, lower_curve

RNG = np.random.default_rng(3)
LONG = RNG.standard_normal((8, 4096)).astype(np.float32)  # channels longer than the 2048-bin histogram
SHORT = RNG.standard_normal((8, 600)).astype(np.float32)  # channels shorter than it


def entropy(x: np.ndarray, symmetric: bool, granularity: str = "channel"):
    return analyze(x, QuantScheme(symmetric=symmetric, granularity=granularity, axis=0), "entropy").calibration


def shown_counts(text: str) -> list[int]:
    return [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) \((?:upper|lower) side\)", text)]


def test_pruned_channel_search_states_the_candidates_searched_and_drawn() -> None:
    cal = entropy(LONG, symmetric=True)
    text = curve_caption(cal, 2, "channel")
    n = drawn_candidates(cal.curve, 2)[0]
    assert "covered all 1,921 candidate thresholds" in text and "lower bound ruled out most" in text
    assert f"the curve draws {n}: every 16th candidate, the last one and the chosen one" in text
    assert 121 <= n <= 122 < 1921


def test_asymmetric_caption_counts_each_side_and_names_them() -> None:
    cal = entropy(LONG, symmetric=False)
    lower = lower_curve(cal)
    assert lower is not None and lower.x.shape[0] == LONG.shape[0]
    text = curve_caption(cal, 0, "channel")
    assert "1,921 candidate thresholds on each side" in text
    assert shown_counts(text) == [drawn_candidates(cal.curve, 0)[0], drawn_candidates(lower, 0)[0]]
    assert "drawn at −T, the clip minimum" in text


def test_short_rows_say_only_candidates_that_could_win_are_drawn() -> None:
    cal = entropy(SHORT, symmetric=True)
    assert cal.details["curve_points"] == "could_win"
    text = curve_caption(cal, 1, "channel")
    n = drawn_candidates(cal.curve, 1)[0]
    assert "this channel holds fewer values than the histogram has bins" in text
    assert f"the curve draws the {n} evaluated" in text and n < 1921


def test_per_tensor_search_draws_every_candidate() -> None:
    cal = entropy(LONG, symmetric=True, granularity="tensor")
    assert drawn_candidates(cal.curve, 0)[0] == 1921
    assert curve_caption(cal, 0, "tensor").startswith("The curve shows all 1,921 candidate thresholds the search tried")


def test_other_methods_keep_the_drawn_count_only() -> None:
    cal = analyze(LONG, QuantScheme(granularity="channel", axis=0), "mse").calibration
    n = drawn_candidates(cal.curve, 0)[0]
    assert lower_curve(cal) is None
    expected_start = "The curve shows one candidate only" if n == 1 else f"The curve shows {n:,} distinct candidates"
    assert curve_caption(cal, 0, "channel").startswith(expected_start)


def test_explore_draws_both_sides_and_captions_them() -> None:
    """Per channel on the default sample (575 values per channel, shorter than the histogram), asymmetric."""
    at = run_app({"gran": "channel", "axis": "1", "scheme": "asymmetric", "method": "entropy", "row": "5"})
    cal = expected(granularity="channel", axis=1, symmetric=False, method="entropy").calibration
    assert any(c.value == curve_caption(cal, 5, "channel") for c in at.caption)
    data = charts(at)["curve"]["data"]
    lower = array(next(t for t in data if t["name"] == "KL(P‖Q) · lower side")["x"])
    assert lower.size and (lower < 0).all()
    chosen = sorted(float(array(t["x"])[0]) for t in data if t["name"] == "chosen (min)")
    assert chosen == [pytest.approx(cal.lo[5]), pytest.approx(cal.hi[5])]


def test_compare_puts_the_curve_heading_under_the_bars_and_draws_both_sides() -> None:
    at = run_app({"gran": "channel", "axis": "1", "scheme": "asymmetric"}, page="pages/compare.py")
    assert any(h.value.startswith("Why each threshold") for h in at.subheader)
    assert not any("Why each threshold" in m.value for m in at.markdown)
    names = {t["name"] for t in charts(at)["cmp_curve_entropy"]["data"]}
    assert {"KL(P‖Q) · upper side", "KL(P‖Q) · lower side"} <= names


@pytest.mark.parametrize("symmetric", [True, False])
def test_pruned_mse_caption_states_candidates_searched_ruled_out_and_drawn(symmetric: bool) -> None:
    scheme = QuantScheme(bits=8, symmetric=symmetric, granularity="channel", axis=0)
    data = CalibrationData(to_rows(LONG, scheme))  # the histogram search that large tensors (> 1M values) take
    cal = make_calibrator("mse", source="histogram").calibrate(data, scheme)
    text = curve_caption(cal, 1, "channel")
    drawn = drawn_candidates(cal.curve, 1)[0]
    assert drawn == cal.details["evaluated"][1] < 1920 == cal.details["candidates"]
    what = "thresholds" if symmetric else "shrink factors"
    assert f"covered all 1,920 candidate {what}; {1920 - drawn:,} of them were ruled out" in text
    assert f"the curve draws the {drawn:,} evaluated; the method takes the one that minimises MSE (red ×)." in text


def test_mse_on_short_rows_says_the_candidates_are_the_rows_own_values() -> None:
    scheme = QuantScheme(bits=4, granularity="group", axis=1, group_size=128)
    cal = analyze(SHORT, scheme, "mse").calibration
    text = curve_caption(cal, 0, "group")
    drawn = drawn_candidates(cal.curve, 0)[0]
    assert cal.details["source"] == "distinct" and drawn == cal.details["evaluated"][0]
    assert "this group's own values" in text and f"the curve draws the {drawn:,} that could win" in text
