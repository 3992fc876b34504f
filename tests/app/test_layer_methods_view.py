"""AppTest of the What-if "Layer methods" view: the page shows qcore's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from qcore import QuantScheme
from qcore.layer_methods import Side, run_method
from qcore.samples import load_pair

ROOT = Path(__file__).resolve().parents[2]


def page(**query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "whatif.py"), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _frame_with(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_methods_table_and_charts_on_a_bundled_pair() -> None:
    at = page(wi_view="methods", wi_pair="digits_mlp/fc2")
    assert not at.exception and not at.error
    df = _frame_with(at, "gain_db")
    assert df["method"].tolist() == ["rtn", "llm_int8", "smoothquant", "awq", "gptq", "hadamard"]
    x, w, _ = load_pair("digits_mlp/fc2")
    w_side = Side(QuantScheme(granularity="channel", axis=0))
    x_side = Side(QuantScheme())
    for method in ("smoothquant", "gptq"):
        run = run_method(w, x, method, w_side, x_side)
        assert df.loc[df["method"] == method, "sqnr_db"].item() == pytest.approx(run.error.sqnr_db)
        assert df.loc[df["method"] == "rtn", "sqnr_db"].item() == pytest.approx(run.rtn.sqnr_db)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [c["layout"].get("xaxis", {}).get("title", {}).get("text", "") for c in charts]
    assert "α (migration strength)" in titles and "weight bits" in titles


def test_x_only_drops_weight_only_methods_with_a_note() -> None:
    at = page(wi_view="methods", wi_pair="digits_mlp/fc3", wi_lm_sides="activations", wi_lm_xgran="token")
    assert not at.exception and not at.error
    assert any("quantize the weights" in i.value for i in at.info)
    df = _frame_with(at, "gain_db")
    assert "gptq" not in df["method"].tolist() and "llm_int8" in df["method"].tolist()
    x, w, _ = load_pair("digits_mlp/fc3")
    run = run_method(w, x, "llm_int8", None, Side(QuantScheme(granularity="channel", axis=0)))
    assert df.loc[df["method"] == "llm_int8", "sqnr_db"].item() == pytest.approx(run.error.sqnr_db)


def test_a_number_format_passes_through() -> None:
    at = page(
        wi_view="methods", wi_pair="digits_mlp/fc2", wi_lm_wfmt="nf4", wi_lm_sides="weights", wi_lm_methods="gptq"
    )
    assert not at.exception and not at.error
    df = _frame_with(at, "gain_db")
    x, w, _ = load_pair("digits_mlp/fc2")
    run = run_method(w, x, "gptq", Side(QuantScheme(bits=4, format="nf4")), None)
    assert df.loc[df["method"] == "gptq", "sqnr_db"].item() == pytest.approx(run.error.sqnr_db)
