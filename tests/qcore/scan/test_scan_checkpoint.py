"""Checkpoint listing and reading: every format, and the broken cases as error rows."""

from __future__ import annotations

import json
import os

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

from qcore.io import TensorLoadError
from qcore.scan import TensorFilter, open_checkpoint, parse_config, read_tensor, scan

INT8 = [parse_config("bits=8,granularity=channel")]


def _values(ck):
    return {r.name: np.asarray(read_tensor(r), dtype=np.float32) for r in ck.tensors}


def test_sharded_bf16_reads_exactly(llama):
    index, arrays = llama
    ck = open_checkpoint(index)
    assert ck.errors == ()
    assert {r.name for r in ck.tensors} == set(arrays)
    ref = next(r for r in ck.tensors if r.name.endswith("q_proj.weight"))
    assert ref.dtype == "bfloat16" and ref.nbytes == ref.size * 2
    assert isinstance(read_tensor(ref), np.memmap)
    for name, got in _values(ck).items():
        np.testing.assert_array_equal(got, arrays[name].astype(ml_dtypes.bfloat16).astype(np.float32))
    # the folder opens through its index
    assert {r.name for r in open_checkpoint(index.parent).tensors} == set(arrays)


def test_float8_and_float16_safetensors(tmp_path):
    x = np.linspace(-3, 3, 64, dtype=np.float32).reshape(8, 8)
    path = tmp_path / "f8.safetensors"
    save_file({"a": x.astype(ml_dtypes.float8_e4m3fn), "b": x.astype(np.float16)}, str(path))
    got = _values(open_checkpoint(path))
    np.testing.assert_array_equal(got["a"], x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32))
    np.testing.assert_array_equal(got["b"], x.astype(np.float16).astype(np.float32))


def test_missing_and_corrupt_shards_are_error_rows_and_the_rest_is_scanned(llama):
    index, arrays = llama
    shards = sorted(index.parent.glob("*.safetensors"))
    shards[1].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    ck = open_checkpoint(index)
    assert len(ck.errors) == 1 and "not valid JSON" in ck.errors[0].reason
    report = scan(ck, INT8)
    assert report.ok_rows and report.error_rows[0]["file"] == shards[1].name
    os.remove(shards[1])
    ck = open_checkpoint(index)
    assert "not found" in ck.errors[0].reason and len(ck.tensors) == len(arrays) // 2 + len(arrays) % 2


def test_index_pointing_outside_its_folder_is_refused(tmp_path, llama):
    index, _arrays = llama
    outside = tmp_path / "outside.safetensors"
    save_file({"secret": np.ones((2, 2), np.float32)}, str(outside))
    data = json.loads(index.read_text())
    data["weight_map"]["secret"] = "../outside.safetensors"
    data["weight_map"]["etc"] = "/etc/passwd.safetensors"
    index.write_text(json.dumps(data))
    (index.parent / "link.safetensors").symlink_to(outside)
    data["weight_map"]["linked"] = "link.safetensors"
    index.write_text(json.dumps(data))
    ck = open_checkpoint(index)
    reasons = {e.where: e.reason for e in ck.errors}
    assert set(reasons) == {"../outside.safetensors", "/etc/passwd.safetensors", "link.safetensors"}
    assert all("outside" in r for r in reasons.values())
    assert "secret" not in {r.name for r in ck.tensors}


def test_index_naming_a_tensor_its_shard_lacks(llama):
    index, _ = llama
    data = json.loads(index.read_text())
    data["weight_map"]["ghost.weight"] = next(iter(data["weight_map"].values()))
    index.write_text(json.dumps(data))
    ck = open_checkpoint(index)
    assert [e.where for e in ck.errors] == ["ghost.weight"]


def test_nan_tensor_is_an_error_row(tmp_path):
    good = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    bad = good.copy()
    bad[3, 5] = np.nan
    path = tmp_path / "m.safetensors"
    save_file({"good": good, "bad": bad}, str(path))
    report = scan(open_checkpoint(path), INT8)
    by = {r["tensor"]: r for r in report.rows}
    assert by["good"]["status"] == "ok"
    assert by["bad"]["status"] == "error" and "NaN" in by["bad"]["error"]


def test_single_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x00" * 4)
    with pytest.raises(TensorLoadError, match=r"broken\.safetensors"):
        open_checkpoint(path)
    with pytest.raises(TensorLoadError, match="not found"):
        open_checkpoint(tmp_path / "nope.safetensors")


def test_npz_onnx_and_gguf(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 64)).astype(np.float32)
    np.savez(tmp_path / "m.npz", w=w)
    assert _values(open_checkpoint(tmp_path / "m.npz"))["w"].tolist() == w.tolist()

    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    graph = helper.make_graph([], "g", [], [], initializer=[numpy_helper.from_array(w, "init.w")])
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    np.testing.assert_array_equal(_values(open_checkpoint(tmp_path / "m.onnx"))["init.w"], w)

    import gguf

    q = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q4_0)
    writer = gguf.GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    writer.add_tensor("blk.0.attn_q.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q4_0)
    writer.add_tensor("blk.0.attn_k.weight", w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    ck = open_checkpoint(tmp_path / "m.gguf")
    types = {r.name: (r.dtype, r.shape) for r in ck.tensors}
    assert types == {"blk.0.attn_q.weight": ("Q4_0", (8, 64)), "blk.0.attn_k.weight": ("F32", (8, 64))}
    got = _values(ck)
    np.testing.assert_array_equal(got["blk.0.attn_q.weight"], gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q4_0))
    np.testing.assert_array_equal(got["blk.0.attn_k.weight"], w)


def test_torch_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    w = torch.randn(8, 16, dtype=torch.bfloat16)
    torch.save({"layer.weight": w, "step": 3}, tmp_path / "pytorch_model.bin")
    ck = open_checkpoint(tmp_path / "pytorch_model.bin")
    assert [(r.name, r.dtype) for r in ck.tensors] == [("layer.weight", "bfloat16")]
    np.testing.assert_array_equal(_values(ck)["layer.weight"], w.float().numpy())


def test_filter_selects_by_pattern_dims_and_size(llama):
    index, _arrays = llama
    ck = open_checkpoint(index)
    picked = [r.name for r in ck.tensors if TensorFilter("q_proj|norm", only_2d=True, min_size=100)(r)]
    assert sorted(picked) == ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"]


def test_onnx_initializers_are_decoded_one_at_a_time(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    from qcore.scan import checkpoint

    ws = {f"w{i}": np.full((4, 8), i, dtype=np.float32) for i in range(3)}
    graph = helper.make_graph([], "g", [], [], initializer=[numpy_helper.from_array(w, n) for n, w in ws.items()])
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    decoded = []
    to_array = numpy_helper.to_array
    monkeypatch.setattr(numpy_helper, "to_array", lambda t, *a, **k: decoded.append(t.name) or to_array(t, *a, **k))
    ck = open_checkpoint(tmp_path / "m.onnx")
    np.testing.assert_array_equal(checkpoint.read_tensor(ck.tensors[1]), ws["w1"])
    assert decoded == ["w1"]
