"""The format registry: every format's interface, storage cost, option checks and the INT default."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme, analyze, to_rows
from qcore.formats import FORMATS, Encoding, NumberFormat, get_format

NAMES = list(FORMATS)
X = np.random.default_rng(5).standard_normal((8, 256)).astype(np.float32)


def _scheme(name: str, **kw) -> QuantScheme:
    return QuantScheme(bits=FORMATS[name].bits or 8, format=name, **kw)


def test_int_is_the_default_and_first():
    assert QuantScheme().format == "int" and NAMES[0] == "int"
    for name in ("int", "fp8_e4m3", "nf4", "mxfp4", "nvfp4", "q4_0", "q8_0"):
        assert name in FORMATS


@pytest.mark.parametrize("name", NAMES)
def test_every_format_encodes_consistently(name):
    fmt = FORMATS[name]
    assert isinstance(fmt, NumberFormat) and dataclasses.is_dataclass(fmt) and fmt.label and fmt.summary
    a = analyze(X, _scheme(name))
    enc = a.encoding
    assert isinstance(enc, Encoding)
    x_hat = a.dequantized()
    assert x_hat.dtype == np.float32 and x_hat.shape == X.shape and np.all(np.isfinite(x_hat))
    assert a.codes().shape == X.shape
    for field in ("scale", "clip_min", "clip_max"):
        assert getattr(enc, field).shape == (a.rows.n_rows,), field
    assert np.all(enc.clip_min <= enc.clip_max)
    r = a.report
    assert 0 < r.mse and np.isfinite(r.mse) and r.mse == pytest.approx(r.clip_mse + r.round_mse)
    assert r.mse == pytest.approx(float(np.mean((x_hat.astype(np.float64) - X) ** 2)), rel=1e-9)
    assert 0.9 < r.cosine <= 1.0 and 1 <= r.levels_used <= r.levels_total == enc.levels_total
    levels = enc.row_levels(0)  # row 0's values all lie on its levels
    assert np.all(np.diff(levels) > 0)
    first = enc.dequantized_rows()[0].astype(np.float64)
    assert np.all(np.min(np.abs(first[:, None] - levels[None, :]), axis=1) <= 1e-6 * np.abs(levels).max())
    for key, value in enc.arrays().items():
        assert isinstance(value, np.ndarray) and value.size > 0, key
    bpw = a.bits_per_weight()
    assert bpw >= (fmt.bits or 8) and bpw == fmt.storage_bits_for(a.params.scheme, X.shape) / X.size


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_of_a_row_maps_to_its_levels(name):
    enc = analyze(X, _scheme(name)).encoding
    levels = enc.row_levels(0)
    got = enc.round_trip(enc.rows.values[0, :16], 0)
    assert got.dtype == np.float32
    distance = np.min(np.abs(got[:, None].astype(np.float64) - levels[None, :]), axis=1)
    assert np.all(distance <= 1e-6 * np.abs(levels).max())


def test_nominal_bits_per_weight():
    table = {name: FORMATS[name].bits_per_weight(_scheme(name)) for name in NAMES}
    assert table["q4_0"] == 4.5 and table["q8_0"] == 8.5 and table["mxfp4"] == 4.25 and table["nvfp4"] == 4.5
    assert table["nf4"] == 4.5 and table["nf4_dq"] == pytest.approx(4 + 8 / 64 + 32 / (64 * 256))
    assert table["fp8_e4m3"] == 8 and table["gguf_mxfp4"] == 4.25
    int4_g128 = QuantScheme(bits=4, symmetric=False, granularity="group", group_size=128)
    assert FORMATS["int"].bits_per_weight(int4_g128) == 4 + (32 + 4) / 128


def test_exact_storage_counts_partial_groups_and_tensor_scales():
    # INT8 per-channel on (3, 10): 30 codes + 3 float32 scales
    assert FORMATS["int"].storage_bits_for(QuantScheme(granularity="channel"), (3, 10)) == 30 * 8 + 3 * 32
    # NF4 on a 1-D tensor of 100: two blocks of 64 (the second partial)
    assert analyze(np.ones(100, np.float32), _scheme("nf4")).bits_per_weight() == (4 * 100 + 2 * 32) / 100
    assert FORMATS["nvfp4"].storage_bits(32, 2) == 4 * 32 + 8 * 2 + 32


@pytest.mark.parametrize(
    ("name", "changes", "match"),
    [
        ("nf4", {"bits": 8}, "4-bit elements"),
        ("q4_0", {"granularity": "channel"}, "not per-channel"),
        ("q4_0", {"granularity": "group", "group_size": 64, "axis": -1}, "group size 64"),
        ("mxfp4", {"granularity": "group", "group_size": 16, "axis": -1}, "group size 16"),
        ("fp8_e4m3", {"symmetric": False}, "symmetric"),
        ("nf4", {"signed": False}, "unsigned"),
        ("fp4_e2m1", {"narrow_range": True}, "narrow range"),
    ],
)
def test_incompatible_options_are_refused(name, changes, match):
    with pytest.raises(QuantOptionError, match=match):
        analyze(X, _scheme(name).with_(**changes))


def test_fixed_rule_formats_refuse_calibrators_and_conventions():
    with pytest.raises(QuantOptionError, match="own block scales"):
        analyze(X, _scheme("q4_0"), "entropy")
    with pytest.raises(QuantOptionError, match="int format only"):
        analyze(X, _scheme("fp8_e4m3"), "minmax", "tensorrt")
    with pytest.raises(QuantOptionError, match="unknown format"):
        analyze(X, QuantScheme(format="int3"))
    with pytest.raises(QuantOptionError, match="format must be"):
        QuantScheme(format="")


def test_options_apply_only_where_taken():
    assert get_format("mxfp4", scale_rounding="ceil").scale_rounding == "ceil"
    assert get_format("nf4", scale_rounding="ceil") is FORMATS["nf4"]


def test_nf4_group_sizes_of_bitsandbytes():
    a = analyze(X, _scheme("nf4", granularity="group", group_size=128, axis=-1))
    assert a.rows.group_size == 128 and a.bits_per_weight() == 4 + 32 / 128


def test_encodings_are_refused_beyond_the_memory_budget(monkeypatch):
    scheme = FORMATS["q4_0"].scheme_for(QuantScheme(bits=4, format="q4_0"))
    rows = to_rows(np.ones((64, 8192), np.float32), scheme)  # built under the default budget
    monkeypatch.setenv("QCORE_MEMORY_BUDGET_MB", "1")  # then the work budget is capped at 1 MiB
    with pytest.raises(QuantOptionError, match="q4_0 encoding"):
        FORMATS["q4_0"].check_rows(rows)
