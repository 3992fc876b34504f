"""``python -m qcore layer``: the numbers of :func:`qcore.layer_methods.run_method`; one error line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qcore.cli import main
from qcore.layer_methods import METHODS, Side, alpha_sweep, run_method
from qcore.samples import load_pair
from qcore.scheme import QuantScheme

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "minilm_l6.safetensors"
FFN_UP = ("--w-tensor", "minilm/layer3/ffn_up.weight", "--x-tensor", "minilm/layer3/ffn_up.input")


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["layer", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def ffn_up():
    x, w, _ = load_pair("minilm/layer3/ffn_up")
    return w, x


@pytest.mark.parametrize(
    ("argv", "method", "w_side", "x_side", "options"),
    [
        (("--method", "gptq"), "gptq", Side(QuantScheme(bits=4, granularity="group", axis=1)), None, {}),
        (
            ("--method", "smoothquant", "--alpha", "0.7", "--x-calibrator", "percentile"),
            "smoothquant",
            Side(QuantScheme(granularity="channel", axis=0)),
            Side(QuantScheme(), "percentile"),
            {"alpha": 0.7},
        ),
        (
            ("--method", "llm_int8", "--w-bits", "6", "--quantize", "both"),
            "llm_int8",
            Side(QuantScheme(bits=6, granularity="channel", axis=0)),
            Side(QuantScheme(granularity="channel", axis=0)),
            {},
        ),
        (
            ("--method", "hadamard", "--w-bits", "4", "--w-granularity", "group", "--seed", "5"),
            "hadamard",
            Side(QuantScheme(bits=4, granularity="group", axis=1)),
            Side(QuantScheme()),
            {"seed": 5},
        ),
    ],
)
def test_json_has_the_numbers_of_run_method(capsys, ffn_up, argv, method, w_side, x_side, options):
    code, out, err = _run(capsys, DATA, DATA, *FFN_UP, *argv, "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    run = run_method(*ffn_up, method, w_side, x_side, options)
    assert obj["method"] == method and obj["w_shape"] == [1536, 384] and obj["x_shape"] == [575, 384]
    assert obj["rtn"]["mse"] == run.rtn.mse and obj["error"]["mse"] == run.error.mse
    assert obj["error"]["sqnr_db"] == run.error.sqnr_db and obj["details"] == json.loads(json.dumps(run.output.details))
    assert (obj["x"] is None) == (x_side is None)


def test_alpha_sweep_and_table(capsys, ffn_up):
    code, out, _ = _run(capsys, DATA, DATA, *FFN_UP, "--method", "smoothquant", "--alpha-sweep", "--json")
    sweep = json.loads(out)["alpha_sweep"]
    w, x = ffn_up
    ref = alpha_sweep(w, x, Side(QuantScheme(granularity="channel", axis=0)), Side())
    assert code == 0 and [r["alpha"] for r in sweep] == [a for a, _ in ref]
    assert [r["mse"] for r in sweep] == [e.mse for _, e in ref]
    code, out, _ = _run(capsys, DATA, DATA, *FFN_UP, "--method", "awq")
    assert code == 0 and "awq" in out and "ratio" in out and "rtn" in out


def test_help_names_every_method(capsys):
    with pytest.raises(SystemExit):
        main(["layer", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in METHODS)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--x-tensor", "minilm/layer3/ffn_down.input"), "error: W has K = 384 inputs but X has 1536\n"),
        (("--method", "gptq", "--alpha", "0.5"), "error: --alpha does not apply to --method gptq\n"),
        (("--method", "smoothquant", "--alpha", "2"), "error: alpha must be in [0, 1], got 2.0\n"),
        (("--method", "gptq", "--w-granularity", "channel", "--w-axis", "1"), "column by column"),
        (("--method", "hadamard", "--x-tensor", "nope"), "nope"),
        (("--method", "rtn", "--alpha-sweep"), "error: --alpha-sweep applies to --method smoothquant\n"),
    ],
)
def test_bad_input_is_one_error_line(capsys, extra, message):
    code, out, err = _run(capsys, DATA, DATA, *FFN_UP, *extra)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_nan_in_x_and_singular_hessian(capsys, tmp_path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 32)).astype(np.float32)
    x = rng.standard_normal((10, 32)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "x.npy", x)  # n = 10 < K = 32: H is singular
    code, _, err = _run(capsys, tmp_path / "w.npy", tmp_path / "x.npy", "--method", "gptq", "--damp", "0")
    assert code == 2 and err.startswith("error: H = 2 X^T X / n is singular") and "damping > 0" in err
    x[3, 4] = np.nan
    np.save(tmp_path / "x.npy", x)
    code, _, err = _run(capsys, tmp_path / "w.npy", tmp_path / "x.npy", "--method", "smoothquant")
    assert (code, err) == (2, "error: X must be a finite real array\n")


def test_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "qcore", "layer", DATA, DATA, *FFN_UP, "--method", "llm_int8", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0
    obj = json.loads(proc.stdout)
    assert obj["details"]["outlier_columns"] == [63, 99, 157, 223]


def test_formats_pass_through(capsys, ffn_up):
    code, out, err = _run(capsys, DATA, DATA, *FFN_UP, "--method", "gptq", "--w-format", "nf4", "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    assert obj["w"]["format"] == "nf4" and obj["w"]["bits"] == 4 and obj["w"]["granularity"] == "group"
    run = run_method(*ffn_up, "gptq", Side(QuantScheme(bits=4, format="nf4")), None)
    assert obj["error"]["mse"] == run.error.mse and obj["rtn"]["mse"] == run.rtn.mse
    code, _, err = _run(capsys, DATA, DATA, *FFN_UP, "--method", "gptq", "--w-format", "q4_k")
    assert code == 2 and err.startswith("error: q4_k needs a last axis that is a multiple of its block 256")
