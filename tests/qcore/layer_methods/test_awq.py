"""AWQ: the chosen ratio and clip against a torch port of llm-awq's ``_search_module_scale`` / ``auto_clip_layer``."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.layer_methods import Side, run_method
from qcore.layer_methods.awq import search_clip, search_scale
from qcore.scheme import QuantScheme

torch = pytest.importorskip("torch")

W4 = QuantScheme(bits=4, granularity="group", axis=1, group_size=128)
W3_ASYM = QuantScheme(bits=3, symmetric=False, granularity="group", axis=1, group_size=64)


def _pseudo_quantize(w, scheme: QuantScheme):
    """Plain per-group min-max fake quantization (qcore's default convention) in torch float32."""
    out, k = w.shape
    g = w.reshape(-1, scheme.group_size)
    if scheme.symmetric:
        t = g.abs().amax(dim=1, keepdim=True).double()
        s = torch.where(t > 0, t / scheme.qmax, torch.ones_like(t)).float()
        z = torch.zeros_like(s)
    else:
        lo = torch.clamp(g.amin(dim=1, keepdim=True).double(), max=0)
        hi = torch.clamp(g.amax(dim=1, keepdim=True).double(), min=0)
        s64 = (hi - lo) / (scheme.qmax - scheme.qmin)
        s64 = torch.where(s64 > 0, s64, torch.ones_like(s64))
        z = torch.clamp(torch.round(scheme.qmin - lo / s64), scheme.qmin, scheme.qmax).float()
        s = s64.float()
    q = torch.clamp(torch.round(g / s) + z, scheme.qmin, scheme.qmax)
    return ((q - z) * s).reshape(out, k)


def reference_ratio(w, x, scheme):
    """``_search_module_scale`` with the block = this linear layer (no bias)."""
    W = torch.tensor(w)
    X = torch.tensor(x)
    org_out = X.double() @ W.double().t()
    x_max = X.abs().view(-1, X.shape[-1]).mean(0)  # get_act_scale
    best_error, best_ratio, n_grid = float("inf"), -1, 20
    for ratio in range(n_grid):
        ratio = ratio * 1 / n_grid
        scales = x_max.pow(ratio).clamp(min=1e-4).view(-1)
        scales = scales / (scales.max() * scales.min()).sqrt()
        w_q = _pseudo_quantize(W * scales.view(1, -1), scheme) / scales.view(1, -1)
        out = X.double() @ w_q.double().t()
        loss = (org_out - out).float().pow(2).mean().item()
        if loss < best_error:
            best_error, best_ratio = loss, ratio
    return best_ratio


def reference_clip(w, x, scheme, n_grid=20, max_shrink=0.5, n_sample_token=512):
    """``auto_clip_layer`` without the output-channel batching (a memory device only)."""
    W = torch.tensor(w).double()
    group = scheme.group_size
    feat = torch.tensor(x).double().reshape(1, x.shape[0], -1, group)
    feat = feat[:, 0 :: max(feat.shape[1] // n_sample_token, 1)]
    Wg = W.reshape(W.shape[0], 1, -1, group)
    org_max = Wg.abs().amax(dim=-1, keepdim=True)
    best = org_max.clone()
    min_errs = torch.ones_like(org_max) * 1e9
    org_out = (feat * Wg).sum(dim=-1)
    for i_s in range(int(max_shrink * n_grid)):
        max_val = (org_max * (1 - i_s / n_grid)).float().double()
        cur = torch.clamp(Wg, -max_val, max_val)
        q = _pseudo_quantize(cur.reshape(W.shape).float(), scheme).double().reshape(Wg.shape)
        err = ((feat * q).sum(dim=-1) - org_out).pow(2).mean(dim=1).view(min_errs.shape)
        better = err < min_errs
        min_errs[better] = err[better]
        best[better] = max_val[better]
    return best.squeeze(1).squeeze(-1).numpy()


@pytest.mark.parametrize("scheme", [W4, W3_ASYM], ids=["int4-g128", "int3-asym-g64"])
@pytest.mark.parametrize("name", ["minilm/layer3/ffn_up", "minilm/layer3/attention.query", "digits_mlp/fc2"])
def test_same_ratio_as_reference_loop(real_layer, name, scheme):
    w, x = real_layer(name)
    ratio, _, history = search_scale(w, x, Side(scheme))
    assert ratio == reference_ratio(w, x, scheme)
    assert history.shape == (20,) and history[round(ratio * 20)] == history.min()


def test_same_clip_as_reference(real_layer):
    w, x = real_layer("minilm/layer3/attention.query")
    m, _ = search_clip(w, x, Side(W4))
    np.testing.assert_allclose(m, reference_clip(w, x, W4).astype(np.float32), rtol=1e-6)


def test_awq_beats_rtn_on_the_ffn_and_clip_is_optional(real_layer):
    w, x = real_layer("minilm/layer3/ffn_up")
    plain = run_method(w, x, "awq", Side(W4), None)
    clipped = run_method(w, x, "awq", Side(W4), None, {"clip": True})
    assert plain.error.mse < plain.rtn.mse
    assert clipped.output.details["clip"] and 0.5 <= clipped.output.details["clip_mean_ratio"] <= 1.0


def test_clip_with_one_group_per_row(real_layer):
    """K = 64 with groups of 128: one (padded) group per row, so the clip search runs per row."""
    w, x = real_layer("digits_mlp/fc1")
    run = run_method(w, x, "awq", Side(W4), None, {"clip": True})
    assert run.error.mse < run.rtn.mse and run.output.details["clip_mean_ratio"] < 1.0
