"""Issue 9's CLI output findings: strict JSON for extreme values, non-UTF-8 ONNX names, one stderr line at most."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qcore.cli import main

FMAX = float(np.finfo(np.float32).max)


def _strict(text: str):
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"JSON holds {token}"))


def test_float32_max_calibrates_and_quantizes_quietly(capsys, tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    np.save(path, np.array([[FMAX, -FMAX, 1.0, 0.5], [2.0, -FMAX, 3e38, 0.0]], np.float32))
    for method in ("minmax", "entropy", "aciq", "ema", "admm"):
        out_npz = tmp_path / f"{method}.npz"
        code = main(["quantize", str(path), "--method", method, "--json", "--out", str(out_npz)])
        out, err = capsys.readouterr()
        assert code == 0 and err == "", (method, err)  # no numpy overflow warning on stderr
        metrics = _strict(out)["metrics"]
        assert all(v is not None and np.isfinite(v) for v in metrics.values()), (method, metrics)
        with np.load(out_npz) as z:
            assert np.isfinite(z["dequantized"]).all()


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_tiny_values_are_calibrated(capsys, tmp_path: Path, method: str) -> None:
    path = tmp_path / "tiny.npy"
    np.save(path, np.array([[1e-37, -5e-38], [2e-38, 0.0]], np.float32))
    assert main(["calibrate", str(path), "--method", method, "--json"]) == 0
    out, err = capsys.readouterr()
    result = _strict(out)
    assert err == "" and result["scale"][0] > 0 and result["metrics"]["sqnr_db"] > 0


def test_list_json_escapes_an_onnx_name_that_is_not_utf8(capsys, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    graph = helper.make_graph([], "g", [], [], initializer=[numpy_helper.from_array(np.ones((2, 3), np.float32), "w")])
    raw = helper.make_model(graph).SerializeToString()
    at = raw.find(b"\x42\x01w")  # TensorProto.name (field 8, length 1) of the initializer
    path = tmp_path / "bad.onnx"
    path.write_bytes(raw[:at] + b"\x42\x01\xff" + raw[at + 3 :])
    assert isinstance(onnx.load(str(path)).graph.initializer[0].name, bytes)  # protobuf hands back bytes
    assert main(["list", str(path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert _strict(out) == [{"name": "\\xff", "shape": [2, 3], "dtype": "float32"}] and err == ""
    assert main(["calibrate", str(path), "--tensor", "\\xff", "--json"]) == 0
    assert _strict(capsys.readouterr().out)["tensor"] == "\\xff"
