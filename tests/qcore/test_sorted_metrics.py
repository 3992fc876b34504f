"""The sorted-rows error report equals the element-wise one, field by field.

Integers, clipped fractions and max errors must be bit-equal. Sums of squares agree to
``RTOL`` relative, or ``ATOL`` times the row's signal ``sum x^2`` absolute, whichever is
looser: both reports add the same exact float64 squares (the per-element errors are exact
float32 differences); the element-wise one rounds each float64 addition (seen ~1e-14
relative), the sorted one takes differences of double-double prefix sums, exact to about
``N eps^2 sum x^2`` (eps = 2^-53): only a piece whose error is below ~1e-28 of its row's
signal (e.g. a lone 1e-23 next to values of 100) can differ by more than RTOL relative.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import CONVENTIONS, QuantOptionError, QuantScheme, Rows, analyze, error_report, qparams_from_range, to_rows
from qcore import sorted_metrics as sm
from qcore.calibrators import CalibrationData
from qcore.metrics import ErrorReport
from qcore.sorted_metrics import fast_error_report, fast_grid_report
from qcore.sorted_rows import SortedRows

RTOL = 1e-10
ATOL = 1e-24
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOAT_FIELDS = ("mse", "clip_mse", "round_mse", "round_mse_reference", "cosine")
EXACT_FIELDS = ("max_abs_error", "clipped_fraction", "levels_used", "levels_total", "count")


def assert_same(fast: ErrorReport, ref: ErrorReport, rows: Rows) -> None:
    """Every field of two reports of ``rows``: floats to RTOL (or ATOL x mean square signal), counts exactly."""
    mean_sq = rows.square_sum / np.maximum(rows.count, 1)  # per row
    for name in FLOAT_FIELDS:
        tol = 0.0 if name == "cosine" else ATOL * float(rows.square_sum.sum()) / ref.count
        assert getattr(fast, name) == pytest.approx(getattr(ref, name), rel=RTOL, abs=tol, nan_ok=True), name
    for name in EXACT_FIELDS:
        assert getattr(fast, name) == getattr(ref, name), name
    assert (fast.sqnr_db is None) == (ref.sqnr_db is None)
    if ref.sqnr_db is not None:
        assert fast.sqnr_db == pytest.approx(ref.sqnr_db, rel=RTOL, abs=_db_tol(ref.sqnr_db))
    for name in ("mse", "clip_mse", "round_mse", "round_mse_reference"):
        got, want = getattr(fast.rows, name), getattr(ref.rows, name)
        assert np.all(np.abs(got - want) <= RTOL * np.abs(want) + ATOL * mean_sq), name
    got, want = fast.rows.sqnr_db, ref.rows.sqnr_db
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    assert np.all(np.abs(got[finite] - want[finite]) <= (RTOL * np.abs(want) + _db_tol(want))[finite])
    for name in ("clipped_fraction", "levels_used", "max_abs_error"):
        np.testing.assert_array_equal(getattr(fast.rows, name), getattr(ref.rows, name), err_msg=name)


def _db_tol(sqnr_db):
    """An absolute SSE error ``ATOL x signal`` moves SQNR by ``10 log10(e) ATOL 10^(SQNR/10)`` dB."""
    return 1e-9 + 4.4 * ATOL * 10 ** (np.minimum(sqnr_db, 3000) / 10)


def check(rows, params) -> ErrorReport | None:
    """Assert the sorted path matches :func:`qcore.error_report` and applies (unless a float32 step underflows)."""
    fast = fast_error_report(SortedRows.from_rows(rows), params)
    with np.errstate(all="ignore"):  # x / 0 when the step underflows float32
        ref = error_report(rows, params)
    if fast is None:
        assert not np.all(np.abs(params.scale.astype(np.float32)) >= np.finfo(np.float32).tiny)
        return None
    assert_same(fast, ref, rows)
    return fast


def params_or_skip(lo, hi, scheme: QuantScheme, convention: str):
    try:
        return qparams_from_range(lo, hi, scheme, convention)
    except QuantOptionError:
        return None


# ---------------------------------------------------------------- hand cases

S4 = QuantScheme(bits=4)  # T = 1.75 -> s = 0.25: every k/8 is a tie or a level, exactly in float32


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
@pytest.mark.parametrize("rounding", ["half_even", "half_away"])
def test_exact_ties_and_duplicates_every_convention(convention: str, rounding: str) -> None:
    ties = np.arange(-20, 21, dtype=np.float32) * np.float32(0.125)  # x / s = k / 2, beyond the clip range too
    x = np.concatenate([ties, np.repeat(ties[::3], 5), [0.0, -0.0, 0.0]]).astype(np.float32)
    scheme = S4.with_(rounding=rounding)
    params = params_or_skip(-1.75, 1.75, scheme, convention)
    if params is None:
        pytest.skip(f"{convention} refuses {scheme}")
    r = check(to_rows(x, scheme), params)
    assert r.clipped_fraction > 0 and r.round_mse > 0


@pytest.mark.parametrize("arithmetic", ["divide", "multiply", "multiplier"])
def test_every_arithmetic_on_ties_asymmetric(arithmetic: str) -> None:
    scheme = QuantScheme(bits=3, symmetric=False)
    x = np.arange(-16, 40, dtype=np.float32) * np.float32(0.0625)
    params = qparams_from_range(np.array([-0.6]), np.array([1.9]), scheme)
    z = np.zeros_like(params.zero_point) if arithmetic.endswith("multiplier") else params.zero_point
    check(to_rows(x, scheme), replace(params, arithmetic=arithmetic, zero_point=z))


def test_hand_vector_matches_the_metrics_hand_values() -> None:
    # the vector of tests/qcore/test_metrics.py: codes 0, 1, 4, -2, 7 (clamped); clip error 0.75^2
    x = np.array([0.0, 0.3, 1.0, -0.6, 2.5], dtype=np.float32)
    r = check(to_rows(x, S4), qparams_from_range(-1.75, 1.75, S4))
    assert r.clip_mse == pytest.approx(0.75**2 / 5, rel=1e-12)
    assert (r.levels_used, r.max_abs_error, r.clipped_fraction) == (5, 0.75, 0.2)


@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_missing_values_and_group_padding(granularity: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 13)).astype(np.float32)
    x[1, 3], x[4, 0], x[5, :] = np.nan, np.inf, np.nan  # a whole channel missing
    scheme = QuantScheme(bits=5, symmetric=False, granularity=granularity, axis=0, group_size=4)
    rows = to_rows(x, scheme)
    assert rows.has_missing
    lo = rows.min * 0.8
    check(rows, qparams_from_range(lo, np.maximum(rows.max * 0.9, lo), scheme))


@pytest.mark.parametrize("symmetric", [True, False])
def test_constant_rows_exact_and_not(symmetric: bool) -> None:
    x = np.array([[0.25] * 8, [0.3] * 8, [0.0] * 8, [-2.0] * 8], dtype=np.float32)
    scheme = QuantScheme(bits=4, symmetric=symmetric, granularity="channel", axis=0)
    rows = to_rows(x, scheme)
    r = check(rows, qparams_from_range(rows.min, rows.max, scheme))
    assert r.rows.mse[2] == 0.0


def test_exact_round_trip_has_zero_error_and_no_sqnr() -> None:
    x = np.array([-0.5, 0.25, 1.75, 0.0, 0.25], dtype=np.float32)
    r = check(to_rows(x, S4), qparams_from_range(-1.75, 1.75, S4))
    assert r.mse == 0.0 and r.sqnr_db is None and r.cosine == 1.0


def test_far_clipped_values_are_measured_one_by_one() -> None:
    # outliers beyond twice the end level: fl32(x_hat - x) rounds there, so they take the direct path
    rng = np.random.default_rng(2)
    x = rng.standard_normal(5000).astype(np.float32)
    x[:7] = np.float32([37.1, -53.3, 100.7, 12.9, -8.1, 5.3, -4.9])
    rows = to_rows(x, QuantScheme(bits=6, symmetric=False))
    params = qparams_from_range(-2.0, 2.5, QuantScheme(bits=6, symmetric=False))
    r = check(rows, params)
    assert r.max_abs_error > 90


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_fine_grids_keep_full_precision(bits: int) -> None:
    # S2 - 2 x_hat S1 + S0 x_hat^2 cancels ~12 k^2 fold at code k: double-double keeps it exact
    x = (np.random.default_rng(3).standard_normal(200_000) * 1e3 + 5e3).astype(np.float32)
    scheme = QuantScheme(bits=bits, symmetric=False)
    rows = to_rows(x, scheme)
    check(rows, qparams_from_range(rows.min, rows.max, scheme))


def test_too_many_levels_falls_back(monkeypatch) -> None:
    rows = to_rows(np.linspace(-1, 1, 101, dtype=np.float32), S4)
    params = qparams_from_range(-1.0, 1.0, S4)
    sorted_rows = SortedRows.from_rows(rows)
    monkeypatch.setattr(sm, "MAX_SEGMENTS", 8)
    assert fast_error_report(sorted_rows, params) is None
    assert_same(error_report(rows, params, sorted_rows), error_report(rows, params), rows)


# ---------------------------------------------------------------- building blocks


# ---------------------------------------------------------------- properties


@st.composite
def cases(draw):
    n_rows, length = draw(st.integers(1, 5)), draw(st.integers(1, 40))
    kind = draw(st.sampled_from(["any", "ties", "few"]))
    if kind == "any":
        x = draw(hnp.arrays(np.float32, (n_rows, length), elements=st.floats(-1e3, 1e3, width=32)))
    else:  # multiples of a small power of two: exact ties, duplicates, zeros
        top = 6 if kind == "few" else 200
        x = draw(hnp.arrays(np.int32, (n_rows, length), elements=st.integers(-top, top))).astype(np.float32) / 16
    if draw(st.booleans()):
        x[draw(hnp.arrays(bool, x.shape))] = np.nan
    assume(np.isfinite(x).any())
    granularity = draw(st.sampled_from(["tensor", "channel", "group"]))
    symmetric = draw(st.booleans())
    signed = draw(st.booleans())
    scheme = QuantScheme(
        bits=draw(st.integers(2, 12)),
        symmetric=symmetric,
        signed=signed,
        narrow_range=signed and draw(st.booleans()),
        granularity=granularity,
        axis=draw(st.integers(0, 1)),
        group_size=draw(st.integers(1, 9)),
        rounding=draw(st.sampled_from(["half_even", "half_away"])),
    )
    shrink = draw(st.sampled_from([0.3, 0.7, 1.0, 1.5]))
    return x, scheme, draw(st.sampled_from(sorted(CONVENTIONS))), shrink


@SETTINGS
@given(cases())
def test_sorted_report_equals_error_report(case) -> None:
    x, scheme, convention, shrink = case
    rows = to_rows(x, scheme)
    lo, hi = rows.min * shrink, rows.max * shrink
    if scheme.symmetric and not scheme.signed:
        lo = np.zeros_like(lo)
    params = params_or_skip(lo, hi, scheme, convention)
    assume(params is not None)
    check(rows, params)


@pytest.mark.parametrize(
    ("method", "fmt"), [("minmax", "int"), ("percentile", "int"), ("mse", "int"), ("minmax", "log2")]
)
def test_analyze_equals_qcore_analyze(method: str, fmt: str) -> None:
    x = np.random.default_rng(5).laplace(size=(8, 300)).astype(np.float32)
    scheme = QuantScheme(bits=4, granularity="channel", axis=0, format=fmt)
    data = CalibrationData(to_rows(x, scheme))
    got = analyze(data, scheme, method, sorted_rows=SortedRows.from_rows(data.rows))
    want = analyze(data, scheme, method)
    np.testing.assert_array_equal(got.params.scale, want.params.scale)
    assert_same(got.report, want.report, data.rows)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
def test_log2_grid_report_equals_measure(symmetric: bool, granularity: str) -> None:
    x = np.random.default_rng(6).laplace(size=(6, 50)).astype(np.float32)
    x[2, 7] = np.nan
    if not symmetric:
        x = np.abs(x)
    scheme = QuantScheme(bits=4, symmetric=symmetric, signed=symmetric, granularity=granularity, axis=0, group_size=16)
    data = CalibrationData(to_rows(x, scheme))
    want = analyze(data, scheme.with_(format="log2"))
    got = fast_grid_report(SortedRows.from_rows(data.rows), want.encoding.calibration)
    assert got is not None
    assert_same(got, want.report, data.rows)
