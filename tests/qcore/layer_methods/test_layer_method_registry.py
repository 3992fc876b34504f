"""The layer-method registry: options, sides, bad layers, the memory limit."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.layer_methods import METHODS, Side, base, get_method, method_options, run_method, sides_for
from qcore.scheme import QuantOptionError, QuantScheme


def _layer(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((16, 128)).astype(np.float32), rng.standard_normal((40, 128)).astype(np.float32)


def test_every_method_runs_with_its_defaults_and_reports_finite_errors():
    w, x = _layer()
    for method in METHODS.values():
        w_side, x_side = sides_for(method.quantize, Side(method.w_scheme), Side(method.x_scheme))
        run = run_method(w, x, method.name, w_side, x_side)
        assert np.isfinite(run.error.mse) and np.isfinite(run.rtn.mse) and run.error.mse > 0
        assert run.output.x_eff.shape[0] == 40 and run.output.w_eff.shape[0] == 16


def test_rtn_is_the_baseline_itself():
    w, x = _layer(1)
    run = run_method(w, x, "rtn", Side(QuantScheme(bits=4)), Side())
    assert run.error == run.rtn


def test_unknown_method_and_options():
    with pytest.raises(QuantOptionError, match="unknown layer method 'foo'; choose one of rtn, llm_int8"):
        get_method("foo")
    with pytest.raises(QuantOptionError, match="gptq takes no option alpha"):
        method_options("gptq", {"alpha": 0.5})
    with pytest.raises(QuantOptionError, match=r"alpha must be in \[0, 1\]"):
        method_options("smoothquant", {"alpha": 1.5})
    with pytest.raises(QuantOptionError, match="act_order must be true or false"):
        method_options("gptq", {"act_order": "yes"})
    with pytest.raises(QuantOptionError, match="quantize must be one of"):
        sides_for("neither", Side(), Side())
    assert method_options("gptq") == {"damp": 0.01, "act_order": False, "block_size": 128, "static_groups": False}


@pytest.mark.parametrize(
    ("w", "x", "message"),
    [
        (np.ones((4, 8)), np.ones((3, 7)), "W has K = 8 inputs but X has 7"),
        (np.ones((4, 8)), np.full((3, 8), np.nan), "X must be a finite real array"),
        (np.ones((4, 8)), np.zeros((0, 8)), "must not be empty"),
        (np.ones(8), np.ones((3, 8)), "need W of shape"),
    ],
)
def test_bad_layers_get_one_clear_message(w, x, message):
    with pytest.raises(QuantOptionError, match=message):
        run_method(w, x, "smoothquant", Side(), Side())


def test_weight_only_methods_need_the_weights_and_a_side_must_be_quantized():
    w, x = _layer(2)
    with pytest.raises(QuantOptionError, match="GPTQ quantizes the weights"):
        run_method(w, x, "gptq", None, Side())
    with pytest.raises(QuantOptionError, match="quantize at least one side"):
        run_method(w, x, "rtn", None, None)


def test_a_layer_over_the_memory_budget_is_refused_before_computing(monkeypatch):
    monkeypatch.setenv("QCORE_MEMORY_BUDGET_MB", "0.25")
    w, x = _layer(3)
    assert base.layer_bytes(16, 128, 40) > 0.25 * 1024**2
    with pytest.raises(QuantOptionError, match=r"the layer Y = X W\^T \(W 16x128, X 40x128\) would need .* over the"):
        run_method(w, x, "rtn", Side(), Side())
