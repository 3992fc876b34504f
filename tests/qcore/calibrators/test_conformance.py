"""Conformance suite for every registered calibrator (in the spirit of scikit-learn's ``check_estimator``).

Parametrised over :data:`qcore.CALIBRATORS`, so a calibrator is checked as soon as it registers.
A calibrator may refuse a combination of options with :class:`QuantOptionError` (a clear error);
any other exception, a NaN in its parameters, a threshold outside ``(0, max|x|]``, a mutated input
or histogram, or a non-deterministic answer fails the suite.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from qcore import CALIBRATORS, Calibration, CalibrationData, Curve, QuantOptionError, QuantScheme, analyze, to_rows
from qcore.analysis import params_for
from qcore.calibrators import make_calibrator
from qcore.granularity import Rows
from qcore.histogram import abs_histogram, signed_histogram

NAMES = sorted(CALIBRATORS)
REL = 1e-9  # float64 slack on "within the observed range"

GRANULARITIES = {
    "tensor": {"granularity": "tensor"},
    "channel": {"granularity": "channel", "axis": 1},  # 6 channels of 40 (axis 0 stays a batch axis for ema)
    "group": {"granularity": "group", "axis": 0, "group_size": 16},  # 40 = 2*16 + 8: a padded last group
}
SCHEMES = [
    pytest.param(
        QuantScheme(bits=bits, symmetric=sym, signed=signed, **GRANULARITIES[g]),
        marks=[pytest.mark.slow] if bits == 16 and not sym else [],  # mse's affine search is O(levels) per row
    )
    for g, sym, signed, bits in itertools.product(GRANULARITIES, (True, False), (True, False), (2, 4, 8, 16))
    if bits < 16 or sym or g == "tensor"
]


def _id(s: QuantScheme) -> str:
    return f"{s.granularity}-{'sym' if s.symmetric else 'asym'}-{'s' if s.signed else 'u'}{s.bits}"


def _tensor(seed: int = 0) -> np.ndarray:
    """(40, 6) float32: gaussian columns of different scales and offsets, two outliers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 6)) * rng.uniform(0.2, 2.0, 6) + rng.uniform(-0.5, 0.5, 6)
    x[7, 1] = 9.0
    x[30, 4] = -7.5
    return x.astype(np.float32)


def _calibrate(name: str, x: np.ndarray | Rows, scheme: QuantScheme) -> tuple[Calibration, CalibrationData]:
    rows = x if isinstance(x, Rows) else to_rows(x, scheme)
    data = CalibrationData(rows)
    return make_calibrator(name).calibrate(data, scheme), data


def _check_calibration(cal: Calibration, rows: Rows, scheme: QuantScheme, name: str) -> None:
    """The documented fields, shapes, dtypes and the range bounds."""
    n = rows.n_rows
    assert cal.method == name
    for field in ("lo", "hi"):
        arr = getattr(cal, field)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == (n,), field
        assert np.all(np.isfinite(arr)), f"{field} has NaN/Inf: {arr}"
    assert np.all(cal.lo <= cal.hi)
    absmax, tol = rows.absmax, rows.absmax * REL
    present = rows.count > 0
    if scheme.symmetric:
        t = cal.hi
        expected_lo = -t if scheme.signed else np.zeros_like(t)
        np.testing.assert_array_equal(cal.lo, expected_lo, err_msg="symmetric methods return (-T, T) / (0, T)")
        nonzero = present & (absmax > 0)
        assert np.all(t[nonzero] > 0), f"threshold not positive: {t[nonzero]}"
        assert np.all(t <= absmax + tol), f"threshold above max|x|: {t} > {absmax}"
    else:
        assert np.all(cal.lo[present] >= rows.min[present] - tol[present]), "lo below the row minimum"
        assert np.all(cal.hi[present] <= rows.max[present] + tol[present]), "hi above the row maximum"
    if cal.scale is not None:
        assert cal.scale.dtype == np.float64 and cal.scale.shape == (n,)
        assert np.all(np.isfinite(cal.scale)) and np.all(cal.scale[absmax > 0] > 0)
    assert (cal.grid is None) == (cal.splits is None)
    if cal.grid is not None:
        assert cal.grid.ndim == 2 and cal.grid.shape[0] == n and cal.splits.shape == (n, cal.grid.shape[1] - 1)
        assert np.all(np.isfinite(cal.grid)) and np.all(np.isfinite(cal.splits))
        assert np.all(np.diff(cal.grid, axis=1) >= 0) and np.all(np.diff(cal.splits, axis=1) >= 0)
    assert isinstance(cal.details, dict)
    dtype = CALIBRATORS[name].curve_dtype
    if cal.curve is not None:
        _check_curve(cal.curve, n, dtype)
    for extra in cal.details.values():  # curves kept as extras: consistent shapes, a finite chosen value
        if isinstance(extra, Curve):
            _check_curve(extra, n, dtype, optimum=False)


def _check_curve(c: Curve, n: int, dtype: type, optimum: bool = True) -> None:
    assert isinstance(c.objective, str) and c.objective and isinstance(c.parameter, str) and c.parameter
    assert c.goal in ("min", "max", "none")
    assert c.x.ndim == 2 and c.x.shape[0] == n and c.x.shape == c.y.shape, (c.x.shape, c.y.shape)
    assert c.y.dtype == dtype, (c.y.dtype, dtype)  # the calibrator's declared curve dtype
    assert c.x.dtype == dtype or (c.x.dtype == np.float64 and c.x.strides[0] == 0), c.x.dtype  # or a shared axis
    assert c.chosen.shape == (n,) and np.issubdtype(c.chosen.dtype, np.integer)
    assert np.all((c.chosen >= 0) & (c.chosen < c.x.shape[1]))
    searched = np.isfinite(c.y).any(axis=1)  # a degenerate row (e.g. all zero) may have no candidate to evaluate
    picked = c.y[np.arange(n), c.chosen][searched]
    assert np.all(np.isfinite(picked)), f"chosen objective not finite: {picked}"
    if c.goal == "none" or not optimum:
        return
    y = np.where(np.isfinite(c.y), c.y, np.inf if c.goal == "min" else -np.inf)[searched]
    best = y.min(axis=1) if c.goal == "min" else y.max(axis=1)
    slack = 1e-9 * np.abs(best) + 1e-12  # float rounding (a KL can come out as -1e-17)
    if c.goal == "min":
        assert np.all(picked <= best + slack), f"chosen is not the minimum: {picked} vs {best}"
    else:
        assert np.all(picked >= best - slack), f"chosen is not the maximum: {picked} vs {best}"


def _run_or_refuse(name: str, x: np.ndarray, scheme: QuantScheme) -> tuple[Calibration, CalibrationData] | None:
    """Calibrate, accepting only a clear :class:`QuantOptionError` as a refusal."""
    try:
        return _calibrate(name, x, scheme)
    except QuantOptionError as exc:
        assert str(exc), "a refusal needs a message"
        return None


# ---------------------------------------------------------------- the class itself


@pytest.mark.parametrize("name", NAMES)
def test_class_attributes_and_options(name: str) -> None:
    cls = CALIBRATORS[name]
    assert cls.name == name
    for attr in ("label", "summary", "formula"):
        value = getattr(cls, attr)
        assert isinstance(value, str) and value.strip(), f"{name}.{attr} is not set"
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert cls.options() == tuple(f.name for f in dataclasses.fields(cls))
    calibrator = make_calibrator(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(calibrator, "x_new_option", 1)  # noqa: B010
    assert make_calibrator(name, not_an_option=3) == calibrator  # unknown options are ignored


@pytest.mark.parametrize("name", NAMES)
def test_per_tensor_symmetric_int8_is_supported(name: str) -> None:
    scheme = QuantScheme()
    cal, data = _calibrate(name, _tensor(), scheme)
    _check_calibration(cal, data.rows, scheme, name)


# ---------------------------------------------------------------- every scheme


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: _id(s) if isinstance(s, QuantScheme) else None)
@pytest.mark.parametrize("name", NAMES)
def test_schemes(name: str, scheme: QuantScheme) -> None:
    x = _tensor(1)
    if not scheme.signed and not scheme.symmetric:
        x = np.abs(x)  # unsigned affine data is typically post-ReLU; symmetric unsigned also gets signed data
    out = _run_or_refuse(name, x, scheme)
    if out is None:
        return
    cal, data = out
    _check_calibration(cal, data.rows, scheme, name)
    params = params_for(cal, scheme)
    assert np.all(np.isfinite(params.scale)) and np.all(params.scale > 0)


# ---------------------------------------------------------------- special inputs


def _special_inputs() -> dict[str, np.ndarray]:
    base = _tensor(2)
    single = np.zeros((40, 6), dtype=np.float32)
    single[11, 3] = 5.0
    return {
        "constant": np.full((40, 6), 3.0, dtype=np.float32),
        "negative-constant": np.full((40, 6), -0.75, dtype=np.float32),
        "single-nonzero": single,
        "all-zero": np.zeros((40, 6), dtype=np.float32),
        "tiny": base * np.float32(1e-6),
        "huge": base * np.float32(1e4),
        # rows long enough for the sorted paths (qcore.sorted_rows.pays_off) of ADMM and EasyQuant
        "long-constant": np.full((40_000, 2), 3.0, dtype=np.float32),
        "long-single-nonzero": np.where(np.arange(80_000) == 7, 5.0, 0.0).astype(np.float32).reshape(-1, 2),
        "long-tiny": np.random.default_rng(4).standard_normal((40_000, 2)).astype(np.float32) * np.float32(1e-6),
    }


SPECIAL = _special_inputs()


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
@pytest.mark.parametrize("case", list(SPECIAL))
@pytest.mark.parametrize("name", NAMES)
def test_special_inputs(name: str, case: str, granularity: str, symmetric: bool) -> None:
    x = SPECIAL[case]
    scheme = QuantScheme(symmetric=symmetric, **GRANULARITIES[granularity])
    out = _run_or_refuse(name, x, scheme)
    if out is None:
        return
    cal, data = out
    _check_calibration(cal, data.rows, scheme, name)
    result = analyze(data, scheme, name)
    assert np.all(np.isfinite(result.params.scale)) and np.all(result.params.scale > 0)
    assert np.isfinite(result.report.mse) and np.isfinite(result.report.cosine)
    assert np.all(np.isfinite(result.dequantized()))
    if case == "all-zero":
        assert result.report.mse == 0.0


@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_values_are_ignored(name: str, granularity: str) -> None:
    x = _tensor(3)
    x[0, 0], x[5, 2], x[39, 5], x[3, 3] = np.nan, np.inf, -np.inf, np.nan
    for symmetric in (True, False):
        scheme = QuantScheme(symmetric=symmetric, **GRANULARITIES[granularity])
        out = _run_or_refuse(name, x, scheme)
        if out is None:
            continue
        cal, data = out
        assert data.rows.nonfinite_count == 4
        _check_calibration(cal, data.rows, scheme, name)
        assert np.all(cal.hi < 10.0) and np.all(cal.lo > -10.0)  # the finite data lie within [-7.5, 9]
        result = analyze(data, scheme, name)
        assert np.all(np.isfinite(result.params.scale)) and np.isfinite(result.report.mse)


@pytest.mark.parametrize("name", NAMES)
def test_nan_gives_the_same_range_as_leaving_the_value_out(name: str) -> None:
    """Per channel, a NaN in one row must act exactly as if that element were absent: other rows are unchanged."""
    x = _tensor(4)
    y = x.copy()
    y[3, 0] = np.nan
    scheme = QuantScheme(granularity="channel", axis=1)
    clean = _run_or_refuse(name, x, scheme)
    dirty = _run_or_refuse(name, y, scheme)
    if clean is None or dirty is None:
        return
    # a NaN may switch a method to its NaN-aware path: equal up to float64 rounding
    np.testing.assert_allclose(clean[0].lo[1:], dirty[0].lo[1:], rtol=1e-12, atol=0)
    np.testing.assert_allclose(clean[0].hi[1:], dirty[0].hi[1:], rtol=1e-12, atol=0)


# ---------------------------------------------------------------- purity and determinism


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_no_mutation_and_deterministic(name: str, symmetric: bool) -> None:
    x = _tensor(5)
    x_copy = x.copy()
    scheme = QuantScheme(symmetric=symmetric, granularity="channel", axis=1)
    rows = to_rows(x, scheme)
    assert not rows.values.flags.writeable
    values_copy = rows.values.copy()
    data = CalibrationData(rows)
    shared = {b: (data.abs_histogram(b), data.signed_histogram(b)) for b in (128, 2048)}
    counts_copy = {b: (a.counts.copy(), s.counts.copy()) for b, (a, s) in shared.items()}
    try:
        first = make_calibrator(name).calibrate(data, scheme)
    except QuantOptionError:
        return
    second = make_calibrator(name).calibrate(data, scheme)  # same shared data, histograms reused
    third = make_calibrator(name).calibrate(CalibrationData(to_rows(x, scheme)), scheme)

    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(rows.values, values_copy)
    for b, (a, s) in shared.items():
        np.testing.assert_array_equal(a.counts, counts_copy[b][0])
        np.testing.assert_array_equal(s.counts, counts_copy[b][1])
    for b, h in data._abs.items():  # every histogram the calibrator cached equals a fresh one
        np.testing.assert_array_equal(h.counts, abs_histogram(rows, b).counts)
    for b, h in data._signed.items():
        np.testing.assert_array_equal(h.counts, signed_histogram(rows, b).counts)
    for other in (second, third):
        np.testing.assert_array_equal(first.lo, other.lo)
        np.testing.assert_array_equal(first.hi, other.hi)
        if first.curve is not None:
            np.testing.assert_array_equal(first.curve.y, other.curve.y)
            np.testing.assert_array_equal(first.curve.chosen, other.curve.chosen)


@pytest.mark.parametrize("name", NAMES)
def test_per_channel_equals_per_tensor_row_by_row(name: str) -> None:
    """Rows are independent: channel c's range equals the per-tensor range of channel c alone."""
    x = _tensor(6)
    scheme = QuantScheme(granularity="channel", axis=1)
    out = _run_or_refuse(name, x, scheme)
    if out is None:
        return
    cal = out[0]
    for c in (0, 1, 4):
        single = _run_or_refuse(name, x[:, c : c + 1], scheme)
        assert single is not None
        np.testing.assert_allclose(cal.lo[c], single[0].lo[0], rtol=1e-12, atol=0)
        np.testing.assert_allclose(cal.hi[c], single[0].hi[0], rtol=1e-12, atol=0)
