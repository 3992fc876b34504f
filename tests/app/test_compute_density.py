"""The error-density histogram of the Explore page counts exactly as ``np.histogram2d``."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ui.compute import DENSITY_BINS, histogram2d

values = st.floats(-3.0, 3.0, width=32) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0])


def _edge_values(lo: float, hi: float, bins: int) -> np.ndarray:
    """Every edge and its float32 neighbours: where a floor-based bin guess is off by one."""
    edges = np.linspace(lo, hi, bins + 1).astype(np.float32)
    return np.concatenate([edges, np.nextafter(edges, np.float32(-np.inf)), np.nextafter(edges, np.float32(np.inf))])


def _assert_same(x, y, ranges) -> None:
    got = histogram2d(x, y, DENSITY_BINS, ranges)
    want = np.histogram2d(x, y, bins=DENSITY_BINS, range=ranges)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_values_on_and_next_to_every_edge() -> None:
    (x0, x1), (y0, y1) = (-2.7, 3.1), (-0.013, 0.013)
    x = np.resize(_edge_values(x0, x1, DENSITY_BINS[0]), 3 * 81)
    y = np.resize(_edge_values(y0, y1, DENSITY_BINS[1]), x.size)
    _assert_same(x, y, ((x0, x1), (y0, y1)))
    _assert_same(np.random.default_rng(0).permutation(x), y, ((x0, x1), (y0, y1)))


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(np.float32, 50, elements=values),
    hnp.arrays(np.float32, 50, elements=values),
    st.floats(-3, 0),
    st.floats(1e-6, 4),
    st.floats(1e-9, 2),
)
@example(  # a bin of 8e-9 next to a float32 value: (v - lo) must be computed in float64
    np.full(50, -1.9124533, np.float32), np.zeros(50, np.float32), -1.9124533522222984, 1e-06, 1.0
)
def test_same_counts_as_numpy(x, y, lo, width, span) -> None:
    _assert_same(x, y, ((lo, lo + width), (-span, span)))
