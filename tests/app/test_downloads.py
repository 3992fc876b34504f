"""Download payloads: the parameters JSON has the CLI's layout and numbers; the .npz holds the round trip."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from qcore import QuantScheme, analyze
from qcore.samples import load_sample
from ui import downloads
from ui.state import Settings

SAMPLE = "digits_mlp/fc2.weight"


@pytest.fixture(scope="module")
def case():
    x, info = load_sample(SAMPLE)
    scheme = QuantScheme(bits=4, granularity="channel", axis=0)
    settings = Settings(scheme, "percentile", (("bins", 2048), ("percentile", 99.9)), "default")
    return x, info, settings, analyze(x, scheme, "percentile", percentile=99.9)


def test_params_json_matches_the_cli(case) -> None:
    _, info, settings, a = case
    ours = json.loads(downloads.params_json(a, settings, info.key))
    cmd = [
        sys.executable,
        "-m",
        "qcore",
        "calibrate",
        f"data/{info.file}",
        "--tensor",
        info.key,
        "--method",
        "percentile",
        "--percentile",
        "99.9",
        "--bits",
        "4",
        "--granularity",
        "channel",
        "--axis",
        "0",
        "--json",
    ]
    cli = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout)
    for key in (
        "tensor",
        "shape",
        "method",
        "bits",
        "scheme",
        "signed",
        "narrow_range",
        "granularity",
        "axis",
        "group_size",
        "qmin",
        "qmax",
        "zero_point",
        "nonfinite_count",
    ):
        assert ours[key] == cli[key], key
    for key in ("clip_min", "clip_max", "scale"):
        assert ours[key] == pytest.approx(cli[key], rel=1e-12), key
    for key, value in cli["metrics"].items():
        assert ours["metrics"][key] == pytest.approx(value, rel=1e-9), key


def test_npz_holds_codes_scale_zero_point_and_dequantized(case) -> None:
    x, _, _, a = case
    z = np.load(io.BytesIO(downloads.arrays_npz(a)), allow_pickle=False)
    assert set(z.files) == {"q", "scale", "zero_point", "dequantized"}
    assert np.array_equal(z["q"], a.codes()) and z["q"].shape == x.shape
    assert np.array_equal(z["dequantized"], a.dequantized())
    zp, s = z["zero_point"].astype(np.float32)[:, None], z["scale"].astype(np.float32)[:, None]
    expanded = (z["q"].astype(np.float32) - zp) * s  # x_hat = (q - z) s in float32, as qcore dequantizes
    assert np.array_equal(expanded, z["dequantized"])


def test_row_table_csv_has_one_line_per_channel(case) -> None:
    _, _, _, a = case
    table = pd.read_csv(io.BytesIO(downloads.csv_bytes(downloads.row_table(a))))
    assert len(table) == a.rows.n_rows
    assert np.allclose(table["mse"], a.report.rows.mse, rtol=1e-12)
    assert np.array_equal(table["zero_point"], a.params.zero_point)
