"""Property-based fuzzing of the CLI (issue 9): mutated valid files and option values through ``qcore.cli.main``.

Every run must end in one of two ways: exit 0 with strict JSON on stdout (no NaN/Infinity token) and nothing
on stderr, or exit 2 with exactly one ``error:`` line (never an internal error). tracemalloc's peak (numpy
reports its buffers to it) stays under a bound. Bounded in time: a fixed number of derandomized examples.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from bombs import safetensors_file
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qcore import CALIBRATORS
from qcore.cli import main

PEAK_BYTES = 256 * 1024**2
EXAMPLES = int(os.environ.get("QCORE_FUZZ_EXAMPLES", "0")) or None
"""Set ``QCORE_FUZZ_EXAMPLES=5000`` for a long random run; by default CI runs 100 derandomized examples."""
FUZZ = settings(
    max_examples=EXAMPLES or 100,
    deadline=None,
    derandomize=EXAMPLES is None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _reject(token: str) -> None:
    raise AssertionError(f"JSON holds {token}")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Valid small files of every format, as bytes."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    tmp = tmp_path_factory.mktemp("seeds")
    x = np.random.default_rng(0).normal(size=(6, 10)).astype(np.float32)
    np.save(tmp / "a.npy", x)
    np.savez_compressed(tmp / "a.npz", w=x, b=x[0].astype(np.float16))
    np.savetxt(tmp / "a.csv", x, delimiter=",")
    header = {"w": {"dtype": "F32", "shape": [6, 10], "data_offsets": [0, x.nbytes]}}
    safetensors_file(tmp / "a.safetensors", header, x.tobytes())
    graph = helper.make_graph([], "g", [], [], initializer=[numpy_helper.from_array(x, name="w")])
    onnx.save(helper.make_model(graph), tmp / "a.onnx")
    return {p.suffix: p.read_bytes() for p in tmp.iterdir()}


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few byte edits: flips, overwrites with extreme bytes, cuts, insertions."""
    out = bytearray(data)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 4]))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "float"]))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if kind == "flip" and out:
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and out:
            out[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, ord("9"), ord("("), ord(",")]))
        elif kind == "cut":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = draw(st.binary(max_size=8))
        elif kind == "float":  # an extreme float32 / float16 / number text
            value = draw(st.sampled_from([3.4028235e38, -3.4028235e38, 1e-45, float("nan"), float("inf"), 6e-36]))
            out[pos : pos + 4] = np.float32(value).tobytes()
    return bytes(out)


OPTIONS = st.fixed_dictionaries(
    {
        "--method": st.sampled_from(sorted(CALIBRATORS)),
        # mostly valid values, some just outside the bounds, a few absurd
        "--bits": st.sampled_from(["8", "8", "4", "2", "16", "1", "40"]),
        "--bins": st.sampled_from(["2048", "2048", "129", "4096", "128", "20000", "0", "100000000"]),
        "--granularity": st.sampled_from(["tensor", "channel", "group"]),
        "--axis": st.sampled_from(["0", "0", "1", "-1", "5"]),
        "--group-size": st.sampled_from(["128", "128", "3", "1", "1048576", "1000000000", "0"]),
        "--percentile": st.sampled_from(["99.99", "99.99", "50", "100", "1e-300", "0", "nan"]),
        "--scheme": st.sampled_from(["symmetric", "asymmetric"]),
    }
)


def _run(argv: list[str]) -> tuple[int, str, str, int]:
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return code, out.getvalue(), err.getvalue(), peak


def _check(code: int, out: str, err: str, peak: int, argv: list[str]) -> None:
    event(f"exit {code}")
    assert peak < PEAK_BYTES, (argv, peak)
    if code == 0:
        assert err == "", (argv, err)
        json.loads(out, parse_constant=_reject)
    else:
        lines = err.splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (argv, code, err)
        assert "internal error" not in lines[0], (argv, lines[0])


@pytest.mark.slow
@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".npy", ".npz", ".csv", ".safetensors", ".onnx"]), options=OPTIONS)
def test_mutated_files_and_options(seeds: dict[str, bytes], tmp_path: Path, data, suffix: str, options: dict) -> None:
    path = tmp_path / f"f{suffix}"
    path.write_bytes(data.draw(mutated(seeds[suffix])))
    quantize = data.draw(st.booleans())
    argv = ["quantize" if quantize else "calibrate", str(path), "--json"]
    argv += [item for pair in options.items() for item in pair]
    if quantize:
        argv += ["--out", str(tmp_path / "out.npz")]
    code, out, err, peak = _run(argv)
    _check(code, out, err, peak, argv)
    if code == 0 and quantize:
        with np.load(tmp_path / "out.npz") as z:
            finite_in = np.isfinite(np.asarray(json.loads(out)["clip_min"]))
            assert finite_in.all() and np.isfinite(z["scale"]).all()


@FUZZ
@given(data=st.data(), suffix=st.sampled_from([".npy", ".npz", ".csv", ".safetensors", ".onnx"]))
def test_mutated_files_list(seeds: dict[str, bytes], tmp_path: Path, data, suffix: str) -> None:
    path = tmp_path / f"l{suffix}"
    path.write_bytes(data.draw(mutated(seeds[suffix])))
    argv = ["list", str(path), "--json"]
    _check(*_run(argv), argv)


FLOAT32 = st.floats(width=32, allow_nan=True, allow_infinity=True) | st.sampled_from(
    [3.4028235e38, -3.4028235e38, 1e-45, -1e-45, 6e-36, 0.0]
)


@FUZZ
@given(
    x=hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12), elements=FLOAT32),
    method=st.sampled_from(sorted(CALIBRATORS)),
    scheme=st.sampled_from(["symmetric", "asymmetric"]),
    granularity=st.sampled_from(["tensor", "channel", "group"]),
    bits=st.sampled_from(["2", "4", "8", "16"]),
)
def test_any_float32_values_with_valid_options(
    tmp_path: Path, x: np.ndarray, method: str, scheme: str, granularity: str, bits: str
) -> None:
    path = tmp_path / "x.npy"
    np.save(path, x)
    argv = ["quantize", str(path), "--json", "--method", method, "--scheme", scheme, "--bits", bits]
    argv += ["--granularity", granularity, "--group-size", "5", "--axis", "1", "--out", str(tmp_path / "o.npz")]
    code, out, err, peak = _run(argv)
    _check(code, out, err, peak, argv)
    finite = np.isfinite(x)
    if code == 2:  # only inputs without a finite value, or ema without a batch axis apart from the channels
        assert not finite.any() or method == "ema", err
        return
    with np.load(tmp_path / "o.npz") as z:
        assert np.isfinite(z["dequantized"][finite]).all()  # finite input: finite round trip
