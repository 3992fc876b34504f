"""Error against bits per weight for every format, and the Pareto front."""

from __future__ import annotations

import numpy as np

from qcore.format_frontier import compare_formats, configurations, pareto_front
from qcore.formats import FORMATS


def test_pareto_front_by_hand():
    bits = [4.5, 4.25, 8.5, 4.5, 5.0]
    mse = [1.0, 2.0, 0.1, 1.5, 1.0]
    # (4.5, 1.5) is dominated by (4.5, 1.0); (5.0, 1.0) by (4.5, 1.0); the rest are on the front
    np.testing.assert_array_equal(pareto_front(bits, mse), [True, True, True, False, False])


def test_every_format_is_a_point_and_the_front_is_not_dominated():
    x = np.random.default_rng(0).standard_normal((16, 256)).astype(np.float32)
    x[3, 7] = 25.0
    points = compare_formats(x)
    assert {p.name for p in points} >= {"q4_0", "nf4", "mxfp4", "nvfp4", "fp8_e4m3", "int8", "int4", "q4_k"}
    assert len(points) == len(configurations(2)) and all(p.error is None for p in points)
    front = [p for p in points if p.pareto]
    assert front and all(np.isfinite(p.bits_per_weight) and p.mse > 0 for p in points)
    for p in front:
        assert not any(q.bits_per_weight <= p.bits_per_weight and q.mse < p.mse for q in points)
    by = {p.name: p for p in points}
    assert by["q4_0"].bits_per_weight == 4.5 and by["mxfp4"].bits_per_weight == 4.25
    assert by["int8"].mse < by["int4"].mse


def test_refusals_are_points_with_the_reason():
    points = compare_formats(np.ones((4, 40), np.float32), ("q4_0", "nf4"))
    assert points[0].error and "multiple of its block" in points[0].error and not points[0].pareto
    assert points[1].error is None and points[1].pareto
    assert {p.name for p in points} == {"q4_0", "nf4"} and FORMATS["nf4"].label == points[1].label
