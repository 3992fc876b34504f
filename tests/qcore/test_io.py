"""Loaders: round trips for every format, and corrupt or hostile files ending as TensorLoadError."""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from qcore.io import TensorLoadError, list_tensors, load_tensor, load_tensors
from qcore.io.safetensors_files import MAX_HEADER

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 6)).astype(np.float32)


class Evil:
    """Pickles to a call of os.system: loading it must never run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def both(path: Path, name: str | None = None):
    """Load from the path and from the bytes; both must agree."""
    from_path = load_tensor(path, name)
    from_bytes = load_tensor(path.read_bytes(), name, filename=path.name)
    assert from_path.name == from_bytes.name and from_path.dtype == from_bytes.dtype
    np.testing.assert_array_equal(from_path.values, from_bytes.values)
    assert from_path.values.dtype == np.float32
    return from_path


def load_error(source, name=None, **kw) -> str:
    with pytest.raises(TensorLoadError) as info:
        load_tensor(source, name, **kw)
    return str(info.value)


# ---------------------------------------------------------------- npy / npz


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int8", "uint8", "int32"])
def test_npy_round_trip_converts_to_float32(tmp_path, dtype):
    a = (W * 10).astype(dtype)
    np.save(tmp_path / "w.npy", a)
    t = both(tmp_path / "w.npy")
    assert t.name == "w" and t.dtype == dtype and t.shape == (4, 6)
    np.testing.assert_array_equal(t.values, a.astype(np.float32))


def test_npy_of_bfloat16_is_raw_void_and_refused(tmp_path):
    """np.save writes ml_dtypes' bfloat16 as raw 2-byte voids: the type is lost, so it is refused, not guessed."""
    np.save(tmp_path / "b.npy", W.astype(ml_dtypes.bfloat16))
    assert list_tensors(tmp_path / "b.npy")[0].dtype == "void16"
    assert "not a real number type" in load_error(tmp_path / "b.npy")


def test_npz_order_names_and_skipped(tmp_path):
    np.savez(tmp_path / "m.npz", w=W, steps=np.arange(3), mask=np.array([True, False]))
    assert [(i.name, i.shape, i.dtype) for i in list_tensors(tmp_path / "m.npz")] == [
        ("w", (4, 6), "float32"),
        ("steps", (3,), "int64"),
        ("mask", (2,), "bool"),
    ]
    assert both(tmp_path / "m.npz").name == "w"
    np.testing.assert_array_equal(both(tmp_path / "m.npz", "steps").values, [0, 1, 2])
    loaded = load_tensors(tmp_path / "m.npz")
    assert list(loaded.tensors) == ["w", "steps"] and list(loaded.skipped) == ["mask"]
    assert "bool" in load_error(tmp_path / "m.npz", "mask")


def test_compressed_npz(tmp_path):
    np.savez_compressed(tmp_path / "c.npz", a=W)
    np.testing.assert_array_equal(both(tmp_path / "c.npz").values, W)


def test_pickled_object_npy_is_refused_without_running_it(tmp_path, write_pickled_npy):
    marker = tmp_path / "pwned"
    write_pickled_npy(tmp_path / "p.npy", [Evil(marker), 1])
    assert list_tensors(tmp_path / "p.npy")[0].dtype == "object"
    msg = load_error(tmp_path / "p.npy")
    assert "pickle" in msg
    assert "pickle" in load_error((tmp_path / "p.npy").read_bytes(), filename="p.npy")
    assert not marker.exists()


def test_pickled_member_of_npz_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    np.savez(tmp_path / "p.npz", obj=np.array([Evil(marker)], dtype=object))
    assert "pickle" in load_error(tmp_path / "p.npz", "obj")
    assert not marker.exists()


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "t.npy", W)
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-10])
    assert "t.npy" in load_error(tmp_path / "t.npy")
    load_error(data[:-10], filename="t.npy")
    load_error(data[:5], filename="t.npy")
    load_error(b"", filename="t.npy")


def test_npy_hostile_headers():
    huge_len = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{"
    assert "npy" in load_error(huge_len, filename="h.npy")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616,), }"
    header = header.ljust(118) + "\n"
    overflow = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 16
    load_error(overflow, filename="o.npy")
    not_python = b"\x93NUMPY\x01\x00" + struct.pack("<H", 12) + b"__import__()"
    load_error(not_python, filename="x.npy")


def _patch_central_size(data: bytes, size: int) -> bytes:
    """Set the declared uncompressed size of every central-directory entry (a zip-bomb-like lie)."""
    out = bytearray(data)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        out[pos + 24 : pos + 28] = struct.pack("<I", size)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def test_npz_bomb_declared_size_is_refused_before_inflating():
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.zeros(1000, np.float32))
    bomb = _patch_central_size(buf.getvalue(), 0xFFFFFFF0)
    msg = load_error(bomb, filename="bomb.npz")
    assert "limit" in msg and "zip bomb" in msg


def test_npz_highly_compressible_member_over_the_cap():
    buf = io.BytesIO()
    np.savez_compressed(buf, zeros=np.zeros(1 << 20, np.float32))  # 4 MiB inflated, a few KiB stored
    assert len(buf.getvalue()) < 100_000
    assert "limit" in load_error(buf.getvalue(), filename="z.npz", max_bytes=1 << 20)
    assert load_tensor(buf.getvalue(), filename="z.npz").shape == (1 << 20,)


def test_npz_member_shorter_than_its_header(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        member = io.BytesIO()
        np.save(member, np.zeros(100, np.float32))
        zf.writestr("a.npy", member.getvalue()[:200])
    assert "truncated" in load_error(buf.getvalue(), filename="a.npz")


def test_npz_without_arrays_and_garbage():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert "no arrays" in load_error(buf.getvalue(), filename="e.npz")
    with pytest.raises(TensorLoadError, match="no arrays"):
        load_tensors(buf.getvalue(), filename="e.npz")
    load_error(b"PK\x03\x04 not a zip", filename="g.npz")


# ---------------------------------------------------------------- csv


def test_csv_with_header_and_nan(tmp_path):
    (tmp_path / "acts.csv").write_text("a,b,c\n1,2,3\n4,nan,-6.5\n")
    t = both(tmp_path / "acts.csv")
    assert t.name == "acts" and t.shape == (2, 3)
    np.testing.assert_array_equal(t.values, np.array([[1, 2, 3], [4, np.nan, -6.5]], np.float32))


def test_csv_single_column_is_1d(tmp_path):
    (tmp_path / "v.csv").write_text("\ufeff0.1\n0.2\n1.2\n")
    np.testing.assert_array_equal(both(tmp_path / "v.csv").values, np.array([0.1, 0.2, 1.2], np.float32))


def test_csv_errors(tmp_path):
    msg = load_error(b"1,2\n3,abc\n", filename="bad.csv")
    assert "numeric" in msg and "abc" in msg
    assert "no numbers" in load_error(b"\n\n", filename="e.csv")
    assert "header" in load_error(b"a,b\n", filename="h.csv")
    load_error(b"1,2\n3\n", filename="ragged.csv")


# ---------------------------------------------------------------- safetensors


def _safetensors(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    from safetensors.numpy import save_file

    arrays = {
        "f32": W,
        "f16": W.astype(np.float16),
        "bf16": W.astype(ml_dtypes.bfloat16),
        "i8": (W * 20).astype(np.int8),
        "scalar": np.array(2.5, np.float32),
    }
    path = tmp_path / "m.safetensors"
    save_file(arrays, str(path), metadata={"format": "np"})
    return path, arrays


def test_safetensors_matches_the_reference_reader(tmp_path):
    from safetensors import safe_open

    path, arrays = _safetensors(tmp_path)
    infos = {i.name: i for i in list_tensors(path)}
    assert {n: (i.shape, i.dtype) for n, i in infos.items()} == {n: (a.shape, a.dtype.name) for n, a in arrays.items()}
    with safe_open(str(path), framework="np") as f:
        for name in arrays:
            ref = np.asarray(f.get_tensor(name)).astype(np.float32)
            t = both(path, name)
            assert t.shape == arrays[name].shape and t.dtype == arrays[name].dtype.name
            np.testing.assert_array_equal(t.values, ref)
    loaded = load_tensors(path)
    assert loaded.metadata == {"format": "np"} and set(loaded.tensors) == set(arrays)


def test_bf16_conversion_is_exact_bit_shift(tmp_path):
    path, arrays = _safetensors(tmp_path)
    bits = arrays["bf16"].view(np.uint16)
    expected = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(load_tensor(path, "bf16").values, expected)


def _raw_safetensors(header: dict | bytes, data: bytes = b"", length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


@pytest.mark.parametrize(
    ("blob", "needle"),
    [
        (b"\x01\x00", "8-byte"),
        (_raw_safetensors({}, length=2**62), "limit"),
        (_raw_safetensors({}, length=MAX_HEADER + 1), "limit"),
        (_raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, length=500), "past the end"),
        (_raw_safetensors(b"[1, 2]"), "JSON object"),
        (_raw_safetensors(b"{not json"), "JSON"),
        (_raw_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "outside"),
        (_raw_safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\0" * 16), "match"),
        (_raw_safetensors({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "shape"),
        (_raw_safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}, b"\0" * 8), "outside"),
        (_raw_safetensors({"a": {"dtype": "F32", "shape": [1]}}, b"\0" * 4), "exactly"),
        (
            _raw_safetensors(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                b"\0" * 12,
            ),
            "overlap",
        ),
        (_raw_safetensors({"__metadata__": {"k": 1}}), "__metadata__"),
        (_raw_safetensors({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\0\1"), "bool"),
        (_raw_safetensors({}), "no arrays"),
    ],
)
def test_safetensors_hostile_headers(tmp_path, blob, needle):
    assert needle in load_error(blob, filename="x.safetensors")
    (tmp_path / "x.safetensors").write_bytes(blob)
    assert needle in load_error(tmp_path / "x.safetensors")


def test_safetensors_truncated_file(tmp_path):
    path, _ = _safetensors(tmp_path)
    data = path.read_bytes()
    assert "outside" in load_error(data[:-7], filename="m.safetensors", name="f32")
    with pytest.raises(TensorLoadError, match="outside"):
        list_tensors(data[:-7], filename="m.safetensors")


def test_safetensors_unknown_dtype_is_listed_but_refused():
    blob = _raw_safetensors(
        {
            "odd": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]},
            "ok": {"dtype": "F32", "shape": [1], "data_offsets": [1, 5]},
        },
        b"\0" + np.float32(1.5).tobytes(),
    )
    assert [i.dtype for i in list_tensors(blob, filename="u.safetensors")] == ["safetensors F4", "float32"]
    assert load_tensor(blob, filename="u.safetensors").name == "ok"
    assert "F4" in load_error(blob, "odd", filename="u.safetensors")


# ---------------------------------------------------------------- onnx


def _onnx_model(initializers, constant: np.ndarray | None = None):
    from onnx import helper, numpy_helper

    nodes, outputs = [], []
    if constant is not None:
        nodes.append(helper.make_node("Constant", [], ["const"], value=numpy_helper.from_array(constant)))
        outputs.append(helper.make_tensor_value_info("const", 1, list(constant.shape)))
    graph = helper.make_graph(nodes, "g", [], outputs, initializers)
    return helper.make_model(graph, producer_name="qcore-test")


def test_onnx_initializers_and_constants(tmp_path):
    import onnx
    from onnx import numpy_helper

    inits = [
        numpy_helper.from_array(W, "w"),
        numpy_helper.from_array(W.astype(np.float16), "w16"),
        numpy_helper.from_array(W.astype(ml_dtypes.bfloat16), "wbf"),
        numpy_helper.from_array(np.arange(5, dtype=np.int64), "idx"),
    ]
    onnx.save(_onnx_model(inits, np.ones(3, np.float32)), tmp_path / "m.onnx")
    infos = list_tensors(tmp_path / "m.onnx")
    assert [(i.name, i.dtype) for i in infos] == [
        ("w", "float32"),
        ("w16", "float16"),
        ("wbf", "bfloat16"),
        ("idx", "int64"),
        ("const", "float32"),
    ]
    np.testing.assert_array_equal(both(tmp_path / "m.onnx").values, W)
    np.testing.assert_array_equal(both(tmp_path / "m.onnx", "w16").values, W.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(
        both(tmp_path / "m.onnx", "wbf").values, W.astype(ml_dtypes.bfloat16).astype(np.float32)
    )
    np.testing.assert_array_equal(both(tmp_path / "m.onnx", "const").values, np.ones(3))
    assert load_tensors(tmp_path / "m.onnx").metadata["producer"] == "qcore-test"


def test_onnx_external_data_only_when_allowed_for_a_path(tmp_path):
    import onnx
    from onnx import numpy_helper

    model = _onnx_model([numpy_helper.from_array(W, "w")])
    onnx.save(model, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.bin", size_threshold=0)
    assert list_tensors(tmp_path / "ext.onnx")[0].shape == (4, 6)
    np.testing.assert_array_equal(load_tensor(tmp_path / "ext.onnx", allow_external_data=True).values, W)
    for source, kw in ((tmp_path / "ext.onnx", {}), ((tmp_path / "ext.onnx").read_bytes(), {"filename": "ext.onnx"})):
        msg = load_error(source, **kw)
        assert "external" in msg and "ext.bin" in msg
    msg = load_error((tmp_path / "ext.onnx").read_bytes(), filename="ext.onnx", allow_external_data=True)
    assert "external" in msg


def test_onnx_external_data_path_traversal_is_refused(tmp_path):
    import onnx
    from onnx import numpy_helper

    (tmp_path / "secret.bin").write_bytes(W.tobytes())
    inner = tmp_path / "model"
    inner.mkdir()
    model = _onnx_model([numpy_helper.from_array(W, "w")])
    t = model.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", str(W.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    (inner / "evil.onnx").write_bytes(model.SerializeToString())
    assert "outside" in load_error(inner / "evil.onnx", allow_external_data=True)


def test_onnx_garbage():
    load_error(b"\xff\xfe this is not a protobuf" * 3, filename="g.onnx")


# ---------------------------------------------------------------- torch


def test_torch_state_dict_flattened(tmp_path):
    torch = pytest.importorskip("torch")
    ckpt = {
        "model": {"conv.weight": torch.from_numpy(W.copy()), "bn": {"bias": torch.zeros(4, dtype=torch.float16)}},
        "emb": torch.from_numpy(W.copy()).to(torch.bfloat16),
        "layers": [torch.ones(2)],
        "epoch": 7,
    }
    torch.save(ckpt, tmp_path / "c.pt")
    infos = list_tensors(tmp_path / "c.pt")
    assert [(i.name, i.shape, i.dtype) for i in infos] == [
        ("model.conv.weight", (4, 6), "float32"),
        ("model.bn.bias", (4,), "float16"),
        ("emb", (4, 6), "bfloat16"),
        ("layers.0", (2,), "float32"),
    ]
    np.testing.assert_array_equal(both(tmp_path / "c.pt").values, W)
    np.testing.assert_array_equal(both(tmp_path / "c.pt", "emb").values, ckpt["emb"].to(torch.float32).numpy())
    torch.save(torch.from_numpy(W.copy()), tmp_path / "bare.pth")
    assert both(tmp_path / "bare.pth").name == "tensor"


def test_torch_pickle_payload_rejected_by_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    torch.save({"w": torch.ones(2), "evil": Evil(marker)}, tmp_path / "evil.pt")
    msg = load_error(tmp_path / "evil.pt")
    assert "weights-only" in msg and "\n" not in msg
    load_error((tmp_path / "evil.pt").read_bytes(), filename="evil.pt")
    assert not marker.exists()


def test_torch_unsafe_switch_refused(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" in load_error(tmp_path / "ok.pt")


def test_torch_missing_is_a_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert "not installed" in load_error(b"PK", filename="w.pt")


# ---------------------------------------------------------------- common rules


def test_dtype_rules():
    buf = io.BytesIO()
    np.savez(buf, big=np.array([1e300, 1.0]), c=np.array([1 + 2j]), s=np.array(["a"]), ok=np.array([1e30, -2.0]))
    data = buf.getvalue()
    assert "float32 range" in load_error(data, "big", filename="d.npz")
    assert "complex128" in load_error(data, "c", filename="d.npz")
    assert "not a real number" in load_error(data, "s", filename="d.npz")
    np.testing.assert_array_equal(load_tensor(data, "ok", filename="d.npz").values, np.float32([1e30, -2.0]))


def test_unknown_name_lists_a_few():
    buf = io.BytesIO()
    np.savez(buf, **{f"t{i}": np.ones(1) for i in range(8)})
    msg = load_error(buf.getvalue(), "nope", filename="many.npz")
    assert "'t0', 't1', 't2', 't3', 't4', ... (8 in all)" in msg


def test_sources(tmp_path):
    assert "not found" in load_error(tmp_path / "missing.npy")
    assert "regular file" in load_error(tmp_path)
    assert "file name" in load_error(b"\x93NUMPY")
    assert "unsupported file type '.txt'" in load_error(b"1", filename="x.txt")
    with pytest.raises(TensorLoadError):
        load_tensor(12345)
    np.save(tmp_path / "up.npy", W)

    class Upload(io.BytesIO):
        name = "up.npy"

    np.testing.assert_array_equal(load_tensor(Upload((tmp_path / "up.npy").read_bytes())).values, W)


def _valid_files(tmp_path: Path) -> dict[str, bytes]:
    from onnx import numpy_helper

    files = {}
    buf = io.BytesIO()
    np.save(buf, W)
    files[".npy"] = buf.getvalue()
    buf = io.BytesIO()
    np.savez_compressed(buf, a=W, b=W[:2])
    files[".npz"] = buf.getvalue()
    files[".safetensors"] = _safetensors(tmp_path)[0].read_bytes()
    files[".onnx"] = _onnx_model([numpy_helper.from_array(W, "w")]).SerializeToString()
    files[".csv"] = "x,y\n" + "\n".join(f"{a},{b}" for a, b in W[:, :2]) + "\n"
    files[".csv"] = files[".csv"].encode()
    return files


def test_fuzzed_files_only_raise_tensor_load_error(tmp_path):
    """Truncations and byte flips of valid files either load or raise TensorLoadError, nothing else."""
    rng = np.random.default_rng(1)
    for suffix, data in _valid_files(tmp_path).items():
        for trial in range(40):
            blob = bytearray(data)
            if trial % 2:
                blob = blob[: int(rng.integers(0, len(blob)))]
            else:
                for pos in rng.integers(0, len(blob), size=int(rng.integers(1, 6))):
                    blob[pos] = int(rng.integers(0, 256))
            try:
                t = load_tensor(bytes(blob), filename="f" + suffix)
            except TensorLoadError as exc:
                assert "\n" not in str(exc)
            else:
                assert t.values.dtype == np.float32
