"""Issue 9's app findings replayed headless: every one ends in a message, never an ``st.exception`` element.

Hostile links, out-of-bound option values, float32-max and tiny tensors (the default sample replaced by them),
a page that raises, and a file with 200,000 refused arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
from app_helpers import metrics, run_app
from streamlit.testing.v1 import AppTest

from qcore.samples import default_sample
from ui import byte_cache, compute, data, state

FMAX = float(np.finfo(np.float32).max)
PAGES = (None, "pages/compare.py", "pages/whatif.py")


@pytest.mark.parametrize(
    ("query", "note"),
    [
        ({"source": "synthetic", "rows": "256", "cols": "16", "gran": "group", "axis": "1", "group": "1048576"}, None),
        ({"method": "easyquant", "opt_easyquant_steps": "100000000"}, "opt_easyquant_steps=100000000"),
        ({"method": "mse", "opt_mse_bins": "127"}, "opt_mse_bins=127"),
        ({"method": "entropy", "opt_entropy_bins": "100000000"}, "opt_entropy_bins=100000000"),
        ({"bits": "40", "group": "99999999999"}, "bits=40"),
        ({"source": "synthetic", "rows": "65536", "cols": "16384"}, None),  # not an option of the sliders
    ],
)
def test_hostile_links_are_corrected_with_a_message(query: dict, note: str | None) -> None:
    at = run_app(query)  # run_app asserts that no st.exception element is shown
    assert at.metric  # the page still ran, on in-bounds values
    if note:
        assert any(note in w.value for w in at.warning), [w.value for w in at.warning]
    for key, interval in state.bounded_widgets().items():
        if key in at.session_state:
            value = at.session_state[key]
            assert value is None or interval.accepts(value), (key, value)


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    "values",
    [
        np.array([[FMAX, -FMAX, 1.0, 0.5], [2.0, -FMAX, 3e38, 0.0]], np.float32),
        np.array([[1e-37, -5e-38], [2e-38, 0.0]], np.float32),
    ],
    ids=["float32-max", "tiny"],
)
def test_extreme_tensors_on_every_page(monkeypatch: pytest.MonkeyPatch, values: np.ndarray, page: str | None) -> None:
    real = data.load_sample

    def extreme(name: str):
        _, info = real(name)
        return values, info

    monkeypatch.setattr(data, "load_sample", extreme)
    byte_cache.clear()
    try:
        at = run_app({"sample": default_sample(), "gran": "tensor"}, page=page)
    finally:
        byte_cache.clear()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = " ".join(metrics(at).values()).lower()
    assert "nan" not in shown and "∞" not in shown and "inf" not in shown, shown


def test_a_failing_page_shows_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("a bug deep in the core at /srv/secret/path.py")

    monkeypatch.setattr(compute, "run", broken)
    at = AppTest.from_file(str(pytest.importorskip("app_helpers").APP), default_timeout=60)
    at.run()
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("internal error" in e and "RuntimeError" in e for e in errors), errors
    assert not any("/srv/secret" in e for e in errors)  # details go to the server log only


def test_skipped_arrays_are_summarised_in_one_caption() -> None:
    def app() -> None:
        from ui.sidebar import _skipped_summary

        _skipped_summary([f"array 't{i}' has dtype bool" for i in range(200_000)])

    at = AppTest.from_function(app, default_timeout=30).run()
    assert len(at.caption) == 1
    assert "199,997 more arrays skipped" in at.caption[0].value


def test_cli_line_of_a_tensor_name_that_was_not_utf8() -> None:
    settings = state.Settings(state.QuantScheme(), "minmax", (), "default")
    line, _ = state.cli_command(settings, "model.onnx", "\\xff")
    assert "--tensor '\\xff'" in line
