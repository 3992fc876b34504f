"""The configuration spec: keys, per-role keys, overrides, and clear errors."""

from __future__ import annotations

import pytest

from qcore.models.config import FLOAT, ModelConfigError, parse_config

LAYERS = ("fc1", "fc2", "fc3")


def test_defaults_are_int8_symmetric_per_tensor_minmax_on_both():
    cfg = parse_config("")
    for q in (cfg.base.weight, cfg.base.input):
        assert (q.scheme.bits, q.scheme.symmetric, q.scheme.granularity, q.method) == (8, True, "tensor", "minmax")
    assert not cfg.base.input.dynamic


def test_role_prefixes_and_axes():
    cfg = parse_config("bits=4,granularity=channel,input.bits=8,input.method=entropy,input.granularity=channel")
    w, x = cfg.base.weight, cfg.base.input
    assert (w.scheme.bits, w.scheme.axis, w.method) == (4, 0, "minmax")  # weights: output channels
    assert (x.scheme.bits, x.scheme.axis, x.method) == (8, 1, "entropy")  # inputs: features


def test_token_granularity_is_dynamic_per_row():
    x = parse_config("input.granularity=token").base.input
    assert x.dynamic and x.scheme.granularity == "channel" and x.scheme.axis == 0


def test_other_scheme_fields_pass_through_typed_like_their_defaults():
    w = parse_config("reduce_range=true,quant_min=-60,quant_max=60").base.weight.scheme
    assert (w.reduce_range, w.quant_min, w.quant_max, w.format) == (True, -60, 60, "int")
    assert parse_config("format=fp8_e4m3").base.input.scheme.format == "fp8_e4m3"


def test_targets():
    assert parse_config("target=weight").base.input is None
    assert parse_config("target=input").base.weight is None
    assert parse_config("target=none").base.is_float


def test_overrides_start_from_the_base_and_later_ones_win():
    cfg = parse_config("bits=4,method=percentile; fc*: bits=8; fc3: float; fc1: target=weight")
    plan = cfg.resolve(LAYERS)
    assert plan["fc2"].weight.scheme.bits == 8 and plan["fc2"].input.method == "percentile"
    assert plan["fc3"] is FLOAT
    # each override starts from the base settings: fc1's later override replaces fc*'s bits=8
    assert plan["fc1"].input is None and plan["fc1"].weight.scheme.bits == 4


def test_spec_of_overrides_only():
    plan = parse_config("fc2: float").resolve(LAYERS)
    assert plan["fc2"].is_float and plan["fc1"].weight.scheme.bits == 8


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bits=20", r"bits of QuantScheme must be an integer in \[2, 16\], got 20"),
        ("bits=four", "bits takes an integer"),
        ("colour=red", "unknown key 'colour'"),
        ("method=magic", "method must be one of"),
        ("granularity=token", "weight granularity must be one of"),
        ("input.granularity=group", "needs dynamic=true"),
        ("weight.dynamic=true", "dynamic applies to inputs"),
        ("percentile=0", "percentile"),
        ("bins=0", "bins"),
        ("bits", "expected KEY=VALUE"),
        ("quant_min=low", "quant_min takes an integer"),
        ("fc1:", "an override is PATTERN"),
        ("fc1: bits=99", "override 'fc1'"),
        ("weight.target=input", "target applies to the layer"),
        ("scheme=asymmetric,narrow_range=true,signed=false", "narrow range applies to signed codes only"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ModelConfigError, match=message):
        parse_config(spec)


def test_a_pattern_matching_no_layer_names_the_layers():
    with pytest.raises(ModelConfigError, match=r"no layer matches 'fc9'; the layers are fc1, fc2, fc3"):
        parse_config("fc9: float").resolve(LAYERS)


def test_one_grammar_with_the_scan_format_options_and_shared_method_options():
    cfg = parse_config("format=mxfp4,scale_rounding=ceil,input.dynamic=true")
    assert dict(cfg.base.weight.options) == {"scale_rounding": "ceil"} == dict(cfg.base.input.options)
    cfg = parse_config("input.method=percentile,percentile=99.9")  # given to both: only the input's method takes it
    assert dict(cfg.base.input.options) == {"percentile": 99.9} and cfg.base.weight.options == ()
    assert parse_config("format=nf4,double_quant=true,target=weight").base.weight.scheme.format == "nf4_dq"
    for spec, message in (
        ("weight.percentile=99.9", "percentile is an option of"),
        ("axis=1", "axis is set by the role"),
        ("format=mxfp4,scale_rounding=up", "scale_rounding of mxfp4 must be one of"),
    ):
        with pytest.raises(ModelConfigError, match=message):
            parse_config(spec)
