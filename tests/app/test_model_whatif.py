"""AppTest of the Model what-if page on the digits MLP (fast): metrics next to float from the core, the per-layer and
sensitivity charts, URL state, a bad override as a message."""

from __future__ import annotations

import json

import pytest
from app_helpers import run_app

from qcore.models import parse_config, session

pytest.importorskip("sklearn", reason="needs requirements-samples.txt (make samples)")
PAGE = "pages/model_whatif.py"
SPEC = (
    "bits=4,scheme=symmetric,target=both,convention=default,weight.granularity=channel,weight.method=minmax,"
    "input.granularity=tensor,input.method=minmax"
)


def test_digits_metrics_are_the_core_ones_and_the_sweep_draws():
    at = run_app({"mw_model": "digits", "mw_bits": "4", "mw_sens": "true", "mw_keep": "2"}, page=PAGE)
    assert not at.error
    run = session("digits").run(parse_config(SPEC), per_layer=False)
    cards = {m.label: m for m in at.metric}
    assert cards["held-out accuracy"].value == f"{100 * run.metrics['accuracy']:.1f} %"
    assert cards["mean KL (nats)"].value == f"{run.metrics['kl_mean']:.5f}"
    assert SPEC in at.code[0].value and "model digits" in at.code[0].value
    keys = [el.proto.id for el in at.get("plotly_chart")]
    assert any("mw_layers" in k for k in keys) and any("mw_sensitivity" in k for k in keys)
    sens = next(json.loads(el.proto.spec) for el in at.get("plotly_chart") if "mw_sensitivity" in el.proto.id)
    assert len(sens["data"][0]["y"]) == 3  # fc1..fc3
    parts = at.dataframe[0].value  # weight-only / input-only next to both
    assert list(parts.index) == ["both", "weight", "input"]
    weight_only = session("digits").run(parse_config(SPEC.replace("target=both", "target=weight")), per_layer=False)
    assert parts.loc["weight", "loss"] == weight_only.loss
    at.radio(key="mw_target").set_value("weight").run()
    assert not at.exception and "target=weight" in at.code[0].value


def test_url_restores_the_configuration():
    at = run_app({"mw_model": "digits", "mw_target": "input", "mw_xgran": "token", "mw_bits": "6"}, page=PAGE)
    assert not at.error
    assert "model digits" in at.code[0].value
    assert "bits=6" in at.code[0].value and "target=input" in at.code[0].value
    assert "input.granularity=token" in at.code[0].value


def test_a_number_format_sets_the_element_width():
    query = {"mw_model": "digits", "mw_format": "nf4", "mw_target": "weight", "mw_wgran": "tensor"}
    at = run_app(query, page=PAGE)
    assert not at.error
    assert "bits=4," in at.code[0].value and "format=nf4" in at.code[0].value
    run = session("digits").run(parse_config(at.code[0].value.split('"')[1]), per_layer=False)
    assert {m.label: m.value for m in at.metric}["mean KL (nats)"] == f"{run.metrics['kl_mean']:.5f}"


def test_bad_override_is_a_message_not_a_traceback():
    at = run_app({"mw_model": "digits", "mw_extra": "fc9: float"}, page=PAGE)
    assert not at.exception
    assert any("no layer matches 'fc9'" in e.value for e in at.error)
