"""AppTest of the What-if page: default run, a changed setting changes the figure, the URL restores a view."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from qcore import QuantScheme, analyze
from ui.router import CONTEXT_KEY

ROOT = Path(__file__).resolve().parents[2]


def page(**query: str) -> AppTest:
    """The page run directly: it draws the shared frame and sidebar itself (see ui/router.py)."""
    at = AppTest.from_file(str(ROOT / "pages" / "whatif.py"), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def figure(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def test_default_bits_sweep_runs_to_completion() -> None:
    at = page(wi_methods="minmax", wi_bits=["2", "8"])
    assert not at.exception
    assert not at.error
    fig = figure(at)
    assert [t["name"] for t in fig["data"]] == ["minmax"]
    df = at.dataframe[0].value
    assert list(df["bits"]) == list(range(2, 9))
    # the table holds the core's numbers for the sidebar's tensor and scheme at 4 bits
    ctx = at.session_state[CONTEXT_KEY]
    ref = analyze(ctx.tensor.array, ctx.settings.scheme.with_(bits=4), "minmax", ctx.settings.convention).report
    assert df.loc[df["bits"] == 4, "sqnr_db"].item() == pytest.approx(ref.sqnr_db)
    assert any("Download" in b.proto.label for b in at.get("download_button"))


def test_changing_the_measure_changes_the_figure() -> None:
    at = page(wi_methods="minmax", wi_bits=["2", "6"])
    before = figure(at)
    at.selectbox(key="wi_metric").set_value("mse").run()
    after = figure(at)
    assert not at.exception
    assert before["layout"]["yaxis"]["title"]["text"] != after["layout"]["yaxis"]["title"]["text"]
    assert after["layout"]["yaxis"]["type"] == "log"


def test_adding_asymmetric_adds_lines() -> None:
    at = page(wi_methods="minmax", wi_bits=["2", "4"])
    assert len(figure(at)["data"]) == 1
    at.toggle(key="wi_both").set_value(True).run()
    assert not at.exception
    assert [t["name"] for t in figure(at)["data"]] == ["minmax (sym)", "minmax (asym)"]


def test_bits_view_says_when_clipping_error_dominates() -> None:
    at = page(wi_methods=["minmax", "aciq"], wi_bits=["8", "16"])
    assert not at.exception
    notes = [i.value for i in at.info if "clipping error dominates" in i.value]
    assert len(notes) == 1 and "ACIQ" in notes[0] and "r(16)" in notes[0] and "MinMax" not in notes[0]
    at = page(wi_methods="minmax", wi_bits=["8", "16"])
    assert not [i for i in at.info if "clipping error dominates" in i.value]


def test_symmetry_intro_is_a_whole_sentence() -> None:
    at = page(wi_view="symmetry", wi_smethods="minmax")
    intro = next(m.value for m in at.markdown if "Does a zero point help?" in m.value)
    assert intro.endswith(".") and "The chart below compares both schemes" in intro


@pytest.mark.parametrize(
    ("view", "first_column"),
    [("granularity", "granularity"), ("symmetry", "method"), ("conventions", "preset")],
)
def test_query_params_restore_each_view(view: str, first_column: str) -> None:
    # the view is in the URL by its short name (wi_view=conventions), not by its label
    at = page(wi_view=view, wi_smethods="minmax", wi_gbits="4", wi_metric="MSE")
    assert not at.exception
    assert at.radio(key="wi_view").value == view
    if view != "conventions":  # the conventions view draws no error-measure chart, so it has no selector
        assert at.selectbox(key="wi_metric").value == "mse"
    assert at.dataframe[0].value.columns[0] == first_column
    assert at.get("plotly_chart")


def test_conventions_view_says_what_differs() -> None:
    at = page(wi_view="conventions", method="minmax", wi_csym="symmetric")
    assert not at.exception and not at.error
    text = " ".join(m.value for m in at.markdown)
    assert "What differs between these presets here" in text
    table = at.dataframe[0].value
    # every column named as differing really takes more than one value
    differing = text.split("here:**")[1].split(".")[0]
    for label in ("scale s", "q_min"):
        if label in differing:
            assert table[label].nunique() > 1
    assert not [s for s in at.selectbox if s.key == "wi_metric"]


def test_granularity_view_counts_storage() -> None:
    at = page(wi_view="granularity", wi_gbits="4", wi_grans=["tensor", "group 32"], wi_gmethod="minmax")
    df = at.dataframe[0].value.set_index("granularity")
    assert df.loc["tensor", "ranges"] == 1
    # an fp16 scale per group of 32, plus a 4-bit zero point when the sidebar scheme is asymmetric
    zero_point_bits = 0 if at.session_state[CONTEXT_KEY].settings.scheme.symmetric else 4
    assert df.loc["group 32", "bits_per_weight"] == pytest.approx(4 + (16 + zero_point_bits) / 32)
    assert np.isfinite(df["sqnr_db"]).all()


def test_impossible_sidebar_settings_show_an_error_not_a_traceback() -> None:
    at = page(narrow="true", signed="false")
    assert not at.exception
    assert any("impossible" in e.value for e in at.error)


def test_layer_view_on_a_bundled_pair() -> None:
    from qcore.layer import analyze_layer
    from qcore.samples import load_pair

    at = page(wi_view="layer", wi_pair="digits_mlp/fc2", wi_lmethods="minmax")
    assert not at.exception and not at.error
    df = at.dataframe[0].value
    assert list(df["case"]) == ["weights", "activations", "both"]
    x, w, _ = load_pair("digits_mlp/fc2")
    ref = analyze_layer(w, x, QuantScheme(granularity="channel"), QuantScheme(symmetric=False))
    assert df["sqnr_db"].tolist() == pytest.approx([ref.errors[c].sqnr_db for c in ("weights", "activations", "both")])
    costs = at.dataframe[1].value
    assert len(costs) == 4 and set(costs["weights"]) == {"symmetric", "asymmetric"}
    at.toggle(key="wi_wsym").set_value(False).run()
    assert not at.exception
    assert at.dataframe[0].value["sqnr_db"].tolist() != df["sqnr_db"].tolist()


def test_layer_view_per_group_weights() -> None:
    from qcore.layer import analyze_layer
    from qcore.samples import load_pair

    at = page(wi_view="layer", wi_pair="digits_mlp/fc2", wi_lmethods="minmax", wi_wgran="group", wi_wgroup="16")
    assert not at.exception and not at.error
    x, w, _ = load_pair("digits_mlp/fc2")
    # groups of 16 consecutive inputs along K, the last axis of W (out, K)
    w_scheme = QuantScheme(granularity="group", axis=1, group_size=16)
    ref = analyze_layer(w, x, w_scheme, QuantScheme(symmetric=False))
    df = at.dataframe[0].value
    assert df.loc[df["case"] == "weights", "sqnr_db"].item() == pytest.approx(ref.errors["weights"].sqnr_db)
