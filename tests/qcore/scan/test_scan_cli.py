"""``python -m qcore scan``: reports, exit status, one error line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from qcore.cli import main

ROOT = Path(__file__).resolve().parents[3]


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_json_report_with_plan_and_error_rows(llama, tmp_path, capsys):
    index, _arrays = llama
    sorted(index.parent.glob("*.safetensors"))[1].unlink()
    out = tmp_path / "r.json"
    specs = ["--config", "bits=8,granularity=channel", "--config", "bits=4,granularity=group,group_size=32"]
    status = main(["scan", str(index.parent), *specs, "--only-2d", "--out", str(out), "--plan-bpw", "6"])
    assert status == 0 and capsys.readouterr().err == ""
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    body = json.loads(text)
    assert [c["label"] for c in body["configs"]] == ["INT8 per-channel minmax", "INT4 g32 minmax"]
    errors = [r for r in body["rows"] if r["status"] == "error"]
    assert len(errors) == 1 and "not found" in errors[0]["error"]
    assert {r["status"] for r in body["rows"]} == {"ok", "error"}
    assert body["plan"]["bits_per_weight"] <= 6 and body["plan"]["tensors"]


def test_csv_report_has_one_row_per_tensor_and_config(llama, tmp_path, capsys):
    index, arrays = llama
    out = tmp_path / "r.csv"
    assert main(["scan", str(index), "--filter", "proj", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * sum("proj" in n for n in arrays)
    assert {r["config"] for r in rows} == {"INT8 per-channel minmax", "INT4 g128 minmax"}
    assert all(float(r["sqnr_db"]) > 0 for r in rows)


def test_skipped_pairs_are_counted_with_their_reason(tmp_path, capsys):
    rng = np.random.default_rng(0)
    arrays = {"w": rng.standard_normal((8, 16)).astype(np.float32), "b": rng.standard_normal(8).astype(np.float32)}
    save_file(arrays, str(tmp_path / "m.safetensors"))
    specs = ["--config", "bits=8,granularity=channel", "--config", "bits=8"]
    for out in (tmp_path / "r.json", tmp_path / "r.csv"):
        assert main(["scan", str(tmp_path / "m.safetensors"), *specs, "--out", str(out)]) == 0
        summary = capsys.readouterr().out
        assert "0 error rows, 1 tensor x configuration pairs skipped as not applicable: 1 x channel granularity" in (
            summary
        )
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["error_rows"] == 0 and body["skipped_pairs"] == 1
    [reason] = body["skipped_reasons"]
    assert reason["pairs"] == 1 and "at least 2 dimensions" in reason["reason"]
    skipped = [r for r in csv.DictReader((tmp_path / "r.csv").open()) if r["status"] == "skipped"]
    assert [(r["tensor"], r["config"]) for r in skipped] == [("b", "INT8 per-channel minmax")]
    assert skipped[0]["error"] == reason["reason"]


def test_nothing_readable_exits_2(tmp_path, capsys):
    bad = np.ones((4, 4), np.float32)
    bad[0, 0] = np.nan
    save_file({"w": bad}, str(tmp_path / "m.safetensors"))
    assert main(["scan", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "r.json")]) == 2
    assert "NaN" in _error_line(capsys)
    assert not (tmp_path / "r.json").exists()


def test_bad_options_exit_2(llama, tmp_path, capsys):
    index, _ = llama
    for argv in (
        ["scan", str(index), "--out", str(tmp_path / "r.txt")],
        ["scan", str(index), "--config", "bits=99", "--out", str(tmp_path / "r.json")],
        ["scan", str(index), "--config", "format=bogus", "--out", str(tmp_path / "r.json")],
        ["scan", str(index), "--filter", "(", "--out", str(tmp_path / "r.json")],
        ["scan", str(tmp_path / "missing"), "--out", str(tmp_path / "r.json")],
        ["scan", str(index), "--out", str(tmp_path / "r.csv"), "--plan-bpw", "4"],
        ["scan", str(index), "--out", str(tmp_path / "r.json"), "--workers", "0"],
        ["scan", str(index), "--out", str(tmp_path / "r.json"), "--workers", "2", "--dask", "tcp://localhost:1"],
    ):
        assert main(argv) == 2
        _error_line(capsys)


def test_module_entry_point(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "qcore", "scan", "data/digits_mlp.safetensors", "--out", str(out), "--only-2d"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert json.loads(out.read_text())["tensors_selected"] == 6
