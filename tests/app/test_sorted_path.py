"""A large tensor's Explore page shows the same numbers from sorted rows as from the element-wise report."""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import array, charts, metrics, run_app

import qcore.sorted_metrics as sm
import ui.compute as compute

# 256 channels (axis 1 for a weight) x 4096 at 4 bits: 256 x 16 x SEGMENT_COST <= 1M elements: sorted path
QUERY = {
    "source": "synthetic",
    "dist": "laplace",
    "rows": "4096",
    "cols": "256",
    "gran": "channel",
    "method": "percentile",
    "role": "weight",
    "scheme": "symmetric",
    "bits": "4",
}


def _shown(monkeypatch, fast_min: int) -> tuple[dict, dict, int]:
    """Metric cards, chart specs and the number of sorted-path reports of one fresh Explore run."""
    calls = []
    original = sm.fast_error_report

    def spy(sorted_rows, params):
        report = original(sorted_rows, params)
        calls.append(report is not None)
        return report

    monkeypatch.setattr(sm, "fast_error_report", spy)
    monkeypatch.setattr(compute, "FAST_MIN_ELEMENTS", fast_min)
    compute.analysis.clear()
    at = run_app(QUERY)
    return metrics(at), charts(at), sum(calls)


@pytest.mark.slow
def test_sorted_path_shows_the_same_as_elementwise(monkeypatch) -> None:
    fast_metrics, fast_charts, fast_calls = _shown(monkeypatch, compute.FAST_MIN_ELEMENTS)
    slow_metrics, slow_charts, slow_calls = _shown(monkeypatch, 1 << 40)
    assert fast_calls >= 1 and slow_calls == 0
    assert "SQNR" in " ".join(fast_metrics) and fast_metrics == slow_metrics
    assert fast_charts.keys() == slow_charts.keys() and fast_charts
    for key, spec in fast_charts.items():
        _assert_close(spec["data"], slow_charts[key]["data"], key)


def _assert_close(a, b, where: str) -> None:
    """Equal JSON trees, numbers to 1e-9 relative (the reports agree to ~1e-14)."""
    if isinstance(a, dict) and "bdata" in a:
        np.testing.assert_allclose(array(a), array(b), rtol=1e-9, atol=0, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, str):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-300), where
    else:
        assert a == b, where
