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
        ("format=nf4", "format"),
    ],
)
def test_bad_specs_are_clear_errors(spec, needle):
    with pytest.raises(QuantOptionError, match=needle):
        parse_config(spec)


def test_bits_per_weight_counts_one_fp16_scale_per_range():
    shape = (256, 384)
    assert parse_config("bits=8").bits_per_weight(shape) == 8 + 16 / (256 * 384)
    assert parse_config("bits=8,granularity=channel").bits_per_weight(shape) == 8 + 16 / 384
    assert parse_config("bits=4,granularity=group,group_size=128").bits_per_weight(shape) == 4 + 16 / 128
    # asymmetric adds a b-bit zero point per range; a short last group is a whole range (384 = 3 x 128 + 0)
    assert parse_config("bits=4,granularity=group,group_size=100,scheme=asymmetric").bits_per_weight(shape) == (
        4 + 256 * 4 * 20 / (256 * 384)
    )
    assert parse_config("bits=4,granularity=group,group_size=128").nbytes(shape) == 256 * 384 * 4.125 / 8
