"""AppTest of the Learn page: every lesson runs, shows the core's numbers, follows its inputs and the URL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from qcore import QuantScheme, analyze
from qcore.lessons import SEED_001_WEIGHTS, admm_replay, cross_terms, kl_search, worked_example

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ("round-clip", "sym-asym", "kl", "admm", "weights-acts")


def page(**query: str | list[str]) -> AppTest:
    """The page run directly: it draws the shared frame and sidebar itself (see ui/router.py)."""
    at = AppTest.from_file(str(ROOT / "pages" / "learn.py"), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def array(value) -> np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def figure(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_runs_and_steps_to_the_end(lesson: str) -> None:
    at = page(lesson=lesson, kl_n="10,000")
    assert not at.exception and not at.error
    assert at.selectbox(key="lesson").value == lesson
    step = at.slider(key="step")
    step.set_value(int(step.max)).run()
    assert not at.exception and not at.error
    assert at.get("plotly_chart")


def test_seed_001_tables_are_the_core_numbers() -> None:
    at = page(lesson="sym-asym", step="5")
    assert at.slider(key="step").value == 5
    sym, asym = at.dataframe[0].value, at.dataframe[1].value
    core_sym, core_asym = worked_example(SEED_001_WEIGHTS, 4, True), worked_example(SEED_001_WEIGHTS, 4, False)
    codes = "q"
    np.testing.assert_array_equal(sym[codes], core_sym.trace.codes)
    np.testing.assert_array_equal(asym[codes], core_asym.trace.codes)
    np.testing.assert_array_equal(asym[codes], [8, 9, 12, 15, 14, 5, 2, 0])
    at.slider(key="step").set_value(3).run()
    assert any(r"z = \mathrm{round}(7.5) = 8" in latex.value for latex in at.latex)


def test_changing_bits_changes_the_number_line() -> None:
    at = page(lesson="round-clip", step="3")
    before = figure(at)
    at.slider(key="ln_bits").set_value(5).run()
    after = figure(at)
    assert not at.exception
    grid = [t for t in after["data"] if str(t.get("name", "")).startswith("grid")]
    assert grid and "32 values" in grid[0]["name"]
    assert before != after


def test_kl_lesson_shows_the_calibrators_threshold() -> None:
    at = page(lesson="kl", kl_n="10,000", kl_bits="4")
    x = np.random.default_rng(0).laplace(size=10_000).astype(np.float32)
    search = kl_search(x, 4)
    threshold = float(analyze(x, QuantScheme(bits=4), "entropy").calibration.hi[0])
    # the lesson opens at stage 1; the candidate slider starts at the chosen candidate
    assert at.slider(key="step").value == 1
    assert at.slider(key="cand").value == search.chosen + 1
    text = " ".join(c.value for c in at.caption)
    shown = float(re.search(r"Chosen: T = ([0-9.e+-]+[0-9])", text).group(1))
    assert shown == pytest.approx(threshold, rel=1e-4)


def test_kl_stages_draw_p_minus_q_and_mark_infinite_kl() -> None:
    at = page(lesson="kl", kl_n="10,000", kl_bits="8", step="4")
    names = [t.get("name") for t in figure(at)["data"]]
    assert names == ["P (tail folded)", "Q (merged)", "P − Q"]
    at.slider(key="step").set_value(5).run()
    spec = figure(at)
    x = np.random.default_rng(0).laplace(size=10_000).astype(np.float32)
    search = kl_search(x, 8)
    shaded = [s for s in spec["layout"].get("shapes", []) if s.get("type") == "rect"]
    assert (~np.isfinite(search.kl)).any() == bool(shaded)


def test_step_resets_when_the_lesson_changes() -> None:
    at = page(lesson="sym-asym", step="5")
    assert at.slider(key="step").value == 5
    at.selectbox(key="lesson").set_value("kl").run()
    assert not at.exception
    assert at.slider(key="step").value == 1
    at.button(key="step_next").click().run()
    assert at.slider(key="step").value == 2
    at.button(key="step_prev").click().run()
    assert at.slider(key="step").value == 1


def test_sources_are_named_by_title_and_author() -> None:
    at = page(lesson="sym-asym")
    text = " ".join(c.value for c in at.caption) + " ".join(e.value for e in at.markdown)
    assert "Tommy Huang" in text and "seed" not in text.lower()


def test_admm_lesson_follows_the_calibrator() -> None:
    at = page(lesson="admm", ad_bits="3")
    replay = admm_replay(SEED_001_WEIGHTS, 3)
    assert at.slider(key="step").max == len(replay.alphas)
    # the slider and the chart count iterations the same way (from 1)
    assert list(array(figure(at)["data"][0]["x"])) == list(range(1, len(replay.alphas) + 1))
    assert any(f"α = {replay.scale:.6g}" in c.value for c in at.main.caption)
    table = at.dataframe[0].value
    np.testing.assert_array_equal(table["q"], replay.step(0)[0].codes)


def test_cross_terms_table_and_toggle() -> None:
    at = page(lesson="weights-acts", step="3", wa_w="0.6, -1.4, 0.2", wa_x="0, 1, 3", wa_bits="4")
    table = at.dataframe[0].value
    ct = cross_terms([0.6, -1.4, 0.2], [0.0, 1.0, 3.0], 4, True, False)
    np.testing.assert_allclose(table["value"], [t.value for t in ct.terms])
    np.testing.assert_allclose(table["value"], [0.16, 0.0, -0.96, 0.0], atol=1e-9)
    at.toggle(key="wa_wsym").set_value(False).run()
    assert list(at.dataframe[0].value["present"]) == [True, True, True, True]


def test_bad_vector_shows_an_error_and_real_layer_fills_it() -> None:
    at = page(lesson="round-clip", ln_x="1, two, 3")
    assert not at.exception
    assert any("not a number" in e.value for e in at.error)
    at.button(key="rc_real").click().run()
    assert not at.exception and not at.error
    assert len(at.text_input(key="ln_x").value.split(",")) == 12


def test_mismatched_lengths_show_an_error() -> None:
    at = page(lesson="weights-acts", wa_w="1, 2", wa_x="1")
    assert not at.exception
    assert any("same length" in e.value for e in at.error)


def test_cross_terms_on_a_real_layer_reproduce_its_output() -> None:
    from qcore.samples import load_pair

    at = page(lesson="weights-acts", step="3")
    at.button(key="wa_real").click().run()
    assert not at.exception and not at.error
    x, w, _ = load_pair("digits_mlp/fc2")
    shown = next(latex.value for latex in at.latex if "float" in latex.value)
    y_float = float(re.search(r"y = (-?[0-9.e+-]+)", shown).group(1))
    # the real layer's output Y[0, 0] = <W[0], X[0]>; the text box holds the rows to 4 significant digits
    assert y_float == pytest.approx(float(w[0].astype(np.float64) @ x[0].astype(np.float64)), rel=1e-3, abs=1e-3)
    assert len(at.text_input(key="wa_w").value.split(",")) == w.shape[1]


def test_kl_on_the_real_layer_explains_the_difference_with_explore() -> None:
    from qcore.samples import default_sample, load_sample

    at = page(lesson="kl", kl_src="sample", step="5")
    assert not at.exception
    x, _ = load_sample(default_sample())
    p = analyze(x, QuantScheme(symmetric=False), "entropy").params
    text = " ".join(c.value for c in at.caption)
    assert "asymmetric" in text and f"{float(p.clip_max[0]):.4g}" in text
    assert f"T = {kl_search(x, 8).thresholds[kl_search(x, 8).chosen]:.4g}" in text
