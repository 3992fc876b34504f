"""AppTest of the two outlier lessons on the Learn page: they run through every step and show qcore's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from qcore.layer_methods.lessons import outlier_story, smoothing_steps
from qcore.samples import load_pair

ROOT = Path(__file__).resolve().parents[2]


def page(**query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "learn.py"), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("lesson", ["outliers", "smoothquant"])
def test_every_step_runs(lesson: str) -> None:
    at = page(lesson=lesson)
    assert not at.exception and not at.error
    for k in range(1, 5):
        at.slider(key="step").set_value(k).run()
        assert not at.exception and not at.error
        assert at.get("plotly_chart") or at.dataframe


def test_outlier_lesson_numbers() -> None:
    x, w, _ = load_pair("minilm/layer3/ffn_up")
    story = outlier_story(w, x, 6.0)
    at = page(lesson="outliers", step="1")
    assert f"{story.outliers.size} of 384 input columns" in _text(at)
    at = page(lesson="outliers", step="4")
    df = at.dataframe[0].value
    assert df["output SQNR (dB)"].tolist() == pytest.approx([e.sqnr_db for e in story.errors.values()])
    assert f"**{story.errors['LLM.int8()'].sqnr_db:.1f} dB**" in _text(at)
    assert "“AI模型的量化”" in _text(at)  # the source, by its title


def test_smoothquant_lesson_follows_alpha() -> None:
    x, w, _ = load_pair("minilm/layer3/ffn_up")
    at = page(lesson="smoothquant", step="4", ls_alpha="0.8")
    m = smoothing_steps(w, x, 0.8)
    df = at.dataframe[0].value
    assert df["output SQNR (dB)"].tolist() == pytest.approx([m.plain.sqnr_db, m.smoothed.sqnr_db])
