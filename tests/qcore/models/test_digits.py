"""The digits MLP in the runner, and the runner's machinery (static/dynamic inputs, sensitivity) on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qcore import analyze
from qcore.models import ModelConfigError, parse_config
from qcore.models.digits import classifier_metrics
from qcore.models.runner import fit_quantizer

DATA = Path(__file__).resolve().parents[3] / "data"


def test_float_accuracy_is_the_bundled_figure(digits):
    """data/README.md: held-out accuracy 0.973 (manifest: 0.9733333333333334 = 438/450)."""
    manifest = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
    assert digits.float_metrics["accuracy"] == manifest["sources"]["digits_mlp"]["test_accuracy"]
    assert digits.float_metrics["accuracy"] == digits.model.mlp.accuracy  # numpy float32 pass == sklearn's score
    assert round(digits.float_metrics["accuracy"], 3) == 0.973


def test_every_quantizer_off_is_exactly_float(digits):
    run = digits.run(parse_config("target=none"))
    assert run.metrics == run.float_metrics and run.loss == 0.0
    assert run.metrics["kl_mean"] == 0.0 and run.metrics["top1_agreement"] == 1.0


def test_int16_everywhere_is_within_tolerance(digits):
    run = digits.run(parse_config("bits=16,scheme=asymmetric"))
    assert 0 < run.loss < 1e-7 and run.metrics["accuracy"] == run.float_metrics["accuracy"]
    assert all(e.sqnr_db > 70 for e in run.layers)


def test_int4_costs_accuracy_and_kl_grows_with_fewer_bits(digits):
    losses = [digits.run(parse_config(f"bits={b}"), per_layer=False).loss for b in (8, 6, 4, 3)]
    assert losses == sorted(losses) and losses[-1] > 100 * losses[0]
    assert digits.run(parse_config("bits=3"), per_layer=False).metrics["accuracy"] < 0.95


def test_kl_metric_formula():
    ref = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]])
    got = classifier_metrics(p, ref, np.array([1, 0]))
    want = (0.5 * np.log(2) + 0.5 * np.log(0.5 / 0.75) + np.log(2)) / 2
    assert got["kl_mean"] == pytest.approx(want, rel=1e-12) and got["accuracy"] == 1.0


def test_static_input_ranges_come_from_the_calibration_split(digits):
    """fc2's input range is fitted on the training images' activations and applied unchanged to the held-out ones."""
    quant = parse_config("target=input,method=minmax").base.input
    fitted = digits.input_quantizer("fc2", quant)
    cal = digits.calibration_inputs["fc2"]
    assert fitted.calibration.hi[0] == pytest.approx(np.abs(cal).max())
    held_out = digits._capture("evaluation", "input")["fc2"]
    np.testing.assert_array_equal(fitted(held_out), fit_quantizer(cal, quant)(held_out))
    assert not np.array_equal(fitted(held_out), analyze(held_out, quant.scheme).dequantized())


def test_static_and_dynamic_differ_and_dynamic_per_row_hits_each_row_max(digits):
    quant = parse_config("target=input,input.granularity=token").base.input
    x = digits.calibration_inputs["fc3"][:50]
    xq = digits.input_quantizer("fc3", quant)(x)
    np.testing.assert_allclose(np.abs(xq).max(axis=1), np.abs(x).max(axis=1), rtol=1e-6)


def test_any_calibrator_scheme_and_convention_passes_through(digits):
    for spec in (
        "bits=8,format=log2,target=input",  # log2 is a number format (any calibrator sets its range)
        "bits=8,scheme=asymmetric,convention=pytorch",
        "bits=4,weight.granularity=group,group_size=16,target=weight",
        "bits=8,method=percentile,percentile=99.9,input.granularity=channel",
        "bits=6,method=mse,rounding=half_away",
    ):
        run = digits.run(parse_config(spec), per_layer=False)
        assert 0 < run.loss < 1.0, spec


def test_sensitivity_matches_direct_runs(digits):
    cfg = parse_config("bits=4,granularity=channel,input.granularity=tensor")
    sens = digits.sensitivity(cfg, keep=2)
    assert sens.layers == ("fc1", "fc2", "fc3") and sorted(sens.ranking) == sorted(sens.layers)
    assert sens.all_loss == digits.run(cfg, per_layer=False).loss
    for name, only, all_but in zip(sens.layers, sens.only, sens.all_but, strict=True):
        others = ";".join(f"{n}: float" for n in sens.layers if n != name)
        assert only == digits.run(parse_config(cfg.spec + ";" + others), per_layer=False).loss
        assert all_but == digits.run(parse_config(f"{cfg.spec}; {name}: float"), per_layer=False).loss
    assert list(sens.only) and sens.ranking[0] == sens.layers[int(np.argmax(sens.only))]
    kept = sens.keep[1].kept
    direct = digits.run(parse_config(cfg.spec + ";" + ";".join(f"{n}: float" for n in kept)), per_layer=False)
    assert sens.keep[1].loss == direct.loss < sens.all_loss


def test_options_the_core_refuses_at_fit_time_name_the_layer(digits):
    with pytest.raises(ModelConfigError, match=r"layer fc1 weight: TensorRT .* symmetric quantization only"):
        digits.run(parse_config("scheme=asymmetric,convention=tensorrt"))


def test_weight_cache_keeps_what_the_current_configuration_uses(digits, monkeypatch):
    from qcore.models import runner

    monkeypatch.setattr(runner, "WEIGHT_CACHE_BYTES", 0)
    digits.run(parse_config("bits=5,target=weight"), per_layer=False)
    digits.run(parse_config("bits=6,target=weight"), per_layer=False)
    assert {q.scheme.bits for _, q in digits._weights} == {6}


def test_static_inputs_refuse_a_round_trip_that_fixed_ranges_do_not_reproduce(monkeypatch):
    """The fitted quantizer must give analyze's own round trip on the calibration tensor, or the input is refused
    (a scheme whose round trip is more than fixed ranges can only run dynamically)."""
    from qcore.models import runner

    x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    quant = parse_config("target=input").base.input
    assert np.array_equal(fit_quantizer(x, quant)(x), analyze(x, quant.scheme).dequantized())
    monkeypatch.setattr(runner.FittedQuantizer, "__call__", lambda self, x: x)
    with pytest.raises(ModelConfigError, match="cannot be applied as fixed ranges"):
        fit_quantizer(x, quant)


def test_number_formats_pass_through(digits):
    """``format=`` goes to QuantScheme unchanged: FP8 static input ranges, NF4 / GGUF weights, MX dynamic inputs."""
    for spec in (
        "format=fp8_e4m3",
        "format=nf4,bits=4,target=weight",
        "format=q4_0,bits=4,target=weight",
        "format=mxfp4,bits=4,input.dynamic=true",
    ):
        run = digits.run(parse_config(spec), per_layer=False)
        assert 0 < run.loss < 0.05 and run.metrics["accuracy"] > 0.95, spec
    fp8 = parse_config("format=fp8_e4m3").base.input
    x = digits.calibration_inputs["fc2"]
    np.testing.assert_array_equal(fit_quantizer(x, fp8)(x), analyze(x, fp8.scheme).dequantized())


def test_a_format_that_does_not_fit_a_layer_names_it(digits):
    with pytest.raises(ModelConfigError, match=r"layer fc1 weight: q4_k needs a last axis that is a multiple of"):
        digits.run(parse_config("format=q4_k,bits=4,target=weight"))
    with pytest.raises(ModelConfigError, match=r"mxfp4 lays inputs out in blocks of 32.*dynamic=true"):
        parse_config("format=mxfp4,bits=4")
    with pytest.raises(ModelConfigError, match="unknown format 'bogus'"):
        parse_config("format=bogus")
