"""GPTQ against a plain torch port of AutoGPTQ's ``fasterquant`` (CPU), on small and real layers."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.layer_methods import Side, run_method
from qcore.layer_methods.gptq import gptq_weights, hessian, inverse_factor
from qcore.scheme import QuantOptionError, QuantScheme

torch = pytest.importorskip("torch")


def _minmax_params(w, scheme: QuantScheme):
    """Plain symmetric / affine min-max per row (qcore's default convention), computed in torch."""
    w32 = w.float()
    if scheme.symmetric:
        t = w32.abs().amax(dim=1).double()
        scale = torch.where(t > 0, t / scheme.qmax, torch.ones_like(t))
        zero = torch.zeros_like(t)
    else:
        lo = torch.clamp(w32.amin(dim=1).double(), max=0)
        hi = torch.clamp(w32.amax(dim=1).double(), min=0)
        scale = (hi - lo) / (scheme.qmax - scheme.qmin)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero = torch.clamp(torch.round(scheme.qmin - lo / scale), scheme.qmin, scheme.qmax)
    return scale.float(), zero.float()


def _quantize(col, scale, zero, scheme):
    q = torch.clamp(torch.round(col.float() / scale) + zero, scheme.qmin, scheme.qmax)
    return q, (q - zero) * scale


def reference_gptq(
    w, x, scheme: QuantScheme, damp=0.01, act_order=False, blocksize=128, dtype=torch.float64, static_groups=False
):
    """AutoGPTQ ``GPTQ.add_batch`` + ``fasterquant`` written out, with the quantizer replaced by plain min-max.

    Returns the integer codes (out, K) in the original column order.
    """
    W = torch.tensor(w, dtype=dtype)
    X = torch.tensor(x, dtype=dtype)
    rows, columns = W.shape
    H = 2 / X.shape[0] * X.t() @ X
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    group = scheme.group_size if scheme.granularity == "group" else -1
    if group == -1:
        whole = W if scheme.granularity == "channel" else W.reshape(1, -1)
        scale, zero = _minmax_params(whole, scheme)
        if scheme.granularity == "tensor":
            scale, zero = scale.repeat(rows), zero.repeat(rows)
    if static_groups:
        groups = [_minmax_params(W[:, i : i + group], scheme) for i in range(0, columns, group)]
    if act_order:
        perm = torch.argsort(torch.diag(H), descending=True, stable=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)
    codes = torch.zeros_like(W)
    H[torch.arange(columns), torch.arange(columns)] += damp * torch.mean(torch.diag(H))
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    for i1 in range(0, columns, blocksize):
        i2 = min(i1 + blocksize, columns)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            w_col = W1[:, i]
            d = Hinv1[i, i]
            if group != -1 and static_groups:
                idx = int(perm[i1 + i]) if act_order else i1 + i
                scale, zero = groups[idx // group]
            elif group != -1 and (i1 + i) % group == 0:
                scale, zero = _minmax_params(W[:, (i1 + i) : (i1 + i + group)], scheme)
            c, q = _quantize(w_col, scale, zero, scheme)
            codes[:, i1 + i] = c
            err1 = (w_col - q.to(dtype)) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    if act_order:
        codes = codes[:, invperm]
    return codes.numpy().astype(np.int64)


SCHEMES = [
    QuantScheme(bits=4, granularity="group", axis=1, group_size=128),
    QuantScheme(bits=4, granularity="group", axis=1, group_size=32),
    QuantScheme(bits=3, granularity="channel", axis=0),
    QuantScheme(bits=4, symmetric=False, granularity="group", axis=1, group_size=64),
    QuantScheme(bits=8, granularity="tensor"),
]


def _small_layer(seed=0, out=48, k=320, n=200):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, k)).astype(np.float32) * rng.uniform(0.2, 3, k).astype(np.float32)
    x[:, 7] = 0  # a dead input column
    x[:, 11] *= 20  # an outlier channel
    w = (rng.standard_normal((out, k)) * 0.1).astype(np.float32)
    return w, x


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"{s.bits}b-{s.granularity}-{s.group_size}-{s.symmetric}")
@pytest.mark.parametrize("act_order", [False, True])
def test_codes_match_reference_small(scheme, act_order):
    w, x = _small_layer()
    _, codes, details = gptq_weights(w, x, Side(scheme), act_order=act_order, block_size=128, dtype=np.float64)
    ref = reference_gptq(w, x, scheme, act_order=act_order)
    assert details["dead_columns"] == 1
    np.testing.assert_array_equal(codes.astype(np.int64), ref)


@pytest.mark.parametrize(
    "name",
    ["minilm/layer3/ffn_up", pytest.param("minilm/layer3/ffn_down", marks=pytest.mark.slow), "digits_mlp/fc2"],
)
def test_codes_match_reference_real(real_layer, name):
    w, x = real_layer(name)
    scheme = SCHEMES[0]
    _, codes, _ = gptq_weights(w, x, Side(scheme), dtype=np.float64)
    np.testing.assert_array_equal(codes.astype(np.int64), reference_gptq(w, x, scheme))


def test_float32_path_agrees_with_float32_reference(real_layer):
    """In float32 (AutoGPTQ's arithmetic) numpy and torch sum in different orders: nearly all codes agree."""
    w, x = real_layer("minilm/layer3/ffn_up")
    _, codes, _ = gptq_weights(w, x, Side(SCHEMES[0]))
    ref = reference_gptq(w, x, SCHEMES[0], dtype=torch.float32)
    assert np.mean(codes.astype(np.int64) == ref) > 0.999


def test_hessian_and_block_size_do_not_change_the_result():
    w, x = _small_layer(1)
    h = hessian(x, np.float64)
    np.testing.assert_allclose(h, 2 * x.astype(np.float64).T @ x.astype(np.float64) / x.shape[0], rtol=1e-12)
    a = gptq_weights(w, x, Side(SCHEMES[2]), block_size=128, dtype=np.float64)[1]
    b = gptq_weights(w, x, Side(SCHEMES[2]), block_size=17, dtype=np.float64)[1]
    assert np.mean(a == b) > 0.999  # lazy batch updates are the same algebra; only float rounding differs


def test_singular_hessian_needs_damping():
    w, x = _small_layer(2, k=64, n=20)  # n < K: rank-deficient H
    with pytest.raises(QuantOptionError, match=r"singular.*damping > 0"):
        gptq_weights(w, x, Side(SCHEMES[2]), damp=0.0)
    gptq_weights(w, x, Side(SCHEMES[2]), damp=0.01)


def test_granularity_along_the_wrong_axis_is_refused():
    w, x = _small_layer(3)
    with pytest.raises(QuantOptionError, match="column by column"):
        gptq_weights(w, x, Side(QuantScheme(bits=4, granularity="channel", axis=1)))


def test_composes_with_other_calibrators_and_beats_rtn():
    w, x = _small_layer(4)
    for method in ("mse", "percentile"):
        side = Side(QuantScheme(bits=4, granularity="group", axis=1, group_size=64), method)
        run = run_method(w, x, "gptq", side, None)
        assert run.error.mse < run.rtn.mse


def test_inverse_factor_is_autogptqs():
    """U from the reversed Cholesky factor equals cholesky(cholesky_inverse(cholesky(H)), upper=True)."""
    _, x = _small_layer(5)
    h = hessian(x, np.float64)
    damped = torch.tensor(h + 0.01 * np.mean(np.diag(h)) * np.eye(h.shape[0]))
    ref = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(damped)), upper=True).numpy()
    np.testing.assert_allclose(inverse_factor(h, 0.01), ref, rtol=1e-9, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("act_order", [False, True])
def test_static_groups_match_reference(act_order):
    w, x = _small_layer(6)
    scheme = SCHEMES[1]  # groups of 32
    _, codes, details = gptq_weights(w, x, Side(scheme), act_order=act_order, dtype=np.float64, static_groups=True)
    assert details["static_groups"]
    ref = reference_gptq(w, x, scheme, act_order=act_order, static_groups=True)
    np.testing.assert_array_equal(codes.astype(np.int64), ref)


def test_fitted_ranges_reapply_for_int_and_log2_and_block_formats():
    """GPTQ re-applies a group's fitted ranges to updated columns: INT codes, log2's grid, a block format's scales."""
    import numpy as np
    import pytest

    from qcore import QuantOptionError, QuantScheme, analyze
    from qcore.layer_methods.base import apply_fitted

    w = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    for fmt in ("int", "log2"):
        fitted = analyze(w, QuantScheme(bits=4, format=fmt, granularity="channel"))
        codes, w_hat = apply_fitted(fitted, w)
        np.testing.assert_array_equal(w_hat, fitted.dequantized())
        np.testing.assert_array_equal(codes, fitted.codes())
    fitted = analyze(w, QuantScheme(bits=4, format="q4_0"))  # blocks of 32: 16 scale rows
    _, w_hat = apply_fitted(fitted, w.reshape(-1, 32))
    assert np.mean(w_hat.reshape(w.shape) == fitted.dequantized()) > 0.99  # exact .5 ties may round apart
    with pytest.raises(QuantOptionError, match="16 rows for 8 rows"):
        apply_fitted(fitted, w)
