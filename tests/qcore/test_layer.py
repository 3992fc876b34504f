"""qcore.layer: output errors, the integer path with zero-point cross terms, EasyQuant on a layer."""

from __future__ import annotations

import numpy as np
import pytest

from qcore import QuantOptionError, QuantScheme
from qcore.layer import OutputError, analyze_layer, easyquant_layer, integer_matmul, zero_point_terms

RNG = np.random.default_rng(0)
W = (RNG.standard_normal((24, 64)) * 0.2).astype(np.float32)
X = (np.maximum(RNG.standard_normal((16, 64)), 0.0) + 0.05).astype(np.float32)


def test_integer_matmul_by_hand():
    # x = s_x (q_x - z_x), w = s_w (q_w - z_w), K = 2
    xq, wq = np.array([[3, 5]]), np.array([[1, 4], [2, 0]])
    y, acc = integer_matmul(xq, np.array([0.5]), np.array([1]), wq, np.array([0.1, 0.2]), np.array([2, -1]))
    x_hat = 0.5 * (xq - 1)
    w_hat = np.array([[0.1], [0.2]]) * (wq - np.array([[2], [-1]]))
    np.testing.assert_allclose(y, x_hat @ w_hat.T, rtol=1e-15)
    np.testing.assert_array_equal(acc, [[23, 6]])


@pytest.mark.parametrize("w_sym", [True, False])
@pytest.mark.parametrize("x_sym", [True, False])
def test_cross_terms_identity_and_presence(w_sym, x_sym):
    la = analyze_layer(W, X, QuantScheme(symmetric=w_sym, granularity="channel"), QuantScheme(symmetric=x_sym))
    ic = la.integer
    assert ic is not None
    scale = np.abs(ic.y_dequantized).max()
    assert ic.max_abs_difference <= 1e-12 * scale
    # and both equal the float32 round trips multiplied in float64
    y_rt = la.activation.dequantized().astype(np.float64) @ la.weight.dequantized().astype(np.float64).T
    np.testing.assert_allclose(ic.y_integer, y_rt, rtol=1e-5, atol=1e-6 * scale)
    present = {t.name for t in ic.terms if t.present}
    assert ("weight zero point x input sum" in present) == (not w_sym)
    assert ("input zero point x weight sum" in present) == (not x_sym)
    assert ("constant" in present) == (not w_sym and not x_sym)
    k, out = W.shape[1], W.shape[0]
    assert ic.runtime_ops_per_output == pytest.approx(k + (0 if w_sym else k / out + 1))


def test_costs_of_the_terms():
    sym = zero_point_terms(False, False, k=512, n_out=256)
    assert sum(t.runtime_ops for t in sym if t.present) == 512
    asym_x = zero_point_terms(False, True, k=512, n_out=256)
    assert [t.offline for t in asym_x if t.present] == [False, True]  # the z_x term folds into the bias
    dynamic_x = zero_point_terms(True, True, k=512, n_out=256, x_per_row=True)
    assert sum(t.runtime_ops for t in dynamic_x if t.present) == 512 + (2 + 1) + 1 + 1


def test_output_errors_and_integer_restrictions():
    la = analyze_layer(W, X, QuantScheme(bits=4, granularity="channel"), QuantScheme(bits=8), w_method="admm")
    y = X.astype(np.float64) @ W.astype(np.float64).T
    np.testing.assert_allclose(la.y, y)
    w_hat = la.weight.dequantized().astype(np.float64)
    expected = OutputError.of(y, X.astype(np.float64) @ w_hat.T)
    assert la.errors["weights"] == expected
    assert expected.mse == pytest.approx(np.mean((X.astype(np.float64) @ w_hat.T - y) ** 2))
    # 4-bit weights cost more than 8-bit activations here; both together cost the most
    assert la.errors["weights"].sqnr_db < la.errors["activations"].sqnr_db
    assert la.errors["both"].mse > la.errors["activations"].mse
    # scales varying along K do not factor out of the sum; non-uniform grids have no integer product
    by_k = analyze_layer(W, X, QuantScheme(granularity="group", axis=1, group_size=16), QuantScheme())
    assert by_k.integer is None and "along K" in by_k.integer_error
    log = analyze_layer(W, X, QuantScheme(), QuantScheme(format="log2"))
    assert log.integer is None and "non-uniform" in log.integer_error
    per_sample = analyze_layer(W, X, QuantScheme(granularity="channel"), QuantScheme(granularity="channel"))
    assert per_sample.integer is not None


def test_bad_shapes():
    with pytest.raises(QuantOptionError):
        analyze_layer(W, X[:, :10], QuantScheme(), QuantScheme())
    with pytest.raises(QuantOptionError):
        analyze_layer(W, np.full((2, 64), np.nan, dtype=np.float32), QuantScheme(), QuantScheme())


@pytest.mark.parametrize("grid", ["paper", "ncnn"])
def test_easyquant_layer_improves_output_cosine(grid):
    res = easyquant_layer(W, X, QuantScheme(bits=4), QuantScheme(bits=4), grid=grid)
    scores = [s for _, s in res.history]
    assert np.all(np.diff(scores) >= 0) and scores[-1] > scores[0]
    # the reported steps reproduce the final score
    x_hat = np.clip(np.round(X / np.float32(res.x_scale)), -8, 7) * np.float32(res.x_scale)
    w_hat = np.clip(np.round(W / res.w_scale[:, None].astype(np.float32)), -8, 7) * res.w_scale[:, None].astype(
        np.float32
    )
    y = X.astype(np.float64) @ W.astype(np.float64).T
    assert OutputError.of(y, x_hat.astype(np.float64) @ w_hat.astype(np.float64).T).row_cosine == pytest.approx(
        scores[-1], rel=1e-9
    )
    assert res.x_curve.shape == (2, 100)


def test_easyquant_layer_rejects_asymmetric():
    with pytest.raises(QuantOptionError):
        easyquant_layer(W, X, QuantScheme(symmetric=False), QuantScheme())
