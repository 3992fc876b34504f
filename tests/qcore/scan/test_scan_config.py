"""Config spec strings -> ScanConfig, labels, bits per weight."""

from __future__ import annotations

import pytest

from qcore import QuantOptionError, QuantScheme
from qcore.scan import parse_config


def test_spec_parses_into_scheme_and_method():
    c = parse_config("bits=4,scheme=symmetric,granularity=group,group_size=128,method=mse,format=int,bins=1024")
    assert c.scheme == QuantScheme(bits=4, granularity="group", group_size=128, axis=-1)
    assert (c.method, dict(c.options), c.format) == ("mse", {"bins": 1024}, "int")
    assert c.label == "INT4 g128 mse bins=1024"
    assert parse_config(c.spec) == c


def test_defaults_and_asymmetric_label():
    c = parse_config("bits=8,granularity=channel,scheme=asymmetric")
    assert (c.scheme.axis, c.scheme.symmetric, c.method) == (0, False, "minmax")
    assert c.label == "INT8 per-channel minmax asym"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("bits=1", "bits"),
        ("bits=four", "bits takes an integer"),
        ("method=magic", "method must be one of"),
        ("granularity=row", "granularity"),
        ("colour=red", "unknown key 'colour'"),
        ("bits", "expected KEY=VALUE"),
        ("scheme=odd", "scheme must be"),
        ("narrow_range=maybe", "true or false"),
        ("format=bogus", "unknown format"),
        ("format=q4_0,method=mse", "sets its own block scales"),
    ],
)
def test_bad_specs_are_clear_errors(spec, needle):
    with pytest.raises(QuantOptionError, match=needle):
        parse_config(spec)


def test_bits_per_weight_is_the_formats_storage_cost():
    shape = (256, 384)
    # INT: a float32 scale per range (tensor, channel, group), plus a b-bit zero point when asymmetric
    assert parse_config("bits=8").bits_per_weight(shape) == 8 + 32 / (256 * 384)
    assert parse_config("bits=8,granularity=channel").bits_per_weight(shape) == 8 + 32 / 384
    assert parse_config("bits=4,granularity=group,group_size=128").bits_per_weight(shape) == 4 + 32 / 128
    assert parse_config("bits=4,granularity=group,group_size=128,scheme=asymmetric").bits_per_weight(shape) == (
        4 + 36 / 128
    )
    assert parse_config("bits=4,granularity=group,group_size=128").nbytes(shape) == 256 * 384 * 4.25 / 8
    # GGUF Q4_0: blocks of 32 along the last axis, an fp16 scale each: 4.5 bits per weight
    q4 = parse_config("format=q4_0")
    assert (q4.scheme.granularity, q4.scheme.group_size, q4.label) == ("group", 32, "Q4_0 g32 minmax")
    assert q4.bits_per_weight(shape) == 4.5


def test_format_options_are_config_keys_checked_against_their_declared_bounds():
    mx = parse_config("format=mxfp4,scale_rounding=ceil")
    assert dict(mx.options) == {"scale_rounding": "ceil"} and mx.label == "MXFP4 g32 minmax scale_rounding=ceil"
    assert parse_config(mx.spec) == mx
    with pytest.raises(QuantOptionError, match=r"scale_rounding of mxfp4 must be one of 'floor'"):
        parse_config("format=mxfp4,scale_rounding=up")
    dq = parse_config("format=nf4,double_quant=true,block_size=128")
    assert (dq.format, dq.scheme.group_size) == ("nf4_dq", 128)
    assert dq.bits_per_weight((64, 256)) < parse_config("format=nf4,block_size=128").bits_per_weight((64, 256))
    for spec, needle in (
        ("format=nf4,block_size=48", "block_size of nf4 must be one of"),
        ("block_size=64", "block_size applies to block formats"),
        ("format=q4_0,double_quant=true", "double_quant applies to the NF4 formats"),
        ("percentile=99.9", "percentile is an option of percentile"),
        ("method=percentile,percentile=0", r"percentile of .* must be a number in \(0, 100\]"),
        ("group_size=0,granularity=group", r"group_size of QuantScheme must be an integer in \[1"),
    ):
        with pytest.raises(QuantOptionError, match=needle):
            parse_config(spec)


def test_scheme_fields_round_trip_through_the_spec():
    c = parse_config("bits=8,reduce_range=true,granularity=channel")
    assert c.scheme.reduce_range and parse_config(c.spec) == c and "reduced" in c.label
    c = parse_config("bits=8,quant_min=-100,quant_max=100")
    assert (c.scheme.quant_min, c.scheme.quant_max) == (-100, 100) and parse_config(c.spec) == c
