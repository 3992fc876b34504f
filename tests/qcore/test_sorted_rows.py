"""Rows sorted once: exact double-double prefix sums, the batched search, the code moments of step searches."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import QuantScheme, to_rows
from qcore.sorted_rows import SortedRows, searchsorted_rows

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_prefix_sums_are_exact_to_double_double() -> None:
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(517) * 10.0 ** rng.integers(-6, 7, 517)).astype(np.float32)
    sorted_rows = SortedRows.from_rows(to_rows(x, QuantScheme()))
    v = sorted_rows.values[0]
    pos = np.array([[0, 1, 15, 16, 17, 100, 256, 400, 516, 517]])
    h1, l1, h2, l2 = sorted_rows.prefix_at(pos)
    for i, p in enumerate(pos[0]):
        s1 = sum((Fraction(float(a)) for a in v[:p]), Fraction(0))
        s2 = sum((Fraction(float(a)) ** 2 for a in v[:p]), Fraction(0))
        scale1 = sum(abs(float(a)) for a in v) + 1e-300
        assert abs(Fraction(h1[0, i]) + Fraction(l1[0, i]) - s1) <= Fraction(1e-28) * Fraction(scale1)
        assert abs(Fraction(h2[0, i]) + Fraction(l2[0, i]) - s2) <= Fraction(1e-28) * Fraction(float(np.sum(v**2.0)))


@SETTINGS
@given(
    hnp.arrays(np.float32, (3, 40), elements=st.floats(-100, 100, width=32)),
    hnp.arrays(np.float64, (3, 7), elements=st.floats(-150, 150)),
    st.integers(0, 40),
    st.sampled_from(["left", "right"]),
)
def test_searchsorted_rows_matches_numpy(values, keys, cut, side) -> None:
    values = np.sort(values, axis=1)
    count = np.array([40, cut, 0])
    got = searchsorted_rows(values, count, keys, side)
    want = [np.searchsorted(values[r, : count[r]], keys[r], side=side) for r in range(3)]
    np.testing.assert_array_equal(got, want)
