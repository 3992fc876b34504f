"""Error metrics on hand-checked vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, error_report, qparams_from_range, to_rows
from qcore.formats import FORMATS
from qcore.metrics import kl_divergence

# 4-bit symmetric, T = 1.75 -> s = 1.75 / 7 = 0.25 (a power of two: exact float32 steps)
X = np.array([0.0, 0.3, 1.0, -0.6, 2.5], dtype=np.float32)
SCHEME4 = QuantScheme(bits=4)


def _report(x: np.ndarray, lo, hi, scheme: QuantScheme):
    rows = to_rows(x, scheme)
    return error_report(rows, qparams_from_range(lo, hi, scheme))


def test_split_reference_sqnr_cosine_levels_by_hand() -> None:
    # codes: 0, round(1.2) = 1, 4, round(-2.4) = -2, round(10) = 10 -> clamped to 7
    # x_hat: 0, 0.25, 1.0, -0.5, 1.75; e = x_hat - x: 0, -0.05, 0, 0.1, -0.75
    r = _report(X, -1.75, 1.75, SCHEME4)
    x64 = X.astype(np.float64)  # 0.3 and 0.6 are not exact in float32: use the stored values
    e = np.array([0.0, 0.25, 1.0, -0.5, 1.75]) - x64
    assert r.count == 5
    assert r.round_mse == pytest.approx((e[1] ** 2 + e[3] ** 2) / 5, rel=1e-12)  # 0.0125 / 5 = 0.0025
    assert r.clip_mse == pytest.approx(0.75**2 / 5, rel=1e-12)  # 0.1125
    assert r.mse == pytest.approx(0.115, rel=1e-6) and r.mse == pytest.approx(r.clip_mse + r.round_mse, rel=1e-15)
    assert r.round_mse_reference == pytest.approx(4 * 0.25**2 / 12 / 5, rel=1e-12)  # 4 values inside
    assert r.sqnr_db == pytest.approx(10 * math.log10(7.7 / 0.575), rel=1e-6)  # 11.268 dB
    assert r.cosine == pytest.approx(5.75 / math.sqrt(7.7 * 4.375), rel=1e-6)  # 0.990681
    assert r.max_abs_error == pytest.approx(0.75, rel=1e-12)
    assert r.clipped_fraction == pytest.approx(0.2)
    assert (r.levels_used, r.levels_total) == (5, 16)  # codes {-2, 0, 1, 4, 7}
    assert set(r.as_dict()) >= {"mse", "clip_mse", "round_mse", "sqnr_db", "cosine", "clipped_fraction"}


def test_exact_round_trip_has_no_sqnr() -> None:
    x = np.array([-0.5, 0.25, 1.75, 0.0], dtype=np.float32)
    r = _report(x, -1.75, 1.75, SCHEME4)
    assert r.mse == 0.0 and r.sqnr_db is None and r.cosine == 1.0 and r.clipped_fraction == 0.0


def test_per_row_breakdown_by_hand() -> None:
    # channel 0: [0.0, 0.3, 1.0, -0.6, 2.5] as above; channel 1: [0.5, -0.25, 0.1, 0.0, 0.0] with T = 0.875 (s = 0.125)
    w = np.stack([X, np.array([0.5, -0.25, 0.1, 0.0, 0.0], dtype=np.float32)])
    scheme = SCHEME4.with_(granularity="channel", axis=0)
    r = _report(w, np.array([-1.75, -0.875]), np.array([1.75, 0.875]), scheme)
    # channel 1 codes: 4, -2, round(0.8) = 1, 0, 0 -> e = [0, 0, 0.125 - 0.1, 0, 0]
    e1 = 0.125 - np.float64(np.float32(0.1))
    np.testing.assert_allclose(r.rows.mse, [0.115, e1**2 / 5], rtol=1e-6)
    np.testing.assert_allclose(r.rows.clip_mse, [0.1125, 0.0], rtol=1e-6)
    np.testing.assert_allclose(r.rows.clipped_fraction, [0.2, 0.0])
    np.testing.assert_array_equal(r.rows.levels_used, [5, 4])  # {4, -2, 1, 0}
    np.testing.assert_allclose(r.rows.max_abs_error, [0.75, e1], rtol=1e-6)
    assert r.levels_used == 5  # distinct codes over the tensor: {-2, 0, 1, 4, 7} | {-2, 0, 1, 4}
    assert r.mse == pytest.approx((0.115 * 5 + e1**2) / 10, rel=1e-6)


def test_missing_values_are_excluded() -> None:
    x = np.array([0.0, 0.3, np.nan, 1.0, -0.6, np.inf, 2.5], dtype=np.float32)
    r = _report(x, -1.75, 1.75, SCHEME4)
    clean = _report(X, -1.75, 1.75, SCHEME4)
    assert r.count == 5
    for key in ("mse", "clip_mse", "round_mse", "sqnr_db", "cosine", "clipped_fraction", "levels_used"):
        assert getattr(r, key) == pytest.approx(getattr(clean, key), rel=1e-12), key


def test_large_grid_levels_path_agrees() -> None:
    """16-bit grids over many rows count levels by sorting instead of a dense bincount: same answer."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 64)).astype(np.float32)
    scheme = QuantScheme(bits=16, granularity="channel", axis=0)
    rows = to_rows(w, scheme)
    params = qparams_from_range(-rows.absmax, rows.absmax, scheme)
    r = error_report(rows, params)
    from qcore.quantize import quantize_rows

    codes = quantize_rows(rows.values, params)
    np.testing.assert_array_equal(r.rows.levels_used, [len(np.unique(c)) for c in codes])
    assert r.levels_used == len(np.unique(codes))


def test_kl_divergence_by_hand() -> None:
    # scale 1, z = 0: x = [-0.4, 0.1, 0.2] all code 0; 2 sub-bins of the cell [-0.5, 0.5): P = [1, 2] / 3
    # Q spreads code 0's 3 values over the 2 filled bins: [1.5, 1.5] / 3
    x = np.array([-0.4, 0.1, 0.2], dtype=np.float32)
    rows, params = to_rows(x, QuantScheme()), qparams_from_range(-127.0, 127.0, QuantScheme())
    expected = (1 / 3) * math.log((1 / 3) / (1 / 2)) + (2 / 3) * math.log((2 / 3) / (1 / 2))
    assert kl_divergence(rows, params, sub_bins=2) == pytest.approx(expected, rel=1e-12)
    assert kl_divergence(rows, params, sub_bins=1) == 0.0  # step-wide bins: hist(x) == hist(x_hat)


def test_kl_divergence_grows_with_coarser_grids_and_ignores_nan() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(200_000).astype(np.float32)
    rows = to_rows(x, QuantScheme())
    t = float(np.abs(x).max())  # nothing clipped: only the shape inside each cell counts
    # few sub-bins and many samples: the histogram's sampling bias (~ bins / 2N) stays below the signal
    kls = [kl_divergence(rows, qparams_from_range(-t, t, QuantScheme(bits=b)), sub_bins=4) for b in (2, 3, 4, 6)]
    assert kls[0] > kls[1] > kls[2] > kls[3] >= 0.0
    y = np.concatenate([x, [np.nan, np.inf]]).astype(np.float32)
    p = qparams_from_range(-t, t, QuantScheme(bits=3))
    assert kl_divergence(to_rows(y, QuantScheme()), p, sub_bins=4) == pytest.approx(kls[1], rel=1e-12)
    with pytest.raises(QuantOptionError):
        kl_divergence(rows, p, sub_bins=0)


@pytest.mark.parametrize("granularity", ["tensor", "channel", "group"])
@pytest.mark.parametrize("dense_levels", [True, False])
def test_blocks_do_not_change_the_result(monkeypatch, granularity: str, dense_levels: bool) -> None:
    """The error pass runs in cache-sized blocks; tiny blocks (and the sparse level count) give the same report."""
    import qcore.elementwise_metrics as metrics

    rng = np.random.default_rng(2)
    w = (rng.standard_normal((12, 50)) * rng.uniform(0.1, 3, (12, 1))).astype(np.float32)
    w[3, 4], w[7, 49] = np.nan, np.inf
    scheme = QuantScheme(bits=5, symmetric=False, granularity=granularity, axis=1, group_size=8)
    rows = to_rows(w, scheme)
    params = qparams_from_range(rows.min * 0.7, rows.max * 0.7, scheme)
    whole = error_report(rows, params)
    kl_whole = kl_divergence(rows, params, sub_bins=4)
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 7)
    if not dense_levels:
        monkeypatch.setattr(metrics, "DENSE_LEVELS", 1)
    assert len(metrics.blocks(*rows.values.shape)) > 5
    blocked = error_report(rows, params)
    assert kl_divergence(rows, params, sub_bins=4) == pytest.approx(kl_whole, rel=1e-12)
    for key, value in whole.as_dict().items():
        assert getattr(blocked, key) == pytest.approx(value, rel=1e-12), key
    for key in ("mse", "clip_mse", "round_mse", "round_mse_reference", "clipped_fraction", "levels_used"):
        np.testing.assert_allclose(getattr(blocked.rows, key), getattr(whole.rows, key), rtol=1e-12)
    np.testing.assert_allclose(blocked.rows.max_abs_error, whole.rows.max_abs_error, rtol=1e-12)


@pytest.mark.parametrize(("fmt", "shape"), [("fp8_e4m3", (6, 50)), ("q4_k", (3, 512)), ("nf4", (4, 128))])
def test_blocks_do_not_change_a_formats_report(monkeypatch, fmt: str, shape: tuple[int, int]) -> None:
    """Column blocks cut a row (and a K-quant super-block's sub-blocks): the local reference is unchanged."""
    import qcore.elementwise_metrics as metrics
    from qcore import analyze

    w = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    w[1, 5] = np.nan
    a = analyze(w, QuantScheme(bits=FORMATS[fmt].bits, format=fmt), "minmax")
    whole = a.encoding.report()
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 7)
    blocked = a.encoding.report()
    assert whole.round_mse_reference > 0
    for key, value in whole.as_dict().items():
        assert getattr(blocked, key) == pytest.approx(value, rel=1e-12), key
    np.testing.assert_allclose(blocked.rows.round_mse_reference, whole.rows.round_mse_reference, rtol=1e-12)


def test_one_public_error_report_chooses_the_sorted_path_itself(monkeypatch) -> None:
    """``error_report(rows, params, sorted_rows)`` takes the sorted path when it applies; the modules below it do not
    export another ``error_report``."""
    import qcore
    from qcore import elementwise_metrics, report, sorted_metrics
    from qcore.sorted_rows import SortedRows

    assert qcore.error_report is error_report
    assert not any(hasattr(m, "error_report") for m in (elementwise_metrics, report, sorted_metrics))
    x = np.random.default_rng(4).standard_normal((4, 300)).astype(np.float32)
    rows = to_rows(x, SCHEME4.with_(granularity="channel", axis=0))
    params = qparams_from_range(rows.min, rows.max, SCHEME4.with_(granularity="channel", axis=0))
    calls = []
    original = sorted_metrics.fast_error_report
    monkeypatch.setattr(sorted_metrics, "fast_error_report", lambda *a: calls.append(1) or original(*a))
    fast = error_report(rows, params, SortedRows.from_rows(rows))
    assert calls == [1]
    assert fast.mse == pytest.approx(error_report(rows, params).mse, rel=1e-12)
    with pytest.raises(ValueError, match="sorted rows"):
        error_report(rows, params, SortedRows.from_rows(to_rows(x[:2], SCHEME4)))


def test_metric_modules_import_one_way() -> None:
    """metrics -> sorted_metrics -> elementwise_metrics -> report: no module imports one above it."""
    import ast
    from pathlib import Path

    import qcore

    order = ["metrics", "sorted_metrics", "elementwise_metrics", "report"]
    root = Path(qcore.__file__).parent
    for i, name in enumerate(order):
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and not n.module
                     for a in n.names}  # fmt: skip
        assert not imported & set(order[: i + 1]), f"{name}.py imports {imported & set(order[: i + 1])}"
