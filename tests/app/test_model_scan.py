"""Model scan page: scan the bundled checkpoint, table against qcore, plan download, Explore links, refused paths."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urljoin, urlparse

import numpy as np
import pytest
from app_helpers import ROOT, cards, charts, run_app

from qcore import analyze
from qcore.io import load_tensor
from qcore.scan import parse_config
from ui import checkpoint_paths, scan_view

PAGE = "pages/model_scan.py"


@pytest.fixture(scope="module")
def scanned():
    at = run_app(page=PAGE)
    at.button(key="scan_go").click().run()
    assert not at.exception, at.exception[0].message if at.exception else ""
    return at


def _table(at):
    return next(df.value for df in at.dataframe if "explore" in df.value.columns)


def test_scan_of_the_bundled_checkpoint_matches_analyze(scanned):
    df = _table(scanned)
    assert set(df["config"]) == {"INT8 per-channel minmax", "INT4 g128 minmax"}
    assert len(df) == 2 * 8  # the 2-D and larger tensors of data/minilm_l6.safetensors (all but one norm)
    row = df[(df["tensor"] == "minilm/layer3/ffn_up.weight") & (df["config"] == "INT4 g128 minmax")].iloc[0]
    x = load_tensor(ROOT / "data" / "minilm_l6.safetensors", "minilm/layer3/ffn_up.weight").values
    c = parse_config(scan_view.PRESETS["INT4 g128 minmax"])
    assert row["SQNR (dB)"] == pytest.approx(analyze(x, c.scheme, c.method).report.sqnr_db, rel=1e-6)
    assert row["layer"] == 3 and row["kind"] == "up"
    assert {"scan_heatmap", "scan_worst_bars", "scan_sizes"} <= set(charts(scanned))


def test_row_link_opens_explore_with_the_same_settings(scanned):
    df = _table(scanned)
    row = df[(df["tensor"] == "minilm/layer3/ffn_up.weight") & (df["config"] == "INT4 g128 minmax")].iloc[0]
    query = {k: v[0] for k, v in parse_qs(urlparse(row["explore"]).query).items()}
    # Explore is the default page, served at the app's root ("/explore" opens a "Page not found" dialog)
    assert urlparse(urljoin("http://host/model_scan", row["explore"])).path == "/"
    at = run_app(query=query)
    shown = {m.label: m.value for m in at.metric}
    x = load_tensor(ROOT / "data" / "minilm_l6.safetensors", "minilm/layer3/ffn_up.weight").values
    c = parse_config(scan_view.PRESETS["INT4 g128 minmax"])
    want = analyze(x, c.scheme.with_(axis=1), c.method).report.sqnr_db
    sqnr = next(v for k, v in shown.items() if "SQNR" in k)
    assert float(sqnr.split()[0]) == pytest.approx(want, abs=0.01)


def test_plan_download_is_valid_json_within_budget(scanned):
    dl = next(el for el in scanned.get("download_button") if el.proto.id.endswith("scan_plan_download"))
    assert dl.proto.label.startswith("Download the plan")
    sizes = {m.label: m.value for m in scanned.metric}
    assert float(sizes["Plan bits per weight"]) <= scanned.number_input(key="scan_bpw").value + 1e-9


def test_paths_outside_the_roots_are_refused(tmp_path):
    allowed = checkpoint_paths.roots()
    for text in ("../etc/passwd", "/etc/passwd", "data/../../x"):
        with pytest.raises(checkpoint_paths.PathRefused):
            checkpoint_paths.resolve_path(text, allowed)
    link = tmp_path / "root" / "out.safetensors"
    link.parent.mkdir()
    link.symlink_to(ROOT / "data" / "minilm_l6.safetensors")
    with pytest.raises(checkpoint_paths.PathRefused, match="outside"):
        checkpoint_paths.resolve_path("out.safetensors", [tmp_path / "root"])
    assert checkpoint_paths.resolve_path("minilm_l6.safetensors", allowed) == (ROOT / "data" / "minilm_l6.safetensors")
    at = run_app(query={"scan_path": "/etc/passwd"}, page=PAGE)
    assert any("outside the allowed folders" in e.value for e in at.error)
    assert at.button(key="scan_go").disabled


def test_heatmap_is_pre_aggregated_by_layer_and_kind(scanned):
    trace = charts(scanned)["scan_heatmap"]["data"][0]
    assert trace["type"] == "heatmap" and len(trace["y"]) == len(set(trace["y"]))
    df = _table(scanned)
    shown = scanned.selectbox(key="scan_view").value
    want = df[(df["config"] == shown) & (df["kind"] == "up")]["SQNR (dB)"].mean()
    z = np.asarray(trace["z"], dtype=float)
    assert z[trace["y"].index("up"), list(trace["x"]).index("3")] == pytest.approx(want)
    # the word embeddings sit in no block: their own column, first and named, never "None"
    assert list(trace["x"]) == [scan_view.NO_LAYER, "3"]
    emb = df[(df["config"] == shown) & (df["kind"] == "embed")]["SQNR (dB)"].mean()
    assert z[trace["y"].index("embed"), 0] == pytest.approx(emb)


def test_a_new_session_shows_the_cached_scan_at_once(scanned):
    at = run_app(page=PAGE)  # no click: the same files, configurations and filter were scanned by another session
    assert any("from the cache" in c.value for c in at.caption)
    assert len(_table(at)) == len(_table(scanned))


def test_uploads_keep_a_bounded_folder_least_recently_used_first(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_view.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(scan_view, "UPLOAD_DIR_BYTES", 250)
    first = scan_view.upload_path(b"a" * 100, "a.npz")
    second = scan_view.upload_path(b"b" * 100, "b.npz")
    assert first.exists() and second.exists()
    os.utime(first, (1, 1))  # the oldest ...
    os.utime(second, (2, 2))
    assert scan_view.upload_path(b"a" * 100, "a.npz") == first  # ... until reused: now the most recent
    third = scan_view.upload_path(b"c" * 100, "c.npz")  # 300 bytes would not fit: the least recently used goes
    assert third.exists() and first.exists() and not second.exists()
    with pytest.raises(scan_view.PathRefused, match="kept for uploads"):
        scan_view.upload_path(b"d" * 251, "d.npz")


def test_a_stopped_scan_shows_its_partial_results_uncached(monkeypatch):
    import streamlit as st

    from qcore.scan import runner

    calls = []

    def interrupted(ref, configs):  # the third tensor's turn: the run stops, as the Stop button's rerun does
        calls.append(ref.name)
        if len(calls) == 3:
            st.stop()
        return scan_tensor(ref, configs)

    scan_tensor = runner.scan_tensor
    monkeypatch.setattr(runner, "scan_tensor", interrupted)
    at = run_app(query={"scan_filter": "layer[0-5]/"}, page=PAGE)  # not the cached default scan
    at.button(key="scan_go").click().run()
    at.run()  # the next run (the Stop click's) shows what the session kept
    assert not at.exception
    assert any("Partial results: 2 of 7 tensors scanned" in w.value for w in at.warning), [w.value for w in at.warning]
    assert set(_table(at)["tensor"]) == set(calls[:2])
    configs = [parse_config(scan_view.PRESETS[c]) for c in at.multiselect(key="scan_configs").value]
    path = ROOT / "data" / "minilm_l6.safetensors"
    select = scan_view.TensorFilter("layer[0-5]/", True, 0)
    assert scan_view.cached_report(path, configs, select) is None


def test_a_row_of_a_checkpoint_on_a_path_opens_in_explore_by_that_path(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(5)
    w = (rng.standard_t(4, (96, 64)) * 0.02).astype(np.float32)
    save_file({"model.layers.0.mlp.up_proj.weight": w}, str(tmp_path / "model.safetensors"))
    monkeypatch.setenv(checkpoint_paths.ROOTS_ENV, str(tmp_path))
    at = run_app(query={"scan_path": str(tmp_path)}, page=PAGE)
    at.button(key="scan_go").click().run()
    df = _table(at)
    row = df[df["config"] == "INT4 g128 minmax"].iloc[0]
    query = {k: v[0] for k, v in parse_qs(urlparse(row["explore"]).query).items()}
    assert (query["source"], query["ckpt_tensor"]) == ("path", "model.layers.0.mlp.up_proj.weight")
    explore = run_app(query=query)
    sqnr = next(v for k, v in cards(explore).items() if "SQNR" in k)
    c = parse_config(scan_view.PRESETS["INT4 g128 minmax"])
    assert float(sqnr.split()[0]) == pytest.approx(
        analyze(w, c.scheme.with_(axis=1), c.method).report.sqnr_db, abs=0.01
    )
    assert any("model.safetensors : model.layers.0.mlp.up_proj.weight" in m.value for m in explore.markdown)
    monkeypatch.delenv(checkpoint_paths.ROOTS_ENV)  # the same link once the folder is no longer allowed: refused
    refused = run_app(query=query)
    assert any("outside the allowed folders" in e.value for e in refused.error)


def test_uploads_cannot_be_linked_and_the_page_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(scan_view.tempfile, "gettempdir", lambda: str(tmp_path))
    up = scan_view.upload_path((ROOT / "data" / "minilm_l6.safetensors").read_bytes(), "m.safetensors")
    assert scan_view.linkable(up) is None
    assert scan_view.linkable(ROOT / "data" / "minilm_l6.safetensors") == ROOT / "data" / "minilm_l6.safetensors"
    row = {"tensor": "not.a.sample", "shape": [4, 4]}
    assert scan_view.explore_link(row, parse_config("bits=8"), set(), None) is None


def test_explore_path_source_checks_the_budget_before_reading(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    from qcore.io import TensorLoadError
    from qcore.scan import checkpoint

    save_file({"big": np.zeros((1024, 1024), dtype=np.float32)}, str(tmp_path / "m.safetensors"))
    monkeypatch.setenv(checkpoint_paths.ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv("QCORE_MEMORY_BUDGET_MB", "16")  # 2 MiB per tensor: the 4 MiB tensor is over it
    reads = []
    monkeypatch.setattr(checkpoint, "_read", lambda ref: reads.append(ref.name))
    with pytest.raises(ValueError, match="over the per-tensor limit"):
        checkpoint_paths.checkpoint_tensor(str(tmp_path / "m.safetensors"), "big")
    assert reads == []  # refused before anything was read
    with pytest.raises(TensorLoadError, match=r"no tensor named 'small'.*'big'"):
        checkpoint_paths.checkpoint_tensor(str(tmp_path / "m.safetensors"), "small")


def test_tensors_a_configuration_cannot_quantize_are_listed_not_dropped():
    # with 1-D tensors included, the LayerNorm gain (384,) is skipped by the per-channel and per-group presets
    at = run_app(page=PAGE, query={"scan_2d": "false"})
    at.button(key="scan_go").click().run()
    assert not at.exception
    skipped = next(df.value for df in at.dataframe if "reason" in df.value.columns and "configuration" in df.value)
    assert set(skipped["tensor"]) == {"minilm/layer3/ffn_norm.weight"} and len(skipped) == 2
    assert any(e.label.startswith("Not applicable: 2 tensor × configuration pair(s), 1 tensor(s)") for e in at.expander)
    assert "minilm/layer3/ffn_norm.weight" not in set(_table(at)["tensor"])


def test_explore_path_source_without_a_tensor_name_lists_the_names():
    at = run_app(query={"source": "path", "ckpt": "data/minilm_l6.safetensors"})
    hint = next(c.value for c in at.caption if c.value.startswith("Give a tensor name"))
    assert "minilm/layer3/ffn_norm.weight" in hint and "(9 in all; Model scan lists every one)" in hint
    assert not at.error


def _parent(node, target):
    """The block whose direct child is ``target`` (AppTest's element tree, searched from ``node``)."""
    for child in getattr(node, "children", {}).values():
        if child is target:
            return node
        if (found := _parent(child, target)) is not None:
            return found
    return None


def test_stop_sits_beside_scan_in_one_row():
    at = run_app(page=PAGE)
    row = _parent(at.main, at.button(key="scan_go"))
    assert row is _parent(at.main, at.button(key="scan_stop"))
    assert row.proto.flex_container.direction == row.proto.flex_container.HORIZONTAL
