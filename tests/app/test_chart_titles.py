"""Axis titles and legends that stay readable in narrow charts (found cut off or overlapping in the browser)."""

from __future__ import annotations

import numpy as np
from app_helpers import array

from qcore.calibrators.base import Curve
from qcore.lessons import admm_replay
from ui.figures import CURVE_TITLE_CHARS, MARKED_CANDIDATES, curve
from ui.lesson_charts import admm_figure
from ui.model_charts import keep_figure, sensitivity_figure

LOSS = "mean KL(float || quantized) of the class probabilities (nats)"


def _sens() -> dict:
    layers = ["fc1", "fc2", "fc3"]
    return {
        "loss_name": LOSS,
        "keep_as": "float",
        "all_loss": 0.02,
        "ranking": ["fc2", "fc3", "fc1"],
        "layers": [{"layer": n, "only": 0.01, "all_but": 0.01} for n in layers],
        "keep": [{"kept": layers[: k + 1], "loss": 0.01 / (k + 1)} for k in range(3)],
    }


def _lines(title: str) -> list[str]:
    return title.split("<br>")


def test_keep_figure_wraps_its_long_axis_titles() -> None:
    layout = keep_figure(_sens()).to_dict()["layout"]
    x_lines, y_lines = _lines(layout["xaxis"]["title"]["text"]), _lines(layout["yaxis"]["title"]["text"])
    assert max(map(len, x_lines)) <= 40 and max(map(len, y_lines)) <= 30
    assert " ".join(y_lines) == LOSS  # wrapped, nothing lost


def test_sensitivity_legend_sits_above_the_plot() -> None:
    legend = sensitivity_figure(_sens()).to_dict()["layout"]["legend"]
    assert legend["yanchor"] == "bottom" and legend["y"] >= 1.0


def test_a_two_line_x_title_keeps_clear_of_the_legend() -> None:
    """The legend sits at the figure's bottom edge (container-relative): plotly's automargin keeps the axis
    title above it, however many lines (a paper-relative legend overlapped a two-line title in Compare)."""
    x = np.linspace(0.1, 0.2, 5)[None, :]
    short = curve(Curve("MSE", "alpha", x, x**2, np.array([0])), 0, "ADMM").to_dict()["layout"]
    long_name = "step alpha (one point per iteration, at most 64 shown)"
    long = curve(Curve("MSE", long_name, x, x**2, np.array([0])), 0, "ADMM").to_dict()["layout"]
    lines = _lines(long["xaxis"]["title"]["text"])
    assert len(lines) > 1 and max(map(len, lines)) <= CURVE_TITLE_CHARS
    for layout in (short, long):
        legend = layout["legend"]
        assert (legend["yref"], legend["y"], legend["yanchor"]) == ("container", 0, "bottom")
    assert long["height"] > short["height"]


def test_a_summarised_curve_marks_its_candidates_and_a_full_one_is_a_line() -> None:
    """A pruned or summarised curve (a few candidates) drawn as a bare line suggested a shape it does not have."""
    few = np.array([[0.19, 0.2, 0.21, np.nan, np.nan]])  # NaN: candidates the search did not keep
    line = curve(Curve("MSE", "alpha", few, few**2, np.array([1])), 0, "MSE").to_dict()["data"][0]
    assert line["mode"] == "lines+markers" and array(line["x"]).size == 3
    full = np.linspace(0.1, 1.0, MARKED_CANDIDATES + 1)[None, :]
    line = curve(Curve("MSE", "alpha", full, full**2, np.array([0])), 0, "MSE").to_dict()["data"][0]
    assert line["mode"] == "lines"


def test_model_cards_give_share_differences_in_percentage_points() -> None:
    from ui.model_charts import format_delta, format_metric

    assert format_metric("accuracy", 0.9756) == "97.6 %"
    assert format_delta("accuracy", 0.9756 - 0.9733) == "+0.23 pp"  # was "+2.30e-03" beside a percentage
    assert format_delta("kl_mean", 3.8e-5) == "+3.80e-05"


def test_admm_lesson_axis_writes_alpha_k_minus_1_as_a_subscript() -> None:
    replay = admm_replay(np.array([0.1, -0.4, 0.9, 2.5, -1.3], np.float32), 3)
    title = admm_figure(replay, 0).layout.xaxis.title.text
    assert "α<sub>k−1</sub>" in title and "_" not in title


def test_a_curve_of_one_objective_value_is_not_drawn_on_a_minus_one_to_one_axis() -> None:
    """MSE on a short row can keep one candidate (1.5e-5): plotly's default -1..1 range made it read as 0."""
    one = Curve(
        "MSE",
        "shrink factor alpha",
        np.array([[1.0, 1.0, np.nan]]),
        np.array([[1.5e-5, 1.5e-5, np.nan]]),
        np.array([0]),
    )
    assert curve(one, 0, "t").layout.yaxis.range == (0.0, 3e-5)
    many = Curve("MSE", "threshold T", np.array([[1.0, 2.0]]), np.array([[3.0, 1.0]]), np.array([1]))
    assert curve(many, 0, "t").layout.yaxis.range is None  # plotly's own range around several values
