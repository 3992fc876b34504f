"""Property tests (hypothesis) over random shapes, bits, schemes and granularities.

The whole file runs in about 20 s: small arrays, few examples, no shrinking deadlines.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import (
    CALIBRATORS,
    CONVENTIONS,
    CalibrationData,
    QuantOptionError,
    QuantScheme,
    error_report,
    qparams_from_range,
    to_rows,
)
from qcore.calibrators import make_calibrator
from qcore.quantize import dequantize_rows, quantize_rows

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite32 = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def tensors(draw, min_dims: int = 1) -> np.ndarray:
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=9))
    x = draw(hnp.arrays(np.float32, shape, elements=finite32))
    scale = draw(st.sampled_from([1e-3, 1.0, 50.0]))
    return (x * np.float32(scale / 1e4)).astype(np.float32)


@st.composite
def schemes(draw, ndim: int) -> QuantScheme:
    bits = draw(st.integers(2, 16))
    symmetric = draw(st.booleans())
    signed = draw(st.booleans())
    narrow = signed and draw(st.booleans())
    reduce_range = bits >= 3 and draw(st.booleans())
    granularity = draw(st.sampled_from(["tensor", "channel", "group"] if ndim >= 2 else ["tensor"]))
    axis = draw(st.integers(-ndim, ndim - 1)) if ndim >= 2 else 0
    group_size = draw(st.integers(1, 7))
    rounding = draw(st.sampled_from(["half_even", "half_away"]))
    return QuantScheme(bits, symmetric, signed, narrow, reduce_range, granularity, axis, group_size, rounding)


@st.composite
def tensor_and_scheme(draw) -> tuple[np.ndarray, QuantScheme]:
    x = draw(tensors())
    return x, draw(schemes(x.ndim))


def _minmax_params(rows, scheme: QuantScheme, convention: str = "default"):
    if scheme.symmetric:
        t = rows.absmax
        return qparams_from_range(-t if scheme.signed else np.zeros_like(t), t, scheme, convention)
    return qparams_from_range(rows.min, rows.max, scheme, convention)


@SETTINGS
@given(tensor_and_scheme(), st.sampled_from(sorted(CONVENTIONS)))
def test_codes_in_grid_and_round_error_bounded(case, convention) -> None:
    x, scheme = case
    rows = to_rows(x, scheme)
    try:
        params = _minmax_params(rows, scheme, convention)
    except QuantOptionError:
        assume(False)  # e.g. an asymmetric scheme under a symmetric-only toolchain
    codes = quantize_rows(rows.values, params)
    present = ~np.isnan(rows.values)
    assert codes.min() >= params.qmin and codes.max() <= params.qmax
    x_hat = dequantize_rows(codes, params)
    lo, hi = params.representable()
    v = rows.values.astype(np.float64)
    inside = present & (v >= lo[:, None]) & (v <= hi[:, None])
    step = params.scale[:, None] * np.ones_like(v)
    err = np.abs(x_hat.astype(np.float64) - v)
    # half a step plus float32 rounding of x/s, of (q - z) s and of the float32 scale
    # (and, for subnormal steps, the absolute float32 rounding of s times the code)
    codes_span = abs(params.qmin) + abs(params.qmax) + 1
    f32 = np.finfo(np.float32)
    slack = 4 * f32.eps * (np.abs(v) + step * codes_span) + codes_span * float(f32.smallest_subnormal)
    if params.arithmetic == "multiplier":
        # m = q_max / T overflows float32 for a subnormal T: the toolchain's own output is then 0
        inside &= (params.qmax / (params.scale * params.qmax))[:, None] < np.finfo(np.float32).max
    assert np.all(err[inside] <= step[inside] / 2 + slack[inside])


@SETTINGS
@given(tensor_and_scheme())
def test_zero_point_rules(case) -> None:
    x, scheme = case
    rows = to_rows(x, scheme)
    params = _minmax_params(rows, scheme)
    if scheme.symmetric:
        assert np.all(params.zero_point == 0)
    else:
        assert np.all((params.zero_point >= scheme.qmin) & (params.zero_point <= scheme.qmax))
        zero = np.zeros((rows.n_rows, 1), dtype=np.float32)
        np.testing.assert_array_equal(dequantize_rows(quantize_rows(zero, params), params), zero)


@SETTINGS
@given(tensors(min_dims=2), st.integers(0, 1), st.integers(2, 8), st.booleans())
def test_per_channel_equals_per_tensor_row_by_row(x, axis, bits, symmetric) -> None:
    scheme = QuantScheme(bits=bits, symmetric=symmetric, granularity="channel", axis=axis)
    rows = to_rows(x, scheme)
    params = _minmax_params(rows, scheme)
    codes = quantize_rows(rows.values, params)
    tensor_scheme = scheme.with_(granularity="tensor")
    for c in range(x.shape[axis]):
        channel = np.take(x, c, axis=axis)
        r = to_rows(channel, tensor_scheme)
        p = _minmax_params(r, tensor_scheme)
        np.testing.assert_array_equal(quantize_rows(r.values, p)[0], codes[c])
        assert p.scale[0] == params.scale[c] and p.zero_point[0] == params.zero_point[c]


@SETTINGS
@given(tensor_and_scheme(), st.floats(0.05, 1.0))
def test_clip_plus_round_is_mse(case, shrink) -> None:
    x, scheme = case
    rows = to_rows(x, scheme)
    t = rows.absmax * shrink
    lo = -t if (scheme.signed or not scheme.symmetric) else np.zeros_like(t)
    params = qparams_from_range(lo, t, scheme)
    report = error_report(rows, params)
    assert np.isclose(report.mse, report.clip_mse + report.round_mse, rtol=1e-12, atol=0)
    np.testing.assert_allclose(report.rows.mse, report.rows.clip_mse + report.rows.round_mse, rtol=1e-12, atol=0)
    assert 0.0 <= report.clipped_fraction <= 1.0
    assert 1 <= report.levels_used <= report.levels_total


@SETTINGS
@given(tensor_and_scheme())
def test_restore_inverts_to_rows(case) -> None:
    x, scheme = case
    rows = to_rows(x, scheme)
    np.testing.assert_array_equal(rows.restore(rows.values), x)
    assert rows.restore(rows.values).shape == x.shape
    per_row = np.arange(rows.n_rows, dtype=np.float64)
    expanded = rows.expand(per_row)
    assert expanded.shape == x.shape
    np.testing.assert_array_equal(
        to_rows(expanded, scheme).values[~np.isnan(rows.values)],
        np.broadcast_to(per_row[:, None].astype(np.float32), rows.values.shape)[~np.isnan(rows.values)],
    )


@SETTINGS
@given(tensors(), st.sampled_from(sorted(CALIBRATORS)), st.booleans(), st.sampled_from([4, 8]))
def test_calibrators_pure_deterministic_and_bounded(x, name, symmetric, bits) -> None:
    scheme = QuantScheme(bits=bits, symmetric=symmetric)
    x_copy = x.copy()
    rows = to_rows(x, scheme)
    first = make_calibrator(name).calibrate(CalibrationData(rows), scheme)
    second = make_calibrator(name).calibrate(CalibrationData(to_rows(x, scheme)), scheme)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(first.lo, second.lo)
    np.testing.assert_array_equal(first.hi, second.hi)
    absmax = rows.absmax
    tol = absmax * 1e-9
    if symmetric:
        t = first.hi
        assert np.all(t <= absmax + tol)
        assert np.all(t[absmax > 0] > 0)
    else:
        assert np.all(first.lo >= rows.min - tol) and np.all(first.hi <= rows.max + tol)
