"""Rows sorted once: exact double-double prefix sums, the batched search, the code moments of step searches."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import QuantScheme, Rows, qparams_from_range, to_rows
from qcore.quantize import quantize_rows
from qcore.sorted_rows import SortedRows, code_moments, searchsorted_rows

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


def _moments_by_element(rows: Rows, scale: np.ndarray, zero: np.ndarray | None, scheme: QuantScheme):
    """``sum (q - z) x`` and ``sum (q - z)^2`` per row and candidate, from the real quantizer element by element."""
    n_rows, k = scale.shape
    z = np.zeros(scale.shape) if zero is None else zero
    xq, qq = np.empty(scale.shape), np.empty(scale.shape)
    present = ~np.isnan(rows.values)
    for r in range(n_rows):
        for j in range(k):
            p = replace(
                qparams_from_range(np.zeros(1), np.ones(1), scheme),
                scale=scale[r, j : j + 1],
                zero_point=z[r, j : j + 1].astype(np.int64),
            )
            shifted = quantize_rows(rows.values[r : r + 1], p)[0].astype(np.float64) - z[r, j]
            v = rows.values[r, present[r]].astype(np.float64)
            xq[r, j] = float(np.dot(shifted[present[r]], v))
            qq[r, j] = float(np.sum(shifted[present[r]] ** 2))
    return xq, qq


@pytest.mark.parametrize(
    "scheme",
    [
        QuantScheme(granularity="channel"),
        QuantScheme(granularity="channel", rounding="half_away"),
        QuantScheme(granularity="channel", symmetric=False),
        QuantScheme(granularity="channel", bits=3, narrow_range=True),
        QuantScheme(granularity="channel", signed=False),
    ],
)
def test_code_moments_equal_the_element_wise_sums(scheme: QuantScheme) -> None:
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((3, 2000)) * np.array([[0.01], [1.0], [300.0]])).astype(np.float32)
    if not scheme.signed:
        x = np.abs(x)
    x[1, :7] = np.nan
    x[2, 5:9] = 0.0
    top = np.nanmax(np.abs(x), axis=1).astype(np.float64) / scheme.qmax
    scale = top[:, None] * np.linspace(0.5, 2.0, 9)[None, :]
    scale[0, 0] = 2.0**-10  # a power of two: values at exact .5 ties of x / s
    x[0, :64] = ((np.arange(64) - 32 + 0.5) * 2.0**-10).astype(np.float32)
    rows = to_rows(x, scheme)
    zero = None if scheme.symmetric else np.round(rng.uniform(-5, 5, scale.shape))
    xq, qq = code_moments(SortedRows.from_rows(rows), scale, zero, scheme)
    ref_xq, ref_qq = _moments_by_element(rows, scale, zero, scheme)
    np.testing.assert_array_equal(qq, ref_qq)  # integer sums: exact
    np.testing.assert_allclose(xq, ref_xq, rtol=1e-13, atol=1e-13 * np.abs(ref_xq).max())


def test_code_moments_decline_when_too_many_segments() -> None:
    scheme = QuantScheme(granularity="channel", bits=16)  # 4 rows x 64 candidates x 65536 levels > MAX_SEGMENTS
    rows = to_rows(np.ones((4, 8), dtype=np.float32), scheme)
    assert code_moments(SortedRows.from_rows(rows), np.ones((4, 64)), None, scheme) is None
