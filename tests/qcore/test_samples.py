"""The bundled samples: manifest and files agree, pairs form real layers, the data shows what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qcore.io import TensorLoadError, list_tensors
from qcore.samples import (
    DATA_DIR,
    SampleError,
    default_sample,
    list_samples,
    load_pair,
    load_sample,
    sample_info,
    sample_pairs,
    sample_sources,
)

MANIFEST = json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))
NAMES = [t["name"] for t in MANIFEST["tensors"]]
MAX_BYTES = 10 * 1024 * 1024


def test_names_unique_and_meaningful():
    assert len(NAMES) == len(set(NAMES))
    assert [s.name for s in list_samples()] == NAMES
    for name in NAMES:
        source, *_, leaf = name.split("/")
        assert source in MANIFEST["sources"] and leaf


@pytest.mark.parametrize("name", NAMES)
def test_manifest_entry_matches_file(name):
    array, info = load_sample(name)
    entry = next(t for t in MANIFEST["tensors"] if t["name"] == name)
    stored = {i.name: i for i in list_tensors(DATA_DIR / entry["file"])}[entry["key"]]
    assert list(stored.shape) == entry["shape"] == list(array.shape)
    assert stored.dtype == entry["dtype"] == info.dtype
    assert entry["dtype"] in ("float16", "float32")
    assert array.dtype == np.float32
    assert np.isfinite(array).all()
    assert info.value_range == (array.min(), array.max())
    assert entry["role"] in ("weight", "activation")
    assert entry["channel_axis"] is None or 0 <= entry["channel_axis"] < array.ndim
    assert info.license == MANIFEST["sources"][entry["source"]]["license"]
    assert entry["description"] and entry["label"] and entry["layer"]


def test_files_hold_exactly_the_manifest_tensors_and_fit_the_budget():
    files = {t["file"] for t in MANIFEST["tensors"]}
    for fname in files:
        keys = {i.name for i in list_tensors(DATA_DIR / fname)}
        assert keys == {t["key"] for t in MANIFEST["tensors"] if t["file"] == fname}
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir() if p.is_file())
    assert total <= MAX_BYTES


@pytest.mark.parametrize("pair", sample_pairs(), ids=lambda p: p.name)
def test_pairs_are_real_layers(pair):
    x, w, same = load_pair(pair.name)
    assert same == pair
    assert sample_info(pair.weight).role == "weight" and sample_info(pair.activation).role == "activation"
    assert sample_info(pair.weight).pair == sample_info(pair.activation).pair == pair.name
    assert pair.op == "Y = X W^T" and (pair.weight_channel_axis, pair.activation_channel_axis) == (0, 1)
    assert x.ndim == w.ndim == 2 and x.shape[1] == w.shape[1]
    y = x @ w.T
    assert y.shape == (x.shape[0], w.shape[0]) and np.isfinite(y).all()


def test_every_paired_tensor_is_in_its_pair():
    pairs = {p.name: p for p in sample_pairs()}
    for s in list_samples():
        if s.pair is not None:
            assert s.name in (pairs[s.pair].weight, pairs[s.pair].activation)
    assert len(pairs) >= 5  # 3 MiniLM layers + 3 digits-MLP layers


def test_default_sample_and_sources():
    array, info = load_sample(default_sample())
    assert info.role == "activation" and array.size > 0
    sources = sample_sources()
    assert sources["minilm"]["license"] == "Apache-2.0"
    assert "BSD-3-Clause" in sources["digits_mlp"]["license"]
    assert {s.role for s in list_samples("weight")} == {"weight"}
    assert {s.role for s in list_samples("activation")} == {"activation"}


# ---------------------------------------------------------------- the data shows what the descriptions say


def test_minilm_ffn_input_has_outlier_dims():
    x, _ = load_sample("minilm/layer3/ffn_up.input")
    col = np.abs(x).max(axis=0)
    assert col.max() > 10 * np.median(col)


def test_minilm_gelu_output_is_one_sided():
    x, _ = load_sample("minilm/layer3/ffn_down.input")
    assert x.min() >= -0.1701  # min of x * Phi(x) is -0.16997 at x = -0.7518
    assert x.max() > 50 * -x.min()


def test_minilm_attention_probs_are_softmax_rows():
    p, info = load_sample("minilm/layer3/attention.probs")
    assert info.dtype == "float32" and p.shape[0] == 12 and p.shape[1] == p.shape[2]
    assert p.min() >= 0 and p.max() <= 1
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)


def test_ffn_down_weight_rows_differ_by_an_order_of_magnitude():
    w, _ = load_sample("minilm/layer3/ffn_down.weight")
    row = np.abs(w).max(axis=1)
    assert row.max() > 10 * row.min()


def test_digits_activations_are_one_sided():
    for name in ("digits_mlp/fc1.input", "digits_mlp/fc2.input", "digits_mlp/fc3.input"):
        x, _ = load_sample(name)
        assert x.min() == 0.0 and (x == 0).mean() > 0.1
    pixels, _ = load_sample("digits_mlp/fc1.input")
    np.testing.assert_array_equal(pixels * 16, np.round(pixels * 16))  # 0..16 counts / 16
    assert pixels.max() == 1.0


# ---------------------------------------------------------------- errors


def test_unknown_names_are_clear_errors():
    with pytest.raises(SampleError, match=r"unknown sample 'minilm/layer3/ffn_up\.wieght'.*did you mean"):
        load_sample("minilm/layer3/ffn_up.wieght")
    with pytest.raises(SampleError, match="unknown sample pair 'nope'"):
        load_pair("nope")
    with pytest.raises(SampleError, match="role must be"):
        list_samples("bias")
    assert issubclass(SampleError, TensorLoadError)


def test_missing_or_inconsistent_data_dir(tmp_path: Path):
    with pytest.raises(SampleError, match="no sample manifest"):
        list_samples(data_dir=tmp_path / "none")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SampleError, match="cannot read"):
        list_samples(data_dir=bad)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["tensors"][0]["shape"] = [1, 2, 3]
    (wrong / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (wrong / MANIFEST["tensors"][0]["file"]).write_bytes((DATA_DIR / MANIFEST["tensors"][0]["file"]).read_bytes())
    with pytest.raises(SampleError, match="the manifest says"):
        load_sample(MANIFEST["tensors"][0]["name"], data_dir=wrong)
    malformed = tmp_path / "malformed"
    malformed.mkdir()
    del manifest["pairs"]
    (malformed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(SampleError, match="malformed"):
        list_samples(data_dir=malformed)


def test_no_streamlit_import():
    code = "import sys, qcore.samples; sys.exit(any(m.split('.')[0] == 'streamlit' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], cwd=DATA_DIR.parent).returncode == 0
