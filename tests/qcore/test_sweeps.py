"""Sweeps: every point is the core's analysis; storage overhead; failures become records."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze, effective_scheme
from qcore.sweeps import (
    GranularitySpec,
    bits_per_weight,
    bits_sweep,
    convention_table,
    granularity_sweep,
    layer_sweep,
    zero_point_costs,
)


@pytest.fixture(scope="module")
def weight() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((16, 256)) * np.linspace(0.1, 2.0, 16)[:, None]).astype(np.float32)


def test_bits_sweep_points_are_core_analyses(weight: np.ndarray) -> None:
    seen: list[float] = []
    records = bits_sweep(
        weight,
        QuantScheme(),
        ["minmax"],
        bits=range(2, 9),
        symmetric=(True, False),
        progress=lambda f, _: seen.append(f),
    )
    assert len(records) == 14
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    for rec in records:
        ref = analyze(weight, QuantScheme(bits=rec["bits"], symmetric=rec["symmetric"]), "minmax").report
        assert rec["mse"] == pytest.approx(ref.mse, rel=1e-12)
        assert rec["sqnr_db"] == pytest.approx(ref.sqnr_db, rel=1e-12)
    sym = [r["sqnr_db"] for r in records if r["symmetric"]]
    assert all(b > a for a, b in itertools.pairwise(sym)), "SQNR grows with bits"
    # about 6 dB per bit for MinMax at high bit widths
    assert sym[-1] - sym[-2] == pytest.approx(6.02, abs=0.5)


def test_bits_sweep_unknown_method_is_a_record_not_a_crash(weight: np.ndarray) -> None:
    records = bits_sweep(weight, QuantScheme(), ["minmax", "no-such-method"], bits=(4,))
    bad = next(r for r in records if r["method"] == "no-such-method")
    assert "unknown method" in bad["error"] and math.isnan(bad["mse"])
    with pytest.raises(QuantOptionError):
        bits_sweep(weight, QuantScheme(), [], bits=(4,))
    with pytest.raises(QuantOptionError):
        bits_sweep(weight, QuantScheme(), ["minmax"], bits=(1,))


def test_bits_per_weight_formula() -> None:
    # 4-bit, group 128 with an fp16 scale: 4 + 16/128 = 4.125; asymmetric adds a 4-bit zero point
    assert bits_per_weight(4, 10, 1280, 16, False) == pytest.approx(4.125)
    assert bits_per_weight(4, 10, 1280, 16, True) == pytest.approx(4.15625)


def test_granularity_sweep_finer_is_better_and_costs_more(weight: np.ndarray) -> None:
    specs = (
        GranularitySpec("tensor", "tensor"),
        GranularitySpec("channel", "channel"),
        GranularitySpec("g32", "group", 32),
    )
    records = granularity_sweep(weight, QuantScheme(symmetric=True), "minmax", bits=(4,), granularities=specs)
    by = {r["granularity"]: r for r in records}
    assert by["tensor"]["ranges"] == 1 and by["channel"]["ranges"] == 16 and by["g32"]["ranges"] == 16 * 8
    assert by["g32"]["bits_per_weight"] == pytest.approx(4 + 16 / 32)
    assert by["channel"]["mse"] < by["tensor"]["mse"]
    ref = analyze(weight, QuantScheme(bits=4, granularity="group", group_size=32, axis=-1), "minmax").report
    assert by["g32"]["mse"] == pytest.approx(ref.mse, rel=1e-12)


def test_granularity_sweep_on_a_vector_reports_the_impossible_rows() -> None:
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    records = granularity_sweep(x, QuantScheme(), "minmax", bits=(4, 8))
    chan = [r for r in records if r["granularity"] == "channel"]
    assert len(chan) == 2 and all("at least 2 dimensions" in r["error"] for r in chan)
    assert all(r["error"] == "" for r in records if r["granularity"] == "tensor")


def test_convention_table_shows_the_grids(weight: np.ndarray) -> None:
    records = convention_table(weight, QuantScheme(bits=8), "minmax")
    by = {r["convention"]: r for r in records}
    for name, rec in by.items():
        eff = effective_scheme(QuantScheme(bits=8), name)
        assert (rec["qmin"], rec["qmax"]) == (eff.qmin, eff.qmax)
    assert (by["default"]["qmin"], by["ncnn"]["qmin"]) == (-128, -127)
    t = float(np.abs(weight).max())
    assert by["default"]["scale"] == pytest.approx(t / 127)
    assert by["pytorch"]["scale"] == pytest.approx(t / 127.5, rel=1e-6)
    assert by["ncnn"]["rounding"] == "half_away"
    asym = {r["convention"]: r for r in convention_table(weight, QuantScheme(symmetric=False), "minmax")}
    assert "symmetric" in asym["tensorrt"]["error"]
    assert asym["default"]["error"] == "" and asym["default"]["zero_point"] != 0


def test_layer_sweep_matches_analyze_layer() -> None:
    from qcore.layer import analyze_layer

    rng = np.random.default_rng(5)
    w = rng.standard_normal((12, 32)).astype(np.float32)
    x = np.maximum(rng.standard_normal((20, 32)), 0).astype(np.float32)
    ws, xs = QuantScheme(bits=4, granularity="channel"), QuantScheme(bits=4, symmetric=False)
    records = layer_sweep(w, x, ws, xs, ["minmax", "percentile"])
    assert [(r["method"], r["case"]) for r in records[:3]] == [
        ("minmax", "weights"),
        ("minmax", "activations"),
        ("minmax", "both"),
    ]
    for method in ("minmax", "percentile"):
        ref = analyze_layer(w, x, ws, xs, method, method)
        for case in ("weights", "activations", "both"):
            rec = next(r for r in records if r["method"] == method and r["case"] == case)
            assert rec["mse"] == pytest.approx(ref.errors[case].mse, rel=1e-12)
            assert rec["sqnr_db"] == pytest.approx(ref.errors[case].sqnr_db, rel=1e-12)
    with pytest.raises(QuantOptionError, match="inputs"):
        layer_sweep(w, x[:, :16], ws, xs, ["minmax"])


def test_zero_point_costs_follow_seed_000() -> None:
    by = {(r["weights"], r["activations"]): r for r in zero_point_costs(k=64, n_out=16)}
    # symmetric weights: the plain integer GEMM, K MACs per output, whatever the activations
    assert by[("symmetric", "symmetric")]["macs_per_output"] == 64
    assert by[("symmetric", "asymmetric")]["macs_per_output"] == 64
    assert by[("symmetric", "asymmetric")]["offline_terms"] == "input zero point x weight sum"
    # asymmetric weights add the run-time z_W * sum(x) term: K/out adds + 1 MAC per output
    assert by[("asymmetric", "symmetric")]["extra_vs_symmetric"] == pytest.approx(64 / 16 + 1)
    assert "weight zero point x input sum" in by[("asymmetric", "asymmetric")]["run_time_terms"]


def test_sweeps_reuse_a_given_calibration_data(weight: np.ndarray) -> None:
    from qcore import CalibrationData, to_rows

    scheme = QuantScheme(granularity="channel")
    data = CalibrationData(to_rows(weight, scheme))
    shared = bits_sweep(data, scheme, ["minmax", "percentile", "entropy"], bits=(4, 8))
    assert 2048 in data._abs, "the percentile search filled the shared histogram cache"
    fresh = bits_sweep(weight, scheme, ["minmax", "percentile", "entropy"], bits=(4, 8))
    assert [r["mse"] for r in shared] == [r["mse"] for r in fresh]
    with pytest.raises(QuantOptionError, match="another granularity"):
        bits_sweep(data, QuantScheme(granularity="tensor"), ["minmax"], bits=(4,))
    with pytest.raises(QuantOptionError, match="another granularity"):
        convention_table(data, QuantScheme(granularity="channel", axis=1))


def test_a_sweep_reports_the_rows_of_each_point_between_points() -> None:
    x = np.random.default_rng(3).normal(size=(64, 256)).astype(np.float32)
    seen: list[tuple[float, str]] = []
    scheme = QuantScheme(granularity="group", axis=1, group_size=32)
    bits_sweep(x, scheme, ["mse"], [4, 8], progress=lambda f, label: seen.append((f, label)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert ("mse sym 4-bit: 512 / 512 rows") in [label for _, label in seen]
    assert (0.5, "mse sym 4-bit") in seen  # the point itself, done
