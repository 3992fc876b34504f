"""The command line against shared/cli-contract.md: JSON shape, documented numbers, output file, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qcore.cli
from qcore.cli import main

ROOT = Path(__file__).resolve().parents[2]
SEED_001 = np.array([0.1, 0.2, 1.2, 2.5, 2.1, -1.0, -2.0, -2.5], np.float32)
W = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)

FIELDS: dict[str, tuple[type, ...]] = {
    "tensor": (str,),
    "shape": (list,),
    "method": (str,),
    "bits": (int,),
    "scheme": (str,),
    "signed": (bool,),
    "narrow_range": (bool,),
    "granularity": (str,),
    "axis": (int, type(None)),
    "group_size": (int, type(None)),
    "qmin": (int,),
    "qmax": (int,),
    "clip_min": (list,),
    "clip_max": (list,),
    "scale": (list,),
    "zero_point": (list,),
    "nonfinite_count": (int,),
    "metrics": (dict,),
}
METRICS = ("mse", "clip_mse", "round_mse", "sqnr_db", "cosine", "clipped_fraction", "max_abs_error")


def check_contract(obj: dict, n_ranges: int) -> None:
    """Exactly the contract's fields, with its types, and one list entry per range."""
    assert list(obj) == list(FIELDS)
    for key, types in FIELDS.items():
        assert isinstance(obj[key], types), key
        if int in types and obj[key] is not None:
            assert not isinstance(obj[key], bool), key
    assert all(isinstance(d, int) for d in obj["shape"])
    assert obj["scheme"] in ("symmetric", "asymmetric")
    assert obj["granularity"] in ("tensor", "channel", "group")
    for key in ("clip_min", "clip_max", "scale"):
        assert len(obj[key]) == n_ranges and all(isinstance(v, float) for v in obj[key]), key
    assert len(obj["zero_point"]) == n_ranges
    assert all(isinstance(v, int) and not isinstance(v, bool) for v in obj["zero_point"])
    assert list(obj["metrics"]) == list(METRICS)
    for key, value in obj["metrics"].items():
        assert isinstance(value, float) or (key == "sqnr_db" and value is None), key
    m = obj["metrics"]
    assert m["mse"] == pytest.approx(m["clip_mse"] + m["round_mse"], rel=1e-12, abs=1e-30)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("seed.npy", "w.npz", "nan.npy", "exact.npy")}
    np.save(paths["seed.npy"], SEED_001)
    np.savez(paths["w.npz"], first=W[:2], w=W)
    np.save(paths["nan.npy"], np.array([1.0, np.nan, -2.0, np.inf, 0.5], np.float32))
    np.save(paths["exact.npy"], np.array([-127, -1, 0, 3, 127], np.int8))
    return paths


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str | Path) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0 and err == "", err
    return json.loads(out)


# ---------------------------------------------------------------- numbers


def expected_metrics(x: np.ndarray, x_hat: np.ndarray, lo: float, hi: float) -> dict[str, float]:
    """The contract's metric definitions, written out in float64."""
    x, x_hat = x.astype(np.float64), x_hat.astype(np.float64)
    err2 = (x_hat - x) ** 2
    outside = (x < lo) | (x > hi)
    return {
        "mse": err2.mean(),
        "clip_mse": err2[outside].sum() / x.size,
        "round_mse": err2[~outside].sum() / x.size,
        "sqnr_db": 10 * np.log10((x**2).sum() / err2.sum()),
        "cosine": x @ x_hat / np.linalg.norm(x) / np.linalg.norm(x_hat),
        "clipped_fraction": outside.mean(),
        "max_abs_error": np.sqrt(err2.max()),
    }


def test_seed_001_int4_symmetric(capsys, files, tmp_path):
    obj = run_json(capsys, "quantize", files["seed.npy"], "--bits", "4", "--out", tmp_path / "q.npz")
    check_contract(obj, 1)
    assert (obj["tensor"], obj["shape"], obj["qmin"], obj["qmax"]) == ("seed", [8], -8, 7)
    assert obj["clip_min"] == [-2.5] and obj["clip_max"] == [2.5] and obj["zero_point"] == [0]
    assert obj["scale"][0] == pytest.approx(2.5 / 7, rel=1e-12)  # T / (2^(b-1) - 1)
    with np.load(tmp_path / "q.npz") as z:
        codes, x_hat = z["q"], z["dequantized"]
    assert codes.tolist() == [0, 1, 3, 7, 6, -3, -6, -7]  # round(x / (2.5/7)), by hand
    np.testing.assert_allclose(x_hat, codes * (2.5 / 7), rtol=1e-6)
    for key, value in expected_metrics(SEED_001, codes * (2.5 / 7), -2.5, 2.5).items():
        assert obj["metrics"][key] == pytest.approx(value, rel=1e-5), key
    assert obj["metrics"]["mse"] == pytest.approx(0.078571428 / 8, rel=1e-5)  # sum of squared errors by hand


def test_seed_001_int4_asymmetric(capsys, files, tmp_path):
    obj = run_json(
        capsys, "quantize", files["seed.npy"], "--bits", "4", "--scheme", "asymmetric", "--out", tmp_path / "q.npz"
    )
    check_contract(obj, 1)
    s = 5.0 / 15  # (hi - lo) / (qmax - qmin)
    assert obj["scale"][0] == pytest.approx(s, rel=1e-12)
    assert obj["zero_point"] == [0]  # round(-8 - (-2.5)/s) = round(-0.5) = 0, half to even
    with np.load(tmp_path / "q.npz") as z:
        codes = z["q"]
    assert codes.tolist() == [0, 1, 4, 7, 6, -3, -6, -8]  # 2.5/s = 7.5 -> 8, clamped to 7
    for key, value in expected_metrics(SEED_001, codes * s, -2.5, 2.5).items():
        assert obj["metrics"][key] == pytest.approx(value, rel=1e-5), key


def test_exact_tensor_has_null_sqnr(capsys, files):
    obj = run_json(capsys, "calibrate", files["exact.npy"])
    check_contract(obj, 1)
    assert obj["scale"] == [1.0] and obj["metrics"]["sqnr_db"] is None
    assert obj["metrics"]["mse"] == 0.0 and obj["metrics"]["cosine"] == pytest.approx(1.0, abs=1e-15)


def test_nonfinite_left_out_and_counted(capsys, files):
    obj = run_json(capsys, "calibrate", files["nan.npy"], "--scheme", "asymmetric")
    check_contract(obj, 1)
    assert obj["nonfinite_count"] == 2
    assert obj["clip_min"] == [-2.0] and obj["clip_max"] == [1.0]
    assert np.isfinite(list(v for v in obj["metrics"].values() if v is not None)).all()


def test_unsigned_symmetric(capsys, tmp_path):
    np.save(tmp_path / "relu.npy", np.array([0.0, 0.5, 1.0, 2.55], np.float32))
    obj = run_json(capsys, "calibrate", tmp_path / "relu.npy", "--unsigned")
    assert (obj["signed"], obj["qmin"], obj["qmax"], obj["zero_point"]) == (False, 0, 255, [0])
    assert obj["clip_min"] == [0.0] and obj["scale"][0] == pytest.approx(2.55 / 255)


def test_tensor_choice_and_granularities(capsys, files):
    obj = run_json(capsys, "calibrate", files["w.npz"])
    assert obj["tensor"] == "first" and obj["shape"] == [2, 6]
    obj = run_json(capsys, "calibrate", files["w.npz"], "--tensor", "w", "--granularity", "channel")
    check_contract(obj, 4)
    assert (obj["tensor"], obj["axis"], obj["group_size"]) == ("w", 0, None)
    np.testing.assert_allclose(obj["clip_max"], np.abs(W).max(axis=1), rtol=1e-7)
    obj = run_json(capsys, "calibrate", files["w.npz"], "--tensor", "w", "--granularity", "channel", "--axis", "-1")
    check_contract(obj, 6)
    assert obj["axis"] == 1
    obj = run_json(
        capsys, "calibrate", files["w.npz"], "--tensor", "w", "--granularity", "group", "--axis", "1",
        "--group-size", "4", "--scheme", "asymmetric", "--bits", "3",
    )  # fmt: skip
    check_contract(obj, 8)  # 4 rows x ceil(6 / 4) groups
    assert (obj["group_size"], obj["qmin"], obj["qmax"]) == (4, -4, 3)
    obj = run_json(capsys, "calibrate", files["w.npz"], "--tensor", "w")
    assert (obj["axis"], obj["group_size"]) == (None, None)


def test_every_registered_method_follows_the_contract(capsys, files):
    for method in sorted(qcore.CALIBRATORS):
        obj = run_json(capsys, "calibrate", files["w.npz"], "--tensor", "w", "--method", method, "--bins", "256")
        check_contract(obj, 1)
        assert obj["method"] == method


def test_conventions(capsys, files):
    t = float(np.abs(W[:2]).max())
    obj = run_json(capsys, "calibrate", files["w.npz"], "--convention", "onnxruntime")
    assert obj["scale"][0] == pytest.approx(2 * t / 254, rel=1e-6)  # ORT: int8 symmetric over [-127, 127]
    obj = run_json(capsys, "calibrate", files["w.npz"], "--convention", "tensorrt_weight")
    assert (obj["narrow_range"], obj["qmin"], obj["qmax"]) == (True, -127, 127)
    obj = run_json(capsys, "calibrate", files["w.npz"], "--convention", "pytorch")
    assert obj["scale"][0] == pytest.approx(t / 127.5, rel=1e-6)


@pytest.mark.parametrize(
    ("options", "dtype"),
    [
        ((), np.int8),
        (("--bits", "12"), np.int16),
        (("--unsigned",), np.uint8),
        (("--unsigned", "--bits", "16"), np.uint16),
    ],
)
def test_quantize_output_file(capsys, files, tmp_path, options, dtype):
    out = tmp_path / "out.npz"
    code, _, err = run(capsys, "quantize", files["w.npz"], "--tensor", "w", "--granularity", "channel", *options,
                       "--out", out)  # fmt: skip
    assert code == 0 and err == ""
    with np.load(out) as z:
        assert sorted(z.files) == ["dequantized", "q", "scale", "zero_point"]
        q, scale, zp, x_hat = z["q"], z["scale"], z["zero_point"], z["dequantized"]
    assert q.dtype == dtype and q.shape == W.shape
    assert scale.shape == zp.shape == (4,) and np.issubdtype(zp.dtype, np.integer)
    assert x_hat.dtype == np.float32 and x_hat.shape == W.shape
    np.testing.assert_allclose(x_hat, (q - zp[:, None]) * scale[:, None], rtol=1e-6, atol=1e-7)


def test_quantize_non_uniform_grid_stores_level_indices(capsys, files, tmp_path):
    out = tmp_path / "l.npz"
    code, _, _ = run(capsys, "quantize", files["seed.npy"], "--bits", "4", "--format", "log2", "--out", out)
    assert code == 0
    with np.load(tmp_path / "l.npz") as z:
        q, grid, x_hat = z["q"], z["grid"], z["dequantized"]
    assert q.dtype == np.int8 and q.min() >= 0 and q.max() < grid.shape[1]
    np.testing.assert_array_equal(x_hat, grid[0][q].astype(np.float32))


def test_quantize_writes_exactly_the_given_path(capsys, files, tmp_path):
    code, _, _ = run(capsys, "quantize", files["seed.npy"], "--out", tmp_path / "codes.bin")
    assert code == 0 and (tmp_path / "codes.bin").exists() and not (tmp_path / "codes.bin.npz").exists()


def test_onnx_with_external_data_from_a_local_path(capsys, tmp_path):
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph([], "g", [], [], [numpy_helper.from_array(W, "w")])
    onnx.save(helper.make_model(graph), tmp_path / "m.onnx", save_as_external_data=True, size_threshold=0)
    obj = run_json(capsys, "calibrate", tmp_path / "m.onnx")
    assert obj["tensor"] == "w" and obj["clip_max"] == [float(np.abs(W).max())]


def test_readable_table(capsys, files):
    code, out, err = run(capsys, "calibrate", files["seed.npy"], "--bits", "4")
    assert code == 0 and err == ""
    assert "codes [-8, 7]" in out and "0.357143" in out and "seed" in out and "dB" in out
    code, out, _ = run(capsys, "calibrate", files["exact.npy"])
    assert "inf (exact)" in out


def test_list(capsys, files, tmp_path):
    np.savez(tmp_path / "m.npz", a=W, flags=np.ones(2, bool))
    code, out, _ = run(capsys, "list", tmp_path / "m.npz")
    assert code == 0 and out.splitlines() == ["a\t[4, 6]\tfloat32", "flags\t[2]\tbool  (not loadable)"]
    code, out, _ = run(capsys, "list", tmp_path / "m.npz", "--json")
    assert json.loads(out) == [
        {"name": "a", "shape": [4, 6], "dtype": "float32"},
        {"name": "flags", "shape": [2], "dtype": "bool"},
    ]


# ---------------------------------------------------------------- errors


def _bad_files(tmp_path: Path, write_pickled_npy) -> dict[str, Path]:
    p = {k: tmp_path / k for k in ("trunc.npy", "pickled.npy", "empty.npy", "nan.npy", "none.npz", "w.npy", "s.npy")}
    np.save(p["w.npy"], W)
    p["trunc.npy"].write_bytes(p["w.npy"].read_bytes()[:-9])
    write_pickled_npy(p["pickled.npy"], [{"a": 1}])
    np.save(p["empty.npy"], np.zeros((0, 3), np.float32))
    np.save(p["nan.npy"], np.full(5, np.nan, np.float32))
    np.save(p["s.npy"], np.float32(3.0))
    import zipfile

    with zipfile.ZipFile(p["none.npz"], "w") as zf:
        zf.writestr("notes.txt", "no arrays here")
    return p


BAD_INPUTS = [
    (("calibrate", "{missing}"), "not found"),
    (("calibrate", "{dir}"), "regular file"),
    (("calibrate", "{trunc_npy}"), "truncated"),
    (("calibrate", "{pickled_npy}"), "pickle"),
    (("calibrate", "{empty_npy}"), "empty"),
    (("calibrate", "{nan_npy}"), "no finite"),
    (("calibrate", "{none_npz}"), "no arrays"),
    (("calibrate", "{w_npy}", "--tensor", "nope"), "available: 'w'"),
    (("calibrate", "{w_npy}", "--bits", "1"), "bits"),
    (("calibrate", "{w_npy}", "--bits", "17"), "bits"),
    (("calibrate", "{w_npy}", "--percentile", "0"), "percentile"),
    (("calibrate", "{w_npy}", "--percentile", "100.5"), "percentile"),
    (("calibrate", "{w_npy}", "--method", "percentile", "--percentile", "nan"), "percentile"),
    (("calibrate", "{w_npy}", "--group-size", "0"), "group_size"),
    (("calibrate", "{w_npy}", "--granularity", "group", "--group-size", "-4"), "group_size"),
    (("calibrate", "{w_npy}", "--bins", "0"), "bins"),
    (("calibrate", "{w_npy}", "--method", "percentile", "--bins", "-1"), "bins"),
    (("calibrate", "{w_npy}", "--method", "entropy", "--bins", "64"), "128"),
    (("calibrate", "{w_npy}", "--method", "mse", "--bins", "127"), "128"),
    (("calibrate", "{w_npy}", "--granularity", "channel", "--axis", "2"), "axis 2"),
    (("calibrate", "{w_npy}", "--granularity", "group", "--axis", "-3"), "axis -3"),
    (("calibrate", "{seed_npy}", "--granularity", "channel"), "at least 2"),
    (("calibrate", "{s_npy}", "--granularity", "group"), "at least 2"),
    (("calibrate", "{w_npy}", "--method", "nope"), "invalid choice"),
    (("calibrate", "{w_npy}", "--convention", "nope"), "invalid choice"),
    (("calibrate", "{w_npy}", "--convention", "tensorrt", "--scheme", "asymmetric"), "symmetric"),
    (("calibrate", "{w_npy}", "--unsigned", "--narrow-range"), "narrow range"),
    (("calibrate", "{w_npy}", "--bits", "eight"), "invalid int"),
    (("calibrate", "{w_npy}", "--frobnicate"), "unrecognized"),
    (("calibrate",), "required"),
    ((), "required"),
    (("frobnicate",), "invalid choice"),
    (("quantize", "{w_npy}"), "--out"),
    (("quantize", "{w_npy}", "--out", "{missing}/x/out.npz"), "cannot write"),
    (("list", "{missing}"), "not found"),
]


def test_every_kind_of_bad_input_is_one_error_line(capsys, tmp_path, write_pickled_npy):
    paths = {k.replace(".", "_"): str(v) for k, v in _bad_files(tmp_path, write_pickled_npy).items()}
    paths |= {"missing": str(tmp_path / "missing.npy"), "dir": str(tmp_path), "seed_npy": str(tmp_path / "seed.npy")}
    np.save(paths["seed_npy"], SEED_001)
    for argv, needle in BAD_INPUTS:
        code, out, err = run(capsys, *(a.format(**paths) for a in argv))
        assert code == 2, argv
        assert out == "", argv
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert needle in lines[0], (argv, lines[0])


def test_unexpected_exception_is_one_error_line(capsys, monkeypatch, files):
    def boom(*args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(qcore.cli, "analyze", boom)
    code, out, err = run(capsys, "calibrate", files["seed.npy"])
    assert code == 2 and out == ""
    assert err == "error: internal error (RuntimeError: something broke); please report it\n"


# ---------------------------------------------------------------- the real process


def _qcore(*argv: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qcore", *map(str, argv)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_process_json_and_errors(files, tmp_path, write_pickled_npy):
    ok = _qcore("calibrate", files["seed.npy"], "--bits", "4", "--json")
    assert ok.returncode == 0 and ok.stderr == ""
    obj = json.loads(ok.stdout)
    check_contract(obj, 1)
    assert obj["scale"][0] == pytest.approx(2.5 / 7)
    write_pickled_npy(tmp_path / "p.npy", [object()])
    bad = _qcore("quantize", tmp_path / "p.npy", "--out", tmp_path / "o.npz")
    assert bad.returncode == 2 and bad.stdout == "" and not (tmp_path / "o.npz").exists()
    assert bad.stderr.startswith("error: ") and "pickle" in bad.stderr and len(bad.stderr.splitlines()) == 1
