"""The numeric helpers of the format views: rounding reference, format scheme, storage text."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantScheme, analyze
from qcore.formats import FORMATS
from ui.format_state import block_size, format_scheme
from ui.format_views import bpw_text, fmt_bytes, rounding_reference


def test_rounding_reference_is_the_cores() -> None:
    """The view reads the core's reference: s^2/12 for INT, the local level spacing for the other formats."""
    x = np.random.default_rng(1).uniform(-1, 1, (8, 512)).astype(np.float32)
    for fmt, local in (("int", False), ("fp8_e4m3", True), ("nf4", True)):
        f = FORMATS[fmt]
        granularity = "tensor" if f.block_sizes else "channel"
        a = analyze(x, QuantScheme(bits=f.bits or 8, format=fmt, granularity=granularity))
        ref = rounding_reference(a)
        assert ref.local is local and ref.whole == a.report.round_mse_reference and np.isfinite(ref.whole)
        np.testing.assert_array_equal(ref.rows, a.report.rows.round_mse_reference)


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
