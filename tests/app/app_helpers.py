"""Headless runs of the app (``streamlit.testing.v1.AppTest``) and the expected numbers from qcore."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from qcore import Analysis, QuantScheme, analyze
from qcore.samples import default_sample, load_sample, sample_info
from ui.format_views import STORAGE_CARDS

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 60


def run_app(query: dict[str, Any] | None = None, page: str | None = None) -> AppTest:
    """Run the app (optionally with URL query parameters, on a page) and return the finished AppTest."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if page:
        at.switch_page(page)
    at.run()
    # AppTest starts every run in Streamlit's legacy pages/ mode (a pages/ folder exists), and the first run
    # gives page widgets other ids than the runs after it; a second run settles them (see ui/router.py).
    at.run()
    assert not at.exception, at.exception[0].message if at.exception else ""
    return at


def cards(at: AppTest) -> dict[str, str]:
    """Every metric card as label -> shown value (error cards and Explore's storage cards)."""
    return {m.label: m.value for m in at.metric}


def metrics(at: AppTest) -> dict[str, str]:
    """The error cards (those of :func:`ui.text.metric_values`) as label -> shown value."""
    return {k: v for k, v in cards(at).items() if k not in STORAGE_CARDS}


def expected(sample: str | None = None, method: str | None = None, **scheme: Any) -> Analysis:
    """What qcore computes for a sample under the default-sample role preset changed by ``scheme``/``method``."""
    name = sample or default_sample()
    info = sample_info(name)
    base = {
        "weight": {"symmetric": True, "granularity": "channel", "method": "minmax"},
        "activation": {"symmetric": False, "granularity": "tensor", "method": "entropy"},
    }[info.role]
    x, _ = load_sample(name)
    kw = {"symmetric": base["symmetric"], "granularity": base["granularity"], "axis": info.channel_axis or 0}
    kw.update(scheme)
    return analyze(x, QuantScheme(**kw), method or base["method"])


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly figure specs by chart key (AppTest has no Plotly element class; the proto holds the JSON spec)."""
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        out[el.proto.id.split("-", 2)[2]] = spec
    return out


def array(value: Any) -> np.ndarray:
    """A spec array: plain list, or plotly's base64 typed array ``{"dtype", "bdata"}``."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def vlines(spec: dict) -> list[float]:
    """x positions of the vertical lines (``add_vline``) of a figure spec."""
    return [s["x0"] for s in spec["layout"].get("shapes", []) if s.get("type") == "line" and s["x0"] == s["x1"]]


def close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-9, atol=0.0))
