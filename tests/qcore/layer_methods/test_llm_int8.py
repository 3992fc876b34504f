"""LLM.int8(): against bitsandbytes' CPU ``int8_vectorwise_quant`` / ``int8_mixed_scaled_mm``, and by hand."""

from __future__ import annotations

import numpy as np
import pytest

from qcore.layer_methods import Side, run_method
from qcore.layer_methods.llm_int8 import llm_int8, outlier_columns
from qcore.scheme import QuantOptionError, QuantScheme

ROW = QuantScheme(bits=8, granularity="channel", axis=0)
#: bitsandbytes computes round(x * m) in float32 with a multiplier m ~ 127 / absmax.
BNB = Side(ROW, convention="tensorrt")


def test_hand_computed_case():
    x = np.array([[1.0, 8.0, -2.0, 0.5], [-4.0, 1.0, 2.0, 1.0]], dtype=np.float32)
    w = np.array([[1.0, 0.5, -1.0, 2.0], [0.25, -2.0, 1.0, 1.0]], dtype=np.float32)
    out = llm_int8(w, x, Side(ROW), Side(ROW), threshold=6.0)
    assert out.details["outlier_columns"] == [1]
    assert out.details["share_16bit"] == 0.25 and out.details["effective_bits_x"] == 10.0
    # X rows without the outlier element: absmax 2 and 4; codes round(x * 127 / absmax), outlier column zeroed
    x8 = np.array([[64, 0, -127, 32], [-127, 0, 64, 32]]) * (np.array([[2.0], [4.0]]) / 127)
    x8[:, 1] = x[:, 1]  # the 16-bit part (exact in float16)
    np.testing.assert_allclose(out.x_eff, x8, rtol=1e-6)
    # W rows: absmax 2 and 2 over all columns; the outlier column kept in 16 bit
    w8 = np.round(w * 127 / 2) * 2 / 127
    w8[:, 1] = w[:, 1]
    np.testing.assert_allclose(out.w_eff, w8, rtol=1e-6)
    none = llm_int8(w, x, Side(ROW), Side(ROW), threshold=0.0)
    assert none.details["outlier_count"] == 0


def test_outlier_columns_and_bad_values():
    x = np.array([[0.0, 6.0, -5.9], [0.0, 0.0, -6.0]], dtype=np.float32)
    assert outlier_columns(x, 6.0).tolist() == [1, 2]
    assert outlier_columns(x, 0.0).tolist() == []
    with pytest.raises(QuantOptionError, match="float16"):
        llm_int8(np.ones((2, 3), np.float32), x * 1e5, Side(ROW), Side(ROW))
    with pytest.raises(QuantOptionError, match="threshold"):
        run_method(np.ones((2, 3)), x, "llm_int8", Side(ROW), Side(ROW), {"threshold": -1.0})


@pytest.mark.parametrize("name", ["minilm/layer3/ffn_up", "minilm/layer3/attention.query", "digits_mlp/fc3"])
def test_against_bitsandbytes(real_layer, name):
    torch = pytest.importorskip("torch")
    bnb_f = pytest.importorskip("bitsandbytes.functional")
    w, x = real_layer(name)
    x = x.astype(np.float16).astype(np.float32)  # bitsandbytes runs float16 inputs
    w = w.astype(np.float16).astype(np.float32)
    a = torch.tensor(x, dtype=torch.float16)
    ca, sca, cols = bnb_f.int8_vectorwise_quant(a.clone(), threshold=6.0)
    cb, scb, _ = bnb_f.int8_vectorwise_quant(torch.tensor(w, dtype=torch.float16))
    out = llm_int8(w, x, BNB, BNB, threshold=6.0, outlier_weights="int8")
    assert out.details["outlier_columns"] == cols.tolist()
    x_bnb = ca.numpy().astype(np.float32) * (sca.numpy()[:, None] / 127)
    x_bnb[:, cols.numpy()] = x[:, cols.numpy()]
    w_bnb = cb.numpy().astype(np.float32) * (scb.numpy()[:, None] / 127)
    # bitsandbytes multiplies by 127 * (1 / absmax) (torch evaluates scalar / tensor so), qcore by 127 / absmax:
    # the two float32 multipliers can differ in the last bit, which moves an exact tie x * 127 / absmax = k + 1/2
    # (frequent with float16 data) by one code. Everything else agrees to the last bit.
    for ours, theirs, data, stats in ((out.x_eff, x_bnb, x, sca), (out.w_eff, w_bnb, w, scb)):
        differ = ~np.isclose(ours, theirs, rtol=1e-6, atol=1e-7)
        t = data.astype(np.float64) * 127 / stats.numpy()[:, None].astype(np.float64)
        tie = np.abs(np.abs(t) % 1 - 0.5) < 1e-5
        assert np.all(tie[differ]) and differ.sum() <= 1e-4 * differ.size
    # the whole product: bitsandbytes' CPU kernel (float16 output and outlier matmul) against ours (float64),
    # far closer to each other than either is to the float product
    y_bnb = torch.ops.bitsandbytes.int8_mixed_scaled_mm(a, ca, cb, sca, scb, cols)[0].float().numpy()
    y_ours = out.x_eff.astype(np.float64) @ out.w_eff.astype(np.float64).T
    y = x.astype(np.float64) @ w.astype(np.float64).T
    assert np.mean((y_bnb - y_ours) ** 2) < 0.02 * np.mean((y_ours - y) ** 2)


def test_decomposition_helps_the_minilm_ffn(real_layer):
    w, x = real_layer("minilm/layer3/ffn_up")
    run = run_method(w, x, "llm_int8", Side(ROW), Side(ROW))
    assert run.output.details["outlier_count"] >= 3 and run.error.sqnr_db > run.rtn.sqnr_db + 5
