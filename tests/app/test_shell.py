"""The shell: every page runs, the URL restores a state, the role presets, uploads and their errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from app_helpers import expected, metrics, run_app

from qcore import QuantScheme, analyze
from ui.text import metric_values

PAGES = ("pages/explore.py", "pages/compare.py", "pages/whatif.py", "pages/learn.py")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_with_the_default_sample(page: str) -> None:
    at = run_app(page=page)
    assert not at.exception
    assert at.sidebar.slider(key="bits").value == 8  # the shared sidebar is drawn on every page


def test_query_params_restore_sample_settings_and_page() -> None:
    query = {
        "sample": "digits_mlp/fc2.weight",
        "bits": "4",
        "scheme": "symmetric",
        "gran": "channel",
        "axis": "0",
        "method": "percentile",
        "opt_percentile_percentile": "99.9",
    }
    at = run_app(query)
    assert at.selectbox(key="sample").value == "digits_mlp/fc2.weight"
    assert at.slider(key="bits").value == 4
    assert at.selectbox(key="method").value == "percentile"
    a = expected("digits_mlp/fc2.weight", method="minmax", bits=4, granularity="channel", symmetric=True)
    from qcore.samples import load_sample

    x, _ = load_sample("digits_mlp/fc2.weight")
    a = analyze(x, QuantScheme(bits=4, granularity="channel", axis=0), "percentile", percentile=99.9)
    assert metrics(at) == metric_values(a.report, a.params)
    at2 = run_app(query, page="pages/compare.py")
    assert at2.slider(key="bits").value == 4 and at2.title[0].value == "Compare calibration methods"


def test_role_toggle_sets_the_role_defaults() -> None:
    at = run_app()
    at.radio(key="role").set_value("weight").run()
    assert at.radio(key="scheme").value == "symmetric"
    assert at.selectbox(key="gran").value == "channel"
    assert at.selectbox(key="method").value == "minmax"
    at.radio(key="role").set_value("activation").run()
    assert (at.radio(key="scheme").value, at.selectbox(key="gran").value) == ("asymmetric", "tensor")
    assert at.selectbox(key="method").value == "entropy"


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_upload_is_analysed_and_a_bad_upload_keeps_the_last_good_tensor() -> None:
    at = run_app({"source": "upload", "gran": "tensor", "method": "minmax", "scheme": "symmetric"})
    w = np.random.default_rng(3).standard_normal((32, 48)).astype(np.float32)
    at.file_uploader(key="upload").set_value(("w.npy", _npy(w), "application/octet-stream")).run()
    assert not at.exception and not at.error
    a = analyze(w, QuantScheme(), "minmax")
    good = metrics(at)
    assert good == metric_values(a.report, a.params)

    at.file_uploader(key="upload").set_value(("broken.npy", b"not a numpy file", "application/octet-stream")).run()
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert errors and "broken.npy" in errors[0] and "Accepted" in errors[0]
    assert metrics(at) == good  # the last good tensor stays loaded

    at.file_uploader(key="upload").set_value(("empty.npy", _npy(np.zeros((0,), np.float32)), "x")).run()
    assert not at.exception and "empty.npy" in at.sidebar.error[0].value
    assert metrics(at) == good


def test_synthetic_source_is_reproducible_from_the_url() -> None:
    from qcore.synthetic import generate

    at = run_app(
        {
            "source": "synthetic",
            "dist": "laplace",
            "rows": "32",
            "cols": "64",
            "seed": "7",
            "gran": "tensor",
            "method": "minmax",
            "scheme": "symmetric",
        }
    )
    x = generate("laplace", (32, 64), 7)
    a = analyze(x, QuantScheme(), "minmax")
    assert metrics(at) == metric_values(a.report, a.params)


def test_choosing_a_sample_applies_its_role_and_channel_axis() -> None:
    at = run_app()
    at.selectbox(key="sample").set_value("digits_mlp/fc1.weight").run()
    assert at.radio(key="role").value == "weight"
    assert (at.radio(key="scheme").value, at.selectbox(key="gran").value) == ("symmetric", "channel")
    assert at.number_input(key="axis").value == 0
    x, _ = __import__("qcore.samples", fromlist=["load_sample"]).load_sample("digits_mlp/fc1.weight")
    a = analyze(x, QuantScheme(granularity="channel", axis=0), "minmax")
    assert metrics(at) == metric_values(a.report, a.params)


def test_multi_tensor_upload_offers_a_tensor_picker() -> None:
    a0 = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    a1 = np.random.default_rng(5).laplace(size=(16, 32)).astype(np.float16)
    buf = io.BytesIO()
    np.savez(buf, first=a0, second=a1)
    at = run_app({"source": "upload", "gran": "tensor", "method": "minmax", "scheme": "symmetric"})
    at.file_uploader(key="upload").set_value(("two.npz", buf.getvalue(), "application/octet-stream")).run()
    assert at.selectbox(key="upload_tensor").options == ["first", "second"]
    at.selectbox(key="upload_tensor").set_value("second").run()
    assert not at.exception
    a = analyze(a1.astype(np.float32), QuantScheme(), "minmax")
    assert metrics(at) == metric_values(a.report, a.params)
    assert any("stored as float16" in c.value and "16×32" in c.value for c in at.sidebar.caption)


def test_sidebar_settings_survive_a_page_switch() -> None:
    at = run_app()
    at.slider(key="bits").set_value(5).run()
    at.radio(key="scheme").set_value("symmetric").run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert (at.slider(key="bits").value, at.radio(key="scheme").value) == (5, "symmetric")
    assert at.title[0].value == "Compare calibration methods"


def test_settings_survive_a_visit_to_learn() -> None:
    at = run_app()
    at.slider(key="bits").set_value(5).run()
    at.switch_page("pages/learn.py").run()
    assert not at.exception
    at.switch_page("pages/explore.py").run()
    assert not at.exception
    assert at.slider(key="bits").value == 5


def test_imports_run_one_way_pages_router_sidebar() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "ui"
    for name in ("sidebar.py", "state.py", "data.py"):
        tree = ast.parse((root / name).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "router" not in imported and "ui.router" not in modules, name


def test_weight_upload_defaults_follow_the_layout() -> None:
    at = run_app()
    w = np.random.default_rng(5).standard_normal((16, 8, 3)).astype(np.float32)
    at.radio(key="source").set_value("upload").run()
    at.file_uploader(key="upload").set_value(("w.npy", _npy(w), "application/octet-stream")).run()
    at.radio(key="role").set_value("weight").run()
    assert not at.exception
    # weights (out, in, ...): channels are axis 0, groups run along the last axis
    assert (at.selectbox(key="gran").value, at.number_input(key="axis").value) == ("channel", 0)
    assert any("axis 0, output channels" in c.value for c in at.sidebar.caption)
    at.selectbox(key="gran").set_value("group").run()
    assert at.number_input(key="axis").value == 2
    # activations (tokens, features): channels along the feature (last) axis
    at.radio(key="role").set_value("activation").run()
    at.selectbox(key="gran").set_value("channel").run()
    assert at.number_input(key="axis").value == 2


def test_a_new_tensor_resets_an_axis_that_no_longer_fits() -> None:
    at = run_app({"source": "upload", "gran": "channel"})
    at.file_uploader(key="upload").set_value(("a.npy", _npy(np.ones((4, 5, 6), np.float32)), "x")).run()
    at.number_input(key="axis").set_value(2).run()
    rng = np.random.default_rng(1)
    at.file_uploader(key="upload").set_value(("b.npy", _npy(rng.standard_normal((4, 6), np.float32)), "x")).run()
    assert not at.exception and not at.error
    assert at.number_input(key="axis").value == 1  # an activation's feature axis, the last of (4, 6)
