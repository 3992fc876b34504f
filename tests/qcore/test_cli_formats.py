"""``python -m qcore formats`` and ``--format`` on calibrate / quantize: output, files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import gguf.quants
import numpy as np
import pytest

from qcore.cli import main
from qcore.formats import FORMATS

W = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def w_npy(tmp_path: Path) -> Path:
    path = tmp_path / "w.npy"
    np.save(path, W)
    return path


def test_formats_json_lists_every_format(capsys):
    code, out, err = run(capsys, "formats", "--json")
    assert code == 0 and err == ""
    records = json.loads(out)["formats"]
    assert [r["name"] for r in records] == list(FORMATS)
    by_name = {r["name"]: r for r in records}
    assert by_name["q4_0"]["block_size"] == 32 and by_name["q4_0"]["bits_per_weight"] == 4.5
    assert by_name["nvfp4"]["block_size"] == 16 and by_name["nvfp4"]["per_tensor_bits"] == 32
    assert by_name["fp8_e4m3"]["block_size"] is None and by_name["fp8_e4m3"]["calibrated_range"]
    assert by_name["mxfp4"]["options"] == ["scale_rounding"]


def test_formats_table(capsys):
    code, out, _ = run(capsys, "formats")
    assert code == 0 and len(out.strip().splitlines()) == len(FORMATS) + 1 and "q4_0" in out


def test_calibrate_with_a_format(capsys, w_npy):
    code, out, err = run(capsys, "calibrate", w_npy, "--format", "mxfp4", "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    assert obj["format"] == "mxfp4" and obj["bits"] == 4 and obj["bits_per_weight"] == 4.25
    assert obj["granularity"] == "group" and obj["group_size"] == 32 and obj["axis"] == 1
    assert len(obj["scale"]) == 8 and obj["qmin"] == 0 and obj["qmax"] == 14
    assert obj["metrics"]["mse"] > 0


def test_int_output_keeps_the_contract_fields(capsys, w_npy):
    code, out, _ = run(capsys, "calibrate", w_npy, "--format", "int", "--json")
    assert code == 0 and "format" not in json.loads(out) and json.loads(out)["bits"] == 8


def test_quantize_gguf_writes_block_bytes(capsys, w_npy, tmp_path):
    out = tmp_path / "q.npz"
    code, _, err = run(capsys, "quantize", w_npy, "--format", "q4_0", "--out", out)
    assert code == 0 and err == ""
    with np.load(out) as z:
        assert sorted(z.files) == ["blocks", "dequantized"]
        want = gguf.quants.quantize(W, gguf.GGMLQuantizationType.Q4_0)
        np.testing.assert_array_equal(z["blocks"], want)
        np.testing.assert_array_equal(z["dequantized"], gguf.quants.dequantize(want, gguf.GGMLQuantizationType.Q4_0))
        assert z["dequantized"].dtype == np.float32 and z["dequantized"].shape == W.shape


@pytest.mark.parametrize(
    ("fmt", "keys"),
    [
        ("fp8_e4m3", ["codes", "dequantized", "scale"]),
        ("nf4", ["absmax", "codes", "dequantized"]),
        ("nf4_dq", ["absmax_codes", "absmax_offset", "absmax_scale", "codes", "dequantized"]),
        ("mxfp6_e3m2", ["codes", "dequantized", "scale_e8m0"]),
        ("nvfp4", ["block_scale_e4m3", "codes", "dequantized", "tensor_scale"]),
    ],
)
def test_quantize_writes_the_format_arrays(capsys, w_npy, tmp_path, fmt, keys):
    out = tmp_path / "q.npz"
    assert run(capsys, "quantize", w_npy, "--format", fmt, "--out", out)[0] == 0
    with np.load(out) as z:
        assert sorted(z.files) == keys
        assert z["codes"].shape == W.shape and z["dequantized"].shape == W.shape


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--format", "nf4", "--bits", "8"), "4-bit elements"),
        (("--format", "q4_0", "--granularity", "group", "--group-size", "64"), "group size 64"),
        (("--format", "mxfp4", "--granularity", "channel"), "not per-channel"),
        (("--format", "fp8_e4m3", "--scheme", "asymmetric"), "symmetric"),
        (("--format", "q8_0", "--method", "entropy"), "own block scales"),
        (("--format", "fp8_e4m3", "--convention", "tensorrt"), "int format only"),
        (("--format", "int4"), "invalid choice"),
    ],
)
def test_incompatible_options_exit_2_with_one_error_line(capsys, w_npy, argv, message):
    code, out, err = run(capsys, "calibrate", w_npy, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_gguf_needs_whole_blocks(capsys, tmp_path):
    path = tmp_path / "odd.npy"
    np.save(path, np.ones((3, 20), np.float32))
    code, _, err = run(capsys, "calibrate", path, "--format", "q4_0")
    assert code == 2 and "multiple of its block 32" in err and err.count("\n") == 1
