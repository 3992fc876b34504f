"""Compare page: every method's row is qcore's number, thresholds drawn at the calibrated values."""

from __future__ import annotations

import pytest
from app_helpers import charts, close, run_app, vlines

from qcore import CalibrationData, QuantScheme, analyze, to_rows
from qcore.samples import default_sample, load_sample

METHODS = ("minmax", "percentile", "entropy", "mse", "admm")


@pytest.fixture(scope="module")
def compare_app():
    return run_app(page="pages/compare.py")


@pytest.fixture(scope="module")
def reference():
    x, _ = load_sample(default_sample())
    scheme = QuantScheme(symmetric=False)
    data = CalibrationData(to_rows(x, scheme))
    return {m: analyze(data, scheme, m) for m in METHODS}


def test_table_holds_qcore_metrics_for_every_method(compare_app, reference) -> None:
    table = compare_app.dataframe[0].value
    assert list(table.index) == [__import__("qcore").CALIBRATORS[m].label for m in METHODS]
    for m, a in reference.items():
        row = table.iloc[METHODS.index(m)]
        assert row["MSE"] == pytest.approx(a.report.mse, rel=1e-12)
        assert row["clip MSE"] == pytest.approx(a.report.clip_mse, rel=1e-12)
        assert row["cosine"] == pytest.approx(a.report.cosine, rel=1e-12)
        assert row["levels used"] == a.report.levels_used


def test_overlay_and_small_multiples_draw_every_threshold(compare_app, reference) -> None:
    figs = charts(compare_app)
    overlay, multiples = vlines(figs["cmp_overlay"]), vlines(figs["cmp_multiples"])
    for a in reference.values():
        for t in (a.params.clip_min[0], a.params.clip_max[0]):
            assert any(close(x, t) for x in overlay)
            assert any(close(x, t) for x in multiples)


def test_each_search_method_shows_its_objective_curve(compare_app, reference) -> None:
    figs = charts(compare_app)
    for m, a in reference.items():
        assert (f"cmp_curve_{m}" in figs) == (a.calibration.curve is not None)


def test_fewer_methods_and_bits_change_the_table() -> None:
    at = run_app({"cmp": ["minmax", "mse"], "bits": "4"}, page="pages/compare.py")
    table = at.dataframe[0].value
    assert len(table) == 2
    x, _ = load_sample(default_sample())
    a = analyze(x, QuantScheme(bits=4, symmetric=False), "mse")
    assert table.iloc[1]["MSE"] == pytest.approx(a.report.mse, rel=1e-12)


def test_methods_share_one_histogram_collection(monkeypatch) -> None:
    """Collect once, search many: the |x| histogram is built once for all methods that need it."""
    import streamlit as st

    from qcore.calibrators import base
    from ui import byte_cache

    calls: list[int] = []
    real = base.abs_histogram

    def counting(rows, bins):
        calls.append(bins)
        return real(rows, bins)

    monkeypatch.setattr(base, "abs_histogram", counting)
    st.cache_resource.clear()
    st.cache_data.clear()
    byte_cache.clear()
    at = run_app({"bits": "6", "scheme": "symmetric"}, page="pages/compare.py")
    assert len(at.dataframe[0].value) == len(METHODS)
    assert calls == [2048]  # percentile, entropy and mse all searched the same 2048-bin histogram


def test_verdict_names_the_best_method_and_why(compare_app, reference) -> None:
    from qcore import CALIBRATORS

    best = max(reference, key=lambda m: reference[m].report.sqnr_db)
    text = " ".join(m.value for m in compare_app.markdown)
    assert f"Best SQNR: {CALIBRATORS[best].label}" in text
    assert "Why:" in text


def test_verdict_follows_the_chosen_metric() -> None:
    from qcore import CALIBRATORS

    at = run_app({"cmp_by": "max |error|"}, page="pages/compare.py")
    x, _ = load_sample(default_sample())
    scheme = QuantScheme(symmetric=False)
    data = CalibrationData(to_rows(x, scheme))
    errs = {m: analyze(data, scheme, m).report.max_abs_error for m in METHODS}
    best = min(errs, key=errs.get)
    assert any(f"Best max |error|: {CALIBRATORS[best].label}" in m.value for m in at.markdown)


def test_greens_only_where_the_difference_matters() -> None:
    from ui.verdict import METRICS, winners

    sqnr = METRICS["SQNR (dB)"]
    assert winners({"a": 20.0, "b": 20.01, "c": 12.0}, sqnr) == ["a", "b"]  # 0.01 dB apart: both green
    assert winners({"a": 0.002362, "b": 0.002361}, METRICS["MSE"]) == []  # a tie is no win
    assert winners({"a": 1.0, "b": 2.0}, METRICS["MSE"]) == ["a"]


def test_verdict_clipping_reason_names_a_value_the_method_really_clips() -> None:
    """Per channel it said 'Entropy (KL) clips the largest value 0.4871 to 0.4871 and loses 0% ...'."""
    import re

    from ui.verdict import verdict

    x, _ = load_sample("minilm/layer3/ffn_up.weight")
    scheme = QuantScheme(symmetric=False, granularity="channel", axis=0)
    data = CalibrationData(to_rows(x, scheme))
    results = {m: analyze(data, scheme, m) for m in ("mse", "entropy")}
    text = verdict(results, {"mse": "MSE", "entropy": "Entropy"}, "SQNR (dB)")
    found = re.search(
        r"Entropy clips the (?:largest|most negative) value of channel \d+, (\S+), to (\S+) and loses (\S+)%", text
    )
    assert found, text
    peak, end, lost = (float(v) for v in found.groups())
    assert abs(end) < abs(peak) and lost > 0
