"""Issue 9's memory findings, reproduced and refused before allocating (fixed cases of the crafted bombs).

Each hostile input runs through the CLI in a fresh process: exit 2, exactly one ``error:`` line that names
the limit, and a bounded peak RSS (a Python with numpy and qcore loaded takes about 100-200 MiB).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from bombs import npz_deflated_zeros, run_cli_measured, safetensors_file

from qcore import CalibrationData, QuantOptionError, QuantScheme, make_calibrator, to_rows
from qcore.budget import BudgetError
from qcore.io import list_tensors, load_tensor
from qcore.io.base import TensorTooLargeError

PEAK_MIB = 600
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc/self/status")


def _refused(tmp_path: Path, *argv: str, needle: str, env: dict | None = None) -> None:
    code, out, err, peak = run_cli_measured(tmp_path, *argv, env=env)
    lines = err.splitlines()
    assert code == 2 and out == "", (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    assert peak < PEAK_MIB, f"peak {peak:.0f} MiB"


@pytest.mark.slow
def test_npz_member_counts_its_inflated_float32_size(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.npz"
    npz_deflated_zeros(bomb, 256 * 1024**2)  # 256 Mi int8 zeros: ~260 KB on disk, 1 GiB as float32
    assert bomb.stat().st_size < 2 * 1024**2
    _refused(tmp_path, "calibrate", str(bomb), needle="per-tensor limit")
    with pytest.raises(TensorTooLargeError):
        load_tensor(bomb)
    assert list_tensors(bomb)[0].shape == (256 * 1024**2,)  # listing reads only the header


def test_npz_bomb_under_a_small_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = tmp_path / "small.npz"
    npz_deflated_zeros(bomb, 4 * 1024**2)
    monkeypatch.setenv("QCORE_MEMORY_BUDGET_MB", "64")  # per-tensor limit 8 MiB = 2 Mi float32
    with pytest.raises(BudgetError, match="QCORE_MEMORY_BUDGET_MB"):
        load_tensor(bomb)
    _refused(tmp_path, "calibrate", str(bomb), needle="per-tensor limit", env={"QCORE_MEMORY_BUDGET_MB": "64"})


def test_pt_expand_and_sparse_are_refused_before_the_copy(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    expanded = tmp_path / "expand.pt"
    torch.save({"w": torch.zeros(1).expand(2**30)}, expanded)  # 1 float of storage, 2^30 elements
    assert expanded.stat().st_size < 4096
    _refused(tmp_path, "calibrate", str(expanded), needle="per-tensor limit")
    sparse = tmp_path / "sparse.pt"
    torch.save({"w": torch.sparse_coo_tensor(torch.tensor([[0]]), torch.tensor([1.0]), (2**28,))}, sparse)
    _refused(tmp_path, "calibrate", str(sparse), needle="per-tensor limit")


def test_safetensors_huge_header_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "h.safetensors"
    safetensors_file(path, {}, data=b" " * 64, header_length=90 * 1024**2)  # claims a 90 MB header
    _refused(tmp_path, "list", str(path), needle="limit")


def test_safetensors_with_200000_empty_entries_lists(tmp_path: Path) -> None:
    path = tmp_path / "many.safetensors"
    entries = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(200_000)}
    safetensors_file(path, entries)
    assert len(list_tensors(path)) == 200_000
    code, _, err, peak = run_cli_measured(tmp_path, "list", str(path), "--json")
    assert code == 0 and err == "" and peak < PEAK_MIB


def test_group_larger_than_the_axis_does_not_pad(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(256, 16)).astype(np.float32)
    rows = to_rows(x, QuantScheme(granularity="group", axis=1, group_size=1 << 20))
    assert rows.values.shape == (256, 16) and rows.padded == 0  # 16 KB, not 1 GB of padding
    small = tmp_path / "x.npy"
    np.save(small, x[:4, :8])
    _refused(
        tmp_path,
        "calibrate",
        str(small),
        "--granularity",
        "group",
        "--axis",
        "1",
        "--group-size",
        "1000000000",
        needle="group_size",
    )
    code, _, err, peak = run_cli_measured(
        tmp_path, "calibrate", str(small), "--granularity", "group", "--axis", "1", "--group-size", "1048576", "--json"
    )
    assert code == 0 and err == "" and peak < PEAK_MIB


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("--method", "mse", "--bins", "20000"), "[128, 4096]"),
        (("--method", "entropy", "--bins", "100000000"), "[128, 4096]"),
        (("--method", "mse", "--bins", "127"), "128"),
        (("--method", "percentile", "--bins", "1000000000"), "bins"),
    ],
)
def test_option_upper_bounds_in_the_cli(tmp_path: Path, argv: tuple, needle: str) -> None:
    small = tmp_path / "x.npy"
    np.save(small, np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32))
    _refused(tmp_path, "calibrate", str(small), *argv, needle=needle)


def test_mse_with_128_bins_searches_its_one_candidate(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    small = tmp_path / "x.npy"
    np.save(small, x)
    argv = ("calibrate", str(small), "--method", "mse", "--bins", "128", "--json")
    code, out, err, _ = run_cli_measured(tmp_path, *argv)
    assert code == 0 and err == ""
    last_centre = 127.5 / 128 * float(np.abs(x).max())  # the only candidate: the last bin centre
    assert json.loads(out)["clip_max"] == [pytest.approx(last_centre, rel=1e-12)]


def test_easyquant_steps_are_bounded() -> None:
    with pytest.raises(QuantOptionError, match=r"steps .* \[1, 1000\]"):
        make_calibrator("easyquant", steps=100_000_000)


def test_histogram_stack_checked_against_the_work_budget() -> None:
    # per-group of 1 on 16384 values: 16384 rows x 4096 bins of int64 = 512 MiB for a 64 KB tensor
    x = np.random.default_rng(2).normal(size=(128, 128)).astype(np.float32)
    data = CalibrationData(to_rows(x, QuantScheme(granularity="group", axis=1, group_size=1)))
    with pytest.raises(BudgetError, match="histogram of 16,384 rows x 4,096 bins"):
        data.abs_histogram(4096)
    assert data.abs_histogram(128).counts.shape == (16384, 128)  # within the budget
