"""Config spec strings -> ScanConfig, labels, bits per weight."""

from __future__ import annotations

import pytest

from qcore import QuantOptionError, QuantScheme
from qcore.scan import parse_config


def test_spec_parses_into_scheme_and_method():
    c = parse_config("bits=4,scheme=symmetric,granularity=group,group_size=128,method=mse,format=int,bins=1024")
    assert c.scheme == QuantScheme(bits=4, granularity="group", group_size=128, axis=-1)
    assert (c.method, dict(c.options), c.format) == ("mse", {"bins": 1024}, "int")
    assert c.label == "INT4 g128 mse"
    assert parse_config(c.spec) == c


def test_defaults_and_asymmetric_label():
    c = parse_config("bits=8,granularity=channel,scheme=asymmetric")
    assert (c.scheme.axis, c.scheme.symmetric, c.method) == (0, False, "minmax")
    assert c.label == "INT8 per-channel minmax asym"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("bits=1", "bits"),
        ("bits=four", "takes a number"),
        ("method=magic", "unknown method"),
        ("granularity=row", "granularity"),
        ("colour=red", "unknown config key"),
        ("bits", "is not key=value"),
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
