"""What-if → Bits: the note on methods whose clipping error dominates at the widest bit width shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qcore import QuantScheme
from qcore.calibrators.aciq import optimal_ratio
from qcore.samples import default_sample, load_sample
from qcore.sweeps import bits_sweep
from ui.clip_notes import CLIP_DOMINATES, clip_dominated, clip_note
from ui.sweep_charts import records_frame

X, _ = load_sample(default_sample())  # MiniLM FFN input: outlier hidden dims up to |x| = 28.8
SCHEME = QuantScheme(bits=8, symmetric=False)


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return records_frame(bits_sweep(X, SCHEME, ["minmax", "aciq"], (4, 8, 16)))


def test_aciq_clips_below_the_outliers_at_16_bits_and_minmax_does_not(sweep: pd.DataFrame) -> None:
    found = clip_dominated(sweep)
    assert list(found["method"]) == ["aciq"] and int(found["bits"].iloc[0]) == 16
    row = found.iloc[0]
    assert row["clip_share"] > CLIP_DOMINATES and row["clip_share"] == pytest.approx(row["clip_mse"] / row["mse"])
    # ACIQ's clip is the formula: |mu| + r(16) sigma, far below max |x|
    x = X.astype(np.float64)
    assert row["threshold"] == pytest.approx(optimal_ratio(16, "gaussian") * x.std(), rel=0.01)
    assert row["threshold"] < 0.2 * np.abs(x).max()
    aciq = sweep[sweep["method"] == "aciq"].set_index("bits")["sqnr_db"]
    assert aciq[16] - aciq[8] < 3  # flat, where minmax gains ~6 dB per bit
    minmax = sweep[sweep["method"] == "minmax"].set_index("bits")["sqnr_db"]
    assert minmax[16] - minmax[8] > 40


def test_the_note_names_the_cause_and_aciq_ratio(sweep: pd.DataFrame) -> None:
    row = clip_dominated(sweep).iloc[0]
    text = clip_note(row, "ACIQ", float(np.abs(X).max()), SCHEME, {"distribution": "gaussian"})
    assert "clipping error dominates" in text and "reaches |x| = 4.85" in text and "max |x| is 28.8" in text
    assert f"r(16) = {optimal_ratio(16, 'gaussian'):.2f}" in text and "Gaussian model" in text
    unsigned = clip_note(row, "ACIQ", 28.8, SCHEME.with_(signed=False), {"distribution": "auto"})
    assert "r(17)" in unsigned and "Laplace" in unsigned and "Gaussian" in unsigned


def test_no_note_for_a_single_width_or_failed_points(sweep: pd.DataFrame) -> None:
    assert clip_dominated(sweep[sweep["bits"] == 16]).empty
    failed = sweep.assign(error="boom")
    assert clip_dominated(failed).empty
