"""The numeric helpers of the format views: Pareto mask, rounding reference, format scheme, storage text."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, analyze
from qcore.formats import FORMATS
from ui.format_state import block_size, format_scheme
from ui.format_views import _reference_rows, bpw_text, cell_mse, fmt_bytes


def test_cell_mse_is_s2_over_12_on_a_uniform_grid_and_follows_gaps() -> None:
    grid = np.arange(-8, 8, dtype=np.float64)[None, :] * 0.5
    np.testing.assert_allclose(cell_mse(grid), 0.25 / 12)
    m = cell_mse(np.array([[0.0, 1.0, 3.0]]))  # gaps 1 and 2
    np.testing.assert_allclose(m, [[1 / 12, (1 + 8) / 36, 4 / 12]])
    shuffled = np.array([[3.0, 0.0, 1.0]])  # level-index order need not be sorted (GGUF codes)
    np.testing.assert_allclose(cell_mse(shuffled), [[4 / 12, 1 / 12, 9 / 36]])


def test_local_reference_predicts_rounding_error_of_dense_data() -> None:
    """Values spread over many levels: the rounding MSE is close to the local-cell reference."""
    x = np.random.default_rng(1).uniform(-1, 1, (64, 4096)).astype(np.float32)
    for fmt in ("fp8_e4m3", "fp6_e2m3", "mxfp8_e4m3"):
        f = FORMATS[fmt]
        scheme = QuantScheme(bits=f.bits, format=fmt, granularity="group" if f.block_sizes else "tensor", axis=1,
                             group_size=f.block or 128)  # fmt: skip
        a = analyze(x, scheme, "minmax")
        ref = _reference_rows(a).sum() / a.report.count
        assert a.report.round_mse == pytest.approx(ref, rel=0.1), fmt


def test_format_scheme_fixes_what_the_format_fixes() -> None:
    base = QuantScheme(bits=3, symmetric=False, granularity="channel", axis=0, narrow_range=True)
    assert format_scheme(base, FORMATS["int"], 2) == base.with_(format="int")
    fp8 = format_scheme(base, FORMATS["fp8_e4m3"], 2)
    assert (fp8.bits, fp8.symmetric, fp8.narrow_range, fp8.granularity, fp8.axis) == (8, True, False, "channel", 0)
    nf4 = format_scheme(base, FORMATS["nf4"], 2, block=256)
    assert (nf4.granularity, nf4.axis, nf4.group_size, nf4.format) == ("group", 1, 256, "nf4")
    assert block_size(FORMATS["nf4"], {"block": "100"}) == 64  # not one of bitsandbytes' sizes: the default
    assert block_size(FORMATS["mxfp4"], {"block": "64"}) == 32


def test_storage_text() -> None:
    assert bpw_text(4.25) == "4.25" and bpw_text(8.000145) == "8.0001" and bpw_text(4.0) == "4"
    assert fmt_bytes(123_456) == "123 kB" and fmt_bytes(999) == "999 B" and fmt_bytes(2.5e9) == "2.5 GB"


def test_large_2d_sweeps_measure_whole_rows_and_keep_the_full_storage() -> None:
    from ui.format_sweep import MAX_SWEEP_ELEMENTS, format_points, measured_lines

    x = np.random.default_rng(2).standard_normal((2 * MAX_SWEEP_ELEMENTS // 256 + 8, 256)).astype(np.float32)
    sample = measured_lines(x)
    assert sample.size <= MAX_SWEEP_ELEMENTS and sample.shape[1] == 256
    np.testing.assert_array_equal(sample[1], x[3])  # every 3rd whole row
    records = {r["format"]: r for r in format_points(x, QuantScheme(), "minmax", (8,), lambda f, label: None)}
    assert records["nvfp4"]["bits_per_weight"] == pytest.approx(4.5 + 32 / x.size)
    assert records["q4_0"]["bits_per_weight"] == 4.5
