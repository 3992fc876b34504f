"""Explore page: the shown metrics and thresholds are exactly qcore's for the chosen settings."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from app_helpers import ROOT, array, charts, close, expected, metrics, run_app, vlines

from qcore.samples import default_sample
from ui.text import NOTE_CHARS, fmt, metric_values, pretty_math


def test_default_sample_shows_qcore_metrics(default_app) -> None:
    a = expected()
    shown = metrics(default_app)
    assert shown == metric_values(a.report, a.params)
    assert shown["Levels used"] == f"{a.report.levels_used} / {a.report.levels_total}"
    assert float(shown["MSE"]) == pytest.approx(a.report.mse, rel=1e-3)


def test_histogram_draws_the_calibrated_thresholds(default_app) -> None:
    a = expected()
    lines = vlines(charts(default_app)["hist"])
    assert any(close(x, a.params.clip_min[0]) for x in lines)
    assert any(close(x, a.params.clip_max[0]) for x in lines)


def test_search_methods_show_their_curve_with_the_chosen_point(default_app) -> None:
    """Asymmetric entropy (the default sample's preset): both sides' KL curves, the lower side's drawn at -T."""
    a = expected()
    lower = a.calibration.details["lower_curve"]
    data = charts(default_app)["curve"]["data"]
    objective = pretty_math(a.calibration.curve.objective)

    def side_trace(name: str, sign: float) -> dict:
        """The trace ``name`` of one side (the sides share the names of their ∞ ticks and chosen marks)."""
        return next(t for t in data if t["name"] == name and np.sign(array(t["x"])[0]) == sign)

    for curve, side, sign in ((a.calibration.curve, "upper", 1.0), (lower, "lower", -1.0)):
        chosen = side_trace(f"chosen ({curve.goal})", sign)
        k = int(curve.chosen[0])
        assert list(array(chosen["x"])) == [pytest.approx(sign * float(curve.x[0, k]))]
        assert list(array(chosen["y"])) == [pytest.approx(float(curve.y[0, k]))]
        # the finite part is one line; the infinite candidates are marked, not dropped silently
        finite = np.isfinite(curve.y[0])
        line = side_trace(f"{objective} · {side} side", sign)
        assert np.isfinite(array(line["y"])).all() and array(line["y"]).size == finite.sum()
        assert np.sign(array(line["x"])).tolist() == [sign] * int(finite.sum())
        if not finite.all():
            assert array(side_trace(f"{objective} = ∞", sign)["x"]).size == (~finite).sum()
            assert any("= ∞" in c.value for c in default_app.caption)
    # the chosen marks sit at the clip range's ends, hi = T+ and lo = -T-; one legend entry for both
    assert array(side_trace("chosen (min)", 1.0)["x"])[0] == pytest.approx(a.calibration.hi[0])
    assert array(side_trace("chosen (min)", -1.0)["x"])[0] == pytest.approx(a.calibration.lo[0])
    assert [t.get("showlegend", True) for t in data if t["name"] == "chosen (min)"] == [True, False]


def test_zoom_shows_a_window_around_the_centre_with_the_grid() -> None:
    at = run_app({"zoom": "16", "zc": "1.0"})
    a = expected()
    spec = charts(at)["hist"]
    x0, x1 = spec["layout"]["xaxis"]["range"]
    full = (
        min(float(a.rows.min[0]), float(a.params.clip_min[0])),
        max(float(a.rows.max[0]), float(a.params.clip_max[0])),
    )
    assert x1 - x0 == pytest.approx((full[1] - full[0]) / 16)
    assert x0 <= 1.0 <= x1
    # clip lines only when in view, and the integer grid is drawn
    assert all(x0 <= v <= x1 for v in vlines(spec))
    assert any(str(t.get("name", "")).startswith("integer grid") for t in spec["data"])


def test_first_visit_intro_and_outlier_clipping_statement(default_app) -> None:
    assert default_app.expander[0].label.startswith("What you are looking at")
    warnings = " ".join(w.value for w in default_app.warning)
    assert "clips outliers that carry a large share of the signal" in warnings


def test_advisor_flags_unsigned_symmetric_codes_on_signed_data() -> None:
    at = run_app({"signed": "false", "scheme": "symmetric", "method": "minmax"})
    assert any("Unsigned codes with a symmetric range" in w.value for w in at.warning)


def test_per_channel_worst_channels_drive_the_channel_charts() -> None:
    at = run_app({"gran": "channel", "axis": "1"})
    a = expected(granularity="channel", axis=1)
    total = a.report.rows.clip_mse + a.report.rows.round_mse
    worst = int(np.argmax(total))
    at.button(key=f"worst_{worst}").click().run()
    assert at.number_input(key="row").value == worst
    specs = charts(at)
    assert f"channel {worst}" in specs["hist"]["layout"]["title"]["text"]
    assert f"channel {worst}" in specs["breakdown"]["layout"]["title"]["text"]
    assert "whole tensor" in specs["breakdown"]["layout"]["title"]["text"]


@pytest.mark.parametrize(
    ("widget", "value", "change"),
    [
        ("bits", 4, {"bits": 4}),
        ("scheme", "symmetric", {"symmetric": True}),
        ("gran", "channel", {"granularity": "channel"}),
        ("method", "percentile", {"method": "percentile"}),
    ],
)
def test_changing_a_setting_shows_qcore_numbers(widget: str, value, change: dict) -> None:
    at = run_app()
    before = metrics(at)
    element = (
        at.slider(key=widget)
        if widget == "bits"
        else (at.radio(key=widget) if widget == "scheme" else at.selectbox(key=widget))
    )
    element.set_value(value)
    at.run()
    assert not at.exception
    method = change.pop("method", None)
    a = expected(method=method, **change)
    shown = metrics(at)
    assert shown == metric_values(a.report, a.params)
    assert shown != before
    lines = vlines(charts(at)["hist"])
    assert any(close(x, a.params.clip_min[0]) for x in lines) and any(close(x, a.params.clip_max[0]) for x in lines)


def test_per_channel_view_shows_the_chosen_channel_and_per_channel_charts() -> None:
    at = run_app(
        {"gran": "channel", "scheme": "symmetric", "method": "minmax", "row": "99"}
    )  # the channel is in the URL
    assert at.number_input(key="row").value == 99
    a = expected(granularity="channel", symmetric=True, method="minmax")
    assert metrics(at) == metric_values(a.report, a.params)
    scale_card = next(m for m in at.metric if m.label == "Scale")
    assert scale_card.value == fmt(float(np.median(a.params.scale)))
    # smallest … largest under the median, short enough not to be cut at 1280 px
    assert scale_card.proto.delta == f"{fmt(float(a.params.scale.min()), 3)} … {fmt(float(a.params.scale.max()), 3)}"
    assert len(scale_card.proto.delta) <= NOTE_CHARS
    assert any(f"median of the {a.rows.n_rows:,} ranges" in c.value for c in at.caption)
    figs = charts(at)
    lines = vlines(figs["hist"])
    assert any(close(x, a.params.clip_max[99]) for x in lines)
    assert {"ranges", "row_errors"} <= set(figs)
    top, bottom = figs["ranges"]["data"][:2]
    assert array(top["x"]).tolist() == list(range(a.rows.n_rows))  # one point per channel (384 <= 1024)
    assert np.array_equal(array(top["y"]), a.rows.max) and np.array_equal(array(bottom["y"]), a.rows.min)


def test_cli_command_shown_reproduces_the_numbers(default_app) -> None:
    """Run the shown command with the project's Python: same scale, zero point and MSE."""
    command = next(c.value for c in default_app.code if "qcore calibrate" in c.value)
    args = command.split()
    assert args[:3] == ["python", "-m", "qcore"]
    out = subprocess.run([sys.executable, *args[1:]], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    cli = json.loads(out.stdout)
    a = expected()
    assert cli["tensor"] == default_sample()
    assert cli["scale"] == pytest.approx(a.params.scale.tolist(), rel=1e-12)
    assert cli["zero_point"] == a.params.zero_point.tolist()
    assert cli["metrics"]["mse"] == pytest.approx(a.report.mse, rel=1e-9)


def test_impossible_settings_show_an_error_not_a_traceback() -> None:
    at = run_app({"signed": "false", "narrow": "true"})
    assert not at.exception
    assert any("narrow range" in e.value for e in at.error)


def test_zooming_in_overlays_the_integer_grid() -> None:
    at = run_app()
    assert "integer grid (q - z)·s" not in [t.get("name") for t in charts(at)["hist"]["data"]]
    at = run_app({"zoom": "16"})  # zoom is in the URL (the browser test drives the slider itself)
    a = expected()
    grid_trace = next(t for t in charts(at)["hist"]["data"] if t.get("name") == "integer grid (q - z)·s")
    xs = array(grid_trace["x"])[0::3].astype(np.float64)
    p = a.params
    codes = np.round(xs / p.scale[0]).astype(np.int64) + p.zero_point[0]
    assert np.allclose(xs, (codes - p.zero_point[0]) * np.float32(p.scale[0]), rtol=1e-6)
    assert 2 < xs.size <= 80 and np.all(np.diff(codes) == 1)  # consecutive codes


def test_calibrator_warning_is_shown() -> None:
    """Entropy on per-channel rows far shorter than its 2048 bins: the page shows the calibrator's own warning."""
    at = run_app({"gran": "channel", "scheme": "symmetric", "method": "entropy"})
    a = expected(granularity="channel", symmetric=True, method="entropy")
    warning = a.calibration.details["warning"]
    assert any(warning in w.value for w in at.warning)
    quiet = run_app({"gran": "channel", "scheme": "symmetric", "method": "minmax"})
    assert not any("unreliable" in w.value for w in quiet.warning)


def test_asymmetric_admm_says_which_mse_picks_its_iterate() -> None:
    at = run_app({"method": "admm", "scheme": "asymmetric"})
    notes = [c.value for c in at.sidebar.caption if "exact arithmetic" in c.value]
    assert len(notes) == 1 and "few parts per million" in notes[0]
    at = run_app({"method": "admm", "scheme": "symmetric"})
    assert not [c for c in at.sidebar.caption if "exact arithmetic" in c.value]


def test_curve_caption_counts_the_distinct_candidates_drawn() -> None:
    """ADMM pads a converged row's history with its last step: the caption counted the padding as candidates."""
    import re

    sample = "minilm/layer3/ffn_up.weight"
    query = {"sample": sample, "role": "weight", "scheme": "asymmetric", "bits": "4", "gran": "channel", "axis": "0"}
    at = run_app({**query, "method": "admm"})
    curve = expected(sample, "admm", symmetric=False, bits=4).calibration.curve
    x = curve.x[0][~np.isnan(curve.x[0])]
    assert np.unique(x).size < x.size  # channel 0 converged: its history is padded
    caption = next(c.value for c in at.caption if c.value.startswith("The curve shows"))
    assert int(re.search(r"shows ([\d,]+) distinct", caption)[1].replace(",", "")) == np.unique(x).size


def test_float32_mse_curve_draws_every_candidate_of_the_search() -> None:
    """MSE keeps its curve in float32: the chart still draws each candidate once (the rounding merges none), the
    caption counts them all and the chosen point is the float64 search's shrink factor, rounded."""
    import re

    at = run_app({"method": "mse"})
    a = expected(method="mse")
    curve = a.calibration.curve
    assert curve.x.dtype == curve.y.dtype == np.float32
    x = curve.x[0][~np.isnan(curve.x[0])]
    assert np.unique(x).size == x.size > 1
    traces = {t["name"]: t for t in charts(at)["curve"]["data"]}
    assert array(traces[pretty_math(curve.objective)]["x"]).size == x.size
    caption = next(c.value for c in at.caption if c.value.startswith("The curve shows"))
    assert int(re.search(r"shows ([\d,]+) distinct", caption)[1].replace(",", "")) == x.size
    chosen = next(t for name, t in traces.items() if name.startswith("chosen"))
    assert curve.parameter == "shrink factor alpha"  # the default sample: an activation, asymmetric
    assert array(chosen["x"])[0] == pytest.approx(a.calibration.hi[0] / a.rows.max[0], rel=1e-6)
