"""SmoothQuant and Hadamard rotation: exact identities on the float product, factors as the references define them."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.layer_methods import Side, alpha_sweep, run_method
from qcore.layer_methods.hadamard import hadamard, hadamard_rotation, paley, rotation
from qcore.layer_methods.smoothquant import smooth, smoothing_factors, smoothquant
from qcore.samples import sample_pairs
from qcore.scheme import QuantOptionError, QuantScheme

PAIRS = [p.name for p in sample_pairs()]


def _y(x, w):
    return x.astype(np.float64) @ w.astype(np.float64).T


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.85, 1.0])
def test_smoothing_leaves_float_y_unchanged(real_layer, name, alpha):
    w, x = real_layer(name)
    w_s, x_s, _ = smooth(w, x, alpha)
    y = _y(x, w)
    # float32 storage of X / s and W s: a relative error of a few float32 ulps per term
    np.testing.assert_allclose(_y(x_s, w_s), y, atol=1e-5 * np.max(np.abs(y)))
    out = smoothquant(w, x, None, None, alpha)  # float sides: the method's product is the float product
    np.testing.assert_allclose(_y(out.x_eff, out.w_eff), y, atol=1e-5 * np.max(np.abs(y)))


def test_smoothing_factors_as_smooth_py():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 16)).astype(np.float32)
    x[:, 3] = 0  # a dead channel: 0^alpha clamped to 1e-5
    w = rng.standard_normal((8, 16)).astype(np.float32)
    w[:, 5] = 0  # a zero weight column: max clamped to 1e-5
    for alpha in (0.0, 0.5, 0.8):
        act = torch.tensor(x).abs().amax(dim=0).double()
        weight = torch.tensor(w).abs().max(dim=0, keepdim=True)[0].max(dim=0)[0].double().clamp(min=1e-5)
        ref = (act.pow(alpha) / weight.pow(1 - alpha)).clamp(min=1e-5).numpy()
        np.testing.assert_allclose(smoothing_factors(w, x, alpha), ref, rtol=1e-12)


@pytest.mark.parametrize("name", PAIRS)
def test_rotation_leaves_float_y_unchanged(real_layer, name):
    w, x = real_layer(name)
    out = hadamard_rotation(w, x, None, None, seed=3)
    y = _y(x, w)
    np.testing.assert_allclose(_y(out.x_eff, out.w_eff), y, atol=2e-6 * np.max(np.abs(y)) * np.sqrt(x.shape[1]))


@pytest.mark.parametrize("k", [1, 2, 12, 20, 24, 44, 64, 384, 1536])
def test_hadamard_matrices(k):
    h = hadamard(k)
    assert set(np.unique(h)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(h @ h.T, k * np.eye(k))
    q = rotation(k, seed=1)
    np.testing.assert_allclose(q @ q.T, np.eye(k), atol=1e-12)


def test_paley_and_impossible_orders():
    np.testing.assert_array_equal(paley(12) @ paley(12).T, 12 * np.eye(12))
    with pytest.raises(QuantOptionError, match="no Hadamard matrix of order K = 10"):
        hadamard(10)
    w = np.ones((3, 10), np.float32)
    with pytest.raises(QuantOptionError, match="K = 10"):
        run_method(w, np.ones((4, 10)), "hadamard", Side(), Side())


def test_rotation_tames_the_minilm_outliers(real_layer):
    w, x = real_layer("minilm/layer3/ffn_up")
    side = Side(QuantScheme(bits=8, granularity="tensor"))
    run = run_method(w, x, "hadamard", Side(QuantScheme(granularity="channel", axis=0)), side)
    d = run.output.details
    assert d["x_kurtosis_after"] < 5 < 100 < d["x_kurtosis_before"]
    assert d["x_channel_max_ratio_after"] < 3 < 10 < d["x_channel_max_ratio_before"]
    assert run.error.sqnr_db > run.rtn.sqnr_db + 10


def test_alpha_sweep_is_smoothquant_at_each_alpha(real_layer):
    w, x = real_layer("digits_mlp/fc2")
    sides = Side(QuantScheme(granularity="channel", axis=0)), Side()
    sweep = alpha_sweep(w, x, *sides, alphas=(0.25, 0.75))
    for alpha, err in sweep:
        assert err == run_method(w, x, "smoothquant", *sides, {"alpha": alpha}).error
