"""The format views on the hardening suite's extreme tensors: a message at most, never a traceback or NaN card."""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import cards, run_app

from qcore.samples import default_sample
from ui import byte_cache, data

FMAX = float(np.finfo(np.float32).max)
VIEWS = (
    ({"format": "nf4"}, None),
    ({"format": "mxfp4"}, None),
    ({"format": "fp8_e4m3"}, None),
    ({"cmp_mode": "formats"}, "pages/compare.py"),
    ({"wi_view": "formats"}, "pages/whatif.py"),
)


@pytest.mark.parametrize(("query", "page"), VIEWS)
@pytest.mark.parametrize(
    "values",
    [
        np.array([[FMAX, -FMAX, 1.0, 0.5], [2.0, -FMAX, 3e38, 0.0]], np.float32),
        np.array([[1e-37, -5e-38], [2e-38, 0.0]], np.float32),
    ],
    ids=["float32-max", "tiny"],
)
def test_extreme_tensors_on_the_format_views(monkeypatch, values: np.ndarray, query: dict, page: str | None) -> None:
    real = data.load_sample

    def extreme(name: str):
        _, info = real(name)
        return values, info

    monkeypatch.setattr(data, "load_sample", extreme)
    byte_cache.clear()
    try:
        at = run_app({"sample": default_sample(), "gran": "tensor", **query}, page=page)  # asserts no st.exception
    finally:
        byte_cache.clear()
    shown = " ".join(cards(at).values()).lower()
    assert "nan" not in shown and "inf" not in shown, shown
    if page is None and not shown:  # Explore refused the format: it says why
        assert any("overflows float32" in e.value for e in at.error), [e.value for e in at.error]
