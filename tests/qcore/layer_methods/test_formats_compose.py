"""Layer methods with number formats (``QuantScheme.format``): the scheme is passed through, never special-cased."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.formats import get_format
from qcore.layer_methods import Side, run_method
from qcore.layer_methods.base import apply_fitted
from qcore.scheme import QuantScheme

FORMAT_SCHEMES = {
    "int": QuantScheme(bits=4, granularity="group", axis=1, group_size=32),
    "nf4": QuantScheme(bits=4, format="nf4", granularity="group", axis=1, group_size=64),
    "mxfp4": QuantScheme(bits=4, format="mxfp4"),
    "nvfp4": QuantScheme(bits=4, format="nvfp4"),
    "fp8_e4m3": QuantScheme(bits=8, format="fp8_e4m3", granularity="channel", axis=0),
    "q4_0": QuantScheme(bits=4, format="q4_0"),
}


def _layer(seed=0, out=24, k=128, n=96):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, k)) * rng.uniform(0.3, 2, k)).astype(np.float32)
    return (rng.standard_normal((out, k)) * 0.1).astype(np.float32), x


@pytest.mark.parametrize("name", list(FORMAT_SCHEMES))
def test_fitted_scales_reproduce_the_formats_own_encoding(name):
    """GPTQ's column quantizer (one fit, then any values) gives the format's own round trip on the fitted values."""
    w, _ = _layer()
    side = Side(FORMAT_SCHEMES[name])
    layout = get_format(side.scheme.format).scheme_for(side.scheme)
    block = w[:, : layout.group_size] if layout.granularity == "group" else w  # one scale row per output row
    fitted = side.analyze(block)
    _, w_hat = apply_fitted(fitted, block)
    own = fitted.dequantized()
    assert np.mean(w_hat == own) > 0.999  # exact ties between two levels may go either way
    np.testing.assert_allclose(w_hat, own, atol=float(np.max(np.abs(np.diff(np.unique(own))))))


@pytest.mark.parametrize("name", list(FORMAT_SCHEMES))
def test_gptq_with_every_format_beats_round_to_nearest(name):
    w, x = _layer(1)
    run = run_method(w, x, "gptq", Side(FORMAT_SCHEMES[name]), None)
    assert run.error.mse < run.rtn.mse


@pytest.mark.parametrize(("method", "fmt"), [("hadamard", "mxfp4"), ("smoothquant", "fp8_e4m3"), ("awq", "nf4")])
def test_other_methods_take_a_format(method, fmt):
    w, x = _layer(2)
    side = Side(FORMAT_SCHEMES[fmt])
    run = run_method(w, x, method, side, side if method != "awq" else None)
    assert np.isfinite(run.error.mse) and run.error.mse > 0
