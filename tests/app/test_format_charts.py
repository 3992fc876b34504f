"""The Pareto chart of What-if → Formats: front labels cover no marker and stay inside the plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ui.format_charts import PLOT_PX, _label_box, _overlap, label_positions, pareto_figure
from ui.format_sweep import with_front

# Bits per weight and SQNR like the default MiniLM sample's: FP4 E2M1 / INT4 and FP6 / INT6 nearly share an x.
POINTS = [
    ("INT3", "int", 3.06, 14.7),
    ("INT4", "int", 4.06, 21.1),
    ("FP4 E2M1", "float", 4.05, 19.6),
    ("NF4", "nf4", 4.13, 18.0),
    ("NVFP4", "nvfp4", 4.5, 21.8),
    ("GGUF Q4_0", "gguf", 4.5, 18.1),
    ("INT5", "int", 5.06, 27.3),
    ("FP6 E2M3", "float", 6.05, 31.9),
    ("INT6", "int", 6.06, 33.4),
    ("INT8", "int", 8.06, 45.5),
]


def _df() -> pd.DataFrame:
    df = pd.DataFrame(POINTS, columns=["label", "family", "bits_per_weight", "sqnr_db"]).assign(error="")
    return with_front(df, "sqnr_db")


def _boxes_and_markers(fig) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    """Label boxes and marker boxes in pixels of the assumed plot area, from the figure's own axis ranges."""
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    boxes, markers = [], []
    for trace in fig.data[:-1]:  # the last trace is the front's line
        for x, y, text, where in zip(trace.x, trace.y, trace.text, trace.textposition, strict=True):
            px, py = (x - x0) / (x1 - x0) * PLOT_PX[0], (y - y0) / (y1 - y0) * PLOT_PX[1]
            markers.append((px - 4.5, px + 4.5, py - 4.5, py + 4.5))
            if text:
                boxes.append(_label_box(px, py, where, text))
    return boxes, markers


def test_front_labels_cover_no_marker_and_no_label() -> None:
    df = _df()
    assert set(df.loc[df["pareto"], "label"]) >= {"INT4", "FP4 E2M1", "INT6", "FP6 E2M3"}
    boxes, markers = _boxes_and_markers(pareto_figure(df, "sqnr_db"))
    assert len(boxes) == int(df["pareto"].sum())
    for i, box in enumerate(boxes):
        assert not any(_overlap(box, m) for m in markers), box
        assert not any(_overlap(box, other) for other in boxes[i + 1 :]), box


def test_labels_stay_inside_the_plot_area() -> None:
    boxes, _ = _boxes_and_markers(pareto_figure(_df(), "sqnr_db"))
    for x0, x1, y0, y1 in boxes:
        assert 0 <= x0 and x1 <= PLOT_PX[0] and 0 <= y0 and y1 <= PLOT_PX[1]


def test_the_lower_of_two_close_points_is_labelled_below_or_aside() -> None:
    px, py = np.array([100.0, 102.0]), np.array([100.0, 112.0])
    lower, upper = label_positions(px, py, ["FP4 E2M1", "INT4"], PLOT_PX)
    assert lower != "top center" and upper == "top center"
    assert not _overlap(_label_box(100.0, 100.0, lower, "FP4 E2M1"), (97.5, 106.5, 107.5, 116.5))


def test_mse_chart_places_labels_on_the_log_axis() -> None:
    df = pd.DataFrame(POINTS, columns=["label", "family", "bits_per_weight", "sqnr_db"]).assign(error="")
    df["mse"] = 10 ** (-df["sqnr_db"] / 10)
    fig = pareto_figure(with_front(df, "mse"), "mse")
    assert fig.layout.yaxis.type == "log"
    lo, hi = fig.layout.yaxis.range
    assert lo < np.log10(df["mse"].min()) < np.log10(df["mse"].max()) < hi
